"""The audit log's lines in the reading admin's language (the log screen and the
customer card): bot/shop/backoffice/audit.py reads a row's stored English values
back into words and values; these translate the words and format the values."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.shop.backoffice.audit import AuditEntry, Part, Phrase, read
from bot.shop.money import formatting
from handlers.views.text import current_locale, short, shown, when

VALUE_LIMIT = 60  # characters of a value shown as stored (a key's hint, an admin's reason)
NOTE_LIMIT = 80
NUMBERED = ("order", "service", "category", "broadcast")  # the shop's own ids, written #7


def action_word(action: str) -> str:
    words = {"credit": _("credit"), "debit": _("debit"), "block": _("block"),
             "unblock": _("unblock"), "markup": _("markup"), "hide": _("hide"), "show": _("show"),
             "attach": _("attach panel id"), "refund_order": _("refund order"),
             "broadcast": _("broadcast"), "broadcast_cancel": _("cancel broadcast"),
             "refund_stars": _("refund Stars"), "catalog_refresh": _("refresh catalog"),
             "promo_new": _("created"), "promo_off": _("turned off"),
             "referral_payout": _("referral reward"),
             "referral_clawback": _("referral reward taken back"),
             "referral_given_back": _("referral reward given back"),
             "referrals_off": _("referrals off"), "referrals_on": _("referrals on"),
             "route_link": _("link a backup"), "route_unlink": _("unlink a backup"),
             "api_key_create": _("API key created"), "api_key_rotate": _("API key replaced"),
             "api_key_revoke": _("API key revoked"), "api_off": _("API access off"),
             "api_on": _("API access on")}
    return words.get(action, escape(action))


def target_words(entry: AuditEntry) -> str:
    """What the action was on: a customer 42, an order 7… The shop's own targets have
    no id worth showing (a global markup, the catalog's refresh)."""
    if entry.target_kind == "shop":
        return _("for the whole shop") if entry.action == "markup" else ""
    target = escape(short(entry.target_id, 40))
    if entry.target_kind in NUMBERED:
        target = f"#{target}"
    if entry.target_kind == "broadcast":
        return target  # its actions say it is a broadcast
    words = {"user": _("customer"), "order": _("order"), "payment": _("payment"),
             "service": _("service"), "category": _("category"), "promo": _("promo code")}
    return f"{words.get(entry.target_kind, escape(entry.target_kind))} {target}"


def _part(part: object, zone: ZoneInfo, limit: int) -> str:
    """One part of a value as HTML: words translated, values formatted, text escaped."""
    if isinstance(part, Phrase):
        return _(part.message).format(**{name: _part(value, zone, limit)
                                         for name, value in part.params.items()})
    if isinstance(part, datetime):
        return formatting.moment(part, current_locale(), zone)
    if isinstance(part, str):
        return escape(short(part, limit))
    return escape(shown(part))


def _value(parts: tuple[Part, ...], zone: ZoneInfo, limit: int = VALUE_LIMIT) -> str:
    return "".join(_part(part, zone, limit) for part in parts)


def audit_line(entry: AuditEntry, currency: str, zone: ZoneInfo) -> str:
    """A row as a line: when, who, what on what, before → after, and its note
    (``currency``: the shop's; times in ``zone``)."""
    reading = read(entry, currency)
    change = ""
    if reading.before or reading.after:
        change = f" · {_value(reading.before, zone)} → {_value(reading.after, zone)}".replace(
            " ·  → ", " · → ")
    note = ""
    if reading.note:
        text = _value(reading.note, zone, NOTE_LIMIT)
        own_words = len(reading.note) == 1 and isinstance(reading.note[0], str)
        note = f" · “{text}”" if own_words else f" · {text}"
    target = target_words(entry)
    return (f"{when(entry.created_at, zone)} · {entry.admin_id} · <b>{action_word(entry.action)}</b>"
            f"{' ' + target if target else ''}{change}{note}")
