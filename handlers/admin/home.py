"""The admin panel's entry (🛠 Admin, /admin), its audit log screen, commands
typed in any admin input state, and the admin commands (/credit, /debit,
/unresolved, /refund_stars; /promo_new and /promo_off are handlers/admin/promo.py's).

Only ADMIN_IDS get here: the panel's router (handlers/admin/__init__.py) lets
nobody else through. Each area of the panel is a router of its own
(handlers/admin/*.py); each screen edits the one admin message and has a Back
button to this menu.
"""

from __future__ import annotations

import re
from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot, F
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop import is_row_id
from bot.shop.backoffice.audit import AuditLog
from bot.shop.messaging.notifier import Notifier
from bot.shop.money.accounts import Accounts, InsufficientFunds
from bot.shop.money.amounts import AmountError, SpacedAmount, parse_amount, refuse_spaced_amount
from bot.shop.money.topups import Refund, StarsRefundRefused, StarsTopups
from bot.shop.orders.service import OrderService
from bot.shop.wholesale.keys import ApiKeys
from handlers.callbacks import AdminCb, MenuCb, UnresolvedCb
from handlers.filters import Button, InAdminInput, TextMessage
from handlers.routing import AreaRouter
from handlers.views.audit import audit_line
from handlers.views.keyboards import button, edit, keyboard, pager
from handlers.views.menu import home_button
from handlers.views.text import current_locale, field_error, money, number, when

router = AreaRouter(name="admin")


def usage() -> str:
    """The admin commands: the argument names in the reader's words, the command
    names and keywords (balance|discount) as they must be typed."""
    # Each word its own _() outside the f-strings: pybabel does not look inside them.
    user, amount, reason = _("USER_ID"), _("AMOUNT"), _("reason")
    code, percent, charge = _("CODE"), _("PERCENT"), _("CHARGE_ID")
    return "\n".join([
        f"/credit {user} {amount} [{reason}]  " + _("add to a customer's balance"),
        f"/debit {user} {amount} [{reason}]  " + _("take from a customer's balance"),
        "/unresolved  " + _("orders whose panel outcome is unknown"),
        f"/refund_stars {charge}  " + _("give a Stars top-up back"),
        f"/promo_new {code} balance|discount {amount}|{percent} [...]  "
        + _("make a promo code"),
        f"/promo_off {code}  " + _("turn a promo code off"),
    ])


