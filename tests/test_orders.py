"""Ordering, pricing and refunds as plain services: no aiogram, real SQLite and panel."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.panel import OrderState, OrderStatus, RejectReason
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders.service import (
    OrderActions,
    OrderService,
    Outcome,
    ServiceGone,
    apply_statuses,
    refund_for,
)
from storage import catalog as catalog_store
from storage import ledger, users
from storage.orders import StoredOrder
from tests.conftest import place_as_shown

VALUES = {"link": "https://instagram.com/p/x", "quantity": "1000"}


@pytest.fixture
async def service(db, sandbox, make_client):
    client = make_client(sandbox, timeout=1)
    await refresh_catalog(db, client, "USD")
    pricer = Pricer(db, "USD", Decimal(30), {"test": Decimal(1)})
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=10_000, kind="credit", key="seed")
    return OrderService(db, {"test": client}, pricer)


async def ref(db, service_id: str) -> int:
    stored = await catalog_store.by_panel_id(db, "test", service_id)
    assert stored is not None
    return stored.ref


async def test_prices_round_up_and_follow_overrides(db, service: OrderService) -> None:
    stored = await service.on_sale(await ref(db, "102"))  # 0.45 per 1000
    quote = await service.pricer.quote(stored, {"link": "x", "quantity": "333"})
    assert quote.price_minor == 20  # 0.45 × 0.333 × 1.3 = 0.194805 -> $0.20
    await catalog_store.set_markup(db, "category", "test", stored.service.category, Decimal(100))
    service.pricer.invalidate()
    assert (await service.pricer.quote(stored, VALUES)).price_minor == 90
    await catalog_store.set_markup(db, "service", "test", "102", Decimal(0))
    service.pricer.invalidate()
    assert (await service.pricer.quote(stored, VALUES)).price_minor == 45  # service beats category
    euro = Pricer(db, "EUR", Decimal(0), {"test": Decimal("0.9")})
    assert (await euro.quote(stored, {"link": "x", "quantity": "1000"})).price_minor == 41


async def test_a_burst_of_prices_reads_the_markups_once(db, service: OrderService,
                                                         monkeypatch) -> None:
    """When the markup copy is stale, the customers pricing at that moment wait
    for one read instead of each reading the table."""
    reads = 0
    real_markups = catalog_store.markups

    async def counted(db_):  # the real read, counted
        nonlocal reads
        reads += 1
        return await real_markups(db_)

    monkeypatch.setattr(catalog_store, "markups", counted)
    stored = await service.on_sale(await ref(db, "102"))
    await catalog_store.set_markup(db, "service", "test", "102", Decimal(100))
    service.pricer.invalidate()
    prices = await asyncio.gather(*(service.pricer.unit_price(stored) for _ in range(50)))
    assert reads == 1
    assert set(prices) == {90}  # 0.45 x 2, the new markup for every one of them


async def test_the_price_version_changes_with_a_markup(db, service: OrderService) -> None:
    pricer = service.pricer
    before = await pricer.version()
    pricer.invalidate()
    assert await pricer.version() == before  # reloaded, nothing changed
    await catalog_store.set_markup(db, "category", "test", "Instagram Likes", Decimal(50))
    pricer.invalidate()
    assert await pricer.version() != before


async def test_every_outcome_of_place(db, sandbox, service: OrderService) -> None:
    likes = await ref(db, "102")
    placed = await place_as_shown(service, 7, likes, VALUES)
    assert placed.outcome is Outcome.PLACED and placed.order.state == "pending"  # type: ignore[union-attr]

    again = await place_as_shown(service, 7, likes, VALUES, placed.order.token)  # type: ignore[union-attr]
    assert again.outcome is Outcome.ALREADY and again.order.id == placed.order.id  # type: ignore[union-attr]

    duplicate = await place_as_shown(service, 7, likes, VALUES)
    assert duplicate.outcome is Outcome.REJECTED and duplicate.reason is RejectReason.DUPLICATE

    sandbox.panel.inject("http502", action="add")
    unknown = await place_as_shown(service, 7, likes, {**VALUES, "link": "https://instagram.com/p/y"})
    assert unknown.outcome is Outcome.AMBIGUOUS and unknown.order.state == "unknown"  # type: ignore[union-attr]

    sandbox.panel.inject("html403", action="add")
    down = await place_as_shown(service, 7, likes, {**VALUES, "link": "https://instagram.com/p/z"})
    assert down.outcome is Outcome.UNAVAILABLE and down.order.state == "failed"  # type: ignore[union-attr]

    subscribers = await ref(db, "302")  # $14 per 1000: 20 000 cost $364
    big = await place_as_shown(service, 7, subscribers, {"link": "https://youtube.com/@a",
                                               "quantity": "20000"})
    assert big.outcome is Outcome.INSUFFICIENT and big.missing_minor > 0

    # Paid: the placed and the unknown order (59 each); the refused ones came back.
    assert await ledger.balance_of(db, 7) == 10_000 - 59 - 59 == await ledger.ledger_sum(db, 7)


async def test_concurrent_places_of_one_draft_make_one_order(db, sandbox,
                                                            service: OrderService) -> None:
    token = uuid.uuid4().hex
    likes = await ref(db, "102")
    results = await asyncio.gather(*(place_as_shown(service, 7, likes, VALUES, token) for _ in range(5)))
    assert sorted(r.outcome for r in results).count(Outcome.PLACED) == 1
    assert sandbox.panel.requests["add"] == 1
    assert await ledger.balance_of(db, 7) == 10_000 - 59


async def refunded(db, order_id: int, status: OrderStatus) -> list[int]:
    applied = await apply_statuses(db, {order_id: status}, source="test")
    return [a.refund_minor for a in applied]


async def test_statuses_refund_once_and_exactly(db, service: OrderService) -> None:
    placed = await place_as_shown(service, 7, await ref(db, "102"), VALUES)
    order = placed.order
    assert order is not None
    partial = OrderStatus(OrderState.PARTIAL, "Partial", remains=333)
    assert await refunded(db, order.id, partial) == [19]  # 59 × 333 / 1000 = 19.6 -> 19
    assert await refunded(db, order.id, partial) == []  # never twice
    canceled = OrderStatus(OrderState.CANCELED, "Canceled", remains=1000)
    assert await refunded(db, order.id, canceled) == []  # a final state is final
    assert await ledger.balance_of(db, 7) == 10_000 - 59 + 19 == await ledger.ledger_sum(db, 7)
    odd = OrderStatus(OrderState.IN_PROGRESS, "Awaiting moderation", recognised=False)
    other = await place_as_shown(service, 7, await ref(db, "102"),
                                {**VALUES, "link": "https://instagram.com/p/2"})
    assert other.order is not None
    assert await refunded(db, other.order.id, odd) == [0]  # recorded, not final, no money
    history = await db.fetchall("SELECT order_id, state, panel_status, refund_minor"
                                " FROM order_history ORDER BY id")
    assert [tuple(h) for h in history] == [(order.id, "partial", "Partial", 19),
                                           (other.order.id, "pending", "Awaiting moderation", 0)]
    notices = await db.fetchall("SELECT chat_id, order_id, payload FROM outbox")
    assert len(notices) == 1 and '"refund_minor": 19' in notices[0][2]


def _order(price: int, quantity: int | None) -> StoredOrder:
    return StoredOrder(1, "t", 7, "p", 1, "1", "s", "Default", {}, quantity, price, "USD",
                       "in_progress", "9", None, None, None, None, None, False, "", "")


@settings(max_examples=300)
@given(price=st.integers(min_value=0, max_value=10**9),
       quantity=st.integers(min_value=1, max_value=10**7),
       remains=st.integers(min_value=0, max_value=2 * 10**7))
def test_a_refund_never_exceeds_the_price(price: int, quantity: int, remains: int) -> None:
    order = _order(price, quantity)
    partial = refund_for(order, "partial", remains)
    assert 0 <= partial <= price
    assert partial == price * min(remains, quantity) // quantity  # rounded down, exactly
    assert refund_for(order, "canceled", remains) == price
    assert refund_for(order, "failed", None) == price
    assert refund_for(order, "completed", remains) == 0


async def test_a_withdrawn_service_stops_being_sold_after_the_next_refresh(
        db, sandbox, service: OrderService) -> None:
    likes = await ref(db, "102")
    assert await service.catalog.on_sale(likes) is not None
    del sandbox.panel.catalog[102]  # the panel stops listing it
    await refresh_catalog(db, service.panels["test"], "USD")
    assert await service.catalog.on_sale(likes) is not None  # browsing uses its copy...
    await service.catalog.reload()  # ...until the refresh task reloads it
    with pytest.raises(ServiceGone):
        await service.on_sale(likes)
    assert likes not in {s.ref for s in await service.catalog.search("likes", 50)}
    old = await service.catalog.any_service(likes)  # old orders still show it
    assert old is not None and not old.active


async def test_orders_of_a_panel_no_longer_configured_stay_readable(
        db, service: OrderService) -> None:
    placed = await place_as_shown(service, 7, await ref(db, "101"), VALUES)
    assert placed.order is not None
    renamed = OrderService(db, {"new-name": service.panels["test"]}, service.pricer,
                           service.catalog)
    order = await renamed.owned(7, placed.order.id)
    assert order is not None
    assert await renamed.refresh(order) == order  # no call to a panel it doesn't have
    assert await renamed.actions(order) == OrderActions(refill=False, cancel=False)
