"""Stars top-ups and the payments that named none. Writers take the caller's
transaction connection, so a top-up is marked paid in the same transaction as
its ledger credit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from storage.db import NOW, Database, first, run


@dataclass(frozen=True, slots=True)
class Topup:
    id: int
    payload: str
    user_id: int
    amount_minor: int
    currency: str
    stars: int
    state: str  # pending | paid | refund_uncertain | refunded
    charge_id: str | None
    expires_at: float
    created_at: str
    refund_requested_at: float | None = None  # unix time Telegram was last asked to refund


_COLUMNS = ("id, payload, user_id, amount_minor, currency, stars, state, charge_id, expires_at,"
            " created_at, refund_requested_at")


def _topup(row: Sequence) -> Topup:
    return Topup(int(row[0]), row[1], int(row[2]), int(row[3]), row[4], int(row[5]), row[6],
                 row[7], float(row[8]), row[9], None if row[10] is None else float(row[10]))


async def create(db: Database, *, payload: str, user_id: int, amount_minor: int, currency: str,
                 stars: int, expires_at: float, now: float, pending_max: int) -> Topup | None:
    """A pending top-up, unless the customer has ``pending_max`` unpaid, unexpired ones
    already (``None``: nothing was made). The count and the insert are one statement,
    so one transaction: a burst of taps cannot pass the cap between them."""
    rows = await db.write(
        "INSERT INTO topups (payload, user_id, amount_minor, currency, stars, expires_at)"
        " SELECT ?, ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM topups"
        "  WHERE user_id = ? AND state = 'pending' AND expires_at > ?) < ?"
        f" RETURNING {_COLUMNS}",
        (payload, user_id, amount_minor, currency, stars, expires_at, user_id, now, pending_max))
    return _topup(rows[0]) if rows else None


async def discard_pending(db: Database, topup_id: int) -> None:
    """Delete a pending top-up that no invoice names (never one paid or refunded)."""
    await db.write("DELETE FROM topups WHERE id = ? AND state = 'pending'", (topup_id,))


async def by_payload(db: Database, payload: str) -> Topup | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM topups WHERE payload = ?", (payload,))
    return _topup(row) if row else None


async def by_charge(target: Database | aiosqlite.Connection, charge_id: str) -> Topup | None:
    sql, params = f"SELECT {_COLUMNS} FROM topups WHERE charge_id = ?", (charge_id,)
    row = (await target.fetchone(sql, params) if isinstance(target, Database)
           else await first(target, sql, params))
    return _topup(row) if row else None


async def mark_paid(conn: aiosqlite.Connection, *, payload: str, user_id: int, stars: int,
                    charge_id: str) -> Topup | None:
    """Pending → paid for the payer's top-up of exactly ``stars``; ``None`` when there
    is no such pending row (already paid, another user's, another amount)."""
    row = await first(
        conn, f"UPDATE topups SET state = 'paid', charge_id = ?, paid_at = {NOW}"
        " WHERE payload = ? AND user_id = ? AND stars = ? AND state = 'pending'"
        f" RETURNING {_COLUMNS}", (charge_id, payload, user_id, stars))
    return _topup(row) if row else None


async def record_stray(conn: aiosqlite.Connection, *, charge_id: str, user_id: int, payload: str,
                       stars: int, currency: str) -> bool:
    """Keep a payment that credited nothing; False when it was kept before."""
    rows = await conn.execute_fetchall(
        "INSERT INTO stray_payments (charge_id, user_id, payload, stars, currency)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (charge_id) DO NOTHING RETURNING charge_id",
        (charge_id, user_id, payload, stars, currency))
    return bool(list(rows))


async def request_refund(conn: aiosqlite.Connection, charge_id: str,
                         requested_at: float) -> Topup | None:
    """Paid → refund_uncertain, as Telegram is asked to refund; ``None`` when the
    top-up is not (or no longer) paid."""
    row = await first(
        conn, "UPDATE topups SET state = 'refund_uncertain', refund_requested_at = ?"
        f" WHERE charge_id = ? AND state = 'paid' RETURNING {_COLUMNS}", (requested_at, charge_id))
    return _topup(row) if row else None


async def ask_again(conn: aiosqlite.Connection, charge_id: str,
                    requested_at: float) -> Topup | None:
    """An uncertain refund asked for once more (it stays uncertain, from now);
    ``None`` when it is no longer uncertain."""
    row = await first(
        conn, "UPDATE topups SET refund_requested_at = ?"
        f" WHERE charge_id = ? AND state = 'refund_uncertain' RETURNING {_COLUMNS}",
        (requested_at, charge_id))
    return _topup(row) if row else None


async def settle_refunded(conn: aiosqlite.Connection, charge_id: str) -> Topup | None:
    """Refund_uncertain → refunded: Telegram made the refund."""
    row = await first(
        conn, "UPDATE topups SET state = 'refunded' WHERE charge_id = ?"
        f" AND state = 'refund_uncertain' RETURNING {_COLUMNS}", (charge_id,))
    return _topup(row) if row else None


async def settle_not_refunded(conn: aiosqlite.Connection, charge_id: str,
                              requested_before: float | None = None) -> Topup | None:
    """Refund_uncertain → paid: Telegram made no refund. With ``requested_before``,
    only when Telegram was last asked before then (a request asked since may still
    be on its way); ``None`` when it is not so."""
    row = await first(
        conn, "UPDATE topups SET state = 'paid' WHERE charge_id = ?"
        " AND state = 'refund_uncertain' AND (? IS NULL OR refund_requested_at < ?)"
        f" RETURNING {_COLUMNS}", (charge_id, requested_before, requested_before))
    return _topup(row) if row else None


async def refunds_uncertain(db: Database) -> list[Topup]:
    """Every top-up whose refund Telegram has not confirmed or denied, oldest first."""
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM topups WHERE state = 'refund_uncertain'"
                             " ORDER BY id")
    return [_topup(r) for r in rows]


