"""A balance movement in the reader's words (the customer's balance history, the
admin's customer card)."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _


def ledger_kind(kind: str, order_id: int | None) -> str:
    """What a balance movement was, in the reader's words."""
    words = {
        "order": _("Order #{id}"), "refund": _("Refund for order #{id}"),
        "topup": _("⭐ Top-up"), "topup_refund": _("⭐ Top-up refunded"),
        "credit": _("Added by the shop"), "debit": _("Taken by the shop"),
        "referral": _("🎁 Reward for inviting a friend"),
        "referral_clawback": _("🎁 Invite reward of a refunded top-up"),
    }
    return words[kind].format(id=order_id) if kind in words else escape(kind)
