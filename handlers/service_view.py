"""Pieces shared by several routers: the service card's keyboard, the top-up hint."""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Settings
from handlers.callbacks import CategoryCb, OrderStartCb
from handlers.render import home_button
from storage.catalog import StoredService


def service_keyboard(stored: StoredService) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🛒 Order"), callback_data=OrderStartCb(ref=stored.ref))
    kb.button(text=_("⬅ Back"), callback_data=CategoryCb(id=stored.category_id))
    home_button(kb)
    kb.adjust(1, 2)
    return kb.as_markup()


def top_up_hint(settings: Settings) -> str:
    if settings.support_contact:
        return _("To top up, contact support: {contact}").format(
            contact=escape(settings.support_contact))
    return _("To top up, contact the shop's support.")
