"""The admin panel's customers: find one, their card, credit / debit, block / unblock,
their referral figures with the button that turns their commissions off or on, and
(while the shop serves its wholesale API) their API key's use with the button that
turns their API access off or on."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram import F
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop.backoffice.customers import CustomerCard, Customers, QueryError
from bot.shop.growth.referrals import Figures, Referrals
from bot.shop.money.accounts import Accounts
from bot.shop.wholesale.keys import ApiAccess, ApiKeys
from handlers.admin.home import adjust_balance, back_button
from handlers.callbacks import AdminCb, AdminCustomerCb, AdminOrderCb
from handlers.filters import Button, TextMessage
from handlers.middlewares.i18n import language_name
from handlers.routing import AreaRouter
from handlers.views import api as api_view
from handlers.views.audit import audit_line
from handlers.views.keyboards import button, edit, keyboard
from handlers.views.ledger import ledger_kind
from handlers.views.orders import STATE_EMOJI
from handlers.views.text import current_locale, day_of, money, number, short, signed, when, who

router = AreaRouter(name="admin_customers")

MAX_REASON = 200
# The balance movements whose note is someone's own words (an admin's reason, a promo
# code); the others' notes are the services' English detail, which the kind says.
OWN_NOTES = ("credit", "debit", "promo")


def _own_note(kind: str, note: str | None) -> bool:
    """Whether a movement's note is shown: someone's own words, not the reason /credit
    and /debit write when none is given (the command's name, which the kind says)."""
    return bool(note) and kind in OWN_NOTES and note != kind


class AdminCustomers(StatesGroup):
    find = State()
    amount = State()  # data: user_id, sign


def _ask_find() -> str:
    return _("<b>👥 Customers</b>\nSend a customer's id, @username or a part of their name.")


@router.callback_query(Button(AdminCb(area="customers")))
async def customers_screen(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(AdminCustomers.find)
    await edit(query.message, _ask_find(), keyboard(back_button()))


@router.message(StateFilter(AdminCustomers.find), TextMessage())
async def find_customer(message: Message, customers: Customers) -> None:
    assert message.text is not None
    try:
        found = await customers.find(message.text)
    except QueryError:
        await message.answer(_("Send an id (digits), an @username, or at least two letters "
                               "of a name (at most 64 characters)."),
                             reply_markup=keyboard(back_button()))
        return
    if not found:
        await message.answer(_("No customer matches “{query}”. Try again, or /cancel.").format(
            query=escape(short(message.text.strip(), 64))), reply_markup=keyboard(back_button()))
        return
    rows = [[button(short(f"{who(user.first_name, user.username)} · {user.id}"),
                    AdminCustomerCb(action="card", id=user.id))] for user in found]
    await message.answer(ngettext("Found {count} customer. Open it, or send another search:",
                                  "Found {count} customers. Open one, or send another search:",
                                  len(found)).format(count=number(len(found))),
                         reply_markup=keyboard(*rows, back_button()))


@router.message(StateFilter(AdminCustomers.find))
async def find_wrong_input(message: Message) -> None:
    await message.answer(_("Send the search as text, or /cancel."))


def card_text(card: CustomerCard, currency: str, zone: ZoneInfo,
              referral: Figures | None = None, *, api: bool = False,
              api_access: ApiAccess | None = None) -> str:
    """The card; ``referral``: their figures as a referrer (None: not shown); with
    ``api``, their API key and its use (``api_access``: None, they never had one)."""
    user = card.user
    status = _("🚫 blocked by an admin") if user.banned else _("active")
    if user.blocked:
        status += " · " + _("has blocked the bot")
    lines = [
        _("<b>Customer {id}</b>").format(id=user.id),
        _("Name: {name}").format(name=escape(who(user.first_name, user.username))),
        _("Balance: <b>{balance}</b>").format(balance=money(user.balance_minor, currency)),
        _("Stars top-ups: {count}, {amount} credited").format(
            count=number(card.topups_paid), amount=money(card.topups_minor, currency)),
        _("Language: {language} · Joined: {joined} · Last seen: {seen}").format(
            language=escape(language_name(user.speaks, current_locale()) if user.speaks else "—"),
            joined=day_of(user.created_at, zone), seen=when(user.last_seen_at, zone)),
        _("Status: {status}").format(status=status),
    ]
    if referral is not None:
        lines.append(_("Referrals: invited {invited} · earned {earned} · taken back {taken} · "
                       "written off {written}").format(
            invited=number(referral.invited), earned=money(referral.earned_minor, currency),
            taken=money(referral.taken_back_minor, currency),
            written=money(referral.written_off_minor, currency)))
        if referral.off:
            lines.append(_("⛔ Their referral commissions are turned off."))
        if referral.referred_by is not None:
            lines.append(_("Invited by customer {id}").format(id=referral.referred_by))
    if api:
        lines += api_view.card_lines(api_access, zone)
    lines += ["", _("<b>Orders</b> ({count})").format(count=number(card.orders_total))]
    lines += [f"{STATE_EMOJI.get(o.state, '•')} #{o.id} {escape(short(o.service_name, 40))} · "
              f"{money(o.price_minor, o.currency)}" for o in card.orders] or ["—"]
    lines += ["", _("<b>Balance history</b>")]
    lines += [f"{when(e.created_at, zone)} · {ledger_kind(e.kind, e.order_id)} "
              f"{signed(e.amount_minor, currency)}"
              f"{' · ' + escape(short(e.note, 60)) if _own_note(e.kind, e.note) else ''}"
              for e in card.ledger] or ["—"]
    if card.audit:
        lines += ["", _("<b>Admin actions</b>")] + [audit_line(entry, currency, zone)
                                                    for entry in card.audit]
    return "\n".join(lines)


def card_keyboard(card: CustomerCard, referral: Figures | None = None, *, api: bool = False,
                  api_access: ApiAccess | None = None) -> InlineKeyboardMarkup:
    user_id = card.user.id
    block = (button(_("✅ Unblock"), AdminCustomerCb(action="unblock", id=user_id))
             if card.user.banned else
             button(_("🚫 Block"), AdminCustomerCb(action="block", id=user_id)))
    orders = [button(f"#{o.id}", AdminOrderCb(action="show", id=o.id)) for o in card.orders]
    commissions = []
    if referral is not None:
        commissions = [
            button(_("✅ Referral commissions on"), AdminCustomerCb(action="referrals_on", id=user_id))
            if referral.off else
            button(_("⛔ Referral commissions off"), AdminCustomerCb(action="referrals_off",
                                                                    id=user_id))]
    return keyboard(
        [button(_("➕ Credit"), AdminCustomerCb(action="credit", id=user_id)),
         button(_("➖ Debit"), AdminCustomerCb(action="debit", id=user_id))],
        orders, commissions, api_view.card_button(user_id, api_access) if api else [],
        [block, button(_("🔎 Find another"), AdminCb(area="customers"))],
        back_button())


async def _show_card(message: Message, customers: Customers, referrals: Referrals,
                     api_keys: ApiKeys, settings: Settings, user_id: int, *,
                     edit_it: bool) -> bool:
    card = await customers.card(user_id)
    if card is None:
        return False
    referral = await referrals.figures(user_id)
    if referral is not None and not (settings.referrals_enabled or referral.off
                                     or referral.invited or referral.earned_minor):
        referral = None  # no program and nothing from before it: nothing to show
    api_access = await api_keys.access(user_id) if api_keys.enabled else None
    text = card_text(card, settings.shop_currency, settings.zone, referral,
                     api=api_keys.enabled, api_access=api_access)
    markup = card_keyboard(card, referral, api=api_keys.enabled, api_access=api_access)
    if edit_it:
        await edit(message, text, markup)
    else:
        await message.answer(text, reply_markup=markup)
    return True


@router.callback_query(AdminCustomerCb.filter(F.action == "card"))
async def open_card(query: CallbackQuery, callback_data: AdminCustomerCb, state: FSMContext,
                    customers: Customers, referrals: Referrals, api_keys: ApiKeys,
                    settings: Settings, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    await state.clear()
    if not await _show_card(query.message, customers, referrals, api_keys, settings,
                            callback_data.id, edit_it=True):
        callback_answer.text, callback_answer.show_alert = _("No such customer."), True


@router.callback_query(AdminCustomerCb.filter(F.action.in_({"block", "unblock"})))
async def block(query: CallbackQuery, callback_data: AdminCustomerCb, customers: Customers,
                referrals: Referrals, api_keys: ApiKeys, settings: Settings,
                callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    banned = callback_data.action == "block"
    try:
        changed = await customers.set_banned(query.from_user.id, callback_data.id, banned)
    except PermissionError:
        callback_answer.text, callback_answer.show_alert = _("An admin can't be blocked."), True
        return
    except LookupError:
        callback_answer.text, callback_answer.show_alert = _("No such customer."), True
        return
    if changed:
        callback_answer.text = (_("Blocked: they get a polite refusal from now on.") if banned
                                else _("Unblocked: they can use the shop again."))
    await _show_card(query.message, customers, referrals, api_keys, settings, callback_data.id,
                     edit_it=True)


@router.callback_query(AdminCustomerCb.filter(F.action.in_({"referrals_off", "referrals_on"})))
async def referral_commissions(query: CallbackQuery, callback_data: AdminCustomerCb,
                               customers: Customers, referrals: Referrals, api_keys: ApiKeys,
                               settings: Settings, callback_answer: CallbackAnswer) -> None:
    """Turn a referrer's commissions off (their invited customers' top-ups pay them
    nothing from now on) or on again; audited."""
    assert isinstance(query.message, Message)
    off = callback_data.action == "referrals_off"
    try:
        changed = await referrals.set_off(query.from_user.id, callback_data.id, off)
    except LookupError:
        callback_answer.text, callback_answer.show_alert = _("No such customer."), True
        return
    if changed:
        callback_answer.text = (_("Their referral commissions are off from now on.") if off
                                else _("Their referral commissions are on again."))
    await _show_card(query.message, customers, referrals, api_keys, settings, callback_data.id,
                     edit_it=True)


@router.callback_query(AdminCustomerCb.filter(F.action.in_({"api_off", "api_on"})))
async def api_access(query: CallbackQuery, callback_data: AdminCustomerCb, customers: Customers,
                     referrals: Referrals, api_keys: ApiKeys, settings: Settings,
                     callback_answer: CallbackAnswer) -> None:
    """Turn a customer's wholesale API access off (their key stops working, no new
    one can be made) or on again; the service checks ADMIN_IDS again and audits it."""
    assert isinstance(query.message, Message)
    allowed = callback_data.action == "api_on"
    try:
        was_allowed = await api_keys.set_allowed(query.from_user.id, callback_data.id, allowed)
    except PermissionError:
        callback_answer.text, callback_answer.show_alert = _("Only an admin can do that."), True
        return
    except LookupError:
        callback_answer.text, callback_answer.show_alert = _("No such customer."), True
        return
    if was_allowed != allowed:
        callback_answer.text = (_("Their API access is on again.") if allowed
                                else _("Their API access is off: their key stops working now."))
    await _show_card(query.message, customers, referrals, api_keys, settings, callback_data.id,
                     edit_it=True)


@router.callback_query(AdminCustomerCb.filter(F.action.in_({"credit", "debit"})))
async def ask_amount(query: CallbackQuery, callback_data: AdminCustomerCb, state: FSMContext,
                     customers: Customers, settings: Settings,
                     callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if await customers.card(callback_data.id, orders=0, entries=0) is None:
        callback_answer.text, callback_answer.show_alert = _("No such customer."), True
        return
    await state.set_state(AdminCustomers.amount)
    await state.update_data(user_id=callback_data.id,
                            sign=1 if callback_data.action == "credit" else -1)
    prompt = (_("Credit customer {id}: send the amount and the reason, like "
                "<code>5 welcome bonus</code> (or /cancel).") if callback_data.action == "credit"
              else _("Debit customer {id}: send the amount and the reason, like "
                     "<code>5 mistaken credit</code> (or /cancel)."))
    await query.message.answer(prompt.format(id=callback_data.id))


@router.message(StateFilter(AdminCustomers.amount), TextMessage())
async def amount_and_reason(message: Message, state: FSMContext, accounts: Accounts,
                            customers: Customers, referrals: Referrals, api_keys: ApiKeys,
                            settings: Settings) -> None:
    assert message.text is not None
    parts = message.text.strip().split(maxsplit=1)
    if len(parts) < 2 or len(parts[1]) > MAX_REASON:
        await message.answer(_("Send the amount, a space and a reason (at most {limit} "
                               "characters), like <code>5 welcome bonus</code>, or /cancel.")
                             .format(limit=MAX_REASON))
        return
    data = await state.get_data()
    user_id, sign = int(data.get("user_id", 0)), int(data.get("sign", 1))
    if await adjust_balance(message, accounts, settings, user_id, sign, parts[0], parts[1]):
        await state.clear()
        await _show_card(message, customers, referrals, api_keys, settings, user_id,
                         edit_it=False)


@router.message(StateFilter(AdminCustomers.amount))
async def amount_wrong_input(message: Message) -> None:
    await message.answer(_("Send the amount and the reason as text, or /cancel."))
