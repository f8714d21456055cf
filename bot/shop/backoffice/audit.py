"""What the audit log records, and reading it back.

Every admin action is one row (storage/audit.py), written by the service that
makes the change, in the same transaction: who, what, on what, before → after.
The actions:

- ``credit`` / ``debit``: a balance changed by an admin (target: user; note: the reason)
- ``block`` / ``unblock``: a customer refused service or let back (target: user)
- ``markup``: a markup set or cleared (target: shop, category or service)
- ``hide`` / ``show``: a service or a category taken off sale or put back
- ``attach`` / ``refund_order``: an ``unknown`` order resolved (target: order)
- ``broadcast`` / ``broadcast_cancel``: a broadcast sent or stopped (target: broadcast)
- ``refund_stars``: a Stars payment given back (target: payment)
- ``catalog_refresh``: the catalog refreshed from the panels on an admin's request
- ``promo_new`` / ``promo_off``: a promo code made (target: promo; after: its terms) or
  turned off
- ``referral_payout``: a referral commission paid on a Stars top-up (target: the
  referrer; admin 0, the system; note: level, percent, payer, charge)
- ``referral_clawback``: a commission taken back with its refunded top-up (target: the
  referrer; admin: who refunded, 0 for the reconciliation; note: taken, written off)
- ``referral_given_back``: a clawback given back, the refund having not happened
- ``referrals_off`` / ``referrals_on``: a referrer's commissions stopped or resumed
- ``route_link`` / ``route_unlink``: a backup on another panel linked to a service or
  unlinked (target: the service; after/before: the backup as PANEL:SERVICE; admin 0:
  the command line)
- ``api_key_create`` / ``api_key_rotate`` / ``api_key_revoke``: a customer made their
  wholesale API key, replaced it or revoked it in the chat (/api; admin: the customer
  themselves; after/before: the key's last characters, never the key)
- ``api_off`` / ``api_on``: an admin turned a customer's API access off or on again
  (target: user; before → after: on/off)

The rows keep what the services wrote, in English (``$1,059.67``, ``30 %``,
``all: 12 queued, 0 skipped``). ``read`` turns a row's values back into words
to translate and values to format (``Phrase``, ``Money``, ``Percent``, a time), so
each admin reads the log in their language; what it does not recognise (an
admin's own reason, a key's last characters, PANEL:SERVICE) is shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache

from bot.panel.order_types import N_
from bot.shop.money.amounts import Money, Percent, exponent
from bot.shop.money.formatting import money
from storage import audit as audit_store
from storage.audit import AuditEntry
from storage.db import Database

__all__ = ["ACTIONS", "AuditEntry", "AuditLog", "Part", "Phrase", "Reading", "read"]

ACTIONS = ("credit", "debit", "block", "unblock", "markup", "hide", "show", "attach",
           "refund_order", "broadcast", "broadcast_cancel", "refund_stars", "catalog_refresh",
           "promo_new", "promo_off",
           "referral_payout", "referral_clawback", "referral_given_back", "referrals_off",
           "referrals_on", "route_link", "route_unlink", "api_key_create", "api_key_rotate",
           "api_key_revoke", "api_off", "api_on")


class AuditLog:
    """The audit log of this shop's database, for reading back: bound once at
    start-up, so the admin screens never hold the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(self, limit: int, offset: int = 0) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and how many there are in all."""
        return await audit_store.recent(self.db, limit, offset)

    async def about(self, target_kind: str, target_id: object,
                    limit: int = 5) -> list[AuditEntry]:
        return await audit_store.about(self.db, target_kind, target_id, limit)


# ------------------------------------------------------------ reading a row back

@dataclass(frozen=True, slots=True)
class Phrase:
    """Words to translate (an English message id) and the values that fill them."""

    message: str
    params: Mapping[str, object] = field(default_factory=dict)


# A piece of a value: words, an amount, a percent, a UTC time, or text as stored.
Part = Phrase | Money | Percent | datetime | str


@dataclass(frozen=True, slots=True)
class Reading:
    """A row's before, after and note, each as the parts it reads as, in order."""

    before: tuple[Part, ...]
    after: tuple[Part, ...]
    note: tuple[Part, ...]


