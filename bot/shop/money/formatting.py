"""Money, numbers and dates the reader's way: the one formatting helper.

Every text the bot shows (messages, notices, admin screens, the daily summary)
formats through these functions with the reader's locale (``en``, ``ru``,
``tr``, or any language with a catalog), using Babel's CLDR data:

* ``money(123450, "USD", "en")`` → ``$1,234.50``; ``ru`` → ``1 234,50 $``;
  ``tr`` → ``$1.234,50``. Amounts are exact (integer minor units, or ``Decimal``);
  a currency's own narrow sign is used where the locale would spell its code
  (``₽``, ``₺``, ``₴``); Telegram Stars are ``1,250 ⭐``.
* ``number(12345, "ru")`` → ``12 345``; ``decimal(Decimal("0.45"), "tr")`` → ``0,45``.
* ``day(date, "ru")`` → ``2 дек. 2026 г.``; ``moment(datetime, "en", zone)`` →
  ``12/2/26, 5:37 PM`` (the short form, in the shop's time zone).

``Money`` (and ``Percent``) is a value to format later: an error raised in a service carries
``Money`` and ``int`` parameters, and the handler shows them in the customer's
locale (``shown``). Nothing here knows aiogram; handlers pass the current locale.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision

from bot.shop.money.amounts import DEFAULT_LOCALE, Money, Percent, babel_locale, exponent, from_minor

DEFAULT = DEFAULT_LOCALE
STARS = "XTR"
# Narrow signs CLDR gives only in some locales (en spells "RUB1,234.50").
_SIGNS = {"RUB": "₽", "TRY": "₺", "UAH": "₴", "INR": "₹", "KZT": "₸"}


# Prices and counts repeat (a catalog page, a confirmation): Babel takes ~10 µs a
# call, a cached answer ~0.1 µs.
@lru_cache(maxsize=8192)
def money(minor: int, currency: str, lang: str | None = DEFAULT) -> str:
    """``minor`` units of ``currency`` as the locale writes money."""
    return amount(from_minor(minor, currency), currency, lang)


def amount(value: Decimal, currency: str, lang: str | None = DEFAULT) -> str:
    """A decimal amount of ``currency`` (a shop amount, or a panel's rate or balance:
    those keep their own decimals, at least the currency's)."""
    loc = babel_locale(lang)
    code = currency.upper()
    if code == STARS:
        return f"{format_decimal(value, locale=loc)} ⭐"
    digits = exponent(code)
    places = max(digits, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    if places == digits and get_currency_precision(code) == digits:
        text = format_currency(value, code, locale=loc)
    else:  # more decimals than the currency's (a panel rate), or CLDR disagrees on them
        pattern = loc.currency_formats["standard"].pattern.split(";")[0]
        fraction = "0" * places
        text = format_currency(value, code, format=pattern.replace("0.00", f"0.{fraction}")
                               if places else pattern.replace(".00", ""), locale=loc,
                               currency_digits=False)
    sign = _SIGNS.get(code)
    if sign and code in text:
        text = text.replace(code, sign)
    return text


@lru_cache(maxsize=8192)
def number(value: int | Decimal, lang: str | None = DEFAULT) -> str:
    """A count or a quantity, grouped as the locale groups digits."""
    return format_decimal(value, locale=babel_locale(lang))


def decimal(value: Decimal, lang: str | None = DEFAULT) -> str:
    """A decimal number (a markup percent, a rate) with the locale's separators."""
    return format_decimal(value, locale=babel_locale(lang), decimal_quantization=False)


def percent(value: Decimal, lang: str | None = DEFAULT) -> str:
    """``value`` percent as the locale writes it: 5%, 5 %, %5."""
    return format_percent(value / 100, locale=babel_locale(lang), decimal_quantization=False)


def day(value: date, lang: str | None = DEFAULT) -> str:
    return format_date(value, "medium", locale=babel_locale(lang))


def moment(value: datetime, lang: str | None = DEFAULT, zone: ZoneInfo | None = None) -> str:
    """A date and time in the short form, in ``zone`` (UTC when not given)."""
    return format_datetime(value, "short", tzinfo=zone or ZoneInfo("UTC"),
                           locale=babel_locale(lang))


def stored_moment(text: str | None, lang: str | None = DEFAULT,
                  zone: ZoneInfo | None = None) -> str:
    """A time as the database stores it (UTC ISO text) in the short form; ``—`` if none."""
    if not text:
        return "—"
    # The short form stops at the minute (no locale's has seconds), so the minute is
    # the key: an order card's times, or a page of orders, are mostly the same few.
    return _stored_minute(text[:16], lang, zone)


@lru_cache(maxsize=4096)
def _stored_minute(minute: str, lang: str | None, zone: ZoneInfo | None) -> str:
    try:
        parsed = datetime.fromisoformat(minute + "+00:00")
    except ValueError:
        return minute
    return moment(parsed, lang, zone)


def shown(value: object, lang: str | None = DEFAULT) -> str:
    """A message parameter as the reader reads it: ``Money``, ``Percent`` and numbers
    formatted, anything else as text."""
    if isinstance(value, Money):
        return money(value.minor, value.currency, lang)
    if isinstance(value, Percent):
        return percent(value.value, lang)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | Decimal):
        return number(value, lang)
    return str(value)
