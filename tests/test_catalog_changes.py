"""What a catalog refresh changed, services hidden at a loss, and the admins' digest
(bot/shop/routing/changes.py): real SQLite file, the real sandbox panel, no aiogram."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.devtools.sandbox.sample_catalog import CatalogEntry
from bot.observability.metrics import SERVICES_AT_LOSS
from bot.shop.catalog.admin import CatalogAdmin
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import ShopCatalog, refresh_catalog
from bot.shop.routing.changes import KINDS, CatalogWatch, Digest, Told
from storage import catalog as catalog_store
from storage import routes
from storage.db import Database

ADMINS = (7001, 7002)
ALERT = Decimal(10)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def ref(db: Database, service_id: str) -> int:
    stored = await catalog_store.by_panel_id(db, "test", service_id)
    assert stored is not None
    return stored.ref


async def changes(db: Database) -> set[tuple[str, str, str | None, str | None]]:
    rows = await db.fetchall(
        "SELECT c.kind, s.service_id, c.old_rate, c.new_rate FROM catalog_changes c"
        " JOIN services s ON s.id = c.service_ref")
    return {(r[0], r[1], r[2], r[3]) for r in rows}


async def digests(db: Database) -> list[tuple[int, Digest]]:
    import json

    rows = await db.fetchall("SELECT chat_id, payload FROM outbox WHERE kind = 'alert'"
                             " AND payload LIKE '%catalog_digest%' ORDER BY id")
    return [(int(r[0]), Digest.from_payload(json.loads(r[1])["catalog_digest"])) for r in rows]


@pytest.fixture
async def setup(db, sandbox, make_client):
    client = make_client(sandbox, timeout=1)
    await refresh_catalog(db, client, "USD", ALERT)
    catalog = ShopCatalog(db)
    pricer = Pricer(db, "USD", Decimal(30), {"test": Decimal(1)})
    clock = Clock()
    watch = CatalogWatch(db, pricer, ADMINS, hour=None, zone=ZoneInfo("UTC"), clock=clock)
    admin = CatalogAdmin(db, catalog, pricer, {"test": client}, {"test": "USD"},
                         price_alert=ALERT, after_change=watch.after_refresh)
    return admin, watch, clock


async def test_first_refresh_is_not_a_change(db, setup) -> None:
    row = await db.fetchone("SELECT COUNT(*) FROM services")
    assert row is not None and row[0] > 10
    assert await changes(db) == set()


async def test_refresh_collects_what_changed(db, sandbox, setup) -> None:
    admin, _watch, _clock = setup
    catalog = sandbox.panel.catalog
    primary, backup = await ref(db, "103"), await ref(db, "102")
    await routes.link(db, primary, backup)
    catalog[101] = dataclasses.replace(catalog[101], rate=Decimal("1.8"))
    catalog[104] = dataclasses.replace(catalog[104], rate=Decimal("0.01"))  # -50 %
    catalog[105] = dataclasses.replace(catalog[105], rate=Decimal("0.054"))  # +8 %: not told
    catalog.pop(102)
    catalog[999] = CatalogEntry(999, "Instagram Saves", "Default", "Instagram Saves",
                                Decimal("0.30"), 10, 10_000)
    old_101 = str((await catalog_store.get(db, await ref(db, "101"))).service.rate)
    await admin.refresh(admin_id=1)
    assert await changes(db) == {
        ("cost_up", "101", old_101, "1.8"),
        ("cost_down", "104", "0.02", "0.01"),
        ("removed", "102", str((await catalog_store.get(db, backup)).service.rate), None),
        ("added", "999", None, None),
        ("backup_gone", "103", None, None),
    }
    linked = await db.fetchall("SELECT service_ref FROM catalog_changes WHERE linked = 1")
    assert {int(r[0]) for r in linked} == {primary, backup}


async def test_a_loss_hides_and_a_fix_shows(db, sandbox, setup) -> None:
    admin, _watch, _clock = setup
    likes = await ref(db, "103")
    assert await admin.catalog.on_sale(likes) is not None
    assert await admin.set_markup(1, "service", likes, Decimal(-20))
    assert await admin.catalog.on_sale(likes) is None
    assert await admin.catalog.search("Likes [Instant]", 5) == []
    card = await admin.card(likes)
    assert card is not None and card.stored.hidden_at_loss and not card.on_sale
    assert card.unit_price_minor < card.cost_minor
    assert SERVICES_AT_LOSS._value.get() == 1
    assert await admin.clear_markup(1, "service", likes)
    assert await admin.catalog.on_sale(likes) is not None
    # The panel's price falling fixes it too: the refresh shows it again.
    assert await admin.set_markup(1, "service", likes, Decimal(-20))
    catalog = sandbox.panel.catalog
    catalog[103] = dataclasses.replace(catalog[103], rate=Decimal("0.10"))
    await admin.refresh(admin_id=1)
    assert await admin.catalog.on_sale(likes) is None  # still -20 % of the new cost
    await admin.set_markup(1, "service", likes, Decimal(0))
    assert await admin.catalog.on_sale(likes) is not None
    kinds = [r[0] for r in await db.fetchall(
        "SELECT kind FROM catalog_changes WHERE service_ref = ? AND kind IN"
        " ('hidden_at_loss', 'shown_again') ORDER BY id", (likes,))]
    assert kinds == ["hidden_at_loss", "shown_again", "hidden_at_loss", "shown_again"]


async def test_digest_queued_once_and_told_once_across_a_restart(db, sandbox, setup,
                                                                tmp_path) -> None:
    admin, watch, clock = setup
    catalog = sandbox.panel.catalog
    catalog[101] = dataclasses.replace(catalog[101], rate=catalog[101].rate * 2)
    await admin.refresh(admin_id=1)  # the first daily digest is due a day after the first look
    assert await digests(db) == []
    clock.now += 86_400
    await admin.refresh(admin_id=1)
    sent = await digests(db)
    assert [chat for chat, _ in sent] == list(ADMINS)
    assert sent[0][1].counts == {"cost_up": 1} and not sent[0][1].urgent
    assert not await watch.tick()
    # A restart: a new database handle and watch on the same file tell nothing again.
    again = await Database(tmp_path / "shop.sqlite3").open()
    try:
        restarted = CatalogWatch(again, Pricer(again, "USD", Decimal(30), {}), ADMINS,
                                 hour=None, zone=ZoneInfo("UTC"), clock=clock)
        assert not await restarted.after_refresh()
        assert not await restarted.tick()
    finally:
        await again.close()
    # News within 24 h of the last digest wait for the daily one...
    catalog.pop(106)
    clock.now += 3600
    await admin.refresh(admin_id=1)
    assert len(await digests(db)) == 2
    # ...unless a linked service's cost moved: then at once, with what waited.
    await routes.link(db, await ref(db, "104"), await ref(db, "105"))
    catalog[105] = dataclasses.replace(catalog[105], rate=Decimal("0.50"))
    clock.now += 60
    await admin.refresh(admin_id=1)
    sent = await digests(db)
    assert len(sent) == 4
    assert sent[-1][1].urgent and sent[-1][1].counts == {"removed": 1, "cost_up": 1}
    assert [item.linked for item in sent[-1][1].items if item.kind == "cost_up"] == [True]
    # A day later the daily digest has nothing left to tell.
    clock.now += 86_400
    await admin.refresh(admin_id=1)
    assert len(await digests(db)) == 4
    row = await db.fetchone("SELECT COUNT(*) FROM catalog_changes WHERE told_at IS NULL")
    assert row is not None and row[0] == 0


async def test_digest_lists_a_few_and_counts_the_rest(db, sandbox, setup) -> None:
    admin, watch, clock = setup
    catalog = sandbox.panel.catalog
    for entry in range(2000, 2400):
        catalog[entry] = CatalogEntry(entry, f"Bulk {entry}", "Default", "Bulk", Decimal("1"),
                                      10, 1000)
    await admin.refresh(admin_id=1)
    assert await digests(db) == []
    clock.now += 86_400
    assert await watch.tick()
    (_, digest), *_ = await digests(db)
    assert digest.counts == {"added": 400}
    assert len(digest.items) == 5


async def test_digest_at_the_daily_report_hour(db, sandbox, setup) -> None:
    admin, _watch, clock = setup
    watch = CatalogWatch(db, admin.pricer, ADMINS, hour=9, zone=ZoneInfo("UTC"), clock=clock)
    admin.after_change = watch.after_refresh
    clock.now = 1_800_000_000 - 1_800_000_000 % 86_400 + 3600  # 01:00 UTC
    sandbox.panel.catalog.pop(104)
    await admin.refresh(admin_id=1)
    assert await digests(db) == []
    clock.now += 8 * 3600  # 09:00
    assert await watch.tick()
    assert not await watch.tick()
    assert len(await digests(db)) == len(ADMINS)


_names = st.text(max_size=500)
_rates = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@settings(max_examples=40, deadline=None)
@given(names=st.lists(_names, min_size=35, max_size=35), rates=st.lists(_rates, min_size=70,
                                                                        max_size=70),
       lang=st.sampled_from(["en", "ru", "tr"]))
def test_a_full_digest_is_one_message_in_every_language(names: list[str], rates: list[Decimal],
                                                        lang: str) -> None:
    """Whatever the panels call their services, the biggest digest fits one Telegram
    message (4096 characters), and panel text never becomes markup."""
    from handlers.middlewares.i18n import build_i18n
    from handlers.views.catalog_digest import digest_text

    items = tuple(
        Told(i, "main", kind, i, str(i), names[i], "USD", str(rates[2 * i]),
             str(rates[2 * i + 1]), bool(i % 2))
        for i, kind in enumerate(k for k in KINDS for _ in range(5)))
    digest = Digest({kind: 10_000 for kind in KINDS}, items, urgent=True)
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(lang):
        text = digest_text(digest)
    assert len(text) <= 4096
    assert "<b>" in text and "<script" not in text.replace("&lt;script", "")