# The single words the services store as a before or after value.
_WORDS = {"blocked": N_("blocked"), "active": N_("active"), "on": N_("on"), "off": N_("off"),
          "inherited": N_("inherited"), "running": N_("running"), "paid": N_("paid"),
          "refund_uncertain": N_("refund uncertain"), "refunded": N_("refunded"),
          "stray": N_("credited nothing"), "unknown": N_("unknown")}
_AUDIENCES = {"all": N_("everyone"), "active": N_("active in 30 days")}

# What the services write (before, after or note, whole or one "; "/", " part of
# one), and the words it reads as; None: the value alone, formatted. A
# placeholder's kind is its name's (_KINDS); any other name is text as stored.
_FORMS: tuple[tuple[str, str | None], ...] = (
    ("{amount}", None),
    ("{percent} %", None),
    ("pending, panel order {panel_id}", N_("pending, panel order {panel_id}")),
    ("failed, {refund} refunded", N_("failed, {refund} refunded")),
    ("{audience}: {queued} queued, {skipped} skipped",
     N_("{audience}: {queued} queued, {skipped} skipped")),
    ("canceled: {count} not sent", N_("canceled: {count} not sent")),
    ("added {added}, changed {changed}, withdrawn {withdrawn}",
     N_("added {added}, changed {changed}, withdrawn {withdrawn}")),
    ("{panel} failed", N_("{panel} did not answer")),
    ("not on the panel", N_("not on the panel")),
    ("balance {amount}", N_("balance {amount}")),
    ("discount {percent}%", N_("discount {percent}")),
    ("orders from {amount}", N_("orders from {amount}")),
    ("{uses} uses", N_("uses: {uses}")),
    ("unlimited uses", N_("unlimited uses")),
    ("{per_user} per customer", N_("per customer: {per_user}")),
    ("expires {expiry}", N_("expires {expiry}")),
    ("user {user}, {stars} Stars", N_("customer {user}, {stars} ⭐")),
    ("Telegram asked", N_("Telegram asked")),
    ("Telegram refunded", N_("Telegram refunded")),
    ("Telegram had refunded it already", N_("Telegram had refunded it already")),
    ("Telegram refused the refund", N_("Telegram refused the refund")),
    ("Telegram refused the refund asked again: {error}",
     N_("Telegram refused the refund asked again: {error}")),
    ("Telegram refunded it, asked again", N_("Telegram refunded it, asked again")),
    ("reconciliation: Telegram lists the refund", N_("reconciliation: Telegram lists the refund")),
    ("reconciliation: Telegram lists no refund", N_("reconciliation: Telegram lists no refund")),
    ("level {level}: {percent}% of user {user}'s top-up of {amount} (charge {charge})",
     N_("level {level}: {percent} of customer {user}'s top-up of {amount} (charge {charge})")),
    ("level {level} commission of charge {charge} ({amount}): top-up refunded; {taken} taken "
     "back, {written_off} written off (spent already)",
     N_("level {level} commission of charge {charge} ({amount}): top-up refunded; {taken} "
        "taken back, {written_off} written off (spent already)")),
    ("level {level} commission of charge {charge}: the top-up's refund did not happen",
     N_("level {level} commission of charge {charge}: the top-up's refund did not happen")),
    ("backup #{ref}", N_("backup #{ref}")),
)
_MONEY = ("amount", "taken", "written_off")
_NUMBERS = ("queued", "skipped", "count", "added", "changed", "withdrawn", "stars", "level",
            "uses", "per_user")
_KINDS = {**dict.fromkeys(_MONEY, "money"), **dict.fromkeys(_NUMBERS, r"\d{1,18}"),
          "percent": r"-?\d{1,6}(?:\.\d{1,6})?", "refund": r"\d{1,18}",
          "audience": "|".join(_AUDIENCES), "expiry": r"\d{4}-\d\d-\d\d \d\d:\d\d UTC",
          "error": ".+"}
