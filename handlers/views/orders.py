"""An order as its customer sees it (admins too, above their own details): its
state, its line in a list, its card, and its buttons."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.shop.orders import StoredOrder
from bot.shop.orders.service import OrderActions
from handlers.callbacks import OrderCb, OrdersCb
from handlers.views.keyboards import button, keyboard
from handlers.views.menu import home_button
from handlers.views.text import ID_LIMIT, money, number, panel_text, short, when

STATE_EMOJI = {"submitting": "⏳", "pending": "🕓", "in_progress": "🔄", "completed": "✅",
               "partial": "🌗", "canceled": "↩️", "failed": "❌", "unknown": "❔"}


def state_word(state: str) -> str:
    words = {"submitting": _("Sending"), "pending": _("Pending"), "in_progress": _("In progress"),
             "completed": _("Completed"), "partial": _("Partially done"),
             "canceled": _("Canceled"), "failed": _("Failed"), "unknown": _("Being checked")}
    return words.get(state, state)


def refill_word(state: str) -> str:
    """A refill's state (bot/panel/models.py RefillState, as stored) in the reader's words."""
    words = {"pending": _("waiting for the supplier"), "in_progress": _("in progress"),
             "completed": _("done"), "rejected": _("turned down by the supplier")}
    return words.get(state, state)


def order_line(order: StoredOrder) -> str:
    return f"{STATE_EMOJI.get(order.state, '•')} #{order.id} {short(order.service_name, 40)}"


def order_card(order: StoredOrder, refills: list[tuple[str, str]], zone: ZoneInfo) -> str:
    """The order as its customer sees it (admins too, above their own details); times in ``zone``."""
    lines = [
        _("<b>Order #{id}</b>").format(id=order.id),
        panel_text(order.service_name),
        "",
        _("Status: {emoji} {word}").format(emoji=STATE_EMOJI.get(order.state, "•"),
                                          word=state_word(order.state)),
    ]
    target = order.fields.get("link") or order.fields.get("username")
    if target:
        lines.append(_("Target: {target}").format(target=escape(short(target, 200))))
    if order.quantity is not None:
        lines.append(_("Quantity: {quantity}").format(quantity=number(order.quantity)))
    lines.append(_("Price: {price}").format(price=money(order.price_minor, order.currency)))
    if order.discount_minor:
        lines.append(_("Discount: −{amount} ({what})").format(
            amount=money(order.discount_minor, order.currency),
            what=_("loyalty discount") if order.discount_source == "tier" else _("promo code")))
    if order.start_count is not None:
        lines.append(_("Start count: {count}").format(count=number(order.start_count)))
    if order.remains is not None and order.state not in ("pending", "completed"):
        lines.append(_("Remains: {remains}").format(remains=number(order.remains)))
    lines.append(_("Placed: {date}").format(date=when(order.created_at, zone)))
    if order.updated_at != order.created_at:
        lines.append(_("Updated: {date}").format(date=when(order.updated_at, zone)))
    if order.state == "unknown":
        lines += ["", _("We are checking this order with the supplier. Your money is safe.")]
    if order.state == "failed" and order.error:
        lines += ["", _("The supplier did not accept it; the price was refunded.")]
    if order.cancel_requested and order.state in ("pending", "in_progress"):
        lines += ["", _("Cancellation requested. You'll get the refund when it is confirmed.")]
    for refill_id, state in refills:
        lines.append(_("Refill {id}: {state}").format(id=panel_text(refill_id, ID_LIMIT),
                                                      state=refill_word(state)))
    return "\n".join(lines)


def order_action_buttons(order: StoredOrder,
                         allowed: OrderActions) -> list[InlineKeyboardButton]:
    """Refill and Cancel, where the order allows them now."""
    actions = []
    if allowed.refill:
        actions.append(button(_("♻️ Refill"), OrderCb(id=order.id, action="refill")))
    if allowed.cancel:
        actions.append(button(_("🚫 Cancel order"), OrderCb(id=order.id, action="cancel")))
    return actions


def order_keyboard(order: StoredOrder, allowed: OrderActions) -> InlineKeyboardMarkup:
    actions = []
    if order.state in ("pending", "in_progress"):
        actions.append(button(_("🔄 Refresh"), OrderCb(id=order.id, action="refresh")))
    actions += order_action_buttons(order, allowed)
    return keyboard(actions[:2], actions[2:],
                    [button(_("⬅ My orders"), OrdersCb(page=0)), home_button()])
