"""Exact money: shop amounts are integer minor units, panel amounts are ``Decimal``.

Nothing in the product turns money into ``float``. Conversions between a decimal
amount and minor units always name their rounding, because the direction matters:
prices round up (the shop never undercharges), refunds round down (it never
refunds more than it was paid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError

from bot.panel.order_types import N_, FieldError

# ISO 4217 exponents that differ from the usual 2; XTR is Telegram Stars.
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "XTR": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3,
    "TND": 3,
}

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


@dataclass(frozen=True, slots=True)
class Money:
    """An amount to show later, in whatever locale reads it (bot/shop/money/formatting.py)."""

    minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Percent:
    """A percent to show later: 5%, 5 %, %5 as the reader's locale writes it."""

    value: Decimal


MAX_AMOUNT_MINOR = 10**10  # the largest amount anyone may type: $100,000,000.00
MAX_AMOUNT_TEXT = 32
_SPACES = "[ \u00a0\u202f]"  # a space, a no-break space, a narrow no-break space
# Groups of thousands start with 1-9: nobody writes "0,500" for five hundred.
_SPACED = re.compile(rf"^[1-9]\d{{0,2}}(?:{_SPACES}\d{{3}})+(?:[.,]\d+)?$")
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")


class AmountError(FieldError):
    """What is wrong with a typed amount, as a translatable message with its example."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__("amount", message, **params)


DEFAULT_LOCALE = "en"


@lru_cache(maxsize=64)
def babel_locale(name: str | None) -> Locale:
    """The Babel locale for a shop locale name; English for anything unknown."""
    try:
        return Locale.parse(name or DEFAULT_LOCALE)
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(DEFAULT_LOCALE)


@lru_cache(maxsize=32)
def separators(lang: str | None) -> tuple[str, str]:
    """(decimal sign, group sign) of a locale, as CLDR has them (a space-like group
    sign is given as a space)."""
    symbols = babel_locale(lang).number_symbols.get("latn", {})
    decimal, group = symbols.get("decimal", "."), symbols.get("group", ",")
    return decimal, " " if group.isspace() else group


def parse_amount(text: str, currency: str, lang: str | None = "en") -> int:
    """Parse an amount a person typed into minor units of ``currency``.

    The one reader of typed amounts (admins' credits and debits; the amount a
    customer types for a Stars top-up). ASCII digits, with the reader's locale
    deciding what a separator means, so that no text has two readings:

    * spaces (also no-break ones) group thousands anywhere: ``1 000``, ``1 000,50``;
    * the locale's decimal sign is the decimal point: ``7.50`` in en, ``7,50`` in ru/tr;
    * the locale's group sign between groups of three digits groups them:
      ``1,000`` in en, ``1.000`` in tr; with a decimal part after it:
      ``1,234.50`` (en), ``1.234,50`` (tr);
    * the other sign is a decimal point too (``7,50`` in en, ``7.50`` in tr), except
      when exactly three digits follow it in a two-decimal currency (``1.000`` in
      ru, where ``.`` is neither sign): that could be a thousand or one, so it is
      refused with an example rather than guessed.

    Exponents, other digits (``²``, ``١``), zero, negatives, more decimals than the
    currency has, and more than ``MAX_AMOUNT_MINOR`` are refused. Raises ``AmountError``.
    """
    raw = text.strip()
    digits = exponent(currency)
    example = _example(currency, lang)
    if not raw or len(raw) > MAX_AMOUNT_TEXT:
        raise AmountError(N_("Please send an amount as a number, like {example}."),
                          example=example)
    if _SPACED.match(raw):
        raw = re.sub(_SPACES, "", raw)
    if not (raw.isascii() and _NUMBER.match(raw)):
        raise AmountError(N_("Please send an amount as a number, like {example}."),
                          example=example)
    decimal, group = separators(lang)
    ambiguous = AmountError(N_("Please write the amount without thousands separators, "
                               "like {example}."), example=example)
    marks = {mark for mark in ".," if mark in raw}
    whole, decimals = raw, ""
    if len(marks) == 2:
        match = (re.fullmatch(rf"([1-9]\d{{0,2}}(?:{re.escape(group)}\d{{3}})+){re.escape(decimal)}(\d+)",
                              raw) if group in ".," else None)
        if match is None:
            raise ambiguous
        whole, decimals = match.group(1).replace(group, ""), match.group(2)
    elif marks:
        mark = marks.pop()
        if mark == group and re.fullmatch(rf"[1-9]\d{{0,2}}(?:{re.escape(group)}\d{{3}})+", raw):
            whole = raw.replace(group, "")
        elif raw.count(mark) == 1:
            whole, decimals = raw.split(mark)
            if mark != decimal and len(decimals) == 3 and digits != 3:
                raise ambiguous
        else:
            raise ambiguous
    if len(decimals) > digits:
        raise AmountError(N_("At most {digits} digits after the decimal point, like {example}."),
                          digits=digits, example=example)
    minor = int(Decimal(f"{whole}.{decimals or 0}").scaleb(digits))
    if minor <= 0:
        raise AmountError(N_("The amount must be more than zero."))
    if minor > MAX_AMOUNT_MINOR:
        raise AmountError(N_("The largest amount is {maximum}."),
                          maximum=Money(MAX_AMOUNT_MINOR, currency))
    return minor


# A group of thousands as the next word of an admin's "AMOUNT reason" (its decimals with it).
_NEXT_GROUP = re.compile(r"[0-9]{3}(?:[.,][0-9]+)?")


class SpacedAmount(AmountError):
    """An amount typed across words (``1 000 bonus``); ``typed`` is those words."""

    def __init__(self, typed: str, example: str) -> None:
        super().__init__(N_("Write the amount as one number without spaces, like {example}, "
                            "then the reason."), example=example)
        self.typed = typed


def refuse_spaced_amount(amount_text: str, rest: str, currency: str,
                         lang: str | None = "en") -> None:
    """Raise ``SpacedAmount`` when an admin's ``AMOUNT reason`` goes on with a group
    of exactly three digits after the amount's word (``1 000 bonus``, ``12 500``):
    read as written it would be 1 with the reason "000 bonus", a thousand times too
    little, so it is refused rather than guessed. The amount is one word; the
    example is the admin's number written as one (in their locale's reading), or
    the usual example when that is no amount either."""
    words = rest.split()
    if not (amount_text.isascii() and amount_text.isdigit()
            and words and _NEXT_GROUP.fullmatch(words[0])):
        return
    groups = [amount_text]
    for word in words:
        if not _NEXT_GROUP.fullmatch(word):
            break
        groups.append(word)
        if len(word) > 3:  # decimals end the number
            break
    joined = "".join(groups)
    try:
        parse_amount(joined, currency, lang)
        example = joined
    except AmountError:
        example = _example(currency, lang)
    raise SpacedAmount(" ".join(groups), example)


def _example(currency: str, lang: str | None) -> str:
    if exponent(currency) == 0:
        return "1000"
    return f"1000{separators(lang)[0]}{'5'.ljust(exponent(currency), '0')}"