PANEL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CHARGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def _is_user_id(text: str) -> bool:
    """A Telegram user id as typed: ASCII digits that fit a row id (not ``²``, not 23 digits)."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and is_row_id(int(text))


class AdminAttach(StatesGroup):
    panel_order_id = State()


# ------------------------------------------------------------ the menu

def back_button() -> list:
    """The row every admin screen ends with."""
    return [button(_("⬅ Admin"), AdminCb(area="home")), home_button()]


def admin_home(*, api: bool) -> tuple[str, InlineKeyboardMarkup]:
    """The admin menu (🔌 API customers with ``api``: the shop serves its wholesale API)."""
    text = _("<b>🛠 Admin</b>\nRun the shop from here. Commands:\n{usage}").format(
        usage=escape(usage()))
    return text, keyboard(
        [button(_("📊 Dashboard"), AdminCb(area="dashboard")),
         button(_("🗂 Catalog"), AdminCb(area="catalog"))],
        [button(_("👥 Customers"), AdminCb(area="customers")),
         button(_("📦 Orders"), AdminCb(area="orders"))],
        [button(_("📣 Broadcast"), AdminCb(area="broadcast")),
         button(_("📜 Audit log"), AdminCb(area="audit"))],
        [button(_("🎟 Promo codes"), AdminCb(area="promo")),
         button(_("🤝 Referrals"), AdminCb(area="referrals"))],
        [button(_("🔌 API customers"), AdminCb(area="api"))] if api else [],
        [home_button()])


@router.callback_query(Button(MenuCb(action="admin")))
@router.callback_query(Button(AdminCb(area="home")))
async def admin_menu(query: CallbackQuery, state: FSMContext, api_keys: ApiKeys) -> None:
    assert isinstance(query.message, Message)
    await state.clear()  # a button back to the menu leaves any admin input
    await edit(query.message, *admin_home(api=api_keys.enabled))


@router.message(Command("admin"))
async def admin_command(message: Message, state: FSMContext, api_keys: ApiKeys) -> None:
    await state.clear()
    text, markup = admin_home(api=api_keys.enabled)
    await message.answer(text, reply_markup=markup)


@router.message(InAdminInput(), Command("cancel"))
async def leave_admin_input(message: Message, state: FSMContext, api_keys: ApiKeys) -> None:
    """/cancel leaves whatever the admin was typing; nothing changes (/start does too:
    the menu router answers it in any state)."""
    await state.clear()
    text, markup = admin_home(api=api_keys.enabled)
    await message.answer(_("Nothing changed.\n\n") + text, reply_markup=markup)


@router.message(InAdminInput(), TextMessage(command=True))
async def command_in_admin_input(message: Message) -> None:
    await message.answer(_("Finish what you are typing first, or send /cancel."))


# ------------------------------------------------------------ audit log

AUDIT_PAGE = 10


@router.callback_query(AdminCb.filter(F.area == "audit"))
async def audit_screen(query: CallbackQuery, callback_data: AdminCb, audit_log: AuditLog,
                       settings: Settings) -> None:
    assert isinstance(query.message, Message)
    entries, total = await audit_log.recent(AUDIT_PAGE, callback_data.page * AUDIT_PAGE)
    lines = [ngettext("<b>📜 Audit log</b> ({count} entry, newest first)",
                      "<b>📜 Audit log</b> ({count} entries, newest first)", total).format(
                          count=number(total)), ""]
    lines += [audit_line(entry, settings.shop_currency, settings.zone)
              for entry in entries] or [_("No admin actions yet.")]
    await edit(query.message, "\n".join(lines), keyboard(
        pager(callback_data.page, total, lambda page: AdminCb(area="audit", page=page),
              size=AUDIT_PAGE), back_button()))


@router.message(Command("credit", "debit"))
async def adjust(message: Message, command: CommandObject, settings: Settings,
                 accounts: Accounts) -> None:
    parts = (command.args or "").split(maxsplit=2)
    if len(parts) < 2 or not _is_user_id(parts[0]):
        await message.answer(_("Usage:\n{usage}").format(usage=escape(usage())))
        return
    reason = parts[2][:200] if len(parts) > 2 else command.command
    await adjust_balance(message, accounts, settings, int(parts[0]),
                         1 if command.command == "credit" else -1, parts[1], reason)


async def adjust_balance(message: Message, accounts: Accounts, settings: Settings, user_id: int,
                         sign: int, amount_text: str, reason: str) -> bool:
    """An admin's credit (``sign`` 1) or debit (-1) from ``message``, answered there.

    The message's id is the request's key: a redelivered update changes nothing
    twice. Returns whether the balance changed."""
    assert message.from_user is not None
    currency = settings.shop_currency
    try:
        # One word: "1 000 bonus" is refused, not credited as 1 with the reason "000 bonus".
        refuse_spaced_amount(amount_text, reason, currency, current_locale())
        amount = parse_amount(amount_text, currency, current_locale())
    except AmountError as exc:
        typed = exc.typed if isinstance(exc, SpacedAmount) else amount_text
        await message.answer(_("“{amount}” is not an amount in {currency}. {problem}").format(
            amount=escape(typed[:50]), currency=currency, problem=escape(field_error(exc))))
        return False
    try:
        entry = await accounts.adjust_balance(
            user_id=user_id, amount_minor=sign * amount, admin_id=message.from_user.id,
            reason=reason, currency=currency,
            request_id=f"{message.chat.id}:{message.message_id}")
    except LookupError:
        await message.answer(_("No customer with id {id}. They must /start the bot first.")
                             .format(id=user_id))
        return False
    except InsufficientFunds as exc:
        await message.answer(_("Their balance is only {balance}; a balance can't go "
                               "below zero.").format(balance=money(exc.balance_minor,
                                                                          currency)))
        return False
    verb = _("Credited") if sign > 0 else _("Debited")
    await message.answer(_("{verb} {amount} to {id}. New balance: {balance}.").format(
        verb=verb, amount=money(amount, currency), id=user_id,
        balance=money(entry.balance_after, currency)))
    return True


# ------------------------------------------------------------ Stars refunds

@router.message(Command("refund_stars"))
async def refund_stars(message: Message, command: CommandObject, bot: Bot, topups: StarsTopups,
                       settings: Settings) -> None:
    charge_id = (command.args or "").strip()
    if not CHARGE_ID.fullmatch(charge_id):
        await message.answer(_("Send /refund_stars and the payment's charge id (the customer "
                               "sees it in their receipt; /paysupport messages include it)."))
        return

    async def refund_call(user_id: int, charge: str) -> None:
        try:
            await bot.refund_star_payment(user_id, charge)
        except TelegramBadRequest as exc:
            raise StarsRefundRefused(exc.message) from None

    assert message.from_user is not None
    result = await topups.refund(charge_id, refund_call, message.from_user.id)
    currency = settings.shop_currency
    topup = result.topup
    amount = money(topup.amount_minor, topup.currency) if topup else ""
    stars = topup.stars if topup else 0
    user = topup.user_id if topup else 0
    answers = {
        Refund.REFUNDED: _("Refunded {stars} ⭐ to user {user}; {amount} taken from their "
                           "balance, now {balance}."),
        Refund.RECONCILED: _("Telegram had already refunded these {stars} ⭐; the {amount} "
                             "credit is now taken back from user {user}'s balance ({balance})."),
        Refund.UNKNOWN: _("No Stars top-up with that charge id was paid in this shop."),
        Refund.ALREADY: _("That top-up was refunded before; nothing changed."),
        Refund.SPENT: _("Not refunded: user {user} has spent part of the {amount}; their "
                        "balance is {balance}. Nothing changed."),
        Refund.REFUSED: _("Telegram refused the refund ({telegram}); nothing changed."),
        Refund.UNCERTAIN: _("Telegram did not answer, so it is not known whether the "
                            "{stars} ⭐ went back to user {user}. The {amount} stays taken from "
                            "their balance ({balance}) until that is settled: run /refund_stars "
                            "again to ask Telegram once more; the daily reconciliation settles "
                            "it otherwise (the {amount} comes back if Telegram made no refund)."),
        Refund.SETTLED: _("Telegram has refunded the {stars} ⭐ to user {user}. The {amount} "
                          "taken from their balance before stays taken ({balance}); nothing "
                          "more was taken."),
        Refund.GIVEN_BACK: _("Telegram did not refund the {stars} ⭐ ({telegram}); the {amount} "
                             "is back on user {user}'s balance ({balance})."),
        Refund.STRAY_REFUNDED: _("Refunded {stray_stars} ⭐ of a payment that credited nothing "
                                 "(user {stray_user}); no balance changed."),
    }
    await message.answer(answers[result.outcome].format(
        stars=stars, user=user, amount=amount, balance=money(result.balance_minor, currency),
        telegram=escape(_telegram_words(result.telegram)), stray_stars=result.stray_stars,
        stray_user=result.stray_user))


def _telegram_words(description: str) -> str:
    """Telegram's refund errors in plain words."""
    for code, words in (("CHARGE_ALREADY_REFUNDED", _("it was refunded already")),
                        ("CHARGE_NOT_FOUND", _("Telegram knows no such payment"))):
        if code in description.upper():
            return words
    return description


