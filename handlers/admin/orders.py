"""The admin panel's orders: open any order by number, and the problem lists
(orders being checked, "Incorrect order ID", refused for the panel's funds)."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram import F
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop import is_row_id
from bot.shop.orders import StoredOrder
from bot.shop.orders.service import AdminDetails, OrderService
from handlers.admin.home import back_button, unresolved_page
from handlers.callbacks import AdminCb, AdminCustomerCb, AdminOrderCb
from handlers.filters import Button, TextMessage
from handlers.routing import AreaRouter
from handlers.views.keyboards import button, edit, keyboard
from handlers.views.orders import order_card, state_word
from handlers.views.text import ID_LIMIT, money, panel_figure, panel_text, short, when

router = AreaRouter(name="admin_orders")

LIST_SIZE = 10


class AdminOrders(StatesGroup):
    number = State()


def _orders_back() -> list:
    return [button(_("⬅ Orders"), AdminCb(area="orders"))]


@router.callback_query(Button(AdminCb(area="orders")))
async def orders_screen(query: CallbackQuery, state: FSMContext, orders: OrderService) -> None:
    assert isinstance(query.message, Message)
    await state.clear()
    unknown = (await orders.unresolved(limit=0))[1]
    flagged = (await orders.flagged(limit=0))[1]
    funds = (await orders.refused_for_funds(limit=0))[1]
    text = _("<b>📦 Orders</b>\nOpen any order by its number, or work through the problems.")
    await edit(query.message, text, keyboard(
        [button(_("🔎 Open order by number"), AdminOrderCb(action="find"))],
        [button(_("❔ Being checked ({count})").format(count=unknown),
                AdminOrderCb(action="unknown"))],
        [button(_("⚠️ Incorrect order ID ({count})").format(count=flagged),
                AdminOrderCb(action="flagged"))],
        [button(_("💸 Refused for panel funds ({count})").format(count=funds),
                AdminOrderCb(action="funds"))],
        back_button()))


@router.callback_query(AdminOrderCb.filter(F.action == "unknown"))
async def unknown_list(query: CallbackQuery, orders: OrderService, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    await edit(query.message, *await unresolved_page(orders, settings.zone))


def _order_line(order: StoredOrder, zone: ZoneInfo) -> str:
    return (f"#{order.id} · {order.user_id} · {escape(short(order.service_name, 50))} · "
            f"{money(order.price_minor, order.currency)} · {when(order.created_at, zone)}")


@router.callback_query(AdminOrderCb.filter(F.action.in_({"flagged", "funds"})))
async def problem_list(query: CallbackQuery, callback_data: AdminOrderCb,
                       orders: OrderService, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    if callback_data.action == "flagged":
        rows, total = await orders.flagged(LIST_SIZE)
        head = _("<b>⚠️ Incorrect order ID: {count}</b>\nThe panel keeps saying it has no such "
                 "order. Check each on the panel; a real order there keeps being tracked, and a "
                 "cancel on the panel refunds the customer.").format(count=total)
    else:
        rows, total = await orders.refused_for_funds(LIST_SIZE)
        head = _("<b>💸 Refused for panel funds: {count}</b>\nThe panel refused these because "
                 "your balance there ran out; each customer was refunded. Top up the panel."
                 ).format(count=total)
    lines = [head, ""] + ([_order_line(o, settings.zone) for o in rows] or [_("None. 👍")])
    buttons = [button(f"#{o.id}", AdminOrderCb(action="show", id=o.id)) for o in rows]
    await edit(query.message, "\n".join(lines), keyboard(
        buttons[:5], buttons[5:], _orders_back(), back_button()))


def admin_order_text(order: StoredOrder, details: AdminDetails, zone: ZoneInfo) -> str:
    lines = [order_card(order, details.refills, zone), "", _("<b>For admins</b>"),
             _("Customer: {user} · Panel: {panel} · Service {service}").format(
                 user=order.user_id, panel=escape(order.panel),
                 service=panel_text(order.service_id, ID_LIMIT)),
             _("Panel order id: {id} · Panel status: {status}").format(
                 id=panel_text(order.panel_order_id or "—", ID_LIMIT),
                 status=panel_text(order.panel_status or "—", ID_LIMIT)),
             _("Panel charge: {charge} (expected {cost})").format(
                 charge=panel_figure(details.charge), cost=panel_figure(details.panel_cost))]
    if order.first_panel:
        lines.append(_("Placed on {panel} (first tried {first}: {reason})").format(
            panel=escape(order.panel), first=escape(order.first_panel),
            reason=failover_words(order.failover_reason)))
    if order.error:
        lines.append(_("Note: {error}").format(error=panel_text(order.error, 300)))
    if details.history:
        lines += ["", _("<b>History</b>")]
        for row in details.history:
            refund = f" · −{money(row.refund_minor, order.currency)}" if row.refund_minor else ""
            lines.append(f"{when(row.created_at, zone)} {state_word(row.state)}"
                         f" ({panel_text(row.panel_status or '—', ID_LIMIT)},"
                         f" {history_source(row.source)}){refund}")
    return "\n".join(lines)


def history_source(source: str) -> str:
    """Who wrote a history row (order_history.source, stored in English), in words."""
    words = {"tracker": _("status check"), "refresh": _("customer's refresh"),
             "admin": _("admin")}
    return words.get(source, source)


def failover_words(reason: str | None) -> str:
    """Why an order left the panel first tried (orders.failover_reason), in words."""
    words = {
        "down": _("marked down"),
        "unavailable": _("not reachable, nothing sent"),
        "not_enough_funds": _("not enough funds"),
        "bad_key": _("API key refused"),
        "bad_service": _("service unknown or disabled"),
        "quantity": _("quantity outside its limits"),
    }
    return words.get(reason or "", escape(reason or "—"))


async def _show_order(message: Message, orders: OrderService, order_id: int, zone: ZoneInfo, *,
                      edit_it: bool) -> bool:
    found = await orders.admin_view(order_id) if is_row_id(order_id) else None
    if found is None:
        return False
    order, details = found
    markup = keyboard(
        [button(_("👤 Customer {id}").format(id=order.user_id),
                AdminCustomerCb(action="card", id=order.user_id))],
        _orders_back(), back_button())
    if edit_it:
        await edit(message, admin_order_text(order, details, zone), markup)
    else:
        await message.answer(admin_order_text(order, details, zone), reply_markup=markup)
    return True


@router.callback_query(AdminOrderCb.filter(F.action == "show"))
async def show_order(query: CallbackQuery, callback_data: AdminOrderCb, state: FSMContext,
                     orders: OrderService, callback_answer: CallbackAnswer,
                     settings: Settings) -> None:
    assert isinstance(query.message, Message)
    await state.clear()
    if not await _show_order(query.message, orders, callback_data.id, settings.zone, edit_it=True):
        callback_answer.text, callback_answer.show_alert = _("No such order."), True


@router.callback_query(AdminOrderCb.filter(F.action == "find"))
async def ask_number(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(AdminOrders.number)
    await edit(query.message, _("Send the order's number, like <code>42</code> (or /cancel)."),
               keyboard(_orders_back()))


@router.message(StateFilter(AdminOrders.number), TextMessage())
async def order_by_number(message: Message, state: FSMContext, orders: OrderService,
                          settings: Settings) -> None:
    assert message.text is not None
    text = message.text.strip().lstrip("#")
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        await message.answer(_("An order number is digits, like <code>42</code>. Send it again, "
                               "or /cancel."))
        return
    if not await _show_order(message, orders, int(text), settings.zone, edit_it=False):
        await message.answer(_("There is no order #{id}. Send another number, or /cancel.")
                             .format(id=text))
        return
    await state.clear()


@router.message(StateFilter(AdminOrders.number))
async def number_wrong_input(message: Message) -> None:
    await message.answer(_("Send the order's number as text, or /cancel."))
