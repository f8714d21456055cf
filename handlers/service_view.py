"""Pieces shared by several routers: the service card's keyboard, the top-up hint."""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from handlers.callbacks import CategoryCb, OrderStartCb
from handlers.render import button, home_button, keyboard
from storage.catalog import StoredService


def service_keyboard(stored: StoredService) -> InlineKeyboardMarkup:
    return keyboard([button(_("🛒 Order"), OrderStartCb(ref=stored.ref))],
                    [button(_("⬅ Back"), CategoryCb(id=stored.category_id)), home_button()])


def top_up_hint(settings: Settings) -> str:
    if settings.support_contact:
        return _("To top up, contact support: {contact}").format(
            contact=escape(settings.support_contact))
    return _("To top up, contact the shop's support.")
