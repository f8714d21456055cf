"""The audit log read back for each admin's language (bot/shop/backoffice/audit.py):
each value the services write reads as words to translate and values to format;
what it does not know stays exactly as stored. Screens in ru and tr:
tests/test_languages.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.shop.backoffice.audit import AuditEntry, Phrase, read, read_value
from bot.shop.catalog.admin import logged_percent
from bot.shop.money.amounts import Money, Percent
from bot.shop.money.formatting import money

# What the services write (their f-strings, with values filled in).
WRITTEN = [
    money(105967, "USD"), logged_percent(Decimal("12.5")), "inherited", "blocked", "active",
    "on", "off", "running", "paid", "refund_uncertain", "refunded", "stray", "unknown",
    "pending, panel order 77", "failed, 330 refunded", "all: 3 queued, 1 skipped",
    "active: 0 queued, 0 skipped", "canceled: 12 not sent",
    "added 1, changed 2, withdrawn 0; main failed; backup failed",
    "not on the panel", "balance $5.00, 100 uses, 1 per customer, expires 2026-01-02 10:00 UTC",
    "discount 10%, orders from $5.00, unlimited uses, 2 per customer",
    "user 42, 250 Stars; Telegram asked", "user 42, 250 Stars", "Telegram refunded",
    "Telegram had refunded it already", "Telegram refused the refund",
    "Telegram refused the refund asked again: CHARGE_NOT_FOUND; odd", "Telegram refunded it, asked again",
    "reconciliation: Telegram lists the refund", "reconciliation: Telegram lists no refund",
    "level 1: 10% of user 102's top-up of $10.00 (charge stxEMU1)",
    "level 2 commission of charge stxEMU1 ($0.50): top-up refunded; $0.20 taken back,"
    " $0.30 written off (spent already)",
    "level 1 commission of charge stxEMU1: the top-up's refund did not happen", "backup #5",
]
SEPARATORS = ("; ", ", ")


def test_every_value_the_services_write_reads_as_words_and_values() -> None:
    for text in WRITTEN:
        parts = read_value(text, "USD")
        assert parts and all(not isinstance(part, str) or part in SEPARATORS
                             for part in parts), (text, parts)


def test_values_read_back_exactly() -> None:
    assert read_value("$1,059.67", "USD") == (Money(105967, "USD"),)
    assert read_value("₽1,234.50", "RUB") == (Money(123450, "RUB"),)
    assert read_value("1,250 ⭐", "XTR") == (Money(1250, "XTR"),)
    assert read_value("30 %", "USD") == (Percent(Decimal(30)),)
    [promo] = read_value("expires 2026-01-02 10:00 UTC", "USD")
    assert promo == Phrase("expires {expiry}",
                           {"expiry": datetime(2026, 1, 2, 10, 0, tzinfo=UTC)})
    [broadcast] = read_value("all: 3 queued, 1 skipped", "USD")
    assert broadcast == Phrase("{audience}: {queued} queued, {skipped} skipped",
                               {"audience": Phrase("everyone"), "queued": 3, "skipped": 1})


def test_what_is_not_known_stays_as_stored() -> None:
    # An amount that does not read back to itself (another currency, a cut one), a
    # key's last characters, a backup as PANEL:SERVICE.
    for text in ("€5.00", "$1,059.6", "$1,05.00", "…abcd", "main:101", "1,000 ⭐"):
        assert read_value(text, "USD") == (text,)
    entry = AuditEntry(1, 7, "credit", "user", "42", "$1.00", "$2.00", "on", "")
    assert read(entry, "USD").note == ("on",)  # an admin's reason is their own words
    assert read(entry.__class__(1, 7, "debit", "user", "42", "", "", "debit", ""),
                "USD").note == ()  # the reason /debit writes when none is given


@given(st.text(max_size=80))
def test_any_text_is_read_whole_or_kept_whole(text: str) -> None:
    parts = read_value(text, "USD")
    if all(isinstance(part, str) for part in parts):
        assert "".join(parts) == text  # type: ignore[arg-type]
