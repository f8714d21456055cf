"""The storefront end to end: a scripted customer, the unmodified bot in polling mode
against the Bot API emulator, the sandbox panel, and a real SQLite file."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from bot.devtools.emulator import ScriptedUser
from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG, CatalogEntry, generated_catalog
from bot.panel.order_types import FieldKind
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, Shop, running_shop

pytestmark = pytest.mark.timeout(120)

CUSTOMER = 42


def entry(service_id: int) -> CatalogEntry:
    return next(e for e in DEFAULT_CATALOG if e.id == service_id)


async def open_service(user: ScriptedUser, shop: Shop, service_id: int) -> None:
    """Reach a service's card the way a customer does: menu, platform, category, service."""
    rows = await shop.query("SELECT s.id, c.platform, c.name, s.name FROM services s JOIN "
                            "categories c ON c.id = s.category_id WHERE s.service_id = ?",
                            (str(service_id),))
    [(_ref, _platform, category, name)] = rows
    await user.send("/start")
    await user.tap("New order")
    platform_button = next(label for row in user.last().buttons for label in row
                           if _platform_word(_platform) in label)
    await user.tap(platform_button)
    await user.tap(category)
    await user.tap(name[:40])
    assert name in user.text


def _platform_word(slug: str) -> str:
    return {"twitter": "Twitter", "web": "Website", "youtube": "YouTube",
            "tiktok": "TikTok"}.get(slug, slug.capitalize())


def answer_for(field: str, kind: FieldKind, item: CatalogEntry, link: str) -> str:
    lines = "\n".join(f"Great post number {n}!" for n in range(item.min))
    return {
        "link": link, "media": link, "referring_url": "https://example.com/from",
        "quantity": str(item.min), "min": str(item.min), "max": str(item.min),
        "posts": "3", "answer_number": "2", "country": "US", "google_keyword": "running shoes",
        "hashtag": "#travel", "username": "alice",
    }.get(field, lines if kind is FieldKind.LINES else "alice")


async def fill_form(user: ScriptedUser, item: CatalogEntry, link: str) -> None:
    """Answer each step the bot asks, until the confirmation screen."""
    from bot.panel.order_types import get_order_type

    order_type = get_order_type(item.type)
    for _ in range(12):
        text = user.text
        if "Check your order" in text:
            return
        spec = next(f for f in order_type.fields if f.prompt.split("(")[0].strip() in text)
        if spec.kind is FieldKind.CHOICE:
            await user.tap(spec.choice_labels[0] if spec.choice_labels
                           else spec.choices[0] if spec.name != "delay" else "30")
        elif not spec.required:
            await user.tap("Skip")
        else:
            await user.send(answer_for(spec.name, spec.kind, item, link))
            assert "⚠️" not in user.text, user.text
    raise AssertionError(f"the form never reached the confirmation: {user.text}")


LINKS = {"instagram": "https://instagram.com/p/Cxyz", "tiktok": "https://tiktok.com/@a/video/1",
         "youtube": "https://youtube.com/watch?v=abc", "telegram": "https://t.me/channel/5",
         "facebook": "https://facebook.com/page/posts/1", "twitter": "https://x.com/a/status/1",
         "spotify": "https://open.spotify.com/track/1", "web": "https://example.com/landing"}


def link_for(item: CatalogEntry) -> str:
    for word, link in LINKS.items():
        if word in item.name.lower() or (word == "twitter" and "(twitter)" in item.name.lower()):
            return link
    return LINKS["web"]


# ------------------------------------------------------------------ the menu


async def test_start_registers_and_shows_the_menu(shop: Shop) -> None:
    customer = shop.user(CUSTOMER, "<Ann & Co>")
    reply = await customer.send("/start")
    assert "Hi, <Ann & Co>!" in reply.text  # escaped for HTML, shown as typed
    labels = [label for row in reply.buttons for label in row]
    assert {"🛒 New order", "📦 My orders", "💰 Balance", "❓ Help"} <= set(labels)
    assert "🛠 Admin" not in labels
    assert await shop.query("SELECT id FROM users WHERE id = ?", (CUSTOMER,)) == [(CUSTOMER,)]
    admin_reply = await shop.admin.send("/start")
    assert "🛠 Admin" in [label for row in admin_reply.buttons for label in row]


