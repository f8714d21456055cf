"""Who may use the shop: customers an admin blocked get a polite refusal.

An outer middleware for messages and callback queries (after the private-chat
one): it notes the customer's activity (bot/shop/backoffice/customers.py ``seen``), and for a
blocked customer answers every message and button with one refusal and stops
there. Payment service messages still pass (a payment Telegram has taken is
always credited), and admins are never refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.backoffice.customers import Customers

Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


def refusal(settings: Settings) -> str:
    text = _("Sorry, this shop is not available to you.")
    if settings.support_contact:
        text += " " + _("If you think this is a mistake, contact {contact}.").format(
            contact=settings.support_contact)
    return text


class BlockedCustomers(BaseMiddleware):
    def __init__(self, customers: Customers, settings: Settings) -> None:
        self.customers = customers
        self.settings = settings

    async def __call__(self, handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        if user is None or user.id in self.settings.admin_ids:
            return await handler(event, data)
        self.customers.seen(user.id)
        if not await self.customers.is_banned(user.id):
            return await handler(event, data)
        if isinstance(event, Message) and (event.successful_payment is not None
                                           or event.refunded_payment is not None):
            return await handler(event, data)
        if isinstance(event, CallbackQuery):
            await event.answer(refusal(self.settings), show_alert=True)
        elif isinstance(event, Message):
            await event.answer(refusal(self.settings))
        return None
