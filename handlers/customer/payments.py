"""Telegram Stars payments: the pre-checkout answer and the successful payment.

Telegram cancels a payment whose pre-checkout query is not answered within 10
seconds. aiogram's FSM middleware would make that query wait for the payer's
other updates (it locks per user, and a pre-checkout has no chat: its key is the
user's private chat), and a Confirm waiting on a slow panel can take 30 s. So
``PaymentsFirst``, an update middleware placed before the FSM one, answers
pre-checkout queries itself within ``PRE_CHECKOUT_BUDGET`` seconds whatever the
database is doing (a slow check is refused with "try again").

A successful payment is credited there too, at arrival, by bot/shop/money/topups.py exactly
once per charge id: never behind the payer's Confirm on a slow panel, where a
stop could cut both off. The handler behind the lock only renders the receipt
(and, when they were confirming an order, the confirmation again, with the new
balance). The update stays in the inbox (bot/app/inbox.py) until the receipt is
sent, so a stop in between sends it at the next start, crediting nothing again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from html import escape
from typing import Any

from aiogram import BaseMiddleware
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message, PreCheckoutQuery, Update
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.messaging.alerts import AdminAlerts
from bot.shop.messaging.languages import LanguageChoices
from bot.shop.money.accounts import Accounts
from bot.shop.money.amounts import to_minor_up
from bot.shop.money.formatting import money as money_en  # alerts are in English
from bot.shop.money.topups import Credit, Payment, StarsTopups
from bot.shop.orders.service import OrderService
from handlers.customer import kept_order
from handlers.customer.order_form import OrderForm, show_confirmation_again
from handlers.customer.service_view import top_up_hint
from handlers.filters import CommandText, RefundedPayment, SuccessfulPayment, TextMessage
from handlers.middlewares.i18n import locale_for
from handlers.routing import AreaRouter
from handlers.views.text import money, number

log = logging.getLogger(__name__)
# /start leaves /paysupport: the menu answers it.
router = AreaRouter(name="payments", messages=CommandText("/start", unless=True))
PRE_CHECKOUT_BUDGET = 7.0  # seconds of Telegram's 10 for deciding; the rest for the answer

Handler = Callable[[Update, dict[str, Any]], Awaitable[Any]]


class PaymentsFirst(BaseMiddleware):
    """Update outer middleware, before the FSM one: answers pre-checkout queries and
    credits successful payments; the payment's outcome reaches the handler as
    ``payment``."""

    def __init__(self, topups: StarsTopups, i18n: I18n, choices: LanguageChoices) -> None:
        self.topups = topups
        self.i18n = i18n
        self.choices = choices

    async def __call__(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        if event.pre_checkout_query is not None:
            query = event.pre_checkout_query
            chosen = await self.choices.chosen(query.from_user.id)
            await answer_pre_checkout(query, self.topups, self.i18n,
                                      locale_for(self.i18n, chosen or query.from_user.language_code))
            return None
        message = event.message
        if message is not None and message.successful_payment is not None \
                and message.from_user is not None:
            payment = message.successful_payment
            data["payment"] = await self.topups.record_payment(
                message.from_user.id, payment.invoice_payload, payment.total_amount,
                payment.currency, payment.telegram_payment_charge_id)
        return await handler(event, data)


async def answer_pre_checkout(query: PreCheckoutQuery, topups: StarsTopups, i18n: I18n,
                              locale: str) -> None:
    """ok only for the payer's pending, unexpired top-up of exactly this total."""
    with i18n.context(), i18n.use_locale(locale):
        try:
            async with asyncio.timeout(PRE_CHECKOUT_BUDGET):
                refusal = await topups.check(query.from_user.id, query.invoice_payload,
                                             query.total_amount, query.currency)
            reason = None if refusal is None else _(refusal.value)
        except Exception:  # the payment must get an answer, whatever went wrong
            log.exception("pre-checkout %s could not be checked", query.id)
            reason = _("The shop is busy. Please try again in a minute.")
        if reason is None:
            await query.answer(ok=True)
        else:
            await query.answer(ok=False, error_message=reason)


@router.pre_checkout_query()
async def pre_checkout(query: PreCheckoutQuery, topups: StarsTopups, i18n: I18n) -> None:
    """Reached only without ``PaymentsFirst``; registered so that polling and the
    webhook ask Telegram for pre-checkout queries (aiogram derives allowed_updates
    from the handlers)."""
    await answer_pre_checkout(query, topups, i18n, i18n.current_locale)


@router.message(RefundedPayment())
async def refunded(message: Message) -> None:
    """Telegram tells the customer itself; the admin's /refund_stars did the books."""