# ------------------------------------------------------------ unresolved orders
# An order whose `add` got no clear answer (or was cut off by a restart) is
# `unknown`: it may or may not exist on the panel. Only a person can tell, by
# looking at the panel's order list; nothing is resubmitted or refunded on a guess.

async def unresolved_page(orders: OrderService,
                          zone: ZoneInfo) -> tuple[str, InlineKeyboardMarkup]:
    """The ``unknown`` orders with their one-tap resolutions (also the Orders area's list);
    times in ``zone``."""
    rows, total = await orders.unresolved(limit=10)
    back = [button(_("⬅ Orders"), AdminCb(area="orders"))]
    if not total:
        return _("No orders need checking. 👍"), keyboard(back)
    lines = [ngettext("<b>{count} order needs checking on the panel.</b>",
                      "<b>{count} orders need checking on the panel.</b>", total).format(
                          count=number(total)),
             _("Find each one in the panel's order list (by link and time), then attach its "
               "panel order id, or refund it if the panel never took it."), ""]
    buttons = []
    for order in rows:
        target = order.fields.get("link") or order.fields.get("username") or ""
        lines.append(_("#{id} · user {user} · {service} · {target} · {price} · {when}").format(
            id=order.id, user=order.user_id, service=escape(order.service_name[:60]),
            target=escape(target[:80]), price=money(order.price_minor, order.currency),
            when=when(order.created_at, zone)))
        buttons.append([button(_("🔗 #{id}: attach panel id").format(id=order.id),
                               UnresolvedCb(id=order.id, action="attach")),
                        button(_("↩️ #{id}: refund").format(id=order.id),
                               UnresolvedCb(id=order.id, action="refund"))])
    return "\n".join(lines), keyboard(*buttons, back)


