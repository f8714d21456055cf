"""What Confirm promises, end to end: the price shown is the most that is taken,
a service that changed since the form was filled is checked again, and a panel
that answers strangely never loses an order or a customer's money."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from bot.devtools.sandbox.sample_catalog import CatalogEntry
from bot.devtools.sandbox.server import DEFAULT_KEY, SandboxPanel, start_sandbox
from tests.conftest import SandboxFactory
from tests.e2e import Shop, restart, running_shop
from tests.test_storefront import CUSTOMER, _to_confirmation, open_service

pytestmark = pytest.mark.timeout(120)


def change_service(shop: Shop, service_id: int, **changes: object) -> None:
    """The panel changes a service; the bot sees it at its next catalog refresh."""
    catalog = shop.sandbox.panel.catalog
    catalog[service_id] = dataclasses.replace(catalog[service_id], **changes)  # type: ignore[arg-type]


async def test_a_price_rise_after_the_confirmation_is_shown_charges_nothing(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/rise")
    assert "Price: $1.56" in customer.text  # 1.20 × 1 × 1.3
    confirm = customer.last()
    change_service(shop, 101, rate=Decimal("12.00"))
    await restart(shop, shop.emulator_url)  # the catalog is refreshed at start-up

    answer = await customer.tap_data(confirm.button("Confirm")["callback_data"], confirm)  # type: ignore[index]
    assert answer["text"] == "The price has changed."
    assert "from $1.56 to $15.60" in customer.text and "Nothing was charged" in customer.text
    assert "Check your order" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]
    assert await shop.balance(CUSTOMER) == (10_000, 10_000)
    assert shop.sandbox.panel.requests["add"] == 0

    await customer.tap("Confirm")  # the customer has now seen $15.60
    assert "placed" in customer.text
    assert await shop.query("SELECT price_minor FROM orders") == [(1560,)]
    assert await shop.balance(CUSTOMER) == (10_000 - 1560, 10_000 - 1560)


async def test_a_price_drop_charges_the_lower_price(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/drop")
    change_service(shop, 101, rate=Decimal("0.60"))
    await restart(shop, shop.emulator_url)
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.query("SELECT price_minor FROM orders") == [(78,)]  # not 156
    assert await shop.balance(CUSTOMER) == (10_000 - 78, 10_000 - 78)


async def test_new_limits_send_the_customer_back_to_the_field(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/limits")  # quantity 1000
    change_service(shop, 101, max=500)
    await restart(shop, shop.emulator_url)
    await customer.tap("Confirm")
    assert "largest amount for this service is 500" in customer.text
    assert "Step 2" in customer.text and "How many?" in customer.text
    await customer.send("400")
    await customer.tap("Skip")
    assert "Check your order" in customer.text and "Quantity: 400" in customer.text
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.query("SELECT quantity FROM orders") == [(400,)]


async def test_drip_feed_withdrawn_after_the_form_was_filled(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100_000)
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 103)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/drip")
    await customer.send("1000")
    await customer.send("4")
    await customer.send("30")
    assert "Total quantity: 4,000" in customer.text
    change_service(shop, 103, dripfeed=False)
    await restart(shop, shop.emulator_url)
    for _ in range(3):  # every tap gets an answer; none crashes
        await customer.tap("Confirm")
        if "placed" in customer.text:
            break
        assert "does not support drip-feed" in customer.text
        assert "Total quantity: 1,000" in customer.text  # the runs are gone
    assert "placed" in customer.text
    assert all("went wrong" not in m.text for m in customer.bot_messages)
    [(panel_id,)] = await shop.query("SELECT panel_order_id FROM orders")
    placed = shop.sandbox.panel.orders[int(panel_id)]
    assert "runs" not in placed.fields and placed.quantity == 1000


async def test_a_panel_id_another_order_has_is_held_for_an_admin(
    shop: Shop, tmp_path: Path,
) -> None:
    await shop.credit(CUSTOMER, 10_000)
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/first")
    await customer.tap("Confirm")
    [(first_id,)] = await shop.query("SELECT panel_order_id FROM orders")
    # A new panel configured under the old one's name numbers its orders afresh.
    old = shop.sandbox
    shop.sandbox = await start_sandbox(SandboxPanel(pace=60))
    try:
        await restart(shop, shop.emulator_url)
        await _to_confirmation(customer, shop, "https://instagram.com/p/second")
        await customer.tap("Confirm")
        assert "did not confirm it yet" in customer.text
        rows = await shop.query("SELECT state, panel_order_id, error FROM orders WHERE id = 2")
        [(state, panel_id, error)] = rows
        assert state == "unknown" and panel_id is None and first_id in error
        assert await shop.balance(CUSTOMER) == (10_000 - 2 * 156, 10_000 - 2 * 156)  # held
        alert = await shop.admin.expect("Order #2")
        assert first_id in alert.text and "/unresolved" in alert.text
        await shop.admin.send("/unresolved")
        assert "#2" in shop.admin.text and "1 order needs checking" in shop.admin.text
    finally:
        await shop.sandbox.stop()
        shop.sandbox = old


async def test_a_revoked_panel_key_refunds_and_alerts_once_per_outage(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    shop.sandbox.panel.key = "revoked"
    for n in range(2):
        await _to_confirmation(customer, shop, f"https://instagram.com/p/key{n}")
        await customer.tap("Confirm")
        assert "temporarily unavailable" in customer.text and "refunded" in customer.text
    await shop.admin.expect("refused the API key")
    await shop.emulator.settle(quiet=0.3)
    assert len(shop.admin.saying("refused the API key")) == 1  # once per outage
    assert await shop.balance(CUSTOMER) == (10_000, 10_000)
    assert await shop.query("SELECT state FROM orders") == [("failed",), ("failed",)]

    shop.sandbox.panel.key = DEFAULT_KEY  # fixed: an order goes through, the outage is over
    await _to_confirmation(customer, shop, "https://instagram.com/p/key-ok")
    await customer.tap("Confirm")
    assert "placed" in customer.text
    shop.sandbox.panel.key = "revoked again"
    await _to_confirmation(customer, shop, "https://instagram.com/p/key3")
    await customer.tap("Confirm")
    await shop.emulator.wait_for(lambda: len(shop.admin.saying("refused the API key")) == 2)


async def test_in_a_group_the_bot_points_to_the_private_chat(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    in_group = shop.emulator.in_group(customer)
    reply = await in_group.send("/start")
    assert "private chat" in reply.text
    button = reply.button("Open the shop")
    assert button is not None and button["url"].startswith("https://t.me/storefront_bot")
    await in_group.send("/balance")
    assert "private chat" in in_group.text and "$100" not in in_group.text
    answer = await in_group.tap_data("m:shop", reply)
    assert "private chat" in answer["text"]
    assert not customer.bot_messages  # nothing happened in the private chat
    await customer.send("/start")
    assert "Hi, Alex" in customer.text  # and the private chat works as ever


async def test_a_service_with_absurd_texts_fits_every_screen(make_sandbox: SandboxFactory,
                                                            tmp_path: Path) -> None:
    """5,000-character names with HTML in them: every page, card, button and notice is
    sent (the emulator refuses what Telegram would: over 4,096 characters, broken HTML)."""
    long_name = "Instagram Likes <b>777 & more " + "x" * 5000
    entry = CatalogEntry(901, long_name, "Default", "Instagram <i>" + "y" * 5000, Decimal("0.50"),
                         10, 1000, description="<script>" * 1000)
    sandbox = await make_sandbox(catalog=[entry])
    async with running_shop(sandbox, tmp_path, track_interval=1) as shop:
        await shop.credit(CUSTOMER, 10_000)
        customer = shop.user(CUSTOMER)
        await customer.send("/start")
        await customer.tap("New order")
        await customer.tap("Instagram")
        await customer.tap("Instagram <i>yyy")
        assert "choose a service" in customer.text and len(customer.text) < 4096
        await customer.tap("Instagram Likes <b>777")
        assert "<b>777 & more" in customer.text and "<script>" in customer.text
        await customer.tap("🛒 Order")
        await customer.send("https://instagram.com/p/long")
        await customer.send("100")
        assert "Check your order" in customer.text
        await customer.tap("Confirm")
        assert "placed" in customer.text
        sandbox.panel.advance(60 * 10)
        await customer.expect("is complete")  # the tracker's notice
        await customer.tap("Open order")
        assert all("went wrong" not in m.text for m in customer.bot_messages)
        assert all(len(m.text) <= 4096 for m in customer.bot_messages)


async def test_confirm_after_edit_places_nothing(shop: Shop) -> None:
    """Edit leaves the confirmation: its Confirm button, tapped again (a replayed or
    slow tap), shows the form as it is now instead of placing anything."""
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/edited")
    confirm = customer.last()
    data = confirm.button("Confirm")["callback_data"]  # type: ignore[index]
    await customer.tap("Edit")
    assert "Step 1" in customer.text
    answer = await customer.tap_data(data, customer.last())
    assert answer["text"] == "That confirmation was out of date."
    assert "Step 1" in customer.text and "This is your order as it is now" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]
