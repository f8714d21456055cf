"""Promo codes in the reader's words: a customer's redemption (``redemption_text``,
wherever the code was typed: /promo, the balance screen, an order's confirmation),
an admin's refusal, and a code's terms, uses and state for the admin's screens."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.shop.growth.promo_codes import Outcome, PromoCode, PromoRefused, Redemption
from bot.shop.money import formatting
from handlers.views.text import current_locale, field_error, money, number, percent


def _discount(percent_off: Decimal | None, min_order_minor: int, currency: str) -> str:
    if min_order_minor:
        return _("{percent} off the next order (orders from {minimum})").format(
            percent=percent(percent_off or Decimal(0)), minimum=money(min_order_minor, currency))
    return _("{percent} off the next order").format(percent=percent(percent_off or Decimal(0)))


def redemption_text(redemption: Redemption) -> str:
    """What a customer's code did, or why it did nothing, in one message."""
    code = f"<b>{escape(redemption.code)}</b>"
    currency = redemption.currency
    match redemption.outcome:
        case Outcome.CREDITED:
            return _("🎟 Code {code}: {amount} added to your balance. Your balance is now "
                     "{balance}.").format(code=code, amount=money(redemption.amount_minor, currency),
                                          balance=money(redemption.balance_minor or 0, currency))
        case Outcome.ATTACHED | Outcome.REPLACED:
            text = _("🎟 Code {code} applied: {discount}.").format(
                code=code, discount=_discount(redemption.percent, redemption.min_order_minor,
                                              currency))
            if redemption.replaced:
                text += "\n" + _("It takes the place of code {old}, which no longer "
                                 "applies.").format(old=f"<b>{escape(redemption.replaced)}</b>")
            return text
        case Outcome.INVALID:
            return _("“{typed}” is not a promo code: a code is 3 to 32 letters, digits, _ or -, "
                     "like SPRING10.").format(typed=escape(redemption.code))
        case Outcome.UNKNOWN:
            return _("There is no promo code {code}. Check its spelling and send it "
                     "again.").format(code=code)
        case Outcome.DISABLED:
            return _("Code {code} has been turned off by the shop; it no longer "
                     "works.").format(code=code)
        case Outcome.EXPIRED:
            return _("Code {code} has expired.").format(code=code)
        case Outcome.USED_UP:
            return _("Code {code} has been used up: all its uses are taken.").format(code=code)
        case Outcome.TOO_MANY_TRIES:
            return ngettext("Too many codes that don't exist. Try again in {count} minute.",
                            "Too many codes that don't exist. Try again in {count} minutes.",
                            redemption.wait_minutes).format(count=number(redemption.wait_minutes))
        case Outcome.ALREADY_USED:
            if redemption.per_user == 1:
                return _("You have used code {code} already; it works once for each "
                         "customer.").format(code=code)
            return ngettext("You have used code {code} {count} time, as many times as it works "
                            "for one customer.",
                            "You have used code {code} {count} times, as many times as it works "
                            "for one customer.", redemption.per_user).format(
                                code=code, count=number(redemption.per_user))
    return escape(redemption.code)


def refusal_text(refusal: PromoRefused) -> str:
    """Why an admin's new code was not made, as HTML (what they typed is escaped)."""
    text = field_error(refusal)
    if refusal.cause is not None:
        text += " " + field_error(refusal.cause)
    return "⚠️ " + escape(text)


# ------------------------------------------------------------ the admin's

def code_terms(code: PromoCode, currency: str) -> str:
    if code.amount_minor is not None:
        return _("{amount} to the balance").format(amount=money(code.amount_minor, currency))
    return _discount(code.percent, code.min_order_minor, currency)


def code_state(code: PromoCode, expired: bool) -> str:
    if code.disabled_at is not None:
        return _("⛔ turned off")
    if expired:
        return _("⌛ expired")
    if code.used_up:
        return _("🚫 used up")
    return _("✅ on")


def code_uses(code: PromoCode) -> str:
    if code.max_uses is None:
        return _("used {uses} (no limit)").format(uses=number(code.uses))
    return _("used {uses} of {limit}").format(uses=number(code.uses),
                                             limit=number(code.max_uses))


def code_expiry(code: PromoCode, zone: ZoneInfo) -> str:
    if code.expires_at is None:
        return _("never expires")
    moment = datetime.fromtimestamp(code.expires_at, UTC)
    return _("until {date}").format(date=formatting.moment(moment, current_locale(), zone))


def code_line(code: PromoCode, currency: str, zone: ZoneInfo, expired: bool) -> str:
    """A code in the admin's list."""
    return " · ".join([f"<b>{escape(code.code)}</b>", code_terms(code, currency),
                       code_uses(code), code_expiry(code, zone), code_state(code, expired)])


def code_card(code: PromoCode, currency: str, zone: ZoneInfo, expired: bool) -> str:
    """A code's screen in the admin panel."""
    return "\n".join([
        _("<b>🎟 Promo code {code}</b>").format(code=escape(code.code)),
        code_terms(code, currency),
        code_uses(code),
        _("{count} per customer").format(count=number(code.per_user)),
        code_expiry(code, zone),
        code_state(code, expired),
    ])
