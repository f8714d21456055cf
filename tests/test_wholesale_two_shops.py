"""Two shops end to end: shop B sells from shop A's wholesale API as from a panel.

Shop A runs on the sandbox panel with its API on; shop B is a second, unmodified
bot (its own Bot API emulator, its own database) whose PANEL_URL is A's API and
whose PANEL_KEY is the key of A's customer, the reseller. B's customer orders in
B's chat; A places the order with its sandbox; statuses, refunds, refills and
cancellations travel back through both trackers to B's customer. When A refuses
(its reseller out of funds, its owner turning the reseller's API access off), B's
customer is refunded and B's admins are told what to fix.

Money: the sandbox sells service 101 at $1.20 per 1000; A adds 50% (A's price,
B's cost: $1.80), B adds its default 30% ($1.80 × 1.3 = $2.34).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot.devtools.emulator import ScriptedUser
from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG
from bot.devtools.sandbox.server import RunningSandbox
from bot.shop.wholesale.keys import ApiKeys
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, Shop, free_port, running_shop
from tests.test_storefront import fill_form, link_for, open_service

pytestmark = pytest.mark.timeout(90)

RESELLER = 7001  # A's customer, whose key B uses
CUSTOMER = 42  # B's customer
A_PRICE = 180  # 1000 followers of service 101 at A: $1.20 × 1.5
B_PRICE = 234  # the same at B: $1.80 × 1.3


@dataclass
class Shops:
    a: Shop
    b: Shop  # ``b.sandbox`` is A's: B's panel is A, and B has no sandbox of its own
    key: str  # the reseller's key at A: B's PANEL_KEY

    @property
    def sandbox(self) -> RunningSandbox:
        return self.a.sandbox


@pytest.fixture
async def shops(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shops]:
    sandbox = await make_sandbox()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # B's tracker polls A every second: A's per-key limit is set above that.
    async with running_shop(sandbox, tmp_path / "a", api_enabled=True, api_port=free_port(),
                            api_rate_limit=10_000, markup_percent=50, track_interval=1,
                            panel_timeout=2) as shop_a:
        key = await shop_a.api_key(RESELLER)
        async with running_shop(sandbox, tmp_path / "b", panel_url=shop_a.api_url,
                                panel_key=key, track_interval=1, panel_timeout=5) as shop_b:
            yield Shops(shop_a, shop_b, key)


async def order_in_b(shops: Shops, customer: ScriptedUser, link: str,
                     fate: str) -> tuple[int, int, int]:
    """B's customer orders 1000 followers (sandbox service 101) in B's chat; the
    sandbox is told how the order will end. Returns the order's number at B, at A
    and at the sandbox."""
    [(a_ref,)] = await shops.a.query("SELECT id FROM services WHERE service_id = '101'")
    await open_service(customer, shops.b, a_ref)  # B's service number is A's
    await customer.tap("🛒 Order")
    await customer.send(link)
    await customer.send("1000")
    await customer.tap("Skip")  # no drip-feed
    assert "Check your order" in customer.text
    await customer.tap("Confirm")
    assert "placed" in customer.text, customer.text
    [(b_order, a_order)] = await shops.b.query(
        "SELECT id, panel_order_id FROM orders WHERE fields LIKE ?", (f"%{link}%",))
    [(panel_order, via_api)] = await shops.a.query(
        "SELECT panel_order_id, api_repeat_key IS NOT NULL FROM orders WHERE id = ?",
        (int(a_order),))
    assert via_api  # A placed it as the reseller's API order
    shops.sandbox.panel.orders[int(panel_order)].fate = fate
    return int(b_order), int(a_order), int(panel_order)


def advance(shops: Shops, steps: float) -> None:
    """Move the sandbox's clock by ``steps`` status steps."""
    shops.sandbox.panel.advance(shops.sandbox.panel.pace * steps)


async def refunds(shop: Shop) -> list[tuple[int, int]]:
    return await shop.query("SELECT order_id, amount_minor FROM ledger WHERE kind = 'refund'"
                            " ORDER BY order_id")


