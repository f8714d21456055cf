"""Links between a service and its backups (bot/shop/routing/links.py), no aiogram: real
SQLite, catalogs fetched from real sandbox panels over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal

import pytest

from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG, CatalogEntry, generated_catalog
from bot.devtools.sandbox.server import DEFAULT_KEY
from bot.panel import PanelClient, Service
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import platforms_for, refresh_catalog
from bot.shop.routing.links import LinkRefused, Refusal, RouteLinks, label
from storage import catalog as catalog_store
from storage.catalog import StoredService
from storage.db import Database
from tests.conftest import SandboxFactory

ADMIN = 99


def _e(id_: int, name: str, type_: str, category: str, rate: str, low: int,
       high: int) -> CatalogEntry:
    return CatalogEntry(id_, name, type_, category, Decimal(rate), low, high)


# Another reseller panel selling much the same, in its own words, ids, prices and
# limits (wordings seen on real panels), with look-alikes that must not win.
RESELLER_CATALOG = (
    _e(7001, "IG Followers | Real Accounts | R30 | Max 100K", "Default", "Instagram - Followers",
       "1.35", 50, 100_000),
    _e(7002, "IG Followers | Cheap | No Refill", "Default", "Instagram - Followers", "0.40", 20,
       10_000),
    _e(7003, "Instagram Likes ⚡ Instant Start", "Default", "Instagram - Likes", "0.22", 10,
       100_000),
    _e(7004, "IG Reels Views | Fast", "Default", "Instagram - Views", "0.015", 100, 5_000_000),
    _e(7005, "Instagram Story Views - All Stories", "Default", "Instagram - Views", "0.06", 100,
       50_000),
    _e(7006, "IG Custom Comments [Your text]", "Custom Comments", "Instagram - Comments", "7.50",
       10, 1_000),
    _e(7015, "IG Comment Likes", "Comment Likes", "Instagram - Likes", "1.80", 20, 5_000),
    _e(7016, "Instagram Auto-Likes (new posts)", "Subscriptions", "Instagram - Auto", "0.28", 50,
       10_000),
    _e(7201, "TikTok Followers | 30 Days Refill", "Default", "TikTok - Followers", "2.30", 100,
       100_000),
    _e(7202, "TT Likes | Real", "Default", "TikTok - Likes", "0.38", 50, 50_000),
    _e(7203, "TikTok Views | Video | Instant", "Default", "TikTok - Views", "0.008", 100,
       100_000_000),
    _e(7205, "TikTok Custom Comments", "Custom Comments", "TikTok - Comments", "9.50", 10, 500),
    _e(7301, "YT Views | Non Drop | Lifetime Refill", "Default", "YouTube - Views", "1.95", 1_000,
       500_000),
    _e(7302, "YouTube Subs | R30", "Default", "YouTube - Subscribers", "13.00", 100, 10_000),
    _e(7303, "YouTube Likes | Refill", "Default", "YouTube - Likes", "1.00", 20, 50_000),
    _e(7401, "TG Channel Members | R30", "Default", "Telegram - Members", "1.40", 100, 30_000),
    _e(7402, "Telegram Post Views | Last 1 Post", "Default", "Telegram - Views", "0.02", 50,
       500_000),
    _e(7404, "Telegram Reactions 👍❤️🔥 Positive Mix", "Default", "Telegram - Reactions", "0.25",
       10, 50_000),
    _e(7501, "FB Page Likes + Followers", "Default", "Facebook - Page", "2.60", 100, 20_000),
    _e(7502, "Facebook Post Likes", "Default", "Facebook - Post", "0.85", 50, 10_000),
    _e(7601, "Twitter Followers | HQ", "Default", "Twitter - Followers", "3.00", 100, 10_000),
    _e(7602, "Twitter Likes", "Default", "Twitter - Likes", "0.95", 10, 5_000),
    _e(7701, "Spotify Plays | Premium", "Default", "Spotify", "0.85", 1_000, 1_000_000),
    _e(7801, "Website Traffic from Google [Keyword] Worldwide", "Web Traffic", "Website Traffic",
       "0.55", 500, 500_000),
    # Look-alikes.
    _e(7900, "Instagram Followers [Arab, no refill]", "Default", "Instagram - Followers", "3.00",
       100, 5_000),
    _e(7901, "Threads Followers", "Default", "Threads", "1.00", 100, 10_000),
    _e(7902, "Twitch Followers", "Default", "Twitch - Followers", "1.10", 100, 10_000),
    _e(7903, "YouTube Views [Slow, 10-100]", "Default", "YouTube - Views", "0.50", 10, 100),
    _e(7904, "Instagram Followers Package [1000]", "Package", "Instagram - Followers", "1.30", 1,
       1),
)
# main's service id -> the reseller's that sells the same.
SAME = {101: 7001, 102: 7002, 103: 7003, 104: 7004, 105: 7005, 106: 7006, 115: 7015, 116: 7016,
        201: 7201, 202: 7202, 203: 7203, 205: 7205, 301: 7301, 302: 7302, 303: 7303, 401: 7401,
        402: 7402, 404: 7404, 501: 7501, 502: 7502, 601: 7601, 602: 7602, 701: 7701, 801: 7801}


async def fill(db: Database, make_sandbox: SandboxFactory,
               panels: dict[str, tuple[str, Iterable[CatalogEntry]]]) -> None:
    """Each panel's catalog as the bot stores it: fetched from a sandbox in its dialect."""
    for name, (dialect, catalog) in panels.items():
        sandbox = await make_sandbox(dialect, catalog=catalog)
        async with PanelClient(sandbox.url, DEFAULT_KEY, name=name, rate_limit=0) as client:
            await refresh_catalog(db, client, "EUR" if dialect == "softaapp" else "USD")


