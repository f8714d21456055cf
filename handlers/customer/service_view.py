"""Pieces shared by several routers: the service card's keyboard, the top-up hint."""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.catalog import StoredService
from bot.shop.catalog.pricing import Pricer
from handlers.callbacks import CategoryCb, OrderStartCb
from handlers.views.catalog import service_card
from handlers.views.keyboards import button, keyboard
from handlers.views.keyboards import edit as edit_message
from handlers.views.menu import home_button


def service_keyboard(stored: StoredService) -> InlineKeyboardMarkup:
    return keyboard([button(_("🛒 Order"), OrderStartCb(ref=stored.ref))],
                    [button(_("⬅ Back"), CategoryCb(id=stored.category_id)), home_button()])


def top_up_hint(settings: Settings) -> str:
    if settings.support_contact:
        return _("To top up, contact support: {contact}").format(
            contact=escape(settings.support_contact))
    return _("To top up, contact the shop's support.")


async def show_service(message: Message, stored: StoredService, pricer: Pricer,
                       settings: Settings, *, edit: bool) -> None:
    """The service card with its keyboard, in place of ``message`` or as a new one."""
    text = service_card(stored, await pricer.unit_price(stored), settings.shop_currency)
    if edit:
        await edit_message(message, text, service_keyboard(stored))
    else:
        await message.answer(text, reply_markup=service_keyboard(stored))