async def last_of(db: Database, user_id: int, limit: int) -> list[Topup]:
    """A customer's latest top-ups, paid or not, newest first."""
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM topups WHERE user_id = ?"
                             " ORDER BY id DESC LIMIT ?", (user_id, limit))
    return [_topup(r) for r in rows]


async def paid_total(db: Database, user_id: int) -> tuple[int, int]:
    """(top-ups paid, ever, refunded ones included; shop minor units still credited)."""
    row = await db.fetchone(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'paid' THEN amount_minor END), 0)"
        " FROM topups WHERE user_id = ? AND state <> 'pending'", (user_id,))
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def charged(db: Database) -> list[Topup]:
    """Every top-up Telegram charged (paid, or its refund asked for since), oldest first."""
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM topups WHERE charge_id IS NOT NULL"
                             " ORDER BY id")
    return [_topup(r) for r in rows]


async def stray_charges(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT charge_id FROM stray_payments")
    return {r[0] for r in rows}


async def first_report(db: Database, kind: str, charge_id: str) -> bool:
    """Record that a reconciliation difference was reported; False if it was before."""
    rows = await db.write("INSERT INTO reconcile_reports (kind, charge_id) VALUES (?, ?)"
                          " ON CONFLICT DO NOTHING RETURNING charge_id", (kind, charge_id))
    return bool(rows)


@dataclass(frozen=True, slots=True)
class StrayPayment:
    charge_id: str
    user_id: int
    stars: int
    refunded: bool


async def stray(db: Database, charge_id: str) -> StrayPayment | None:
    row = await db.fetchone("SELECT charge_id, user_id, stars, refunded_at FROM stray_payments"
                            " WHERE charge_id = ?", (charge_id,))
    return StrayPayment(row[0], int(row[1]), int(row[2]), row[3] is not None) if row else None


async def mark_stray_refunded(target: Database | aiosqlite.Connection, charge_id: str) -> None:
    await run(target, f"UPDATE stray_payments SET refunded_at = {NOW} WHERE charge_id = ?",
              (charge_id,))


async def prune_expired(db: Database, before: float, limit: int) -> int:
    """Delete up to ``limit`` pending top-ups that expired before ``before`` (unix
    time), oldest first; how many were deleted. Only unpaid ones: a paid or
    refunded top-up is a money record, kept for ever (stray payments too).

    One statement, so one short transaction per batch. The caller passes a time
    well past expiry (RETENTION_DAYS ago): until then a late tap on such an
    invoice is still refused at pre-checkout as expired, not as unknown.
    """
    rows = await db.write(
        "DELETE FROM topups WHERE id IN (SELECT id FROM topups"
        " WHERE state = 'pending' AND expires_at < ? ORDER BY id LIMIT ?) RETURNING id",
        (before, limit))
    return len(rows)
