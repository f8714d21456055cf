"""The Bot API emulator's Telegram Stars payments, driven by a real aiogram Bot and a tiny
Dispatcher polling it: what the emulator answers must be what aiogram parses, and the
payment flow must run in Telegram's order (pre-checkout, ok, then the payment)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import ClientDecodeError, TelegramBadRequest, TelegramNetworkError
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    StarTransaction,
    TransactionPartnerAffiliateProgram,
    TransactionPartnerUser,
)

from bot.devtools.emulator import (
    STARS,
    Affiliate,
    BotApiEmulator,
    RunningEmulator,
    start_emulator,
)
from tests.e2e import TOKEN

pytestmark = pytest.mark.timeout(60)

USER_ID = 4242


@dataclass
class Seen:
    """What the tiny bot's handlers received, and how they behave."""

    pre_checkouts: list[PreCheckoutQuery] = field(default_factory=list)
    payments: list[Message] = field(default_factory=list)
    refunded: list[Message] = field(default_factory=list)
    answer_errors: list[str] = field(default_factory=list)
    answer_delay: float = 0.0  # seconds the pre-checkout handler dawdles
    reply_to_payments: bool = True


@dataclass
class Telegram:
    emulator: BotApiEmulator
    running: RunningEmulator
    bot: Bot
    seen: Seen


def tiny_router(bot: Bot, seen: Seen) -> Router:
    """A shop that approves any payload not starting with "bad" and thanks each payment."""
    router = Router()

    @router.pre_checkout_query()
    async def on_pre_checkout(query: PreCheckoutQuery) -> None:
        seen.pre_checkouts.append(query)
        await asyncio.sleep(seen.answer_delay)
        try:
            if query.invoice_payload.startswith("bad"):
                await query.answer(ok=False, error_message="This top-up has expired.")
            else:
                await query.answer(ok=True)
        except TelegramBadRequest as error:
            seen.answer_errors.append(error.message)

    @router.message(F.successful_payment)
    async def on_payment(message: Message) -> None:
        seen.payments.append(message)
        if seen.reply_to_payments:
            payment = message.successful_payment
            assert payment is not None
            await bot.send_message(message.chat.id, f"Paid {payment.total_amount} ⭐, "
                                                    f"charge {payment.telegram_payment_charge_id}")

    @router.message(F.refunded_payment)
    async def on_refund(message: Message) -> None:
        seen.refunded.append(message)

    return router


@pytest.fixture
async def telegram() -> AsyncIterator[Telegram]:
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(running.url)))
    seen = Seen()
    dispatcher = Dispatcher()
    dispatcher.include_router(tiny_router(bot, seen))
    emulator.user(USER_ID)
    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False,
                                                           polling_timeout=1))
    yield Telegram(emulator, running, bot, seen)
    with contextlib.suppress(RuntimeError):  # already stopped
        await dispatcher.stop_polling()
    await asyncio.wait_for(polling, 10)
    await bot.session.close()
    await running.stop()


async def invoice(bot: Bot, stars: int = 250, payload: str = "topup:1", **extra: Any) -> Message:
    return await bot.send_invoice(USER_ID, title="Top up $5", description="$5 for 250 ⭐",
                                  payload=payload, currency=STARS,
                                  prices=[LabeledPrice(label="$5", amount=stars)], **extra)


# ---------------------------------------------------------------- sendInvoice