async def test_b_sells_a_catalog_at_a_prices_as_its_costs(shops: Shops) -> None:
    async with httpx.AsyncClient() as http:
        listed = (await http.post(shops.a.api_url,
                                  data={"key": shops.key, "action": "services"})).json()
    by_ref = {str(item["service"]): item for item in listed}
    rows = await shops.b.query(
        "SELECT service_id, name, type, rate, currency, min_quantity, max_quantity, refill,"
        " cancel, dripfeed, sellable FROM services")
    assert len(rows) == len(shops.sandbox.panel.catalog) == len(by_ref)
    for ref, name, type_, rate, currency, low, high, refill, cancel, drip, sellable in rows:
        item = by_ref[ref]
        assert (name, type_, low, high) == (item["name"], item["type"], int(item["min"]),
                                             int(item["max"]))
        assert Decimal(rate) == Decimal(item["rate"]) and currency == "USD"
        assert (bool(refill), bool(cancel), bool(drip)) == (item["refill"], item["cancel"],
                                                            item["dripfeed"])
        assert sellable, name  # every type A sells, B sells
    # A's price (B's cost) is the sandbox's rate with A's markup, rounded up to the cent.
    for entry in shops.sandbox.panel.catalog.values():
        [(ref,)] = await shops.a.query("SELECT id FROM services WHERE service_id = ?",
                                       (str(entry.id),))
        expected = (entry.rate * Decimal("1.5")).quantize(Decimal("0.01"), "ROUND_CEILING")
        assert Decimal(by_ref[str(ref)]["rate"]) == expected, entry.name


async def test_b_customer_order_is_placed_by_a_and_completes(shops: Shops) -> None:
    await shops.a.credit(RESELLER, 10_000)
    await shops.b.credit(CUSTOMER, 10_000)
    customer = shops.b.user(CUSTOMER)
    b_order, a_order, panel_order = await order_in_b(shops, customer,
                                                     "https://instagram.com/p/ab1", "completed")
    assert shops.sandbox.panel.orders[panel_order].quantity == 1000
    assert await shops.a.balance(RESELLER) == (10_000 - A_PRICE,) * 2
    assert await shops.b.balance(CUSTOMER) == (10_000 - B_PRICE,) * 2
    advance(shops, 1.5)
    await customer.expect(f"Order #{b_order} has started", timeout=20)
    advance(shops, 2)
    await customer.expect(f"Order #{b_order} is complete", timeout=20)
    assert await shops.a.query("SELECT state, remains FROM orders WHERE id = ?",
                               (a_order,)) == [("completed", 0)]
    assert await shops.b.query("SELECT state, remains FROM orders WHERE id = ?",
                               (b_order,)) == [("completed", 0)]
    # Nothing refunded anywhere; A's reseller was told nothing in A's chat.
    assert await refunds(shops.a) == [] and await refunds(shops.b) == []
    assert await shops.a.balance(RESELLER) == (10_000 - A_PRICE,) * 2
    assert await shops.b.balance(CUSTOMER) == (10_000 - B_PRICE,) * 2
    assert RESELLER not in shops.a.emulator.chats or not shops.a.user(RESELLER).bot_messages


