"""The balance: its history, and topping it up with Telegram Stars.

Top up offers the ``TOPUP_AMOUNTS`` presets (each with its Stars price) and
Other amount; the order confirmation offers the missing amount too. Each choice
creates a pending top-up (bot/shop/money/topups.py) and sends its invoice; the payment
itself is handled in handlers/customer/payments.py. Buttons carry a preset's index, never
an amount: what is charged is decided here, on the server.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, LabeledPrice, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.panel.order_types import FieldError
from bot.shop.growth.discounts import Discounts
from bot.shop.money import HistoryEntry
from bot.shop.money.accounts import Accounts
from bot.shop.money.amounts import AmountError, parse_amount, separators, to_minor_up
from bot.shop.money.topups import STARS, StarsTopups, TooManyUnpaid
from bot.shop.orders import form
from bot.shop.orders.service import OrderService, ServiceGone
from bot.shop.wholesale.keys import ApiKeys
from handlers.callbacks import ApiCb, BalanceCb, MenuCb, PromoCb, TopupCb
from handlers.customer import kept_order
from handlers.customer.service_view import top_up_hint
from handlers.filters import Button, CallbackPrefix, TextMessage
from handlers.routing import AreaRouter
from handlers.views.keyboards import PAGE_SIZE, button, edit, keyboard, pager
from handlers.views.ledger import ledger_kind, loyalty_lines, waiting_code_line
from handlers.views.menu import home_button
from handlers.views.text import current_locale, field_error, money, number, signed, when

log = logging.getLogger(__name__)
router = AreaRouter(name="balance", callbacks=CallbackPrefix(MenuCb, BalanceCb, TopupCb))


class TopUp(StatesGroup):
    amount = State()


# ------------------------------------------------------------------ the balance

def _history_line(entry: HistoryEntry, currency: str, zone: ZoneInfo) -> str:
    what = ledger_kind(entry.kind, entry.order_id)
    return f"{when(entry.created_at, zone)} · <b>{signed(entry.amount_minor, currency)}</b> · {what}"


async def balance_screen(user_id: int, page: int, accounts: Accounts, settings: Settings,
                         discounts: Discounts, *, api: bool,
                         ) -> tuple[str, list[list[InlineKeyboardButton]]]:
    """The balance, its history's page ``page``, and its buttons (🔌 API with ``api``:
    the shop serves its wholesale API)."""
    currency = settings.shop_currency
    balance, entries, total = await accounts.statement(user_id, page * PAGE_SIZE, PAGE_SIZE)
    lines = [_("Your balance: <b>{balance}</b>").format(balance=money(balance, currency))]
    if discounts.tiers:
        lines += loyalty_lines(await discounts.standing(user_id), currency)
    code = await discounts.waiting_code(user_id)
    if code is not None:
        lines += ["", waiting_code_line(code, currency)]
    if entries:
        lines += ["", _("<b>History</b> (newest first):")]
        lines += [_history_line(entry, currency, settings.zone) for entry in entries]
    if not settings.stars_enabled:
        lines += ["", top_up_hint(settings)]
    top_up = [button(_("⭐ Top up"), TopupCb(action="menu"))] if settings.stars_enabled else []
    rows = [[*top_up, button(_("🎟 Promo code"), PromoCb(action="ask"))],
            [button(_("🔌 API"), ApiCb())] if api else [],
            pager(page, total, lambda p: BalanceCb(page=p)), [home_button()]]
    return "\n".join(lines), rows


@router.callback_query(Button(MenuCb(action="balance")))
@router.callback_query(BalanceCb.filter())
async def balance_menu(query: CallbackQuery, accounts: Accounts, settings: Settings,
                       discounts: Discounts, api_keys: ApiKeys,
                       callback_data: BalanceCb | None = None) -> None:
    assert isinstance(query.message, Message)
    page = callback_data.page if callback_data is not None else 0
    text, rows = await balance_screen(query.from_user.id, page, accounts, settings, discounts,
                                      api=api_keys.enabled)
    await edit(query.message, text, keyboard(*rows))


@router.message(Command("balance"), StateFilter(None))
async def balance_command(message: Message, accounts: Accounts, settings: Settings,
                          discounts: Discounts, api_keys: ApiKeys) -> None:
    assert message.from_user is not None
    text, rows = await balance_screen(message.from_user.id, 0, accounts, settings, discounts,
                                      api=api_keys.enabled)
    await message.answer(text, reply_markup=keyboard(*rows))


# ------------------------------------------------------------------ top up

def preset_amounts(settings: Settings) -> list[int]:
    return [to_minor_up(amount, settings.shop_currency) for amount in settings.topup_amounts]


def top_up_rows(settings: Settings, topups: StarsTopups,
                missing_minor: int | None = None) -> list[list[InlineKeyboardButton]]:
    """The preset buttons (two a row) and Other amount; with ``missing_minor``, a
    first button that pays exactly what an order lacks (at least ``TOPUP_MIN``)."""
    currency = settings.shop_currency
    rows: list[list[InlineKeyboardButton]] = []
    if missing_minor is not None:
        amount = max(missing_minor, topups.minimum_minor)
        rows.append([button(_("⭐ Pay the missing {amount} · {stars} ⭐").format(
            amount=money(amount, currency), stars=number(topups.stars_for(amount))),
            TopupCb(action="shortfall"))])
    presets = [button(f"{money(amount, currency)} · {number(topups.stars_for(amount))} ⭐",
                      TopupCb(action="preset", index=index))
               for index, amount in enumerate(preset_amounts(settings))]
    rows += [presets[i:i + 2] for i in range(0, len(presets), 2)]
    rows.append([button(_("Other amount"), TopupCb(action="other"))])
    return rows


@router.callback_query(TopupCb.filter())
async def top_up(query: CallbackQuery, callback_data: TopupCb, bot: Bot, state: FSMContext,
                 orders: OrderService, accounts: Accounts, settings: Settings,
                 topups: StarsTopups, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if not settings.stars_enabled:
        callback_answer.text, callback_answer.show_alert = top_up_hint(settings), True
        return
    match callback_data.action:
        case "menu":
            rate = _("{one} = {stars} ⭐").format(
                one=money(to_minor_up(Decimal(1), settings.shop_currency), settings.shop_currency),
                stars=number(topups.stars_for(to_minor_up(Decimal(1), settings.shop_currency))))
            text = "\n".join([_("<b>Top up with Telegram Stars</b>"), rate, "",
                              _("Choose an amount:")])
            await edit(query.message, text, keyboard(
                *top_up_rows(settings, topups),
                [button(_("⬅ Back"), MenuCb(action="balance")), home_button()]))
        case "preset":
            presets = preset_amounts(settings)
            if callback_data.index >= len(presets):  # the presets changed since
                callback_answer.text = _("This button is no longer valid. Send /start for the "
                                         "menu.")
                return
            refused = await send_invoice(bot, query.from_user, presets[callback_data.index],
                                         topups, settings, accounts)
            if refused:
                callback_answer.text, callback_answer.show_alert = refused, True
        case "other":
            # Remember where the customer was (a short confirmation keeps its order).
            await state.update_data(after_top_up=await state.get_state())
            await state.set_state(TopUp.amount)
            await query.message.answer(_ask_amount(settings))
        case "shortfall":
            missing = await _missing_for_draft(query.from_user.id, state, orders, accounts)
            if missing is None:
                callback_answer.text = _("This order was already handled. See 📦 My orders.")
            elif missing <= 0:
                callback_answer.text = _("Your balance is enough now: tap ✅ Confirm.")
            else:
                amount = max(missing, topups.minimum_minor)
                try:
                    topups.check_amount(amount)
                except AmountError as exc:
                    callback_answer.text, callback_answer.show_alert = field_error(exc), True
                    return
                refused = await send_invoice(bot, query.from_user, amount, topups, settings,
                                             accounts)
                if refused:
                    callback_answer.text, callback_answer.show_alert = refused, True


async def _missing_for_draft(user_id: int, state: FSMContext, orders: OrderService,
                             accounts: Accounts) -> int | None:
    """What the order being confirmed lacks now, or ``None`` when there is none."""
    draft = form.Draft.from_data(await state.get_data())
    if draft is None:
        return None
    try:
        stored = await orders.on_sale(draft.ref)
    except ServiceGone:
        return None
    if form.next_field(stored, draft) is not None:
        return None
    try:
        quote = await orders.quote(stored, draft.values, user_id)
    except FieldError:  # the service changed since: Confirm shows what no longer fits
        return None
    return quote.price_minor - await accounts.balance(user_id)


def _ask_amount(settings: Settings) -> str:
    currency = settings.shop_currency
    return _("How much do you want to add, in {currency}? Send a number from {minimum} to "
             "{maximum}, like {example} (or /cancel).").format(
                 example=f"7{separators(current_locale())[0]}50",
                 currency=currency, minimum=money(to_minor_up(settings.topup_min, currency),
                                                  currency),
                 maximum=money(to_minor_up(settings.topup_max, currency), currency))


async def _leave_amount(state: FSMContext) -> None:
    """Back to where Other amount was tapped from (the order being confirmed, if any)."""
    data = await state.get_data()
    back = data.pop("after_top_up", None)
    await state.set_data(data)
    await state.set_state(back)


@router.message(StateFilter(TopUp.amount), Command("cancel"))
async def cancel_amount(message: Message, state: FSMContext, settings: Settings) -> None:
    assert message.from_user is not None
    await _leave_amount(state)
    await message.answer(_("Top-up cancelled."),
                         reply_markup=await kept_order.menu(message.from_user.id, settings, state))


@router.message(StateFilter(TopUp.amount), TextMessage(command=True))
async def command_in_amount(message: Message) -> None:
    await message.answer(_("Send the amount to add, or /cancel to leave the top-up first."))


@router.message(StateFilter(TopUp.amount), TextMessage())
async def typed_amount(message: Message, bot: Bot, state: FSMContext, settings: Settings,
                       topups: StarsTopups, accounts: Accounts) -> None:
    assert message.text is not None and message.from_user is not None
    if not settings.stars_enabled:
        await _leave_amount(state)
        await message.answer(top_up_hint(settings))
        return
    try:
        amount = parse_amount(message.text, settings.shop_currency, current_locale())
        topups.check_amount(amount)
    except AmountError as exc:
        await message.answer(f"⚠️ {field_error(exc)}\n\n{_ask_amount(settings)}")
        return
    await _leave_amount(state)
    refused = await send_invoice(bot, message.from_user, amount, topups, settings, accounts)
    if refused:
        await message.answer(refused)


@router.message(StateFilter(TopUp.amount))
async def not_an_amount(message: Message, settings: Settings) -> None:
    await message.answer(_ask_amount(settings))


async def send_invoice(bot: Bot, payer: User, amount_minor: int, topups: StarsTopups,
                       settings: Settings, accounts: Accounts) -> str | None:
    """A pending top-up of ``amount_minor`` and its Stars invoice, in the private chat.

    Returns why none was made (too many unpaid invoices), for the caller to show
    where the customer acted: a tap's alert, or an answer to a typed amount.
    """
    # The account must exist to be credited (a customer may never have sent /start).
    await accounts.register(payer.id, username=payer.username,
                            first_name=payer.first_name, language=payer.language_code)
    user_id = payer.id
    try:
        topup = await topups.create(user_id, amount_minor)
    except TooManyUnpaid as exc:
        return ngettext(
            "You have {count} unpaid invoice: pay it above, or wait until it expires (24 h).",
            "You have {count} unpaid invoices: pay one of them above, or wait until they "
            "expire (24 h).", exc.limit).format(count=number(exc.limit))
    amount = money(topup.amount_minor, settings.shop_currency)
    try:
        await bot.send_invoice(
            user_id, title=_("Top up {amount}").format(amount=amount)[:32],
            description=_("{amount} will be added to your balance in this shop, for {stars} "
                          "Telegram Stars.").format(amount=amount, stars=number(topup.stars))[:255],
            payload=topup.payload, currency=STARS,
            prices=[LabeledPrice(label=_("Balance {amount}").format(amount=amount),
                                 amount=topup.stars)])
    except TelegramBadRequest as exc:
        # Telegram caps the Stars of one invoice. No invoice names the top-up, so it is
        # discarded: it must not hold one of the customer's TOPUP_PENDING_MAX places.
        log.warning("invoice of %d Stars refused: %s", topup.stars, exc.message)
        await topups.discard(topup)
        await bot.send_message(user_id, _("Telegram would not make an invoice of {stars} ⭐. "
                                          "Please choose a smaller amount.").format(
                                              stars=number(topup.stars)))
