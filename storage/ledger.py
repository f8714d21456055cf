"""Balances and the money ledger.

``post()`` is the only way a balance changes. It runs inside the caller's
transaction, so the ledger row and the state change that causes it (an order
row, a status change) commit together or not at all. The idempotency key makes
a repeated post a no-op, and the balance can't go below zero: the update itself
is conditional, and a CHECK constraint backs it up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from storage.db import NOW, Database, in_thread


class InsufficientFunds(Exception):
    def __init__(self, balance_minor: int, needed_minor: int) -> None:
        super().__init__(f"balance {balance_minor} is less than {needed_minor}")
        self.balance_minor = balance_minor
        self.needed_minor = needed_minor


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    user_id: int
    amount_minor: int
    balance_after: int
    kind: str
    key: str
    order_id: int | None
    note: str
    created: bool  # False: the key had been posted before; nothing changed now


async def post(conn: aiosqlite.Connection, **entry: Any) -> LedgerEntry:
    """``post_in`` inside the caller's aiosqlite transaction, in one hop."""
    return await in_thread(conn, post_in, **entry)


def post_in(
    conn: sqlite3.Connection,
    *,
    user_id: int,
    amount_minor: int,
    kind: str,
    key: str,
    order_id: int | None = None,
    actor_id: int | None = None,
    note: str = "",
) -> LedgerEntry:
    """Move ``amount_minor`` (negative for a debit) into ``user_id``'s balance, once.

    Runs in the database's thread (``Database.transact``, or ``post`` from an
    async transaction)."""
    if amount_minor == 0:
        raise ValueError("a ledger entry must move money")
    # The usual case in one statement: the balance moves unless the key was posted
    # before or the balance would go negative; which of those it was is asked after.
    row = conn.execute(
        "UPDATE users SET balance_minor = balance_minor + ?,"
        f" updated_at = {NOW}"
        " WHERE id = ? AND balance_minor + ? >= 0"
        " AND NOT EXISTS (SELECT 1 FROM ledger WHERE idempotency_key = ?)"
        " RETURNING balance_minor",
        (amount_minor, user_id, amount_minor, key)).fetchone()
    if row is None:
        existing = entry_in(conn, key)
        if existing is not None:
            return existing
        user = conn.execute("SELECT balance_minor FROM users WHERE id = ?",
                            (user_id,)).fetchone()
        if user is None:
            raise LookupError(f"no user {user_id}")
        raise InsufficientFunds(int(user[0]), -amount_minor)
    balance_after = int(row[0])
    inserted = conn.execute(
        "INSERT INTO ledger (user_id, amount_minor, balance_after, kind, idempotency_key,"
        " order_id, actor_id, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (user_id, amount_minor, balance_after, kind, key, order_id, actor_id, note)).fetchone()
    return LedgerEntry(int(inserted[0]), user_id, amount_minor, balance_after, kind, key,
                       order_id, note, created=True)


def entry_in(conn: sqlite3.Connection, key: str) -> LedgerEntry | None:
    """The entry posted with ``key`` (``created`` False), if any; in the database's thread."""
    row = conn.execute("SELECT id, user_id, amount_minor, balance_after, kind, order_id, note"
                       " FROM ledger WHERE idempotency_key = ?", (key,)).fetchone()
    if row is None:
        return None
    return LedgerEntry(row[0], row[1], row[2], row[3], row[4], key, row[5], row[6],
                       created=False)


async def balance_of(db: Database, user_id: int) -> int:
    row = await db.fetchone("SELECT balance_minor FROM users WHERE id = ?", (user_id,))
    return int(row[0]) if row else 0


async def balance_in(conn: aiosqlite.Connection, user_id: int) -> int:
    """A user's balance inside the caller's transaction (0 for no such user)."""
    rows = await conn.execute_fetchall("SELECT balance_minor FROM users WHERE id = ?", (user_id,))
    row = next(iter(rows), None)
    return int(row[0]) if row else 0


async def ledger_sum(db: Database, user_id: int) -> int:
    """The sum of a user's ledger: equal to the balance when the books are right."""
    row = await db.fetchone("SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE user_id = ?",
                            (user_id,))
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a customer's balance history."""

    amount_minor: int
    balance_after: int
    kind: str  # credit | debit | order | refund | topup | topup_refund | referral | ...
    order_id: int | None
    note: str
    created_at: str


async def statement(db: Database, user_id: int, offset: int,
                    limit: int) -> tuple[int, list[HistoryEntry], int]:
    """``user_id``'s balance, a page of their ledger (newest first) and how many
    entries there are: one statement, so one round trip and one snapshot (the
    balance screen's, under load)."""
    rows = await db.fetchall(
        "SELECT COALESCE((SELECT balance_minor FROM users WHERE id = ?), 0),"
        " (SELECT COUNT(*) FROM ledger WHERE user_id = ?),"
        " page.amount_minor, page.balance_after, page.kind, page.order_id, page.note,"
        " page.created_at"
        " FROM (SELECT 1) LEFT JOIN (SELECT id, amount_minor, balance_after, kind, order_id,"
        " note, created_at FROM ledger WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?)"
        " AS page ON 1 ORDER BY page.id DESC",
        (user_id, user_id, user_id, limit, offset))
    entries = [HistoryEntry(int(r[2]), int(r[3]), r[4], r[5], r[6], r[7])
               for r in rows if r[2] is not None]
    return int(rows[0][0]), entries, int(rows[0][1])


async def count_keys(conn: aiosqlite.Connection, prefix: str) -> int:
    """How many entries have a key starting with ``prefix`` (inside a transaction)."""
    rows = await conn.execute_fetchall(
        "SELECT COUNT(*) FROM ledger WHERE idempotency_key >= ? AND idempotency_key < ?",
        (prefix, prefix + "\U0010ffff"))
    return int(next(iter(rows))[0])


async def refunded_of(db: Database, order_ids: Sequence[int]) -> dict[int, int]:
    """What each order refunded its owner (orders with no refund are left out)."""
    if not order_ids:
        return {}
    marks = ",".join("?" * len(order_ids))
    rows = await db.fetchall(
        "SELECT order_id, SUM(amount_minor) FROM ledger"
        f" WHERE kind = 'refund' AND order_id IN ({marks}) GROUP BY order_id", list(order_ids))
    return {int(r[0]): int(r[1]) for r in rows}


async def spend_of(db: Database, user_id: int) -> int:
    """What ``user_id`` paid for orders less what orders refunded them (the loyalty
    tiers' spend); never below zero."""
    row = await db.fetchone(
        "SELECT COALESCE(-SUM(amount_minor), 0) FROM ledger"
        " WHERE user_id = ? AND kind IN ('order', 'refund')", (user_id,))
    return max(0, int(row[0])) if row else 0
