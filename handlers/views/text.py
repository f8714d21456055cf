"""Text in the reader's locale: money, numbers and dates (in the time zone the
caller passes, the shop's), texts from the panel cut and escaped, and a field's
error in the reader's words. The aiogram i18n context says whose message is
being built, in a handler or a notice (bot/shop/money/formatting.py formats)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from bot.panel.order_types import FieldError
from bot.shop.money import formatting

MAX_BUTTON = 60
# Panel texts can be any length (5,000-character names were seen): they are cut
# to these before they are escaped, so every message stays under Telegram's 4,096
# visible characters whatever the panel sends.
NAME_LIMIT = 200
CATEGORY_LIMIT = 100
DESCRIPTION_LIMIT = 1500
ID_LIMIT = 40


def current_locale() -> str:
    """The locale of the message being built (the aiogram i18n context)."""
    return get_i18n().current_locale


def short(text: str, limit: int = MAX_BUTTON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def panel_text(text: str, limit: int = NAME_LIMIT) -> str:
    """A text from a panel (a name, a category, an id) as HTML: cut, then escaped."""
    return escape(short(text, limit))


def who(first_name: str | None, username: str | None, limit: int = 64) -> str:
    """A customer as plain text: their name and @username, leaving out what they have
    not set (``Alex · @alex``, ``Alex``, ``@alex``; ``—`` with neither)."""
    parts = [short(first_name, limit)] if first_name else []
    if username:
        parts.append("@" + username)
    return " · ".join(parts) or "—"


def money(minor: int, currency: str) -> str:
    return formatting.money(minor, currency, current_locale())


def signed(minor: int, currency: str, *, plus: bool = True) -> str:
    """An amount with its sign, the same on every screen: ``+$5.00``, ``−$0.33`` (a
    true minus sign, before the locale's amount); ``plus=False`` leaves gains unsigned."""
    sign = "−" if minor < 0 else "+" if minor > 0 and plus else ""
    return sign + money(abs(minor), currency)


def panel_amount(amount: Decimal, currency: str) -> str:
    """An amount in a panel's own currency (a rate, a balance), with its decimals: any
    code a panel sends, at most 10 characters of it, is shown."""
    code = currency.strip()[:10]
    if not code.isalpha():
        return f"{formatting.decimal(amount, current_locale())} {code}".strip()
    return formatting.amount(amount, code, current_locale())


def panel_figure(text: str | None) -> str:
    """A figure a panel sent as text (what it charged for an order), as HTML: a number
    in the reader's format; anything else cut and escaped; ``—`` when there is none."""
    if not text:
        return "—"
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return panel_text(text, ID_LIMIT)
    if not value.is_finite():
        return panel_text(text, ID_LIMIT)
    return formatting.decimal(value, current_locale())


def number(value: int) -> str:
    return formatting.number(value, current_locale())


def percent(value: Decimal) -> str:
    return formatting.percent(value, current_locale())


def shown(value: object) -> str:
    """A message parameter (``Money``, a number, text) as this reader reads it."""
    return formatting.shown(value, current_locale())


def when(stored: str | None, zone: ZoneInfo) -> str:
    """A stored UTC time, as the reader writes dates, in ``zone`` (the shop's, ``settings.zone``)."""
    return formatting.stored_moment(stored, current_locale(), zone)


def day_of(stored: str | None, zone: ZoneInfo) -> str:
    """The date of a stored UTC time in ``zone`` (the shop's), as the reader writes it."""
    if not stored:
        return "—"
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(zone)
    return formatting.day(moment.date(), current_locale())


def field_error(error: FieldError) -> str:
    """A ``FieldError`` (or ``AmountError``) in this reader's words."""
    return error.render(_, shown)