def links_of(db: Database, panels: Iterable[str] = ("main", "backup"),
             fx: dict[str, Decimal] | None = None) -> RouteLinks:
    return RouteLinks(db, Pricer(db, "USD", Decimal(30), fx or {}), list(panels))


async def stored(db: Database, panel: str, service_id: int) -> StoredService:
    found = await catalog_store.by_panel_id(db, panel, str(service_id))
    assert found is not None, (panel, service_id)
    return found


@pytest.fixture
async def reseller(db: Database, make_sandbox: SandboxFactory,
                   ) -> RouteLinks:
    await fill(db, make_sandbox, {"main": ("perfectpanel", DEFAULT_CATALOG),
                                               "backup": ("smmsofia", RESELLER_CATALOG)})
    return links_of(db)


async def test_each_service_finds_the_same_one_in_another_panels_words(
        db: Database, reseller: RouteLinks) -> None:
    for main_id, backup_id in SAME.items():
        service = await stored(db, "main", main_id)
        found = await reseller.suggest(service.ref)
        assert found, service.service.name
        assert label(found[0].backup) == f"backup:{backup_id}", (
            service.service.name, [(s.backup.service.name, s.score) for s in found])
        scores = [s.score for s in found]
        assert scores == sorted(scores, reverse=True) and all(1 <= s <= 100 for s in scores)
        for suggestion in found:  # never another kind of order, nor disjoint limits
            backup = suggestion.backup.service
            assert backup.type == service.service.type
            assert backup.min <= service.service.max and service.service.min <= backup.max
            assert suggestion.backup.panel == "backup"


async def test_look_alikes_lose_and_unlike_services_are_not_suggested(
        db: Database, reseller: RouteLinks) -> None:
    followers = await stored(db, "main", 101)
    names = [s.backup.service.name for s in await reseller.suggest(followers.ref)]
    assert names[0].startswith("IG Followers | Real")
    assert "Twitch Followers" not in names  # another platform
    assert not any("Package" in n for n in names)  # another order type
    twitter = await stored(db, "main", 601)  # not "Threads" (a platform the shop can't tell)
    assert [s.backup.service.name for s in await reseller.suggest(twitter.ref)] == [
        "Twitter Followers | HQ"]
    views = await stored(db, "main", 301)  # 500 .. 1,000,000: "10-100" takes none of it
    assert all(s.backup.service.id != "7903" for s in await reseller.suggest(views.ref))
    # Nothing there reads like Instagram mentions or a poll; sharing the platform's name
    # alone (TikTok Shares, TT Likes) is no likeness.
    for lonely in (109, 403, 604, 204, 603, 703):
        assert await reseller.suggest((await stored(db, "main", lonely)).ref) == [], lonely