async def test_partial_and_canceled_refund_a_reseller_then_b_customer_exactly(
        shops: Shops) -> None:
    await shops.a.credit(RESELLER, 10_000)
    await shops.b.credit(CUSTOMER, 10_000)
    customer = shops.b.user(CUSTOMER)
    b_partial, a_partial, panel_partial = await order_in_b(
        shops, customer, "https://instagram.com/p/ab-part", "partial")
    b_canceled, a_canceled, _ = await order_in_b(
        shops, customer, "https://instagram.com/p/ab-gone", "canceled")
    advance(shops, 4)
    partly = await customer.expect(f"Order #{b_partial} was partly delivered", timeout=20)
    await customer.expect(f"Order #{b_canceled} was canceled by the supplier", timeout=20)
    remains = shops.sandbox.panel.orders[panel_partial].remains
    assert 0 < remains < 1000
    a_back, b_back = A_PRICE * remains // 1000, B_PRICE * remains // 1000  # rounded down
    assert await refunds(shops.a) == [(a_partial, a_back), (a_canceled, A_PRICE)]
    assert await refunds(shops.b) == [(b_partial, b_back), (b_canceled, B_PRICE)]
    assert f"Refunded ${b_back / 100:.2f}" in partly.text
    a_left = 10_000 - 2 * A_PRICE + a_back + A_PRICE
    b_left = 10_000 - 2 * B_PRICE + b_back + B_PRICE
    assert await shops.a.balance(RESELLER) == (a_left, a_left)
    assert await shops.b.balance(CUSTOMER) == (b_left, b_left)
    assert await shops.b.query("SELECT remains FROM orders WHERE id = ?",
                               (b_partial,)) == [(remains,)]


async def test_refill_and_cancel_asked_in_b_chat_reach_a_panel(shops: Shops) -> None:
    await shops.a.credit(RESELLER, 10_000)
    await shops.b.credit(CUSTOMER, 10_000)
    customer = shops.b.user(CUSTOMER)
    b_done, a_done, panel_done = await order_in_b(
        shops, customer, "https://instagram.com/p/ab-refill", "completed")
    advance(shops, 4)
    await customer.expect(f"Order #{b_done} is complete", timeout=20)
    await customer.tap(f"Open order #{b_done}")
    await customer.tap("Refill")
    assert "Refill requested" in customer.text
    [sandbox_refill] = [r for r in shops.sandbox.panel.refills.values()
                        if r.order_id == panel_done]
    [(a_refill, a_refill_panel_id)] = await shops.a.query(
        "SELECT id, panel_refill_id FROM refills WHERE order_id = ?", (a_done,))
    assert a_refill_panel_id == str(sandbox_refill.id)
    assert await shops.b.query("SELECT panel_refill_id FROM refills") == [(str(a_refill),)]
    sandbox_refill.fate = "Completed"
    advance(shops, 4)
    await customer.expect(f"The refill of order #{b_done} is done", timeout=20)
    assert await shops.b.query("SELECT state FROM refills") == [("completed",)]

    b_open, a_open, panel_open = await order_in_b(
        shops, customer, "https://instagram.com/p/ab-cancel", "completed")
    await customer.tap("Cancel order")
    assert shops.sandbox.panel.orders[panel_open].cancel_at is not None  # A asked its panel
    assert await shops.a.query("SELECT cancel_requested_at IS NOT NULL FROM orders"
                               " WHERE id = ?", (a_open,)) == [(1,)]
    advance(shops, 1)
    await customer.expect(f"Order #{b_open} was canceled, as you asked", timeout=20)
    assert (b_open, B_PRICE) in await refunds(shops.b)
    assert (a_open, A_PRICE) in await refunds(shops.a)
    assert await shops.b.balance(CUSTOMER) == (10_000 - B_PRICE,) * 2
    assert await shops.a.balance(RESELLER) == (10_000 - A_PRICE,) * 2


async def test_too_little_reseller_balance_refunds_b_customer_and_alerts_b_admins(
        shops: Shops) -> None:
    await shops.a.credit(RESELLER, A_PRICE - 1)  # a cent short at A
    await shops.b.credit(CUSTOMER, 10_000)
    await shops.b.admin.send("/start")
    customer = shops.b.user(CUSTOMER)
    [(a_ref,)] = await shops.a.query("SELECT id FROM services WHERE service_id = '101'")
    await open_service(customer, shops.b, a_ref)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/ab-broke")
    await customer.send("1000")
    await customer.tap("Skip")
    await customer.tap("Confirm")
    assert "The order was not placed: the service is temporarily unavailable" in customer.text
    assert "Your balance was refunded" in customer.text
    alert = await shops.b.admin.expect("Your panel balance is too low", timeout=20)
    assert "Top up the panel" in alert.text
    assert await shops.b.balance(CUSTOMER) == (10_000, 10_000)
    assert await shops.b.query("SELECT state, failure_reason FROM orders") == [
        ("failed", "not_enough_funds")]
    [(b_order,)] = await shops.b.query("SELECT id FROM orders")
    assert await refunds(shops.b) == [(b_order, B_PRICE)]
    # A placed nothing and took nothing.
    assert await shops.a.query("SELECT COUNT(*) FROM orders") == [(0,)]
    assert await shops.a.balance(RESELLER) == (A_PRICE - 1,) * 2
    assert not shops.sandbox.panel.orders


