"""The tracker as a plain service: several panels, dialects without multi forms,
and panels that are slow or down."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from bot.panel import PanelClient
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders import tracking
from bot.shop.orders.service import OrderService, Outcome
from bot.shop.orders.tracking import Tracker
from storage import catalog as catalog_store
from storage import ledger, outbox, users
from storage import orders as order_store
from tests.conftest import place_as_shown
from tests.e2e import eventually

pytestmark = pytest.mark.timeout(60)


async def shop_on(db, panels: dict) -> OrderService:
    for client in panels.values():
        await refresh_catalog(db, client, "USD")
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=100_000, kind="credit", key="seed")
    return OrderService(db, panels, Pricer(db, "USD", Decimal(30),
                                           dict.fromkeys(panels, Decimal(1))))


async def order_on(db, service: OrderService, panel: str, link: str) -> int:
    stored = await catalog_store.by_panel_id(db, panel, "101")
    assert stored is not None
    placed = await place_as_shown(service, 7, stored.ref, {"link": link, "quantity": "1000"})
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    return placed.order.id


async def five_orders_on_main(db, make_sandbox, make_client) -> tuple[Any, PanelClient, list[int]]:
    """A sandbox panel named "main" and five orders placed on it."""
    sandbox = await make_sandbox()
    client = make_client(sandbox)
    client.name = "main"
    service = await shop_on(db, {"main": client})
    ids = [await order_on(db, service, "main", f"https://instagram.com/p/five{n}")
           for n in range(5)]
    return sandbox, client, ids


async def test_refills_are_followed_one_by_one_where_there_is_no_multi_form(
        db, make_sandbox, make_client) -> None:
    sandbox = await make_sandbox("smartpanel")
    client = make_client(sandbox)
    client.name = "sp"
    service = await shop_on(db, {"sp": client})
    tracker = Tracker(db, {"sp": client}, interval=1, alert=_ignore)
    order_id = await order_on(db, service, "sp", "https://instagram.com/p/sp")
    sandbox.panel.orders[max(sandbox.panel.orders)].fate = "completed"
    sandbox.panel.advance(sandbox.panel.pace * 4)
    await tracker.poll("sp")
    order = await order_store.get(db, order_id)
    assert order is not None and order.state == "completed"
    await service.request_refill(order)
    sandbox.panel.advance(sandbox.panel.pace * 4)
    report = await tracker.poll("sp")
    assert report.refills_finished == 1
    assert sandbox.panel.requests["refill_status"] >= 1
    assert await db.fetchone("SELECT state FROM refills") is not None
    rows = await db.fetchall("SELECT kind FROM outbox ORDER BY id")
    assert [r[0] for r in rows] == ["order", "refill"]


async def test_a_slow_panel_never_delays_another(db, make_sandbox, make_client) -> None:
    slow_sandbox, fast_sandbox = await make_sandbox(), await make_sandbox()
    # The slow panel's status answer can come no sooner than its client gives up (30 s):
    # whatever the machine's load, a fast order moving before then did not wait for it.
    slow, fast = make_client(slow_sandbox, timeout=30), make_client(fast_sandbox)
    slow.name, fast.name = "slow", "fast"
    service = await shop_on(db, {"slow": slow, "fast": fast})
    await order_on(db, service, "slow", "https://instagram.com/p/s")
    fast_order = await order_on(db, service, "fast", "https://instagram.com/p/f")
    slow_sandbox.panel.inject("hang", action="status", delay=60, times=100)
    fast_sandbox.panel.advance(fast_sandbox.panel.pace * 1.5)
    tracker = Tracker(db, {"slow": slow, "fast": fast}, interval=1, alert=_ignore)
    running = asyncio.create_task(tracker.run())

    async def fast_order_moved() -> bool:
        order = await order_store.get(db, fast_order)
        return order is not None and order.state == "in_progress"

    try:
        await eventually(fast_order_moved, timeout=20)
        assert slow_sandbox.panel.requests["status"] >= 1  # asked, and still hanging
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert (await outbox.counts(db)) == {"pending": 1}


async def test_a_cycle_reads_the_open_orders_a_page_at_a_time_and_misses_none(
        db, make_sandbox, make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking, "PAGE", 2)
    monkeypatch.setattr(tracking, "BATCH", 1)
    sandbox, client, ids = await five_orders_on_main(db, make_sandbox, make_client)
    sandbox.panel.advance(sandbox.panel.pace * 1.5)
    report = await Tracker(db, {"main": client}, interval=1, alert=_ignore).poll("main")
    assert report.orders == 5 and report.changed == 5
    assert [(await order_store.get(db, i)).state for i in ids] == ["in_progress"] * 5
    # Stopping ends the cycle after the page under way (its answers applied).
    for order_id in ids:
        await db.write("UPDATE orders SET state = 'pending' WHERE id = ?", (order_id,))
    stopping = Tracker(db, {"main": client}, interval=1, alert=_ignore)
    stopping.stop()
    report = await stopping.poll("main")
    assert report.orders == 2 and report.changed == 2


async def test_many_refunds_go_a_few_per_transaction_and_each_once(
        db, make_sandbox, make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle's changes are applied in short transactions (a customer's statement
    waits behind one at most), and every refund still happens exactly once."""
    monkeypatch.setattr(tracking, "APPLY_AT_ONCE", 2)
    sizes: list[int] = []
    apply = tracking.apply_statuses

    async def counted(database, answers, **options):  # type: ignore[no-untyped-def]
        sizes.append(len(answers))
        return await apply(database, answers, **options)

    monkeypatch.setattr(tracking, "apply_statuses", counted)
    sandbox, client, ids = await five_orders_on_main(db, make_sandbox, make_client)
    for order in sandbox.panel.orders.values():
        order.fate = "canceled"
    sandbox.panel.advance(sandbox.panel.pace * 4)
    paid = await ledger.balance_of(db, 7)
    tracker = Tracker(db, {"main": client}, interval=1, alert=_ignore)
    report = await tracker.poll("main")
    assert report.changed == 5 and sizes == [2, 2, 1]
    prices = [(await order_store.get(db, i)).price_minor for i in ids]
    assert report.refunded_minor == sum(prices)
    assert await ledger.balance_of(db, 7) == paid + sum(prices)
    assert [(await order_store.get(db, i)).state for i in ids] == ["canceled"] * 5
    await tracker.poll("main")  # final orders are not asked again, nor refunded twice
    assert await ledger.balance_of(db, 7) == paid + sum(prices)
    assert await ledger.ledger_sum(db, 7) == paid + sum(prices)


async def _ignore(_text: str) -> None:
    return None
