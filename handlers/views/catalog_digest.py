"""The admins' catalog digest (bot/shop/routing/changes.py), in the reading admin's
language: written when the outbox row is sent, from the data it stored."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from html import escape

from aiogram.utils.i18n import gettext as _

from bot.shop.routing.changes import KINDS, Digest, Told
from handlers.views.text import number, panel_amount, panel_text, percent

DIGEST_NAME_LIMIT = 40  # a digest lists up to 35 services: short names keep it one message


def _headings() -> dict[str, str]:
    return {
        "added": _("🆕 Added: {n}"),
        "removed": _("🗑 Withdrawn by the panel: {n}"),
        "cost_up": _("🔺 Cost up: {n}"),
        "cost_down": _("🔻 Cost down: {n}"),
        "backup_gone": _("🔗 Backup withdrawn (the link stays, unused): {n}"),
        "hidden_at_loss": _("📉 Hidden, it would sell below its cost: {n}"),
        "shown_again": _("✅ Shown again, no longer at a loss: {n}"),
    }


def _rate(text: str | None, currency: str) -> str:
    return escape(panel_amount(Decimal(text), currency)) if text is not None else "?"


def _line(item: Told) -> str:
    ref = f"#{item.service_ref}" if item.service_ref is not None else ""
    head = f"{ref} {panel_text(item.name, DIGEST_NAME_LIMIT)} ({escape(item.panel)})"
    if item.linked:
        head = "🔗 " + head
    if item.kind in ("cost_up", "cost_down") and item.old_rate and item.new_rate:
        old, new = Decimal(item.old_rate), Decimal(item.new_rate)
        change = ((new - old) * 100 / old).quantize(Decimal("0.1"), ROUND_HALF_UP) if old else None
        moved = _("{old} → {new} per 1000").format(old=_rate(item.old_rate, item.currency),
                                                   new=_rate(item.new_rate, item.currency))
        if change is not None:
            moved += f" ({'+' if change > 0 else '−'}{percent(abs(change))})"
        return f"• {head}: {moved}"
    if item.kind in ("removed", "hidden_at_loss", "shown_again"):
        rate = item.old_rate if item.kind == "removed" else item.new_rate
        if rate is not None:
            return "• " + _("{service}: {rate} per 1000").format(
                service=head, rate=_rate(rate, item.currency))
    return f"• {head}"


def digest_text(digest: Digest) -> str:
    lines = [_("📣 A linked service's cost moved. What the panels changed:") if digest.urgent
             else _("🗂 What the panels changed since the last digest:")]
    headings = _headings()
    for kind in KINDS:
        count = digest.counts.get(kind, 0)
        if not count:
            continue
        listed = [item for item in digest.items if item.kind == kind]
        lines.append("")
        lines.append(f"<b>{headings[kind].format(n=number(count))}</b>")
        lines += [_line(item) for item in listed]
        if count > len(listed):
            lines.append(_("… and {n} more").format(n=number(count - len(listed))))
    return "\n".join(lines)
