"""Exact money: shop amounts are integer minor units, panel amounts are ``Decimal``.

Nothing in the product turns money into ``float``. Conversions between a decimal
amount and minor units always name their rounding, because the direction matters:
prices round up (the shop never undercharges), refunds round down (it never
refunds more than it was paid).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

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


def parse_amount(text: str, currency: str) -> int:
    """Parse a human amount (``"12.5"``, ``"12,50"``) into minor units.

    Raises ``ValueError`` for anything that is not a positive amount with at most
    the currency's number of decimals.
    """
    cleaned = text.strip().replace(" ", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"not a positive amount: {text!r}")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"too many decimals for {currency}: {text!r}")
    return int(scaled)


def format_minor(minor: int, currency: str) -> str:
    """``1234, "USD"`` → ``"$12.34"``; unknown currencies get a code suffix."""
    digits = exponent(currency)
    amount = from_minor(minor, currency)
    text = f"{amount:,.{digits}f}"
    symbol = _SYMBOLS.get(currency.upper())
    if symbol:
        return f"{symbol}{text}" if currency.upper() != "XTR" else f"{text} {symbol}"
    return f"{text} {currency.upper()}"