async def test_browsing_edits_one_message_and_goes_back(shop: Shop) -> None:
    customer = shop.user()
    await customer.send("/start")
    menu_id = customer.last().message_id
    await customer.tap("New order")
    assert "Choose a platform" in customer.text
    platforms = [label for row in customer.last().buttons for label in row]
    for name in ("Instagram", "TikTok", "YouTube", "Telegram", "Facebook", "Twitter", "Spotify",
                 "Website"):
        assert any(name in label for label in platforms), platforms
    await customer.tap("Instagram")
    await customer.tap("Instagram Likes")
    await customer.tap("Instagram Likes [Instant]")
    card = customer.text
    assert "Price: $0.33 per 1000" in card  # 0.25 panel rate + 30 % markup, rounded up
    assert "Order from 50 to 50,000" in card
    assert "Refill: no · Cancel: yes · Drip-feed: yes" in card
    await customer.tap("⬅ Back")
    assert "choose a service" in customer.text
    await customer.tap("⬅ Back")
    assert "choose a category" in customer.text
    assert [m.message_id for m in customer.bot_messages] == [menu_id]


async def test_categories_and_services_are_paginated(make_sandbox: SandboxFactory,
                                                     tmp_path: Path) -> None:
    sandbox = await make_sandbox(catalog=generated_catalog(600))
    async with running_shop(sandbox, tmp_path) as shop:
        customer = shop.user()
        await customer.send("/start")
        await customer.tap("New order")
        await customer.tap("Instagram")
        await customer.tap("Instagram Likes")
        first_page = customer.text, customer.last().buttons
        assert any("page 1/" in label for row in first_page[1] for label in row)
        service_buttons = [row for row in first_page[1] if len(row) == 1 and "·" in row[0]]
        assert len(service_buttons) == 8
        await customer.tap("▶")
        assert any("page 2/" in label for row in customer.last().buttons for label in row)
        await customer.tap("◀")
        assert any("page 1/" in label for row in customer.last().buttons for label in row)


# ------------------------------------------------------------------ ordering


@pytest.mark.parametrize("service_id", sorted({
    next(e.id for e in DEFAULT_CATALOG if e.type == t) for t in {e.type for e in DEFAULT_CATALOG}
}))
async def test_a_full_order_of_every_order_type(service_id: int, shop: Shop) -> None:
    item = entry(service_id)
    await shop.credit(CUSTOMER, 100_000)
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, service_id)
    await customer.tap("🛒 Order")
    await fill_form(customer, item, link_for(item))
    confirmation = customer.text
    price_line = next(line for line in confirmation.splitlines() if line.startswith("Price:"))
    await customer.tap("Confirm")
    assert "placed" in customer.text, customer.text
    [(order_id, panel_id, price, state)] = await shop.query(
        "SELECT id, panel_order_id, price_minor, state FROM orders")
    assert state == "pending"
    assert f"#{order_id} placed" in customer.text
    placed = shop.sandbox.panel.orders[int(panel_id)]
    assert placed.entry.id == service_id
    assert f"${Decimal(price) / 100:.2f}" in price_line
    balance, ledger_sum = await shop.balance(CUSTOMER)
    assert balance == ledger_sum == 100_000 - price


async def test_drip_feed_order_charges_every_run(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100_000)
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 103)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/drip")
    await customer.send("1 000")
    await customer.send("4")
    assert "minutes between runs" in customer.text
    await customer.send("30")
    assert "Total quantity: 4,000" in customer.text
    assert "Price: $1.30" in customer.text  # 0.25 × 4 × 1.3
    await customer.tap("Confirm")
    [(panel_id,)] = await shop.query("SELECT panel_order_id FROM orders")
    placed = shop.sandbox.panel.orders[int(panel_id)]
    assert placed.fields["runs"] == "4" and placed.fields["interval"] == "30"


