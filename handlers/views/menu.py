"""The main menu (the admin sees one more button; 👥 Invite friends shows while the
referral program runs; ▶️ Continue your order while an order form /start set aside
is kept) and the button back to it."""

from __future__ import annotations

from functools import lru_cache
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.orders.form import Progress
from handlers.callbacks import FormCb, LanguageCb, MenuCb, OrdersCb, ReferralCb
from handlers.views.keyboards import button, data_button, keyboard
from handlers.views.text import current_locale, short

SERVICE_IN_BUTTON = 28  # characters of the service's name on the Continue button
_RESUME_DATA = FormCb(action="resume").pack()


def main_menu(user_id: int, settings: Settings, kept: Progress | None = None) -> InlineKeyboardMarkup:
    """The menu as ``user_id`` sees it in this shop; ``kept``: their order form set
    aside by /start, offered first."""
    menu = _main_menu(current_locale(), user_id in settings.admin_ids,
                      settings.referrals_enabled)
    if kept is None:
        return menu
    # Built here, not through the shared-button cache: its label is this customer's.
    resume = data_button(continue_label(kept), _RESUME_DATA)
    return keyboard([resume], *menu.inline_keyboard)


def continue_label(kept: Progress) -> str:
    service = kept.service
    if len(service) > SERVICE_IN_BUTTON:  # "Instagram Followers [Real…", not "[Real, …"
        service = service[:SERVICE_IN_BUTTON - 1].rstrip(" ,;:-([") + "…"
    if kept.complete:
        return _("▶️ Continue your order: {service}, to confirm").format(service=service)
    return _("▶️ Continue your order: {service}, step {step} of {steps}").format(
        service=service, step=kept.step, steps=kept.steps)


def kept_order_text(kept: Progress) -> str:
    """What a message outside any form gets while an order is kept (HTML)."""
    where = (_("ready to confirm") if kept.complete
             else _("step {step} of {steps}").format(step=kept.step, steps=kept.steps))
    return _("You have an order in progress: <b>{service}</b>, {where}. Tap ▶️ Continue your "
             "order to go on with it (then send your answer again), or /cancel to drop it."
             ).format(service=escape(short(kept.service, 80)), where=where)


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
