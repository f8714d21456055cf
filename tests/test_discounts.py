"""Discounts in the quote: loyalty tiers and discount codes, the larger one, capped;
the code consumed in the order's own transaction and given back when the order
fails or is refunded in full. Plain services on a real SQLite file and the
sandbox panel; the customer's view of it is in tests/test_growth_e2e.py."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.panel import OrderState, OrderStatus
from bot.shop.catalog.pricing import Discount, DiscountSource, Pricer, Quote
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.growth.discounts import Discounts
from bot.shop.growth.loyalty import LoyaltyTiers
from bot.shop.orders.service import OrderService, Outcome, apply_statuses
from bot.shop.routing.failover import Router
from storage import catalog as catalog_store
from storage import ledger, users
from storage.db import Database

CUSTOMER = 7
LIKES = "102"  # 0.45 per 1000 at 30 %: $0.59 per 1000
LINKS = (f"https://instagram.com/p/{n}" for n in itertools.count())


def likes(quantity: int = 1000) -> dict[str, str]:
    return {"link": next(LINKS), "quantity": str(quantity)}


async def credit(db: Database, user_id: int, minor: int) -> None:
    await users.upsert_user(db, user_id, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=user_id, amount_minor=minor, kind="credit",
                          key=f"seed:{user_id}:{uuid.uuid4().hex}")


async def spent(db: Database, user_id: int, minor: int) -> None:
    """History: ``user_id`` paid ``minor`` for an order before (a debit of kind order)."""
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=user_id, amount_minor=-minor, kind="order",
                          key=f"past:{user_id}:{uuid.uuid4().hex}")


async def new_code(db: Database, code: str, percent: str, *, max_uses: int | None = None,
                   min_order: int = 0, per_user: int = 1) -> int:
    rows = await db.write(
        "INSERT INTO promo_codes (code, kind, percent, max_uses, per_user, min_order_minor,"
        " created_by) VALUES (?, 'discount', ?, ?, ?, ?, 1) RETURNING id",
        (code, percent, max_uses, per_user, min_order))
    return int(rows[0][0])


async def attach(db: Database, user_id: int, code_id: int) -> None:
    await db.write("INSERT INTO promo_uses (code_id, user_id, state) VALUES (?, ?, 'attached')",
                   (code_id, user_id))


async def uses(db: Database, code_id: int) -> tuple[int, list[str]]:
    """(the code's use count, its uses' states in order)."""
    [(count,)] = [tuple(r) for r in await db.fetchall(
        "SELECT uses FROM promo_codes WHERE id = ?", (code_id,))]
    states = [r[0] for r in await db.fetchall(
        "SELECT state FROM promo_uses WHERE code_id = ? ORDER BY id", (code_id,))]
    return int(count), states


@pytest.fixture
async def shop(db, sandbox, make_client):
    client = make_client(sandbox, timeout=1)
    await refresh_catalog(db, client, "USD")
    pricer = Pricer(db, "USD", Decimal(30), {"test": Decimal(1)})
    discounts = Discounts(db, LoyaltyTiers([(Decimal(10), Decimal(5)),
                                            (Decimal(100), Decimal(10))], "USD"), Decimal(50))
    await credit(db, CUSTOMER, 10_000)
    # Discounts here go deep into a 30 % markup: any price above cost sells
    # (MIN_MARGIN_PERCENT is tests/test_routing.py's).
    router = Router(db, panels=["test"], fx_rates=pricer.fx_rates, shop_currency="USD",
                    min_margin_percent=Decimal(0))
    return OrderService(db, {"test": client}, pricer, discounts=discounts, router=router)


async def quote_for(service: OrderService, user_id: int, values: dict[str, str]) -> Quote:
    stored = await service.on_sale((await catalog_store.by_panel_id(service.db, "test",
                                                                    LIKES)).ref)  # type: ignore[union-attr]
    return await service.quote(stored, values, user_id)


async def confirm(service: OrderService, user_id: int, values: dict[str, str]):
    """Place as a customer does: at the price the confirmation showed them."""
    stored = await catalog_store.by_panel_id(service.db, "test", LIKES)
    assert stored is not None
    shown = await quote_for(service, user_id, values)
    return shown, await service.place(user_id, stored.ref, values, uuid.uuid4().hex,
                                      shown.price_minor)


async def test_no_spend_no_code_is_the_list_price(shop: OrderService) -> None:
    quote = await quote_for(shop, CUSTOMER, likes())
    assert (quote.price_minor, quote.discount, quote.list_price_minor) == (59, None, 59)


async def test_a_tier_reached_takes_its_percent_off_and_confirm_charges_that(
        db, shop: OrderService) -> None:
    await spent(db, CUSTOMER, 999)  # $9.99: below the first tier
    assert (await quote_for(shop, CUSTOMER, likes(10_000))).discount is None
    await spent(db, CUSTOMER, 1)  # $10.00 spent: 5 % off
    shown, placed = await confirm(shop, CUSTOMER, likes(10_000))  # list $5.85
    assert shown.discount == Discount(DiscountSource.TIER, Decimal(5))
    assert (shown.list_price_minor, shown.discount_minor, shown.price_minor) == (585, 29, 556)
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    assert placed.order.price_minor == 556 and placed.order.discount_minor == 29
    assert await ledger.balance_of(db, CUSTOMER) == 10_000 - 1_000 - 556
    [(listed, source)] = [tuple(r) for r in await db.fetchall(
        "SELECT price_minor + discount_minor, discount_source FROM orders")]
    assert (listed, source) == (585, "tier")


async def test_refunds_count_against_the_spend(db, shop: OrderService) -> None:
    await spent(db, CUSTOMER, 1_000)
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=CUSTOMER, amount_minor=1, kind="refund", key="back")
    assert (await shop.discounts.standing(CUSTOMER)).tier is None  # type: ignore[union-attr]
    standing = await shop.discounts.standing(CUSTOMER)  # type: ignore[union-attr]
    assert (standing.spend_minor, standing.missing_minor) == (999, 1)


async def test_the_larger_discount_applies_never_both(db, shop: OrderService) -> None:
    await spent(db, CUSTOMER, 1_000)  # tier: 5 %
    small = await new_code(db, "SMALL", "3")
    await attach(db, CUSTOMER, small)
    quote = await quote_for(shop, CUSTOMER, likes(10_000))
    assert quote.discount is not None and quote.discount.source is DiscountSource.TIER
    assert quote.code_kept is not None and quote.code_kept.code == "SMALL"

    await db.write("UPDATE promo_uses SET state = 'detached'")
    big = await new_code(db, "BIG", "20")
    await attach(db, CUSTOMER, big)
    shown, placed = await confirm(shop, CUSTOMER, likes(10_000))
    assert shown.discount is not None and shown.discount.code == "BIG"
    assert (shown.discount_minor, shown.price_minor, shown.code_kept) == (117, 468, None)
    assert placed.outcome is Outcome.PLACED
    assert await uses(db, big) == (1, ["used"])
    # Used: the next order is back to the tier's 5 %.
    assert (await quote_for(shop, CUSTOMER, likes(10_000))).discount == Discount(
        DiscountSource.TIER, Decimal(5))


async def test_a_tie_keeps_the_code_for_later(db, shop: OrderService) -> None:
    await spent(db, CUSTOMER, 1_000)
    same = await new_code(db, "SAME", "5")
    await attach(db, CUSTOMER, same)
    _, placed = await confirm(shop, CUSTOMER, likes(10_000))
    assert placed.outcome is Outcome.PLACED and placed.order.discount_source == "tier"  # type: ignore[union-attr]
    assert await uses(db, same) == (0, ["attached"])


async def test_a_code_below_its_minimum_waits(db, shop: OrderService) -> None:
    code = await new_code(db, "BIGORDERS", "10", min_order=500)
    await attach(db, CUSTOMER, code)
    small = await quote_for(shop, CUSTOMER, likes(1000))
    assert small.discount is None and small.code_kept is not None
    assert small.code_kept.min_order_minor == 500
    large = await quote_for(shop, CUSTOMER, likes(10_000))  # $5.85
    assert large.discount is not None and large.price_minor == 585 - 58


async def test_every_discount_is_capped(db, shop: OrderService) -> None:
    capped = Discounts(db, LoyaltyTiers([], "USD"), Decimal(15))
    service = OrderService(db, shop.panels, shop.pricer, discounts=capped, router=shop.router)
    await attach(db, CUSTOMER, await new_code(db, "HALF", "50"))
    quote = await quote_for(service, CUSTOMER, likes(10_000))
    assert quote.discount is not None and quote.discount.percent == 15
    assert quote.price_minor == 585 - 87


async def test_a_failed_order_gives_the_code_back(db, sandbox, shop: OrderService) -> None:
    code = await new_code(db, "ONCE", "10", max_uses=1)
    await attach(db, CUSTOMER, code)
    sandbox.panel.balance = Decimal("0.01")  # the panel refuses: not enough funds
    _, placed = await confirm(shop, CUSTOMER, likes(10_000))
    assert placed.outcome is Outcome.REJECTED
    assert await uses(db, code) == (0, ["given_back"])
    assert await ledger.balance_of(db, CUSTOMER) == 10_000


async def test_a_canceled_order_gives_the_code_back_a_partial_one_does_not(
        db, shop: OrderService) -> None:
    code = await new_code(db, "TWICE", "10", per_user=2)
    await attach(db, CUSTOMER, code)
    _, first = await confirm(shop, CUSTOMER, likes(10_000))
    await attach(db, CUSTOMER, code)
    _, second = await confirm(shop, CUSTOMER, likes(10_000))
    assert first.order is not None and second.order is not None
    assert await uses(db, code) == (2, ["used", "used"])
    await apply_statuses(db, {
        first.order.id: OrderStatus(OrderState.CANCELED, "Canceled", remains=10_000),
        second.order.id: OrderStatus(OrderState.PARTIAL, "Partial", remains=5_000)},
        source="test")
    assert await uses(db, code) == (1, ["given_back", "used"])
    # Two orders of $5.27; the canceled one back whole, half the partial one (rounded down).
    assert await ledger.balance_of(db, CUSTOMER) == 10_000 - 527 - 527 + 527 + 263


async def test_a_code_used_up_before_confirm_charges_nothing_and_shows_the_new_price(
        db, shop: OrderService) -> None:
    code = await new_code(db, "LAST", "10", max_uses=1)
    await credit(db, 8, 10_000)
    await attach(db, CUSTOMER, code)
    await attach(db, 8, code)
    values = likes(10_000)
    stored = await catalog_store.by_panel_id(db, "test", LIKES)
    assert stored is not None
    shown = await quote_for(shop, CUSTOMER, values)
    assert shown.price_minor == 527
    _, other = await confirm(shop, 8, likes(10_000))  # takes the last use first
    assert other.outcome is Outcome.PLACED
    late = await shop.place(CUSTOMER, stored.ref, values, uuid.uuid4().hex, shown.price_minor)
    assert (late.outcome, late.price_minor) == (Outcome.PRICE_CHANGED, 585)
    assert await ledger.balance_of(db, CUSTOMER) == 10_000
    assert await uses(db, code) == (1, ["attached", "used"])


async def test_fifty_customers_confirming_the_last_use_at_once_one_gets_it(
        db, shop: OrderService) -> None:
    code = await new_code(db, "RUSH", "10", max_uses=1)
    customers = range(100, 150)
    for customer in customers:
        await credit(db, customer, 10_000)
        await attach(db, customer, code)
    stored = await catalog_store.by_panel_id(db, "test", LIKES)
    assert stored is not None
    shown = {c: await quote_for(shop, c, likes(10_000)) for c in customers}
    assert {q.price_minor for q in shown.values()} == {527}
    results = await asyncio.gather(*(
        shop.place(c, stored.ref, likes(10_000), uuid.uuid4().hex, 527) for c in customers))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.PLACED) == 1
    assert outcomes.count(Outcome.PRICE_CHANGED) == 49
    assert (await uses(db, code))[0] == 1
    charged = await db.fetchall("SELECT SUM(price_minor), COUNT(*) FROM orders")
    assert tuple(charged[0]) == (527, 1)


@given(list_price=st.integers(0, 10**10), percent=st.decimals(0, 100, places=2),
       cap=st.decimals(0, 100, places=2))
def test_a_discount_never_charges_more_or_takes_off_more_than_its_percent(
        list_price: int, percent: Decimal, cap: Decimal) -> None:
    discount = Discount(DiscountSource.TIER, min(percent, cap))
    quote = Quote(list_price, Decimal(1), 1, Decimal(30)).with_discount(discount)
    assert quote.list_price_minor == list_price
    assert 0 <= quote.price_minor <= list_price
    assert quote.discount_minor * 100 <= list_price * min(percent, cap)
    assert (list_price - quote.price_minor) * 100 > list_price * min(percent, cap) - 100


async def test_a_discount_is_cut_to_keep_the_margin_and_the_order_still_goes_through(
        db, shop: OrderService) -> None:
    margined = OrderService(db, shop.panels, shop.pricer, discounts=shop.discounts)  # 5 %
    await attach(db, CUSTOMER, await new_code(db, "HALF", "50"))
    shown, placed = await confirm(margined, CUSTOMER, likes(10_000))  # cost $4.50, list $5.85
    assert shown.discount is not None and shown.discount_limited
    assert shown.price_minor == 474  # $4.50 / 0.95, rounded up: 5 % of it is left
    assert (shown.price_minor - 450) * 100 >= shown.price_minor * 5
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    assert placed.order.price_minor == 474
    small = await quote_for(margined, 8, likes(10_000))  # no discount: nothing is cut
    assert (small.price_minor, small.discount_limited) == (585, False)