async def test_wrong_input_at_every_step_explains_and_stays(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await shop.credit(CUSTOMER, 100_000)
    await open_service(customer, shop, 106)  # Instagram Custom Comments, 5..500 lines
    await customer.tap("🛒 Order")
    step_one = "Step 1 of 2"
    for attempt in ("not a link", "https://tiktok.com/@a/video/1", "🙂", "x" * 5000):
        await customer.send(attempt)
        assert "⚠️" in customer.text and step_one in customer.text, customer.text
    await customer.send_sticker()
    assert "text message" in customer.text
    await customer.send_photo()
    assert "text message" in customer.text
    await customer.send("/balance")
    assert "middle of an order" in customer.text
    await customer.send("instagram.com/p/abc")  # no scheme: accepted and completed
    assert "Step 2 of 2" in customer.text
    await customer.send("only\ntwo")
    assert "at least 5 lines" in customer.text and "Step 2 of 2" in customer.text
    await customer.send("\n".join(f"comment {n}" for n in range(501)))
    assert "at most 500 lines" in customer.text
    await customer.send("a\n\n b \nc\nd\ne\n")
    assert "Check your order" in customer.text
    assert "(5 lines)" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]


async def test_quantity_words_and_limits(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)  # 100..100 000
    await customer.tap("🛒 Order")
    await customer.send("https://www.instagram.com/someone")
    for wrong, reason in (("ten", "whole number"), ("50", "smallest amount"),
                          ("1m", "largest amount"), ("-5", "whole number")):
        await customer.send(wrong)
        assert reason in customer.text and "Step 2" in customer.text
    await customer.send("1,500")
    assert "Drip-feed: how many runs" in customer.text  # this service allows drip-feed
    await customer.tap("Skip")
    assert "Check your order" in customer.text and "Quantity: 1,500" in customer.text


async def test_back_cancel_and_edit(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/1")
    assert "Step 2" in customer.text
    await customer.tap("⬅ Back")
    assert "Step 1" in customer.text
    await customer.tap("⬅ Back")
    assert "Instagram Followers [Real" in customer.text  # back on the service card
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/1")
    await customer.send("/cancel")
    assert "Order cancelled" in customer.text
    await customer.send("hello")
    assert "I didn't get that" in customer.text  # the form is gone
    await customer.tap("New order")
    await customer.tap("Instagram")
    await customer.tap("Instagram Followers")
    await customer.tap("Instagram Followers [Real")
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/1")
    await customer.send("200")
    await customer.tap("Skip")
    await customer.tap("Edit")
    assert "Step 1" in customer.text
    await customer.tap("✖ Cancel")
    assert "Order cancelled" in customer.text


async def test_not_enough_balance_says_how_much_and_keeps_the_order(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100)  # $1.00
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/1")
    await customer.send("1000")  # 1.20 × 1.3 = $1.56
    await customer.tap("Skip")
    answer = await customer.tap("Confirm")
    assert answer["text"] == "Not enough balance."
    assert "short by $0.56" in customer.text and "Confirm" in str(customer.last().buttons)
    await customer.tap("Confirm")  # again, still short: same answer, nothing breaks
    assert "short by $0.56" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]
    assert await shop.balance(CUSTOMER) == (100, 100)
    await shop.admin.send(f"/credit {CUSTOMER} 5 promo")
    assert "New balance: $6.00" in shop.admin.text
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.balance(CUSTOMER) == (600 - 156, 600 - 156)


async def _to_confirmation(customer: ScriptedUser, shop: Shop, link: str) -> None:
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send(link)
    await customer.send("1000")
    await customer.tap("Skip")  # no drip-feed
    assert "Check your order" in customer.text