def _not_waiting(order_id: int) -> str:
    return _("Order #{id} is not waiting for a decision any more.").format(id=order_id)


@router.message(Command("unresolved"))
async def unresolved(message: Message, orders: OrderService, settings: Settings) -> None:
    text, markup = await unresolved_page(orders, settings.zone)
    await message.answer(text, reply_markup=markup)


@router.callback_query(UnresolvedCb.filter(F.action == "refund"))
async def refund_unresolved(query: CallbackQuery, callback_data: UnresolvedCb,
                            orders: OrderService, notifier: Notifier,
                            callback_answer: CallbackAnswer, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    try:
        order = await orders.refund_unresolved(callback_data.id, query.from_user.id)
    except LookupError:
        callback_answer.text, callback_answer.show_alert = _not_waiting(callback_data.id), True
        return
    notifier.wake()
    callback_answer.text = _("Order #{id} refunded: {price}.").format(
        id=order.id, price=money(order.price_minor, order.currency))
    text, markup = await unresolved_page(orders, settings.zone)
    await edit(query.message, text, markup)


@router.callback_query(UnresolvedCb.filter(F.action == "attach"))
async def ask_panel_id(query: CallbackQuery, callback_data: UnresolvedCb, state: FSMContext,
                       orders: OrderService, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if await orders.unresolved_one(callback_data.id) is None:
        callback_answer.text, callback_answer.show_alert = _not_waiting(callback_data.id), True
        return
    await state.set_state(AdminAttach.panel_order_id)
    await state.update_data(order_id=callback_data.id)
    await query.message.answer(_("Send the panel's order id for #{id} (or /cancel).").format(
        id=callback_data.id))


@router.message(StateFilter(AdminAttach.panel_order_id), TextMessage())
async def attach_panel_id(message: Message, state: FSMContext, orders: OrderService,
                          notifier: Notifier) -> None:
    assert message.text is not None and message.from_user is not None
    if message.text.strip().lower() == "cancel":
        await state.clear()
        await message.answer(_("Nothing changed."))
        return
    panel_order_id = message.text.strip()
    if not PANEL_ID.fullmatch(panel_order_id):
        await message.answer(_("A panel order id is letters and digits, like 123456. "
                               "Send it again, or /cancel."))
        return
    order_id = int((await state.get_data()).get("order_id", 0))
    try:
        order = await orders.attach_panel_id(order_id, panel_order_id, message.from_user.id)
    except LookupError:
        await state.clear()
        await message.answer(_not_waiting(order_id))
        return
    except ValueError:
        await message.answer(_("Panel order {panel_id} already belongs to another order. "
                               "Check the id and send it again, or /cancel.").format(
                                   panel_id=escape(panel_order_id)))
        return
    await state.clear()
    notifier.wake()
    await message.answer(_("Order #{id} is now panel order {panel_id}; it is tracked like any "
                           "other and the customer was told.").format(
                               id=order.id, panel_id=escape(panel_order_id)))


@router.message(StateFilter(AdminAttach.panel_order_id))
async def attach_wrong_input(message: Message) -> None:
    await message.answer(_("Send the panel's order id as text, or /cancel."))