async def test_the_same_catalog_in_another_dialect_and_currency(
        db: Database, make_sandbox: SandboxFactory) -> None:
    # softaapp: EUR, and only some order types.
    await fill(db, make_sandbox, {"main": ("perfectpanel", DEFAULT_CATALOG),
                                               "backup": ("softaapp", DEFAULT_CATALOG)})
    links = links_of(db, fx={"backup": Decimal("1.10")})
    backup_types = {s.service.type for s in await catalog_store.listed_on(db, ["backup"])}
    for entry in DEFAULT_CATALOG:
        service = await stored(db, "main", entry.id)
        found = await links.suggest(service.ref, limit=3)
        if entry.type in backup_types:
            assert found and label(found[0].backup) == f"backup:{entry.id}", entry.name
            assert found[0].score == 100
        else:
            assert found == [], entry.name
    made = await links.link(ADMIN, (await stored(db, "main", 101)).ref,
                            (await stored(db, "backup", 101)).ref)
    # 1.20 USD and 1.20 EUR per 1000: the backup costs 1.32 USD through its FX rate.
    assert (made.service_cost_minor, made.backup_cost_minor, made.position) == (120, 132, 1)


async def test_linking_listing_unlinking_with_audit_rows(db: Database,
                                                         reseller: RouteLinks) -> None:
    followers, real, arab = (await stored(db, "main", 101), await stored(db, "backup", 7001),
                             await stored(db, "backup", 7900))
    first = await reseller.link(ADMIN, followers.ref, real.ref)
    second = await reseller.link(0, followers.ref, arab.ref)  # 0: the command line
    assert (first.position, second.position) == (1, 2)
    listed = await reseller.listing()
    assert [(label(k.service), label(k.backup), k.position) for k in listed] == [
        ("main:101", "backup:7001", 1), ("main:101", "backup:7900", 2)]
    assert (listed[0].service_cost_minor, listed[0].backup_cost_minor) == (120, 135)
    assert [label(k.backup) for k in await reseller.backups(followers.ref)] == [
        "backup:7001", "backup:7900"]
    # Linked ones are no longer suggested.
    assert all(s.backup.ref not in (real.ref, arab.ref)
               for s in await reseller.suggest(followers.ref))

    await reseller.unlink(ADMIN, followers.ref, real.ref)
    assert [label(k.backup) for k in await reseller.backups(followers.ref)] == ["backup:7900"]
    rows = await db.fetchall("SELECT admin_id, action, target_kind, target_id, before, after"
                             " FROM audit_log ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (ADMIN, "route_link", "service", str(followers.ref), "", "backup:7001"),
        (0, "route_link", "service", str(followers.ref), "", "backup:7900"),
        (ADMIN, "route_unlink", "service", str(followers.ref), "backup:7001", "")]


async def refusal(links: RouteLinks, service: int, backup: int) -> LinkRefused:
    with pytest.raises(LinkRefused) as caught:
        await links.link(ADMIN, service, backup)
    return caught.value