async def test_every_order_type_ordered_in_b_chat_reaches_a_panel_intact(
        shops: Shops) -> None:
    await shops.a.credit(RESELLER, 1_000_000)
    await shops.b.credit(CUSTOMER, 1_000_000)
    customer = shops.b.user(CUSTOMER)
    one_of_each = {e.type: e for e in reversed(DEFAULT_CATALOG)}  # the first of each type
    for item in sorted(one_of_each.values(), key=lambda e: e.id):
        [(a_ref,)] = await shops.a.query("SELECT id FROM services WHERE service_id = ?",
                                         (str(item.id),))
        await open_service(customer, shops.b, a_ref)
        await customer.tap("🛒 Order")
        await fill_form(customer, item, link_for(item))
        await customer.tap("Confirm")
        assert "placed" in customer.text, (item.type, customer.text)
        [(b_fields, a_order)] = await shops.b.query(
            "SELECT fields, panel_order_id FROM orders ORDER BY id DESC LIMIT 1")
        [(a_fields, a_price, panel_order)] = await shops.a.query(
            "SELECT fields, price_minor, panel_order_id FROM orders WHERE id = ?",
            (int(a_order),))
        placed = shops.sandbox.panel.orders[int(panel_order)]
        assert placed.entry.id == item.id
        # What B's customer typed is what A's panel got, field for field.
        assert json.loads(a_fields) == json.loads(b_fields), item.type
        assert {k: v for k, v in placed.fields.items() if k != "service"} == json.loads(
            b_fields), item.type
        # A charged its reseller no more than B was told it would cost.
        [(b_cost,)] = await shops.b.query(
            "SELECT cost_minor FROM orders ORDER BY id DESC LIMIT 1")
        assert 0 < a_price <= b_cost, item.type
    a_spent = 1_000_000 - (await shops.a.balance(RESELLER))[0]
    [(a_total,)] = await shops.a.query("SELECT SUM(price_minor) FROM orders")
    assert a_spent == a_total


async def test_a_owner_turning_the_reseller_off_refunds_b_customer_and_alerts_b_admins(
        shops: Shops) -> None:
    await shops.a.credit(RESELLER, 10_000)
    await shops.b.credit(CUSTOMER, 10_000)
    await shops.b.admin.send("/start")
    database = await shops.a.db()
    try:
        keys = ApiKeys(database, [ADMIN_ID], enabled=True, url=None)
        assert await keys.set_allowed(ADMIN_ID, RESELLER, False)  # it was on
    finally:
        await database.close()
    customer = shops.b.user(CUSTOMER)
    [(a_ref,)] = await shops.a.query("SELECT id FROM services WHERE service_id = '101'")
    await open_service(customer, shops.b, a_ref)  # B's copy of the catalog still sells
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/ab-off")
    await customer.send("1000")
    await customer.tap("Skip")
    await customer.tap("Confirm")
    assert "The order was not placed: the service is temporarily unavailable" in customer.text
    alert = await shops.b.admin.expect("refused the API key", timeout=20)
    assert "until its key is fixed" in alert.text
    assert await shops.b.balance(CUSTOMER) == (10_000, 10_000)
    assert await shops.a.query("SELECT COUNT(*) FROM orders") == [(0,)]
    assert await shops.a.balance(RESELLER) == (10_000, 10_000)