async def test_double_and_concurrent_confirm_make_one_order(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/twice")
    confirm = customer.last()
    data = confirm.button("Confirm")["callback_data"]  # type: ignore[index]
    await asyncio.gather(customer.tap_data(data, confirm), customer.tap_data(data, confirm),
                         customer.tap_data(data, confirm))
    replay = await customer.tap_data(data, confirm)
    assert replay["text"] == "This order was already handled. See 📦 My orders."
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(1,)]
    assert shop.sandbox.panel.requests["add"] == 1
    assert await shop.balance(CUSTOMER) == (10_000 - 156, 10_000 - 156)
    debits = await shop.query("SELECT COUNT(*) FROM ledger WHERE kind = 'order'")
    assert debits == [(1,)]


async def test_forged_and_stale_callbacks(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    owner = shop.user(CUSTOMER)
    await _to_confirmation(owner, shop, "https://instagram.com/p/mine")
    await owner.tap("Confirm")
    [(order_id,)] = await shop.query("SELECT id FROM orders")
    intruder = shop.user(77, "Eve")
    await intruder.send("/start")
    for data in (f"oc:{order_id}:show", f"oc:{order_id}:cancel", f"oc:{order_id}:refill",
                 "oc:999999:show"):
        answer = await intruder.tap_data(data)
        assert answer["text"] == "Order not found.", data
    for data in (f"oc:{2**70}:show", f"oc:{order_id}:zap", f"ol:{2**60}", "m:nowhere"):
        answer = await intruder.tap_data(data)  # does not unpack: no handler sees it
        assert answer["text"].startswith("This button is no longer valid"), data
    for data in ("zzz", "s:abc", "c:-1", f"s:{2**70}", "f:confirm", "o:99999"):
        answer = await intruder.tap_data(data)
        assert answer["text"], data  # a short explanation, never a crash
    assert all("went wrong" not in m.text for m in intruder.bot_messages)
    assert await shop.query("SELECT state, cancel_requested_at FROM orders") == [("pending", None)]


# ------------------------------------------------------------------ panel faults


async def test_panel_out_of_funds_refunds_and_alerts_the_admin(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    await shop.admin.send("/start")
    shop.sandbox.panel.balance = Decimal("0.10")
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/funds")
    await customer.tap("Confirm")
    assert "temporarily unavailable" in customer.text
    assert "refunded" in customer.text
    assert await shop.query("SELECT state FROM orders") == [("failed",)]
    assert await shop.balance(CUSTOMER) == (10_000, 10_000)
    await shop.admin.expect("panel balance is too low")


async def test_panel_unavailable_at_confirm_refunds(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/down")
    shop.sandbox.panel.inject("html403", action="add")
    await customer.tap("Confirm")
    assert "temporarily unavailable" in customer.text
    assert await shop.query("SELECT state FROM orders") == [("failed",)]
    assert await shop.balance(CUSTOMER) == (10_000, 10_000)
    assert shop.sandbox.panel.orders == {}


async def test_ambiguous_timeout_at_confirm_is_checked_not_refunded(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/slow")
    shop.sandbox.panel.inject("hang_after", action="add", delay=3)
    await customer.tap("Confirm", timeout=15)
    assert "did not confirm it yet" in customer.text
    assert await shop.query("SELECT state FROM orders") == [("unknown",)]
    assert await shop.balance(CUSTOMER) == (10_000 - 156, 10_000 - 156)  # held, not refunded
    assert len(shop.sandbox.panel.orders) == 1  # the panel did take it
    assert shop.sandbox.panel.requests["add"] == 1  # and it was not sent again
    alert = await shop.admin.expect("Check the panel's order list")
    assert "Order #1" in alert.text and "may exist" in alert.text


# ------------------------------------------------------------------ my orders


async def test_my_orders_refresh_cancel_and_refund(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/track")
    await customer.tap("Confirm")
    await customer.tap("🏠 Menu")
    await customer.tap("My orders")
    assert "🕓 #1" in customer.last().buttons[0][0]
    await customer.tap("#1")
    assert "Status: 🕓 Pending" in customer.text
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 1.5)
    await customer.tap("Refresh")
    assert "In progress" in customer.text
    answer = await customer.tap("Refresh")
    assert "once every 30 seconds" in answer["text"]
    answer = await customer.tap("Cancel order")
    assert answer["text"] == "Cancellation requested."
    assert "Cancellation requested" in customer.text
    assert all("Cancel order" not in label for row in customer.last().buttons for label in row)
    database = await shop.db()
    try:
        await database.conn.execute("UPDATE orders SET refreshed_at = 0")
    finally:
        await database.close()
    shop.sandbox.panel.advance(shop.sandbox.panel.pace)
    await customer.tap("Refresh")
    # The card, not the latest message: the refund's notice may arrive after it.
    assert customer.with_button("My orders").text.count("Partially done") == 1
    [(remains, quantity, price)] = await shop.query(
        "SELECT remains, quantity, price_minor FROM orders")
    refund = price * remains // quantity
    assert await shop.balance(CUSTOMER) == (10_000 - price + refund,) * 2


async def order_until_completed(customer: ScriptedUser, shop: Shop) -> None:
    """Place orders until one completes (the sandbox lets some end partial); its card shows."""
    for attempt in range(6):
        await _to_confirmation(customer, shop, f"https://instagram.com/p/done{attempt}")
        await customer.tap("Confirm")
        shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
        await customer.tap("Refresh")
        if "Completed" in customer.text:
            break
    assert "Completed" in customer.text


async def test_refill_on_a_completed_order(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await order_until_completed(customer, shop)
    await customer.tap("Refill")
    assert "Refill requested" in customer.text
    assert len(await shop.query("SELECT panel_refill_id FROM refills")) == 1


# ------------------------------------------------------------------ search


async def test_search_inline_and_deep_link(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    reply = await customer.send("/search reel")
    assert "Found 1" in reply.text and "Instagram Reel Views" in reply.buttons[0][0]
    await customer.tap("Search again")
    await customer.send("zzzz-nothing")
    assert "Nothing found" in customer.text
    await customer.send("/search 403")
    assert "Telegram Poll Votes" in customer.last().buttons[0][0]
    results = await customer.inline("tiktok likes")
    assert results and results[0]["title"] == "TikTok Likes"
    deep_link = results[0]["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert deep_link.startswith("https://t.me/storefront_bot?start=s")
    await customer.send("/start " + deep_link.split("start=")[1])
    assert "TikTok Likes" in customer.text and "per 1000" in customer.text


# ------------------------------------------------------------------ admin and restarts


async def test_admin_credit_and_debit_and_no_hint_for_others(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    admin = shop.admin
    await admin.send(f"/credit {CUSTOMER} 12.50 welcome")
    assert "New balance: $12.50" in admin.text
    await admin.send(f"/debit {CUSTOMER} 20")
    assert "can't go below zero" in admin.text
    await admin.send(f"/debit {CUSTOMER} 2.5")
    assert "New balance: $10.00" in admin.text
    await admin.send("/credit 5 abc")
    assert "not an amount" in admin.text
    await admin.send("/credit 999 1")
    assert "No customer" in admin.text
    await customer.send(f"/credit {CUSTOMER} 1000")
    assert "I didn't get that" in customer.text
    assert await shop.balance(CUSTOMER) == (1000, 1000)
    notes = await shop.query("SELECT kind, amount_minor, actor_id, note FROM ledger ORDER BY id")
    assert notes == [("credit", 1250, ADMIN_ID, "welcome"), ("debit", -250, ADMIN_ID, "debit")]


async def test_an_admin_command_in_the_middle_of_a_form_waits_for_the_form(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    admin = shop.admin
    await open_service(admin, shop, 101)
    await admin.tap("🛒 Order")
    await admin.send(f"/credit {CUSTOMER} 5")
    assert "middle of an order" in admin.text
    assert await shop.balance(CUSTOMER) == (0, 0)
    await admin.send("/cancel")
    await admin.send(f"/credit {CUSTOMER} 5")
    assert "New balance: $5.00" in admin.text


async def test_a_form_survives_a_restart(shop: Shop) -> None:
    from tests.e2e import restart

    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/p/restart")
    assert "Step 2" in customer.text
    await restart(shop, shop.emulator_url)
    await customer.send("300")
    await customer.tap("Skip")
    assert "Check your order" in customer.text
    assert "https://instagram.com/p/restart" in customer.text


async def test_errors_get_an_apology_and_the_admins_the_details(
    shop: Shop, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handlers.customer.menu

    def broken(_settings: object) -> str:
        raise RuntimeError("the help page broke")

    monkeypatch.setattr(handlers.customer.menu, "help_text", broken)
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    await customer.tap("Help")
    apology = customer.text
    assert "something went wrong" in apology and "RuntimeError" not in apology
    reference = apology.rsplit(" ", 1)[1]
    alert = await shop.admin.expect(f"Error {reference}")
    assert "the help page broke" in alert.text


async def test_a_button_that_shows_the_screen_already_there_is_no_error(shop: Shop) -> None:
    """Telegram refuses an edit that changes nothing ("message is not modified"): a
    second tap on Help, on the menu, on the same catalog page is quietly fine."""
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    for label in ("Help", "Help", "New order", "Instagram", "⬅ Back", "Instagram"):
        await customer.tap(label)
        assert not customer.saying("something went wrong"), label
    assert not shop.admin.saying("Error")



async def test_a_new_language_needs_no_code_change(make_sandbox: SandboxFactory,
                                                   tmp_path: Path) -> None:
    """Drop a .po file into a locales folder: customers whose Telegram is in that
    language see it; the rest keep English."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(locale="de")
    catalog.add("🛒 New order", "🛒 Neue Bestellung")
    catalog.add("Hi, {name}! 👋\nOrder followers, likes, views and more. Pick what you need "
                "below.", "Hallo, {name}! 👋\nWähle unten, was du brauchst.")
    folder = tmp_path / "locales" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.po").open("wb") as target:
        write_po(target, catalog)
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, locales_dir=tmp_path / "locales") as shop:
        german = shop.emulator.user(50, "Jonas", language_code="de")
        reply = await german.send("/start")
        assert reply.text.startswith("Hallo, Jonas!")
        assert "🛒 Neue Bestellung" in reply.buttons[0]
        english = shop.emulator.user(51, "Jo", language_code="en")
        assert (await english.send("/start")).text.startswith("Hi, Jo!")


async def test_start_and_cancel_work_from_any_step(shop: Shop) -> None:
    """In a form, in a search, in a top-up amount, in an admin's input: /start leaves the
    step and shows the menu (an order form's draft is kept: tests/test_kept_order.py);
    /cancel leaves it too. Nothing is charged or changed."""
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    admin = shop.admin

    async def steps() -> list[tuple[ScriptedUser, str, str]]:
        await open_service(customer, shop, 101)
        await customer.tap("🛒 Order")
        yield customer, "Step 1 of", "You have an order in progress"
        await customer.send("/cancel")  # drops the kept draft
        await customer.send("/search")
        yield customer, "What are you looking for", "I didn't get that"
        await admin.send("/admin")
        await admin.tap("👥 Customers")
        yield admin, "Send a customer's id", "I didn't get that"
        await customer.send("/paysupport")
        yield customer, "Send your question", "I didn't get that"

    async for user, prompt, answer in steps():
        assert prompt in user.text, user.text
        reply = await user.send("/start")
        assert reply.text.startswith("Hi, "), reply.text
        assert "🛒 New order" in [label for row in reply.buttons for label in row]
        await user.send("hello")  # the step is left: plain text is not taken as its input
        assert answer in user.text
    await open_service(customer, shop, 101)
    await customer.tap("🛒 Order")
    await customer.send("/cancel")
    assert "Order cancelled" in customer.text
    assert await shop.balance(CUSTOMER) == (10_000, 10_000)
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]