async def test_refusals_say_why_and_change_nothing(db: Database, reseller: RouteLinks) -> None:
    followers, cheap = await stored(db, "main", 101), await stored(db, "main", 102)
    real, package = await stored(db, "backup", 7001), await stored(db, "backup", 7904)
    await reseller.link(ADMIN, followers.ref, real.ref)
    before = await db.fetchall("SELECT * FROM service_routes")
    audit_rows = await db.fetchall("SELECT * FROM audit_log")

    refused = await refusal(reseller, followers.ref, cheap.ref)
    assert refused.reason is Refusal.SAME_PANEL
    assert str(refused) == ("main:102 is on the same panel as main:101: a backup must be on"
                            " another panel.")
    refused = await refusal(reseller, followers.ref, package.ref)
    assert refused.reason is Refusal.OTHER_TYPE
    assert str(refused) == ("backup:7904 takes “Package” orders and main:101 “Default” ones: a"
                            " backup must take the same kind of order.")
    refused = await refusal(reseller, followers.ref, 999_999)
    assert (refused.reason, str(refused)) == (
        Refusal.UNKNOWN, "#999999 is not in the catalog (as the panels last listed it).")
    assert (await refusal(reseller, followers.ref, followers.ref)).reason is Refusal.SELF
    refused = await refusal(reseller, followers.ref, real.ref)
    assert (refused.reason, str(refused)) == (Refusal.ALREADY,
                                              "backup:7001 is already a backup of main:101.")
    refused = await refusal(reseller, real.ref, followers.ref)  # back the other way
    assert (refused.reason, str(refused)) == (
        Refusal.LOOP, "main:101 already falls back on backup:7001: the link would go round in a"
                      " circle.")
    with pytest.raises(LinkRefused) as caught:
        await reseller.unlink(ADMIN, followers.ref, package.ref)
    assert caught.value.reason is Refusal.NOT_LINKED

    # A panel no longer configured, and a service its panel stopped listing.
    refused = await refusal(links_of(db, ["main", "other"]), followers.ref, package.ref)
    assert (refused.reason, str(refused)) == (
        Refusal.PANEL_NOT_CONFIGURED,
        "backup:7904 is on panel backup, which is not configured (PANEL_URL / PANELS).")
    await db.write("UPDATE services SET active = 0 WHERE id = ?", (package.ref,))
    assert (await refusal(reseller, cheap.ref, package.ref)).reason is Refusal.NOT_AVAILABLE

    assert await db.fetchall("SELECT * FROM service_routes") == before
    assert len(await db.fetchall("SELECT * FROM audit_log")) == len(audit_rows)


async def test_a_longer_circle_is_refused_and_never_suggested(
        db: Database, make_sandbox: SandboxFactory) -> None:
    three = {name: ("perfectpanel", DEFAULT_CATALOG) for name in ("main", "backup", "third")}
    await fill(db, make_sandbox, three)
    links = links_of(db, three)
    a, b, c = [await stored(db, name, 101) for name in three]
    await links.link(ADMIN, a.ref, b.ref)
    await links.link(ADMIN, b.ref, c.ref)
    assert (await refusal(links, c.ref, a.ref)).reason is Refusal.LOOP
    assert not {"main:101", "backup:101"} & {label(s.backup) for s in await links.suggest(c.ref)}
    assert label((await links.suggest(a.ref))[0].backup) == "third:101"
    assert "backup:101" not in {label(s.backup) for s in await links.suggest(a.ref)}


async def test_suggestions_for_the_whole_shop(db: Database, reseller: RouteLinks) -> None:
    followers = await stored(db, "main", 101)
    await reseller.link(ADMIN, followers.ref, (await stored(db, "backup", 7001)).ref)
    found = await reseller.suggest(limit=1000)
    pairs = [(label(s.service), label(s.backup)) for s in found]
    assert len(pairs) == len(set(pairs))
    assert all(label(s.service) != "main:101" for s in found)  # it has its backup
    for main_id, backup_id in SAME.items():
        if main_id != 101:
            assert (f"main:{main_id}", f"backup:{backup_id}") in pairs
    # A pair once: not again the other way round.
    assert not {(b, a) for a, b in pairs} & set(pairs)
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    assert len(await reseller.suggest(limit=3)) == 3


async def test_one_panel_suggests_nothing(db: Database, reseller: RouteLinks) -> None:
    alone = links_of(db, ["main"])
    assert not alone.can_link
    assert await alone.suggest() == []
    assert await alone.suggest((await stored(db, "main", 101)).ref) == []


async def test_ten_thousand_services_a_panel_stay_quick(db: Database) -> None:
    for name, offset in (("main", 0), ("backup", 3)):
        services = [Service(id=str(e.id + offset), name=e.name, type=e.type, category=e.category,
                            rate=e.rate, min=e.min, max=e.max)
                    for e in generated_catalog(10_000)]
        await catalog_store.replace_services(db, name, "USD", services, platforms_for(services))
    links = links_of(db)
    service = await stored(db, "main", 10_000)
    # CPU time of this process (the worker's threads), not wall time: other workers
    # sharing the machine's cores do not count against it.
    started = time.process_time()
    found = await links.suggest(service.ref)
    assert time.process_time() - started < 10, "one service's Backups screen"
    assert found and found[0].backup.service.name == service.service.name
