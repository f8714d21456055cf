"""The admin's catalog service (bot/shop/catalog/admin.py), no aiogram: real SQLite and panel."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from bot.shop.catalog.admin import CatalogAdmin, MarkupInvalid, parse_percent
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import ShopCatalog, refresh_catalog
from bot.shop.orders.service import OrderService, Outcome
from storage import catalog as catalog_store
from storage import ledger, users

ADMIN = 99
VALUES = {"link": "https://instagram.com/p/x", "quantity": "1000"}


@pytest.fixture
async def admin(db, sandbox, make_client) -> CatalogAdmin:
    client = make_client(sandbox, timeout=1)
    await refresh_catalog(db, client, "USD")
    catalog = ShopCatalog(db)
    pricer = Pricer(db, "USD", Decimal(30), {"test": Decimal(1)})
    return CatalogAdmin(db, catalog, pricer, {"test": client}, {"test": "USD"})


async def ref(db, service_id: str) -> int:
    stored = await catalog_store.by_panel_id(db, "test", service_id)
    assert stored is not None
    return stored.ref


@pytest.mark.parametrize(("text", "percent"), [("15", "15"), ("12.5", "12.5"), ("-10", "-10"),
                                           (" 7,25 ", "7.25"), ("10000", "10000"),
                                           ("-99", "-99"), ("40%", "40"), ("40 %", "40"),
                                           # Turkish writes the sign first: %15, -%10
                                           ("%15", "15"), ("% 12,5", "12.5"), ("-%10", "-10")])
def test_percents_accepted(text: str, percent: str) -> None:
    assert parse_percent(text) == Decimal(percent)


@pytest.mark.parametrize(("text", "reason"), [
    ("abc", "format"), ("1e3", "format"), ("12.345", "decimals"), ("10001", "range"),
    ("-100", "range"), ("x" * 5000, "format"), ("", "format"), ("NaN", "format"),
    ("Infinity", "format"), ("٣٠", "format"), ("1 000", "separator"), ("12.555", "decimals"),
    ("1,000", "decimals"), ("10.000", "decimals"), ("1,000,000", "separator"),
    ("123456", "range"), ("0.001", "decimals"), ("%15%", "format"), ("%%15", "format"),
    ("%-%10", "format"), ("%", "format")])
def test_percents_refused(text: str, reason: str) -> None:
    with pytest.raises(MarkupInvalid) as caught:
        parse_percent(text)
    assert caught.value.reason == reason


async def test_hidden_services_are_not_sold_nor_searched(db, admin: CatalogAdmin) -> None:
    likes = await ref(db, "103")
    stored = await catalog_store.get(db, likes)
    assert stored is not None
    assert await admin.catalog.search("Likes [Instant]", 5)
    assert await admin.set_category_hidden(ADMIN, stored.category_id, True)
    assert not await admin.set_category_hidden(ADMIN, stored.category_id, True)  # no change
    assert await admin.catalog.search("Likes [Instant]", 5) == []
    assert await admin.catalog.on_sale(likes) is None
    assert (await admin.catalog.any_service(likes)) is not None  # old orders stay readable
    assert [i.stored.ref for i in await admin.find("103")] == [likes]  # the admin finds it
    assert (await admin.find(f"#{likes}"))[0].stored.ref == likes  # as the card shows the id
    assert not (await admin.card(likes)).on_sale  # type: ignore[union-attr]
    await admin.set_category_hidden(ADMIN, stored.category_id, False)
    assert await admin.catalog.on_sale(likes) is not None
    rows = await db.fetchall("SELECT action, target_kind FROM audit_log ORDER BY id")
    assert [tuple(r) for r in rows] == [("hide", "category"), ("show", "category")]


async def test_a_confirm_of_a_now_hidden_service_places_nothing(db, admin: CatalogAdmin) -> None:
    orders = OrderService(db, admin.panels, admin.pricer, admin.catalog)
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=10_000, kind="credit", key="seed")
    likes = await ref(db, "103")
    quote = await orders.quote(await orders.on_sale(likes), VALUES, 7)  # the draft's confirmation
    await admin.set_service_hidden(ADMIN, likes, True)
    placed = await orders.place(7, likes, VALUES, uuid.uuid4().hex, quote.price_minor)
    assert placed.outcome is Outcome.GONE
    assert await ledger.balance_of(db, 7) == 10_000
    assert await db.fetchall("SELECT id FROM orders") == []


async def test_markups_preview_save_and_clear(db, admin: CatalogAdmin) -> None:
    followers = await ref(db, "101")  # 1.20 per 1000
    preview = await admin.preview("service", followers, Decimal(50))
    assert (preview.price_now_minor, preview.price_then_minor) == (156, 180)
    assert await admin.set_markup(ADMIN, "service", followers, Decimal(50))
    stored = await catalog_store.get(db, followers)
    assert stored is not None
    assert await admin.pricer.unit_price(stored) == 180  # invalidated: at once
    assert await admin.set_markup(ADMIN, "shop", 0, Decimal(10))
    assert await admin.pricer.global_markup() == Decimal(10)
    assert await admin.clear_markup(ADMIN, "service", followers)
    assert not await admin.clear_markup(ADMIN, "service", followers)
    assert await admin.pricer.unit_price(stored) == 132  # 1.20 × 1.1, the new global one
    # a new Pricer (a restart) reads the stored global markup, not MARKUP_PERCENT
    fresh = Pricer(db, "USD", Decimal(30), {"test": Decimal(1)})
    assert await fresh.unit_price(stored) == 132
    assert not await admin.set_markup(ADMIN, "service", 10**9, Decimal(5))
    rows = await db.fetchall("SELECT target_kind, before, after FROM audit_log ORDER BY id")
    assert [tuple(r) for r in rows] == [("service", "", "50 %"), ("shop", "30 %", "10 %"),
                                        ("service", "50 %", "inherited")]


async def test_refresh_counts_added_changed_withdrawn(db, admin: CatalogAdmin, sandbox) -> None:
    import dataclasses

    catalog = sandbox.panel.catalog
    catalog[101] = dataclasses.replace(catalog[101], rate=Decimal("2.00"))
    removed = catalog.pop(102)
    report = await admin.refresh(ADMIN)
    assert (report.added, report.changed, report.withdrawn) == (0, 1, 1)
    catalog[102] = removed
    report = await admin.refresh(ADMIN)
    assert (report.added, report.changed, report.withdrawn) == (1, 0, 0)
    assert await admin.catalog.on_sale(await ref(db, "102")) is not None  # reloaded
    rows = await db.fetchall("SELECT note FROM audit_log WHERE action = 'catalog_refresh'")
    assert [r[0] for r in rows] == ["added 0, changed 1, withdrawn 1",
                                    "added 1, changed 0, withdrawn 0"]
