"""Exact money: shop amounts are integer minor units, panel amounts are ``Decimal``.

Nothing in the product turns money into ``float``. Conversions between a decimal
amount and minor units always name their rounding, because the direction matters:
prices round up (the shop never undercharges), refunds round down (it never
refunds more than it was paid).
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bot.order_types import N_, FieldError

# ISO 4217 exponents that differ from the usual 2; XTR is Telegram Stars.
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "XTR": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3,
    "TND": 3,
}

_SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "€", "GBP": "£", "RUB": "₽", "INR": "₹",
                            "TRY": "₺", "UAH": "₴", "XTR": "⭐"}


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency``'s minor unit."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor_up(amount: Decimal, currency: str) -> int:
    """``amount`` in minor units, rounded up to the next whole minor unit."""
    return int((amount * 10 ** exponent(currency)).to_integral_value(ROUND_CEILING))


def to_minor_down(amount: Decimal, currency: str) -> int:
    """``amount`` in minor units, rounded down to a whole minor unit."""
    return int((amount * 10 ** exponent(currency)).to_integral_value(ROUND_FLOOR))


def from_minor(minor: int, currency: str) -> Decimal:
    """The exact decimal amount of ``minor`` units."""
    return Decimal(minor).scaleb(-exponent(currency))


MAX_AMOUNT_MINOR = 10**10  # the largest amount anyone may type: $100,000,000.00
MAX_AMOUNT_TEXT = 32
_GROUPED = re.compile(r"^\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?$")
_PLAIN = re.compile(r"^\d+(?:([.,])(\d+))?$")


class AmountError(FieldError):
    """What is wrong with a typed amount, as a translatable message with its example."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__("amount", message, **params)


def parse_amount(text: str, currency: str) -> int:
    """Parse an amount a person typed into minor units of ``currency``.

    The one reader of typed amounts (admins' credits and debits; the amount a
    customer types for a Stars top-up uses it too). It takes
    ``7``, ``7.5``, ``7,50`` and ``1 000``: ASCII digits, spaces only between groups of
    three, and at most one decimal separator, ``.`` or ``,``. A separator followed by
    exactly three digits (``1,000``, ``1.000``) could be either a thousands separator
    or a decimal point, so it is refused with an example rather than guessed (unless
    the currency has three decimals), and so is a text with both ``.`` and ``,``.
    Exponents, other digits (``²``, ``١``), zero, negatives, more decimals than the
    currency has, and more than ``MAX_AMOUNT_MINOR`` are refused. Raises ``AmountError``.
    """
    raw = text.strip()
    if not raw or len(raw) > MAX_AMOUNT_TEXT:
        raise AmountError(N_("Please send an amount as a number, like {example}."),
                          example=_example(currency))
    if _GROUPED.match(raw):
        raw = re.sub(r"[ \u00a0\u202f]", "", raw)
    digits = exponent(currency)
    match = _PLAIN.match(raw) if raw.isascii() else None
    if match is None:
        if raw.isascii() and "." in raw and "," in raw and re.fullmatch(r"[\d.,]+", raw):
            raise AmountError(N_("Please write the amount without thousands separators, "
                                 "like {example}."), example=_example(currency))
        raise AmountError(N_("Please send an amount as a number, like {example}."),
                          example=_example(currency))
    separator, decimals = match.group(1), match.group(2) or ""
    if separator and len(decimals) == 3 and digits != 3:
        raise AmountError(N_("Please write the amount without thousands separators, "
                             "like {example}."), example=_example(currency))
    if len(decimals) > digits:
        raise AmountError(N_("At most {digits} digits after the decimal point, like {example}."),
                          digits=digits, example=_example(currency))
    value = Decimal(raw.replace(",", "."))
    minor = int(value.scaleb(digits))
    if minor <= 0:
        raise AmountError(N_("The amount must be more than zero."))
    if minor > MAX_AMOUNT_MINOR:
        raise AmountError(N_("The largest amount is {maximum}."),
                          maximum=format_minor(MAX_AMOUNT_MINOR, currency))
    return minor


def _example(currency: str) -> str:
    return "1000" if exponent(currency) == 0 else f"1000.{'5'.ljust(exponent(currency), '0')}"


def format_minor(minor: int, currency: str) -> str:
    """``1234, "USD"`` → ``"$12.34"``; unknown currencies get a code suffix."""
    digits = exponent(currency)
    amount = from_minor(minor, currency)
    text = f"{amount:,.{digits}f}"
    symbol = _SYMBOLS.get(currency.upper())
    if symbol:
        return f"{symbol}{text}" if currency.upper() != "XTR" else f"{text} {symbol}"
    return f"{text} {currency.upper()}"
