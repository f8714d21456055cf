"""Loyalty tiers as a customer meets them: the unmodified bot against the Bot API
emulator and the sandbox panel (the rules themselves: tests/test_discounts.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import ledger
from tests.conftest import SandboxFactory
from tests.e2e import Shop, running_shop
from tests.test_storefront import open_service

pytestmark = pytest.mark.timeout(120)

CUSTOMER = 42


@pytest.fixture
async def tiered_shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1,
                            loyalty_tiers="1:5,100:10") as running:
        yield running


async def order_likes(shop: Shop, link: str) -> str:
    """Instagram likes (101), 1,000 of them, up to the confirmation; returns its text."""
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send(link)
    await customer.send("1000")
    await customer.tap("Skip")
    assert "Check your order" in customer.text
    return customer.text


async def test_a_tier_reached_shows_on_the_balance_and_takes_its_percent_off(
        tiered_shop: Shop) -> None:
    shop = tiered_shop
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await customer.send("/balance")
    assert "Spend $1.00 more on orders to get 5% off." in customer.text
    assert "Loyalty discount" not in customer.text

    first = await order_likes(shop, "https://instagram.com/p/first")
    assert "Price: $1.56" in first and "discount" not in first.lower()
    await customer.tap("Confirm")
    assert "placed" in customer.text

    await customer.send("/balance")
    assert "🏅 Loyalty discount: 5% off every order." in customer.text
    assert "Spend $98.44 more on orders to get 10% off." in customer.text

    second = await order_likes(shop, "https://instagram.com/p/second")
    assert "List price: $1.56" in second
    assert "Loyalty discount (5%): −$0.07" in second
    assert "Total: $1.49" in second
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.balance(CUSTOMER) == (10_000 - 156 - 149, 10_000 - 156 - 149)
    assert await shop.query("SELECT price_minor, discount_minor, discount_source FROM orders"
                            " ORDER BY id") == [(156, 0, None), (149, 7, "tier")]
    await customer.tap("My orders")
    await customer.tap("#2")
    assert "Discount: −$0.07 (loyalty discount)" in customer.text


async def test_russian_and_turkish_customers_read_their_tier_in_their_words(
        tiered_shop: Shop) -> None:
    shop = tiered_shop
    for user_id, language, words in [(43, "ru", "скидк"), (44, "tr", "%5")]:
        await shop.credit(user_id, 10_000)
        database = await shop.db()
        try:  # $2 paid for orders before: the first tier
            async with database.transaction() as conn:
                await ledger.post(conn, user_id=user_id, amount_minor=-200, kind="order",
                                  key=f"past:{user_id}")
        finally:
            await database.close()
        customer = shop.user(user_id, language_code=language)
        await customer.send("/balance")
        assert words in customer.text, customer.text
        assert "Loyalty" not in customer.text and "Spend" not in customer.text


async def test_a_code_entered_on_the_confirmation_reprices_it_and_confirm_charges_that(
        shop: Shop) -> None:
    await shop.admin.send("/promo_new SPRING10 discount 10")
    await shop.admin.send("/promo_new BIGONLY discount 20 min=50")
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await customer.send("/promo bigonly")
    await customer.send("/balance")
    assert "🎟 Code BIGONLY waits for your next order: 20% off orders from $50.00." in (
        customer.text)
    confirmation = await order_likes(shop, "https://instagram.com/p/coded")
    assert "Price: $1.56" in confirmation
    assert "Code BIGONLY is for orders from $50.00: it stays for a later order." in confirmation
    stale = customer.last()

    await customer.tap("🎟 Promo code")
    await customer.send("🎉")  # no code: asked again, nothing changes
    assert "SPRING10" in customer.text and await shop.query(
        "SELECT COUNT(*) FROM promo_uses") == [(1,)]  # BIGONLY's alone
    await customer.send("spring10")
    confirmation = customer.text
    assert "List price: $1.56" in confirmation
    assert "Code SPRING10 (10% off): −$0.15" in confirmation
    assert "Total: $1.41" in confirmation
    answer = await customer.tap_data(stale.button("Confirm")["callback_data"], stale)  # type: ignore[index]
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)], answer

    await customer.send("/promo BIGONLY")  # typed on the confirmation: it replaces SPRING10
    assert "Code BIGONLY is for orders from $50.00: it stays for a later order." in customer.text
    assert "Price: $1.56" in customer.text
    await customer.send("/promo SPRING10")
    assert "Total: $1.41" in customer.text
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.balance(CUSTOMER) == (10_000 - 141, 10_000 - 141)
    assert await shop.query("SELECT c.code, u.state, c.uses FROM promo_uses u JOIN promo_codes c"
                            " ON c.id = u.code_id ORDER BY u.id") == [
        ("BIGONLY", "detached", 0), ("SPRING10", "detached", 1), ("BIGONLY", "detached", 0),
        ("SPRING10", "used", 1)]
    await customer.send("/balance")
    assert "waits for your next order" not in customer.text