@pytest.mark.parametrize(("change", "refusal"), [
    ({"title": ""}, "title"),
    ({"title": "x" * 33}, "title"),
    ({"description": ""}, "description"),
    ({"description": "x" * 256}, "description"),
    ({"payload": ""}, "INVOICE_PAYLOAD_INVALID"),
    ({"payload": "é" * 65}, "INVOICE_PAYLOAD_INVALID"),  # 65 characters, 130 bytes
    ({"currency": "USD"}, "PAYMENT_PROVIDER_INVALID"),
    ({"provider_token": "284685063:TEST:abc"}, "PAYMENT_PROVIDER_INVALID"),
    ({"prices": []}, "STARS_INVOICE_INVALID"),
    ({"prices": [LabeledPrice(label="a", amount=1), LabeledPrice(label="b", amount=1)]},
     "STARS_INVOICE_INVALID"),
    ({"prices": [LabeledPrice(label="a", amount=0)]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
    ({"prices": [LabeledPrice(label="a", amount=-5)]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
    ({"max_tip_amount": 10}, "tips"),
    ({"reply_markup": InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="Back", callback_data="back")]])}, "Pay button"),
])
async def test_send_invoice_refuses_what_telegram_refuses(telegram: Telegram,
                                                          change: dict[str, Any],
                                                          refusal: str) -> None:
    params: dict[str, Any] = {"chat_id": USER_ID, "title": "Top up", "description": "250 ⭐",
                              "payload": "topup:1", "currency": STARS,
                              "prices": [LabeledPrice(label="$5", amount=250)], **change}
    with pytest.raises(TelegramBadRequest, match=refusal):
        await telegram.bot.send_invoice(**params)
    assert telegram.emulator.user(USER_ID).invoices() == []


async def test_a_fractional_or_string_star_amount_is_refused(telegram: Telegram) -> None:
    """aiogram cannot send one, but another client can: whole Stars only."""
    async with aiohttp.ClientSession() as session:
        for prices in ('[{"label": "a", "amount": 1.5}]', '[{"label": "a", "amount": "5"}]'):
            async with session.post(f"{telegram.running.url}/bot{TOKEN}/sendInvoice", data={
                    "chat_id": str(USER_ID), "title": "t", "description": "d", "payload": "p",
                    "currency": STARS, "prices": prices}) as response:
                body = await response.json()
            assert response.status == 400
            assert body["description"] == "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID"


async def test_an_invoice_parses_into_aiogram_and_stays_in_the_chat(telegram: Telegram) -> None:
    pay = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Pay 250 ⭐", pay=True)],
                                                [InlineKeyboardButton(text="Back",
                                                                      callback_data="back")]])
    sent = await invoice(telegram.bot, payload="é" * 64, reply_markup=pay)  # 128 bytes: fine
    assert sent.invoice is not None
    assert (sent.invoice.title, sent.invoice.currency, sent.invoice.total_amount) == (
        "Top up $5", STARS, 250)
    assert sent.text is None
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].pay is True
    stored = telegram.emulator.user(USER_ID).invoices()[-1]
    assert stored.message_id == sent.message_id
    assert stored.invoice_payload == "é" * 64
    assert stored.buttons == [["Pay 250 ⭐"], ["Back"]]
    # An invoice cannot be edited into text.
    with pytest.raises(TelegramBadRequest, match="no text in the message"):
        await telegram.bot.edit_message_text("changed", chat_id=USER_ID,
                                             message_id=sent.message_id)


# ---------------------------------------------------------------- paying


async def test_paying_runs_pre_checkout_then_the_payment_with_a_fresh_charge_id(
        telegram: Telegram) -> None:
    emulator, seen = telegram.emulator, telegram.seen
    user = emulator.user(USER_ID)
    await invoice(telegram.bot, 250, "topup:1")
    first = await user.pay()
    assert first.ok and first.answer is not None and first.answer.ok
    assert first.error_message is None
    assert first.answer.elapsed < emulator.pre_checkout_timeout
    query = seen.pre_checkouts[0]
    assert (query.id, query.from_user.id, query.currency, query.total_amount,
            query.invoice_payload) == (first.query_id, USER_ID, STARS, 250, "topup:1")
    payment = seen.payments[0].successful_payment
    assert payment is not None
    assert (payment.currency, payment.total_amount, payment.invoice_payload,
            payment.telegram_payment_charge_id) == (STARS, 250, "topup:1", first.charge_id)
    assert first.payment is not None
    assert first.payment["successful_payment"]["telegram_payment_charge_id"] == first.charge_id
    assert first.reply is not None and first.charge_id in first.reply.text
    assert [t["id"] for t in emulator.star_transactions] == [first.charge_id]

    with pytest.raises(AssertionError, match="paid already"):
        await user.pay()
    await invoice(telegram.bot, 500, "topup:2")
    second = await user.pay()
    assert second.ok and second.charge_id not in (None, first.charge_id)
    assert [t["amount"] for t in emulator.star_transactions] == [250, 500]


