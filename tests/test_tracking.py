"""Order tracking and notifications end to end: the unmodified bot polls the sandbox
panel, pushes status messages through the outbox to the Bot API emulator, and
keeps the money exact through panel outages, Telegram 429/403 and restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.devtools.emulator import ScriptedUser
from tests.conftest import SandboxFactory
from tests.e2e import Shop, restart, running_shop, stop_bot
from tests.test_storefront import _to_confirmation

pytestmark = pytest.mark.timeout(120)

CUSTOMER = 42
PRICE = 156  # service 101, 1000 followers, with the default markup


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path):
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, track_interval=1) as running:
        yield running


async def place(shop: Shop, customer: ScriptedUser, link: str, fate: str) -> int:
    """Order through the chat; the sandbox is told how the order will end."""
    await _to_confirmation(customer, shop, link)
    await customer.tap("Confirm")
    assert "placed" in customer.text
    [(order_id, panel_id)] = await shop.query(
        "SELECT id, panel_order_id FROM orders WHERE fields LIKE ?", (f"%{link}%",))
    shop.sandbox.panel.orders[int(panel_id)].fate = fate
    return int(order_id)


async def test_each_status_reaches_the_customer_once(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    order_id = await place(shop, customer, "https://instagram.com/p/track1", "completed")
    pace = shop.sandbox.panel.pace
    shop.sandbox.panel.advance(pace * 1.5)
    started = await customer.expect(f"Order #{order_id} has started")
    assert "Start count:" in started.text
    assert started.button(f"Open order #{order_id}") is not None
    shop.sandbox.panel.advance(pace * 2)
    await customer.expect(f"Order #{order_id} is complete")
    await asyncio.sleep(2.5)  # more polls: nothing new to say
    assert len(customer.saying("has started")) == 1
    assert len(customer.saying("is complete")) == 1
    history = await shop.query("SELECT state FROM order_history WHERE order_id = ? ORDER BY id",
                               (order_id,))
    assert history == [("in_progress",), ("completed",)]
    assert await shop.balance(CUSTOMER) == (10_000 - PRICE,) * 2
    # The notice's button opens the order card.
    await customer.tap(f"Open order #{order_id}")
    assert "Status: ✅ Completed" in customer.text


async def test_partial_and_canceled_orders_are_refunded_exactly_once(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    partial = await place(shop, customer, "https://instagram.com/p/part", "partial")
    canceled = await place(shop, customer, "https://instagram.com/p/gone", "canceled")
    asked = await place(shop, customer, "https://instagram.com/p/asked", "canceled")
    database = await shop.db()  # the customer asked for this one's cancellation
    try:
        await database.write("UPDATE orders SET cancel_requested_at = '2026-12-02T00:00:00.000Z'"
                             " WHERE id = ?", (asked,))
    finally:
        await database.close()
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    partly = await customer.expect(f"Order #{partial} was partly delivered")
    await customer.expect(f"Order #{canceled} was canceled by the supplier")
    await customer.expect(f"Order #{asked} was canceled, as you asked")
    [(remains, quantity)] = await shop.query("SELECT remains, quantity FROM orders WHERE id = ?",
                                             (partial,))
    partial_refund = PRICE * remains // quantity  # rounded down
    assert f"Delivered: {quantity - remains:,} of {quantity:,}" in partly.text
    assert f"Refunded ${partial_refund / 100:.2f}" in partly.text
    await asyncio.sleep(2.5)
    balance = 10_000 - 3 * PRICE + partial_refund + 2 * PRICE
    assert await shop.balance(CUSTOMER) == (balance, balance)
    refunds = await shop.query("SELECT order_id, amount_minor FROM ledger WHERE kind = 'refund'"
                               " ORDER BY order_id")
    assert refunds == [(partial, partial_refund), (canceled, PRICE), (asked, PRICE)]
    assert len(customer.saying("Refunded")) == 3


async def test_a_panel_down_for_a_while_delays_but_changes_nothing(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    order_id = await place(shop, customer, "https://instagram.com/p/outage", "completed")
    shop.sandbox.panel.inject("http502", action="status", times=1_000)
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    await shop.emulator.wait_for(lambda: shop.sandbox.panel.requests["status"] >= 3, 20)
    assert await shop.query("SELECT state FROM orders") == [("pending",)]
    assert await shop.balance(CUSTOMER) == (10_000 - PRICE,) * 2
    shop.sandbox.panel.clear_faults()
    await customer.expect(f"Order #{order_id} is complete", timeout=20)
    assert await shop.query("SELECT state FROM orders") == [("completed",)]


async def test_telegram_429_pauses_and_403_closes_the_rows(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    await shop.credit(43, 10_000)
    customer, leaver = shop.user(CUSTOMER), shop.user(43, "Lee")
    mine = await place(shop, customer, "https://instagram.com/p/slow1", "completed")
    theirs = await place(shop, leaver, "https://instagram.com/p/slow2", "canceled")
    leaver.chat.blocked = True
    shop.emulator.inject("sendMessage", 429, retry_after=1)
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    await customer.expect(f"Order #{mine} is complete", timeout=20)
    assert shop.emulator.throttled == 1
    rows: list[tuple] = []
    for _ in range(40):
        rows = await shop.query("SELECT state FROM outbox WHERE chat_id = 43")
        if rows and all(state == "dropped" for (state,) in rows):
            break
        await asyncio.sleep(0.25)
    assert rows and all(state == "dropped" for (state,) in rows)
    assert await shop.query("SELECT blocked FROM users WHERE id = 43") == [(1,)]
    # The refund happened all the same; only the message could not be delivered.
    assert await shop.balance(43) == (10_000, 10_000)
    tries = [p for m, p in shop.emulator.calls if m == "sendMessage" and str(p["chat_id"]) == "43"]
    await asyncio.sleep(2)
    again = [p for m, p in shop.emulator.calls if m == "sendMessage" and str(p["chat_id"]) == "43"]
    assert len(again) == len(tries)  # not retried forever
    assert theirs


async def test_a_restart_before_the_send_loses_no_message(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    order_id = await place(shop, customer, "https://instagram.com/p/restart", "completed")
    shop.emulator.inject("sendMessage", 502, times=10_000)  # Telegram is failing
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    for _ in range(80):
        pending = await shop.query("SELECT payload FROM outbox WHERE state = 'pending'")
        if pending and '"completed"' in pending[0][0]:
            break
        await asyncio.sleep(0.1)
    assert len(pending) == 1 and '"completed"' in pending[0][0]  # two changes, one message
    # Telegram comes back only once the bot is stopped: a send that got through while
    # it was being stopped (before it could be marked sent) would be sent again, at
    # least once being the outbox's promise; this test is about the restart's sending.
    await stop_bot(shop.task)
    shop.emulator.faults.clear()
    await restart(shop, shop.emulator_url)
    await customer.expect(f"Order #{order_id} is complete", timeout=20)
    await asyncio.sleep(1.5)
    assert len(customer.saying(f"Order #{order_id} is complete")) == 1
    assert not customer.saying("has started")  # merged into the newer message
    assert await shop.query("SELECT state FROM outbox") == [("sent",)]


async def test_admin_resolves_unknown_orders_by_panel_id_or_refund(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    admin = shop.admin
    await admin.send("/start")
    customer = shop.user(CUSTOMER)
    for link in ("https://instagram.com/p/amb1", "https://instagram.com/p/amb2"):
        await _to_confirmation(customer, shop, link)
        shop.sandbox.panel.inject("hang_after", action="add", delay=3)
        await customer.tap("Confirm", timeout=15)
        assert "did not confirm it yet" in customer.text
    assert await shop.query("SELECT id, state FROM orders") == [(1, "unknown"), (2, "unknown")]
    real_panel_id = max(shop.sandbox.panel.orders)  # the admin finds it on the panel

    await admin.send("/unresolved")
    assert "2 orders need checking" in admin.text
    await admin.tap("#1: attach panel id")
    await admin.send("not an id!")
    assert "letters and digits" in admin.text
    await admin.send(str(real_panel_id))
    assert "Order #1 is now panel order" in admin.text
    await customer.expect("Order #1 is with the supplier")

    await admin.send("/unresolved")
    assert "1 order needs checking" in admin.text
    await admin.tap("#2: refund")
    assert "No orders need checking" in admin.text
    refunded = await customer.expect("Order #2 could not be done")
    assert "Refunded $1.56" in refunded.text
    stale = await admin.tap_data("au:2:refund")
    assert "not waiting for a decision" in stale["text"]
    assert await shop.balance(CUSTOMER) == (10_000 - PRICE,) * 2
    assert shop.sandbox.panel.requests["add"] == 2  # nothing was resubmitted

    # The attached order is tracked like any other.
    shop.sandbox.panel.orders[real_panel_id].fate = "completed"
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    await customer.expect("Order #1 is complete", timeout=20)
    # Customers can't reach any of this.
    answer = await customer.tap_data("au:1:refund")
    assert "not waiting" not in (answer["text"] or "")
    await customer.send("/unresolved")
    assert "need checking" not in customer.text


async def test_incorrect_order_id_is_flagged_not_refunded(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    order_id = await place(shop, customer, "https://instagram.com/p/lost", "completed")
    database = await shop.db()
    try:
        await database.write("UPDATE orders SET panel_order_id = '99999999' WHERE id = ?",
                             (order_id,))
    finally:
        await database.close()
    alert = await shop.admin.expect("Incorrect order ID", timeout=20)
    assert f"Order #{order_id}" in alert.text
    await asyncio.sleep(2.5)
    assert len(shop.admin.saying("Incorrect order ID")) == 1  # flagged once
    assert await shop.query("SELECT state FROM orders") == [("pending",)]
    assert await shop.balance(CUSTOMER) == (10_000 - PRICE,) * 2


async def test_a_refill_is_followed_until_done(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    order_id = await place(shop, customer, "https://instagram.com/p/refill", "completed")
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    await customer.expect(f"Order #{order_id} is complete", timeout=20)
    await customer.tap("Refill")
    assert "Refill requested" in customer.text
    [(refill_id,)] = await shop.query("SELECT panel_refill_id FROM refills")
    shop.sandbox.panel.refills[int(refill_id)].fate = "Completed"
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    done = await customer.expect(f"The refill of order #{order_id} is done", timeout=20)
    assert done.button(f"Open order #{order_id}") is not None
    assert await shop.query("SELECT state FROM refills") == [("completed",)]
