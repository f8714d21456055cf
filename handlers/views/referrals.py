"""The referral program's texts: the customer's invite screen and a referrer's
notice of a commission (bot/shop/growth/referrals.py computes; these only word them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.growth.referrals import Figures
from bot.shop.money.amounts import to_minor_up
from handlers.callbacks import ReferralCb
from handlers.views.keyboards import button, keyboard
from handlers.views.menu import home_button
from handlers.views.text import money, number, percent


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


def invite_screen(link: str, figures: Figures,
                  settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    """The customer's link, how it pays, what it earned, and a button to share it."""
    currency = settings.shop_currency
    lines = [_("<b>👥 Invite friends</b>"),
             _("Share your link. When a friend who joined through it tops up their balance "
               "with Telegram Stars, you get {percent} of the top-up on your balance.").format(
                 percent=percent(settings.referral_percent))]
    if settings.referral_percent_2:
        lines.append(_("When a friend they invite tops up, you get {percent} of that too.")
                     .format(percent=percent(settings.referral_percent_2)))
    minimum = to_minor_up(settings.referral_min_topup, currency)
    if minimum:
        lines.append(_("Top-ups of {amount} or more count.").format(
            amount=money(minimum, currency)))
    lines += [_("A refunded top-up takes its reward back."), "",
              _("Your link:"), f"<code>{link}</code>", "",
              _("Invited: {invited} · topped up: {topped_up} · earned: {earned}").format(
                  invited=number(figures.invited), topped_up=number(figures.topped_up),
                  earned=money(figures.earned_minor - figures.taken_back_minor, currency))]
    share = "https://t.me/share/url?" + urlencode(
        {"url": link, "text": _("Followers, likes and views for your social media:")},
        quote_via=quote)
    return "\n".join(lines), keyboard(
        [InlineKeyboardButton(text=_("📤 Share the link"), url=share)], [home_button()])


def program_off() -> tuple[str, InlineKeyboardMarkup]:
    return (_("The invite program is not running in this shop right now."),
            keyboard([home_button()]))


def commission_notice(payload: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    """A referrer's notice of a commission (an outbox row of kind 'referral')."""
    currency = str(payload["currency"])
    amount = money(int(payload["amount_minor"]), currency)
    if int(payload.get("level") or 1) == 2:
        head = _("🎁 You earned {amount}: a friend of a friend you invited topped up their "
                 "balance.").format(amount=amount)
    else:
        head = _("🎁 You earned {amount}: a friend you invited topped up their balance.").format(
            amount=amount)
    lines = [head]
    if payload.get("balance_minor") is not None:
        lines.append(_("Your balance: {balance}").format(
            balance=money(int(payload["balance_minor"]), currency)))
    return "\n".join(lines), keyboard([button(_("👥 Invite friends"), ReferralCb())])
