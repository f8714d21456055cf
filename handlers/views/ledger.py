"""A balance movement in the reader's words (the customer's balance history, the
admin's customer card)."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _

from bot.shop.catalog.pricing import Discount
from bot.shop.growth.loyalty import Standing
from handlers.views.text import money, percent


def ledger_kind(kind: str, order_id: int | None) -> str:
    """What a balance movement was, in the reader's words."""
    words = {
        "order": _("Order #{id}"), "refund": _("Refund for order #{id}"),
        "topup": _("⭐ Top-up"), "topup_refund": _("⭐ Top-up refunded"),
        "credit": _("Added by the shop"), "debit": _("Taken by the shop"),
        "promo": _("🎟 Promo code"),
        "referral": _("🎁 Reward for inviting a friend"),
        "referral_clawback": _("🎁 Invite reward of a refunded top-up"),
    }
    return words[kind].format(id=order_id) if kind in words else escape(kind)


def loyalty_lines(standing: Standing, currency: str) -> list[str]:
    """The customer's loyalty tier and what the next one needs (the balance screen)."""
    lines = [""]
    if standing.tier is not None:
        lines.append(_("🏅 Loyalty discount: <b>{percent}</b> off every order.").format(
            percent=percent(standing.tier.percent)))
    if standing.next_tier is not None:
        lines.append(_("Spend {amount} more on orders to get {percent} off.").format(
            amount=money(standing.missing_minor, currency),
            percent=percent(standing.next_tier.percent)))
    return lines


def waiting_code_line(code: Discount, currency: str) -> str:
    """The discount code attached to the customer's next order (the balance screen)."""
    if code.min_order_minor:
        return _("🎟 Code {code} waits for your next order: {percent} off orders from"
                 " {minimum}.").format(code=f"<code>{escape(code.code)}</code>",
                                       percent=percent(code.percent),
                                       minimum=money(code.min_order_minor, currency))
    return _("🎟 Code {code} waits for your next order: {percent} off.").format(
        code=f"<code>{escape(code.code)}</code>", percent=percent(code.percent))
