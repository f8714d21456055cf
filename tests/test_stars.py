"""Telegram Stars top-ups end to end: the unmodified bot, the Bot API emulator's
invoices, pre-checkouts and payments, the sandbox panel and a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.devtools.emulator import ScriptedUser
from tests.conftest import SandboxFactory
from tests.e2e import Shop, restart, running_shop
from tests.test_storefront import CUSTOMER, _to_confirmation

pytestmark = pytest.mark.timeout(120)
STARS = {"stars_per_unit": "50", "topup_min": "1", "topup_max": "1000"}


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path):
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, **STARS) as running:
        yield running


async def open_top_up(customer: ScriptedUser) -> None:
    """Menu → Balance → Top up, as a customer gets there."""
    await customer.send("/start")
    await customer.tap("Balance")
    await customer.tap("Top up")


async def topups(shop: Shop) -> list[tuple]:
    return await shop.query("SELECT amount_minor, stars, state, charge_id FROM topups ORDER BY id")


async def test_a_customer_with_nothing_tops_up_and_buys(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    await customer.tap("Balance")
    assert "Your balance: $0.00" in customer.text
    await customer.tap("Top up")
    assert "$1.00 = 50 ⭐" in customer.text
    await customer.tap("$5.00 · 250 ⭐")
    [invoice] = customer.invoices()
    assert invoice.invoice is not None and invoice.invoice["total_amount"] == 250
    assert invoice.invoice["currency"] == "XTR" and "$5.00" in invoice.invoice["description"]
    paid = await customer.pay()
    assert paid.ok and paid.answer is not None and paid.answer.ok
    assert "$5.00 added to your balance for 250 ⭐" in customer.text
    assert "Your balance: $5.00" in customer.text
    assert await topups(shop) == [(500, 250, "paid", paid.charge_id)]
    await _to_confirmation(customer, shop, "https://instagram.com/p/bought")
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.balance(CUSTOMER) == (500 - 156, 500 - 156)
    await customer.tap("🏠 Menu")
    await customer.tap("Balance")
    assert "−$1.56 · Order #1" in customer.text and "+$5.00 · ⭐ Top-up" in customer.text


async def test_paying_the_shortfall_brings_the_confirmation_back(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/short")  # $1.56
    await customer.tap("Confirm")
    assert "short by $0.56" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]
    await customer.tap("Pay the missing $1.00")  # raised to TOPUP_MIN
    assert customer.invoices()[-1].invoice["total_amount"] == 50  # type: ignore[index]
    paid = await customer.pay()
    assert paid.ok
    await customer.expect("$1.00 added to your balance")
    await shop.emulator.wait_for(lambda: "Check your order" in customer.text)
    assert "Your balance: $2.00" in customer.text
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]  # never placed by a payment
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await shop.balance(CUSTOMER) == (200 - 156, 200 - 156)


async def test_a_payment_delivered_twice_or_after_a_restart_credits_once(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await open_top_up(customer)
    await customer.tap("$10.00 · 500 ⭐")
    payload = customer.invoices()[-1].invoice_payload
    assert payload is not None
    answer = await customer.pre_checkout(payload, 500)
    assert answer.ok
    await restart(shop, shop.emulator_url)  # between the pre-checkout and the payment
    await customer.deliver_payment(payload, 500, "charge-restart")
    await customer.expect("$10.00 added to your balance")
    await customer.deliver_payment(payload, 500, "charge-restart")  # Telegram delivers again
    await restart(shop, shop.emulator_url)
    await customer.deliver_payment(payload, 500, "charge-restart")  # and after a restart
    assert await shop.balance(CUSTOMER) == (1_000, 1_000)
    assert await shop.query("SELECT COUNT(*) FROM ledger WHERE kind = 'topup'") == [(1,)]
    assert all("went wrong" not in m.text for m in customer.bot_messages)


async def test_pre_checkouts_that_must_be_refused(shop: Shop) -> None:
    customer, other = shop.user(CUSTOMER), shop.user(77, "Eve")
    await other.send("/start")
    await open_top_up(customer)
    await customer.tap("$5.00 · 250 ⭐")
    payload = customer.invoices()[-1].invoice_payload
    assert payload is not None
    for who, what, total, currency, why in (
        (other, payload, 250, "XTR", "not valid"),  # another user's invoice
        (customer, payload, 249, "XTR", "amount"),  # a wrong total
        (customer, payload, 250, "USD", "amount"),  # a wrong currency
        (customer, "garbage", 250, "XTR", "not valid"),
    ):
        answer = await who.pre_checkout(what, total, currency)
        assert not answer.ok and why in (answer.error_message or ""), (what, answer)
    assert (await customer.pay()).ok
    again = await customer.pre_checkout(payload, 250)
    assert not again.ok and "already paid" in (again.error_message or "")
    assert await shop.balance(CUSTOMER) == (500, 500)


async def test_a_payment_naming_no_top_up_credits_nothing_and_tells_the_admins(
        shop: Shop) -> None:
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    reply = await customer.deliver_payment("forged-payload", 9_999, "charge-stray")
    assert reply is not None and "could not match it" in reply.text
    assert await shop.balance(CUSTOMER) == (0, 0)
    alert = await shop.admin.expect("credited nothing")
    assert "charge-stray" in alert.text and str(CUSTOMER) in alert.text


async def test_other_amount_checks_every_wrong_input(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await open_top_up(customer)
    await customer.tap("Other amount")
    assert "from $1.00 to $1,000.00" in customer.text
    for wrong, why in (("abc", "as a number"), ("0", "more than zero"), ("-5", "as a number"),
                       ("7.555", "At most 2 digits"), ("7.5555", "At most 2 digits"),
                       ("1.000,50", "thousands separators"), ("0.50", "smallest top-up is $1.00"),
                       ("5000", "largest top-up is $1,000.00"), ("🙂", "as a number")):
        await customer.send(wrong)
        assert why in customer.text and "How much" in customer.text, (wrong, customer.text)
    await customer.send_sticker()
    assert "How much" in customer.text
    await customer.send("/balance")
    assert "or /cancel" in customer.text
    assert customer.invoices() == []
    await customer.send("7,50")
    assert customer.invoices()[-1].invoice["total_amount"] == 375  # type: ignore[index]
    await customer.tap("Other amount")
    await customer.send("/cancel")
    assert "Top-up cancelled" in customer.text


async def test_a_pre_checkout_is_answered_while_the_payer_waits_on_a_slow_panel(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    # The panel is given 30 s, so the Confirm's wait is the sandbox's 6 s and not a
    # timeout of one: an answer that waited behind it could not come before it ends.
    async with running_shop(await make_sandbox(), tmp_path, panel_timeout=30, **STARS) as shop:
        await shop.credit(CUSTOMER, 10_000)
        customer = shop.user(CUSTOMER)
        await customer.tap_data("b:0", await customer.send("/start"))
        await customer.tap("Top up")
        await customer.tap("$5.00 · 250 ⭐")
        invoice = customer.invoices()[-1]
        await _to_confirmation(customer, shop, "https://instagram.com/p/slow")
        shop.sandbox.panel.inject("slow", action="add", delay=6)  # Confirm holds the user's turn
        confirm = asyncio.create_task(customer.tap("Confirm", timeout=30))
        # The Confirm is at the panel (a fixed sleep may not get it there on a loaded machine,
        # and the pre-checkout would then not be tested against it).
        await shop.emulator.wait_for(lambda: shop.sandbox.panel.requests["add"] == 1)
        assert invoice.invoice_payload is not None
        answer = await customer.pre_checkout(invoice.invoice_payload, 250)
        assert answer.ok
        # Answered while the Confirm still waits on the panel: its order is not placed yet.
        assert await shop.query("SELECT state FROM orders") == [("submitting",)]
        await confirm


async def test_without_stars_the_balance_says_how_to_top_up(make_sandbox: SandboxFactory,
                                                            tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, support_contact="@shop_help") as shop:
        await shop.credit(CUSTOMER, 100)
        customer = shop.user(CUSTOMER)
        await customer.send("/balance")
        assert "contact support: @shop_help" in customer.text
        assert not any("Top up" in label for row in customer.last().buttons for label in row)
        await _to_confirmation(customer, shop, "https://instagram.com/p/nostars")
        await customer.tap("Confirm")
        assert "short by $0.56" in customer.text and "@shop_help" in customer.text
        assert not any("Pay the missing" in label for row in customer.last().buttons
                       for label in row)
        answer = await customer.tap_data("t:menu:0", customer.last())
        assert "@shop_help" in answer["text"]


async def bought_stars(customer: ScriptedUser, label: str = "$5.00 · 250 ⭐") -> str:
    """A top-up paid through the bot; returns its charge id."""
    await open_top_up(customer)
    await customer.tap(label)
    paid = await customer.pay()
    assert paid.ok and paid.charge_id is not None
    return paid.charge_id


async def test_an_admin_refunds_stars_once_and_not_what_was_spent(shop: Shop) -> None:
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    charge = await bought_stars(customer)
    await shop.admin.send(f"/refund_stars {charge}")
    assert "Refunded 250 ⭐ to user 42; $5.00 taken from their balance, now $0.00" \
        in shop.admin.text
    assert [t["id"] for t in shop.emulator.refunds] == [charge]
    await shop.admin.send(f"/refund_stars {charge}")
    assert "refunded before" in shop.admin.text and len(shop.emulator.refunds) == 1
    assert await shop.balance(CUSTOMER) == (0, 0)

    spent = await bought_stars(customer)
    await _to_confirmation(customer, shop, "https://instagram.com/p/spent")
    await customer.tap("Confirm")
    await shop.admin.send(f"/refund_stars {spent}")
    assert "has spent part of the $5.00; their balance is $3.44" in shop.admin.text
    assert len(shop.emulator.refunds) == 1 and await shop.balance(CUSTOMER) == (344, 344)
    await shop.admin.send("/refund_stars no-such-charge")
    assert "No Stars top-up" in shop.admin.text
    await shop.admin.send("/refund_stars <b>")
    assert "charge id" in shop.admin.text
    await customer.send("/refund_stars " + spent)  # not an admin: nothing happens
    assert "I didn't get that" in customer.text and len(shop.emulator.refunds) == 1


async def test_paysupport_reaches_the_admins_with_the_recent_top_ups(shop: Shop) -> None:
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER, username="alex")
    await customer.send("/start")
    charge = await bought_stars(customer)
    await customer.send("/paysupport")
    assert "Payments and refunds" in customer.text and "$1.00 = 50 ⭐" in customer.text
    await customer.send_sticker()
    assert "as a text message" in customer.text
    await customer.send("Please refund my <b>last</b> top-up")
    assert "admins have your message" in customer.text
    alert = await shop.admin.expect("/paysupport from user 42")
    assert "@alex" in alert.text and "<b>last</b>" in alert.text and charge in alert.text
    await customer.send("/paysupport")
    await customer.send("/cancel")
    assert "Nothing was sent" in customer.text


async def test_an_invoice_telegram_refuses_gets_a_clear_answer(shop: Shop) -> None:
    shop.emulator.max_star_amount = 1_000  # Telegram caps the Stars of one invoice
    customer = shop.user(CUSTOMER)
    await customer.send("/balance")
    await customer.tap("Top up")
    await customer.tap("$50.00 · 2,500 ⭐")
    assert "would not make an invoice of 2,500 ⭐" in customer.text
    assert customer.invoices() == [] and "went wrong" not in customer.text


async def test_long_and_repeated_paysupport_questions_reach_the_admins_whole(shop: Shop) -> None:
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    question = "q" * 1_490 + "END"
    for text in (question, "and a second question"):
        await customer.send("/paysupport")
        await customer.send(text)
        assert "admins have your message" in customer.text
    first = await shop.admin.expect("END")
    assert question in first.text  # all of it (the question is the alert's details)
    await shop.admin.expect("and a second question")  # not folded into the first


async def test_a_customer_tapping_a_preset_again_and_again_gets_five_unpaid_invoices(
        shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await open_top_up(customer)
    for _ in range(5):
        answer = await customer.tap("$5.00 · 250 ⭐")
        assert not answer["text"]
    assert len(customer.invoices()) == 5
    sixth = await customer.tap("$5.00 · 250 ⭐")
    assert sixth["show_alert"] and "You have 5 unpaid invoices" in (sixth["text"] or "")
    assert "wait until they expire (24 h)" in sixth["text"]
    assert len(customer.invoices()) == 5
    assert await shop.query("SELECT COUNT(*) FROM topups WHERE state = 'pending'") == [(5,)]
    await customer.send("/balance")  # Other amount is held to the same cap
    await customer.tap("Top up")
    await customer.tap("Other amount")
    refused = await customer.send("3")
    assert "You have 5 unpaid invoices" in refused.text and len(customer.invoices()) == 5
    assert (await customer.pay(customer.invoices()[0])).ok  # paying one frees a slot
    await customer.send("/balance")
    await customer.tap("Top up")
    assert not (await customer.tap("$10.00 · 500 ⭐"))["text"]
    assert len(customer.invoices()) == 6
    assert await shop.query("SELECT COUNT(*) FROM topups WHERE state = 'pending'") == [(5,)]
    assert "went wrong" not in customer.text
