"""My orders: the list, an order's card, and its Refresh / Refill / Cancel buttons.

Every button names an order by id only, and every handler checks that the order
is the caller's: someone else's order and a made-up id get the same answer.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.panel import PanelError, PanelRejected
from bot.shop.orders import StoredOrder
from bot.shop.orders.service import REFRESH_EVERY_SECONDS, OrderService
from handlers.callbacks import OrderCb, OrdersCb
from handlers.filters import CallbackPrefix
from handlers.routing import AreaRouter
from handlers.views.keyboards import PAGE_SIZE, button, column, edit, keyboard, pager
from handlers.views.menu import home_button
from handlers.views.orders import order_card, order_keyboard, order_line

router = AreaRouter(name="my_orders", callbacks=CallbackPrefix(OrdersCb, OrderCb))


@router.callback_query(OrdersCb.filter())
async def order_list(query: CallbackQuery, callback_data: OrdersCb, orders: OrderService) -> None:
    assert isinstance(query.message, Message)
    page = max(0, callback_data.page)
    rows, total = await orders.page(query.from_user.id, page * PAGE_SIZE, PAGE_SIZE)
    markup = keyboard(*column([button(order_line(o), OrderCb(id=o.id)) for o in rows]),
                      pager(page, total, lambda p: OrdersCb(page=p)), [home_button()])
    text = _("Your orders (newest first):") if total else _("You have no orders yet.")
    await edit(query.message, text, markup)


async def _show(message: Message, order: StoredOrder, orders: OrderService, zone: ZoneInfo,
                note: str | None = None) -> None:
    text = order_card(order, await orders.refills_of(order.id), zone)
    if note:
        text = f"{text}\n\n{note}"
    markup = order_keyboard(order, await orders.actions(order))
    await edit(message, text, markup)


@router.callback_query(OrderCb.filter())
async def order_action(query: CallbackQuery, callback_data: OrderCb, orders: OrderService,
                       callback_answer: CallbackAnswer, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    order = await orders.owned(query.from_user.id, callback_data.id)
    if order is None:
        callback_answer.text = _("Order not found.")
        callback_answer.show_alert = True
        return
    note = None
    match callback_data.action:
        case "refresh":
            before = order
            try:
                order = await orders.refresh(order)
            except PanelError:
                callback_answer.text = _("The supplier is not answering right now. "
                                         "Try again in a minute.")
                return
            if order is before:
                callback_answer.text = ngettext(
                    "Up to date. You can refresh once every {seconds} second.",
                    "Up to date. You can refresh once every {seconds} seconds.",
                    REFRESH_EVERY_SECONDS).format(seconds=REFRESH_EVERY_SECONDS)
                return
            callback_answer.text = _("Updated.")
        case "refill" | "cancel":
            refused = (_("This order can't be refilled now.") if callback_data.action == "refill"
                       else _("This order can't be canceled any more."))
            try:
                if callback_data.action == "refill":
                    await orders.request_refill(order)
                    note = _("♻️ Refill requested. We'll let you know when it is done.")
                else:
                    await orders.request_cancel(order)
                    callback_answer.text = _("Cancellation requested.")
            except PanelRejected:
                callback_answer.text, callback_answer.show_alert = refused, True
                return
            except PanelError:
                callback_answer.text = _("The supplier is not answering right now. "
                                         "Try again in a minute.")
                return
        case "show":
            pass
    fresh = await orders.owned(query.from_user.id, order.id)
    assert fresh is not None
    await _show(query.message, fresh, orders, settings.zone, note)