_TEXT = "[^;]+?"  # an id or a name: never across a "; " that ends a part
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# An admin's own words, never read as anything else.
_FREE_NOTES = ("credit", "debit", "broadcast")


@cache
def _money_pattern(currency: str) -> str:
    """How the log writes an amount of ``currency`` (English, as ``money`` does)."""
    example = money(123456, currency)
    first = next(i for i, c in enumerate(example) if c.isdigit())
    last = max(i for i, c in enumerate(example) if c.isdigit())
    return (rf"-?{re.escape(example[:first])}\d{{1,3}}(?:,\d{{3}})*(?:\.\d+)?"
            rf"{re.escape(example[last + 1:])}")


@cache
def _patterns(currency: str) -> tuple[tuple[re.Pattern[str], str | None], ...]:
    def compiled(form: str) -> re.Pattern[str]:
        pieces, at = [], 0
        for slot in _PLACEHOLDER.finditer(form):
            name = slot.group(1)
            kind = _KINDS.get(name, _TEXT)
            pieces += [re.escape(form[at:slot.start()]),
                       f"(?P<{name}>{_money_pattern(currency) if kind == 'money' else kind})"]
            at = slot.end()
        return re.compile("".join([*pieces, re.escape(form[at:])]))
    return tuple((compiled(form), message) for form, message in _FORMS)


def _amount(text: str, currency: str) -> Money | None:
    """An amount as the log wrote it, if it reads back to exactly that."""
    try:
        value = Decimal(re.sub(r"[^\d.-]", "", text))
    except InvalidOperation:
        return None
    minor = int(value.scaleb(exponent(currency)))
    return Money(minor, currency) if money(minor, currency) == text else None


def _value(name: str, text: str, currency: str) -> object | None:
    kind = _KINDS.get(name)
    if kind == "money":
        return _amount(text, currency)
    if name == "refund":
        return Money(int(text), currency)
    if name == "percent":
        return Percent(Decimal(text))
    if name == "audience":
        return Phrase(_AUDIENCES[text])
    if name == "expiry":
        return datetime.strptime(text, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    return int(text) if name in _NUMBERS else text


def _one(text: str, currency: str) -> Part | None:
    """A stored value (or a part of one) as words and values; None: not a known form."""
    if text in _WORDS:
        return Phrase(_WORDS[text])
    for pattern, message in _patterns(currency):
        found = pattern.fullmatch(text)
        if found is None:
            continue
        params = {name: _value(name, value, currency) for name, value in found.groupdict().items()}
        if None in params.values():
            continue  # an amount that does not read back: not this form
        if message is None:
            [alone] = params.values()
            return alone  # type: ignore[return-value]
        return Phrase(message, params)
    return None


def read_value(text: str, currency: str) -> tuple[Part, ...]:
    """A stored value: whole, else by its "; " and ", " parts; unknown parts as stored."""
    if not text:
        return ()
    whole = _one(text, currency)
    if whole is not None:
        return (whole,)
    parts: list[Part] = []
    for i, piece in enumerate(text.split("; ")):
        parts += ["; "] if i else []
        found = _one(piece, currency)
        terms = [_one(term, currency) for term in piece.split(", ")]
        if found is None and len(terms) > 1 and None not in terms:
            for j, term in enumerate(terms):
                parts += [", ", term] if j else [term]  # type: ignore[list-item]
        else:
            parts.append(piece if found is None else found)
    return tuple(parts)


def read(entry: AuditEntry, currency: str) -> Reading:
    """A row's values as words and values (``currency``: the shop's, which its amounts
    are in); an admin's reason and a broadcast's text stay as they were written (the
    reason /credit and /debit write when none is given, the command's name, says
    nothing the action does not)."""
    if entry.action in _FREE_NOTES:
        note: tuple[Part, ...] = (entry.note,) if entry.note and entry.note != entry.action else ()
    else:
        note = read_value(entry.note, currency)
    return Reading(read_value(entry.before, currency), read_value(entry.after, currency), note)