async def test_a_refused_pre_checkout_makes_no_payment(telegram: Telegram) -> None:
    emulator, seen = telegram.emulator, telegram.seen
    await invoice(telegram.bot, payload="bad:7")
    result = await emulator.user(USER_ID).pay()
    assert not result.ok
    assert result.charge_id is None and result.payment is None
    assert result.error_message == "This top-up has expired."
    assert emulator.pre_checkout_answers[result.query_id].ok is False
    assert seen.payments == [] and emulator.star_transactions == []


async def test_a_late_answer_is_refused_and_no_payment_follows(telegram: Telegram) -> None:
    emulator, seen = telegram.emulator, telegram.seen
    emulator.pre_checkout_timeout = 0.2
    seen.answer_delay = 0.5
    await invoice(telegram.bot)
    result = await emulator.user(USER_ID).pay()
    assert not result.ok
    assert result.answer is not None and result.answer.ok and not result.answer.accepted
    assert result.answer.elapsed > 0.2
    assert seen.answer_errors == [
        "Bad Request: query is too old and response timeout expired or query ID is invalid"]
    assert seen.payments == [] and emulator.star_transactions == []


async def test_a_pre_checkout_is_answered_once_and_a_refusal_needs_a_message(
        telegram: Telegram) -> None:
    emulator, bot = telegram.emulator, telegram.bot
    query_id = emulator.new_pre_checkout_id()
    with pytest.raises(TelegramBadRequest, match="ERROR_MESSAGE_EMPTY"):
        await bot.answer_pre_checkout_query(query_id, ok=False)
    assert query_id not in emulator.pre_checkout_answers  # still open
    assert await bot.answer_pre_checkout_query(query_id, ok=False, error_message="No.")
    assert emulator.pre_checkout_answers[query_id].error_message == "No."
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(query_id, ok=True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query("123", ok=True)  # never sent
    assert emulator.pre_checkout_answers[query_id].ok is False  # the first answer stands


async def test_a_forged_pre_checkout_gets_the_bots_answer_and_no_payment(
        telegram: Telegram) -> None:
    emulator = telegram.emulator
    user = emulator.user(USER_ID)
    approved = await user.pre_checkout("topup:999", 1)
    refused = await user.pre_checkout("bad:1", 250, currency="USD")
    assert approved.ok and approved.accepted
    assert (refused.ok, refused.error_message) == (False, "This top-up has expired.")
    assert telegram.seen.pre_checkouts[1].currency == "USD"
    await emulator.settle()
    assert telegram.seen.payments == [] and emulator.star_transactions == []


async def test_a_delivered_payment_reaches_the_bot_as_is_even_twice(telegram: Telegram) -> None:
    emulator, seen = telegram.emulator, telegram.seen
    user = emulator.user(USER_ID)
    reply = await user.deliver_payment("topup:1", 250, "stxDUPLICATE")
    assert reply is not None and "stxDUPLICATE" in reply.text
    seen.reply_to_payments = False
    assert await user.deliver_payment("topup:1", 250, "stxDUPLICATE", quiet=0.1) is None
    charges = [m.successful_payment.telegram_payment_charge_id
               for m in seen.payments if m.successful_payment]
    assert charges == ["stxDUPLICATE", "stxDUPLICATE"]
    assert emulator.star_transactions == []  # Telegram never took these Stars


# ---------------------------------------------------------------- refunds and transactions


async def test_a_refund_works_once(telegram: Telegram) -> None:
    emulator, bot = telegram.emulator, telegram.bot
    await invoice(telegram.bot, 250)
    paid = await emulator.user(USER_ID).pay()
    assert paid.charge_id is not None
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(USER_ID + 1, paid.charge_id)  # someone else's
    assert await bot.refund_star_payment(USER_ID, paid.charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(USER_ID, paid.charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(USER_ID, "stxNOSUCHCHARGE")
    assert [(t["id"], t["amount"]) for t in emulator.refunds] == [(paid.charge_id, 250)]
    # Telegram tells the chat with a refunded_payment service message.
    await emulator.wait_for(lambda: bool(telegram.seen.refunded))
    refunded = telegram.seen.refunded[0].refunded_payment
    assert refunded is not None
    assert (refunded.telegram_payment_charge_id, refunded.total_amount,
            refunded.invoice_payload) == (paid.charge_id, 250, "topup:1")


async def test_star_transactions_page_newest_first_in_aiogram_types(telegram: Telegram) -> None:
    emulator, bot = telegram.emulator, telegram.bot
    user = emulator.user(USER_ID)
    charges = []
    for stars in (100, 200, 300):
        await invoice(bot, stars, f"topup:{stars}")
        paid = await user.pay()
        charges.append(paid.charge_id)
    await bot.refund_star_payment(USER_ID, charges[0])
    # Newest first: the refund, then the payments from the last.
    first = (await bot.get_star_transactions(limit=2)).transactions
    rest = (await bot.get_star_transactions(offset=2, limit=100)).transactions
    everything = (await bot.get_star_transactions()).transactions
    assert [t.id for t in first + rest] == [t.id for t in everything]
    assert [t.id for t in everything] == [charges[0], charges[2], charges[1], charges[0]]
    assert all(isinstance(t, StarTransaction) for t in everything)
    refund, *payments = everything
    assert refund.source is None and isinstance(refund.receiver, TransactionPartnerUser)
    assert (refund.receiver.user.id, refund.amount) == (USER_ID, 100)
    for transaction, stars in zip(payments, (300, 200, 100), strict=True):
        assert transaction.receiver is None
        assert isinstance(transaction.source, TransactionPartnerUser)
        assert transaction.source.user.id == USER_ID
        assert transaction.source.invoice_payload == f"topup:{stars}"
        assert transaction.amount == stars
    assert (await bot.get_star_transactions(offset=10)).transactions == []
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        with pytest.raises(TelegramBadRequest):
            await bot.get_star_transactions(**bad)


async def test_a_refund_whose_answer_is_lost_is_made_or_not_as_told(telegram: Telegram) -> None:
    emulator, bot = telegram.emulator, telegram.bot
    user = emulator.user(USER_ID)
    charges = []
    for stars in (100, 200):
        await invoice(bot, stars, f"topup:{stars}")
        charges.append((await user.pay()).charge_id)
    emulator.drop_refund_calls(refunded=True)
    emulator.drop_refund_calls(refunded=False)
    for charge in charges:
        with pytest.raises(TelegramNetworkError):
            await bot.refund_star_payment(USER_ID, charge)
    assert [t["id"] for t in emulator.refunds] == charges[:1]  # the first made, not the other
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(USER_ID, charges[0])
    assert await bot.refund_star_payment(USER_ID, charges[1])  # answered again


async def test_affiliate_and_unreadable_transactions_are_shaped_as_telegram_lists_them(
        telegram: Telegram) -> None:
    emulator, bot = telegram.emulator, telegram.bot
    partner = {"id": 555, "is_bot": True, "first_name": "Partner"}
    emulator.affiliate = Affiliate(partner, commission_per_mille=150)
    await invoice(bot, 250, "topup:aff")
    charge = (await emulator.user(USER_ID).pay()).charge_id
    assert charge is not None
    await bot.refund_star_payment(USER_ID, charge)
    emulator.earn_affiliate_commission(partner, 40)
    refund, payment = (await bot.get_star_transactions(offset=1, limit=2)).transactions
    assert isinstance(payment.source, TransactionPartnerUser) and payment.source.affiliate
    assert (payment.amount, payment.nanostar_amount) == (212, 500_000_000)  # the bot's share
    assert (payment.source.affiliate.amount, payment.source.affiliate.nanostar_amount) == (
        37, 500_000_000)
    assert isinstance(refund.receiver, TransactionPartnerUser) and refund.receiver.affiliate
    assert refund.receiver.affiliate.amount == -37  # given back
    [commission] = (await bot.get_star_transactions(limit=1)).transactions
    assert isinstance(commission.source, TransactionPartnerAffiliateProgram)
    emulator.add_unreadable_transaction()
    with pytest.raises(ClientDecodeError):  # aiogram's own method fails the whole page
        await bot.get_star_transactions()
