"""/start in the middle of an order keeps the draft: the menu offers ▶️ Continue your
order (the service, the step) for as long as it is kept, a message typed after /start
is told about it, Continue shows the form where it was, /cancel drops it. End to end:
the unmodified bot, the Bot API emulator, the sandbox panel, a real SQLite file."""

from __future__ import annotations

import pytest

from bot.devtools.emulator import ChatMessage, NoAnswer, ScriptedUser
from tests.e2e import Shop, restart
from tests.test_storefront import open_service

pytestmark = pytest.mark.timeout(120)

CUSTOMER = 42
FOLLOWERS = "Instagram Followers [Real"  # service 101: link, quantity, drip-feed runs


def labels(message: ChatMessage) -> list[str]:
    return [label for row in message.buttons for label in row]


def continue_button(message: ChatMessage) -> str | None:
    """The ▶️ Continue button's label on a menu, if it has one (always the first)."""
    first = labels(message)[0] if message.buttons else ""
    return first if first.startswith("▶️") else None


async def to_quantity(customer: ScriptedUser, shop: Shop) -> None:
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/kept")
    assert "Step 2 of 3" in customer.text


async def test_start_keeps_the_draft_and_continue_takes_it_up_where_it_was(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await to_quantity(customer, shop)

    menu = await customer.send("/start")
    assert menu.text.startswith("Hi, Alex")
    assert continue_button(menu) == "▶️ Continue your order: Instagram Followers [Real…, step 2 of 3"

    # The answer the customer meant for the form: told what to do, not "I didn't get that".
    reply = await customer.send("1000")
    assert "I didn't get that" not in reply.text
    assert "You have an order in progress: Instagram Followers" in reply.text
    assert "step 2 of 3" in reply.text and "/cancel" in reply.text
    assert continue_button(reply) is not None
    await customer.send_sticker()
    assert "order in progress" in customer.text

    # Other screens and steps leave it kept: the menu offers it wherever it shows.
    await customer.tap("💰 Balance")
    await customer.tap("🏠 Menu")
    assert continue_button(customer.last()) is not None
    await customer.send("/search")
    await customer.send("tiktok")  # a search clears its own step, not the kept draft
    await customer.send("/help")
    assert continue_button(customer.last()) is not None

    await customer.tap("▶️ Continue your order")
    assert "Step 2 of 3" in customer.text and "How many?" in customer.text
    assert continue_button(customer.last()) is None  # it is the form again, not a menu
    await customer.send("1000")
    assert "Step 3 of 3" in customer.text
    await customer.tap("Skip")
    assert "Check your order" in customer.text
    assert "https://instagram.com/p/kept" in customer.text and "Quantity: 1,000" in customer.text

    # At the confirmation too: /start keeps it, Continue shows it again and Confirm places it.
    menu = await customer.send("/start")
    assert continue_button(menu) == "▶️ Continue your order: Instagram Followers [Real…, to confirm"
    reply = await customer.send("hello")
    assert "ready to confirm" in reply.text
    await customer.tap("▶️ Continue your order")
    assert "Check your order" in customer.text
    await customer.tap("✅ Confirm")
    assert "Order #1 placed" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(1,)]
    menu = await customer.send("/start")
    assert continue_button(menu) is None  # placed: nothing is kept


async def test_cancel_drops_the_kept_draft_and_an_old_continue_says_so(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await to_quantity(customer, shop)
    menu = await customer.send("/start")
    assert continue_button(menu) is not None

    await customer.send("/cancel")
    assert "Order cancelled. Nothing was charged." in customer.text
    assert continue_button(customer.last()) is None
    await customer.send("hello")
    assert "I didn't get that" in customer.text  # nothing kept: the ordinary answer
    await customer.send("/cancel")
    assert "There is nothing to cancel." in customer.text

    answer = await customer.tap_data(menu.button(continue_button(menu) or "")["callback_data"],
                                     menu)
    assert "no longer kept" in answer["text"] and answer.get("show_alert")
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]


async def test_a_new_form_replaces_the_kept_one(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await to_quantity(customer, shop)
    await customer.send("/start")
    await open_service(customer, shop, 103)  # Instagram Likes [Instant]
    await customer.tap("🛒 Order")
    menu = await customer.send("/start")
    assert continue_button(menu) == "▶️ Continue your order: Instagram Likes [Instant], step 1 of 3"
    await customer.tap("▶️ Continue your order")
    assert "Instagram Likes [Instant]" in customer.text and "Step 1 of 3" in customer.text


async def test_the_kept_draft_survives_a_restart_and_speaks_the_customers_language(
        shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await to_quantity(customer, shop)
    await customer.send("/start")
    await restart(shop, shop.emulator_url)
    menu = await customer.send("/start")
    assert continue_button(menu) is not None
    await customer.tap("▶️ Continue your order")
    await customer.send("500")
    assert "Step 3 of 3" in customer.text

    for language, button, told, step in (
            ("ru", "▶️ Продолжить заказ", "У вас есть незаконченный заказ", "Шаг 2 из 3"),
            ("tr", "▶️ Siparişe devam et", "Yarım kalmış bir siparişiniz var", "Adım 2/3")):
        speaker = shop.user(CUSTOMER + len(language) + ord(language[0]), "Ali",
                            language_code=language)
        await open_service_in(speaker, shop)
        await speaker.send("https://instagram.com/p/kept")
        menu = await speaker.send("/start")
        label = continue_button(menu)
        assert label is not None and label.startswith(button), label
        reply = await speaker.send("1000")
        assert told in reply.text, reply.text
        await speaker.tap(button)
        assert step in speaker.text  # the form as it was: the quantity still asked


async def open_service_in(user: ScriptedUser, shop: Shop) -> None:
    """Service 101's form, reached by its deep link (the menu speaks the user's language)."""
    [(ref,)] = await shop.query("SELECT id FROM services WHERE service_id = '101'")
    await user.send(f"/start s{ref}")
    message = user.last()
    order = next(label for label in labels(message) if label.startswith("🛒"))
    try:
        await user.tap(order)
    except NoAnswer:  # pragma: no cover - a failure says which button
        raise AssertionError(labels(message)) from None


def test_redis_keeps_its_keys_and_gives_the_kept_order_its_own() -> None:
    """With REDIS_URL, conversations stored before keep their keys (aiogram's default
    builder's), and the kept order's slot, which that builder refuses, gets its own."""
    from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey

    from bot.app.fsm_storage import DestinyKeys
    from handlers.customer.kept_order import DESTINY

    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    kept = StorageKey(bot_id=1, chat_id=42, user_id=42, destiny=DESTINY)
    for part in ("state", "data", None):
        assert DestinyKeys().build(key, part) == DefaultKeyBuilder().build(key, part)
        assert DestinyKeys().build(kept, part) not in (DefaultKeyBuilder().build(key, p)
                                                       for p in ("state", "data", None))
    with pytest.raises(ValueError):
        DefaultKeyBuilder().build(kept, "data")
