"""The main menu (the admin sees one more button; 👥 Invite friends shows while the
referral program runs) and the button back to it."""

from __future__ import annotations

from functools import lru_cache

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from handlers.callbacks import LanguageCb, MenuCb, OrdersCb, ReferralCb
from handlers.views.keyboards import button, keyboard
from handlers.views.text import current_locale


def main_menu(user_id: int, settings: Settings) -> InlineKeyboardMarkup:
    """The menu as ``user_id`` sees it in this shop."""
    return _main_menu(current_locale(), user_id in settings.admin_ids,
                      settings.referrals_enabled)


@lru_cache(maxsize=64)
def _main_menu(_locale_key: str, is_admin: bool, invite: bool) -> InlineKeyboardMarkup:
    rows = [[button(_("🛒 New order"), MenuCb(action="shop")),
             button(_("📦 My orders"), OrdersCb(page=0))],
            [button(_("💰 Balance"), MenuCb(action="balance")),
             button(_("❓ Help"), MenuCb(action="help"))],
            [button(_("🌐 Language"), LanguageCb(code="list"))]]
    if invite:
        rows[-1].append(button(_("👥 Invite friends"), ReferralCb()))
    if is_admin:
        rows.append([button(_("🛠 Admin"), MenuCb(action="admin"))])
    return keyboard(*rows)


def home_button() -> InlineKeyboardButton:
    return button(_("🏠 Menu"), MenuCb(action="home"))