@router.message(SuccessfulPayment())
async def paid(message: Message, state: FSMContext, payment: Payment, orders: OrderService,
               accounts: Accounts, settings: Settings) -> None:
    """The receipt of a payment ``PaymentsFirst`` has already credited (or kept as stray)."""
    paid_with = message.successful_payment
    assert paid_with is not None and message.from_user is not None
    menu = await kept_order.menu(message.from_user.id, settings, state)
    if payment.credit is Credit.STRAY:
        await message.answer(_(
            "We received your payment of {stars} ⭐ but could not match it to a top-up. The "
            "shop's admins have been told and will sort it out. Your payment id: "
            "<code>{charge}</code>").format(stars=paid_with.total_amount,
                                             charge=paid_with.telegram_payment_charge_id[:80]),
            reply_markup=menu)
        return
    assert payment.topup is not None
    balance = (payment.balance_minor if payment.balance_minor is not None
               else await accounts.balance(message.from_user.id))
    receipt = _("✅ {amount} added to your balance for {stars} ⭐.\nYour balance: <b>{balance}"
                "</b>").format(amount=money(payment.topup.amount_minor, payment.topup.currency),
                               stars=number(payment.topup.stars),
                               balance=money(balance, settings.shop_currency))
    confirming = await state.get_state() == OrderForm.confirm.state
    await message.answer(receipt, reply_markup=None if confirming else menu)
    if confirming:
        await show_confirmation_again(message, state, orders, settings)


# ------------------------------------------------------------------ /paysupport
# Telegram's terms ask bots that sell to answer /paysupport.

class PaySupport(StatesGroup):
    message = State()


MAX_QUESTION = 1_500


@router.message(Command("paysupport"), StateFilter(None))
async def pay_support(message: Message, state: FSMContext, settings: Settings,
                      topups: StarsTopups) -> None:
    if settings.stars_enabled:
        lines = [_("<b>Payments and refunds</b>"),
                 _("Your balance is topped up with Telegram Stars: the amount you choose is "
                   "added to your balance once Telegram confirms the payment, and orders are "
                   "paid from it. A failed or partly done order is refunded to your balance "
                   "automatically."),
                 _("A balance can't be paid out. A top-up you have not spent yet can be "
                   "refunded in Stars by the shop: ask below.")]
    else:  # no Stars in this shop: its support tops balances up
        lines = [_("<b>Payments and refunds</b>"),
                 _("Orders are paid from your balance in this shop; the shop tops it up for "
                   "you. A failed or partly done order is refunded to your balance "
                   "automatically."), top_up_hint(settings)]
    if settings.stars_enabled:
        one = to_minor_up(Decimal(1), settings.shop_currency)
        lines.append(_("The rate now: {one} = {stars} ⭐.").format(
            one=money(one, settings.shop_currency), stars=number(topups.stars_for(one))))
    lines += ["", _("Send your question in one message and the shop's admins will get it with "
                    "your user id and your recent top-ups (or /cancel).")]
    await state.set_state(PaySupport.message)
    await message.answer("\n".join(lines))


@router.message(StateFilter(PaySupport.message), Command("cancel"))
async def pay_support_cancel(message: Message, state: FSMContext, settings: Settings) -> None:
    assert message.from_user is not None
    await state.clear()
    await message.answer(_("Nothing was sent."),
                         reply_markup=await kept_order.menu(message.from_user.id, settings, state))


@router.message(StateFilter(PaySupport.message), TextMessage(command=False))
async def pay_support_question(message: Message, state: FSMContext, settings: Settings,
                               topups: StarsTopups, alerts: AdminAlerts) -> None:
    assert message.text is not None and message.from_user is not None
    sender = message.from_user
    recent = await topups.latest(sender.id)
    details = "\n".join(
        f"{t.created_at[:16].replace('T', ' ')} {money_en(t.amount_minor, t.currency)}"
        f" {t.stars} Stars {t.state} {t.charge_id or ''}".rstrip() for t in recent)
    who = f"@{sender.username}" if sender.username else sender.first_name
    # The question is the alert's details (room for all of it); each message its own key,
    # so several in a row are not folded into one.
    delivered = await alerts.send(f"💬 /paysupport from user {sender.id} ({who}). Recent"
                                  f" top-ups:\n{details or 'none'}",
                                  details=message.text[:MAX_QUESTION],
                                  key=f"paysupport:{sender.id}:{message.message_id}")
    await state.clear()
    if delivered:
        answer = _("Thank you: the shop's admins have your message and will answer you here.")
    else:  # no admin to queue it for: saying they have it would be a lie
        answer = _("Sorry, your message could not be passed on to the shop's admins. Please "
                   "try again later.")
        if settings.support_contact:
            answer += "\n" + _("Support: {contact}").format(
                contact=escape(settings.support_contact))
    await message.answer(answer, reply_markup=await kept_order.menu(sender.id, settings, state))


@router.message(StateFilter(PaySupport.message))
async def pay_support_not_text(message: Message) -> None:
    await message.answer(_("Please send your question as a text message, or /cancel."))
