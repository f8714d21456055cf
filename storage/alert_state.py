"""What the panel watch and the daily summary remember (migration 0010).

Each alert's "sent" mark is set by a conditional UPDATE that says whether it
changed anything, inside the caller's transaction; the caller queues the alert's
outbox rows in that same transaction only when it did. So an alert is queued
exactly once per event, whatever runs concurrently and whatever restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import aiosqlite

from storage.db import Database


@dataclass(frozen=True, slots=True)
class PanelWatchRow:
    panel: str
    balance: Decimal | None
    currency: str | None
    checked_at: float | None
    low_alerted: bool
    down_since: float | None
    down_error: str | None
    down_alerted: bool


async def load(db: Database) -> list[PanelWatchRow]:
    rows = await db.fetchall(
        "SELECT panel, balance, currency, checked_at, low_alerted_at, down_since, down_error,"
        " down_alerted_at FROM panel_watch ORDER BY panel")
    return [PanelWatchRow(r[0], None if r[1] is None else Decimal(r[1]), r[2], r[3],
                          r[4] is not None, r[5], r[6], r[7] is not None) for r in rows]


async def _ensure(conn: aiosqlite.Connection, panel: str) -> None:
    await conn.execute("INSERT INTO panel_watch (panel) VALUES (?) ON CONFLICT DO NOTHING",
                       (panel,))


async def record_up(conn: aiosqlite.Connection, panel: str, balance: Decimal, currency: str,
                    now: float) -> bool:
    """A successful check. Returns whether an outage whose alert was sent just ended."""
    await _ensure(conn, panel)
    back = await conn.execute_fetchall(
        "UPDATE panel_watch SET down_since = NULL, down_error = NULL, down_alerted_at = NULL"
        " WHERE panel = ? AND down_alerted_at IS NOT NULL RETURNING panel", (panel,))
    await conn.execute(
        "UPDATE panel_watch SET balance = ?, currency = ?, checked_at = ?, down_since = NULL,"
        " down_error = NULL WHERE panel = ?", (str(balance), currency, now, panel))
    return bool(list(back))


async def record_down(conn: aiosqlite.Connection, panel: str, error: str, now: float,
                      threshold_seconds: float) -> float | None:
    """A failed check. Returns the outage's start when its alert is due now (once)."""
    await _ensure(conn, panel)
    await conn.execute(
        "UPDATE panel_watch SET down_since = COALESCE(down_since, ?), down_error = ?"
        " WHERE panel = ?", (now, error, panel))
    due = await conn.execute_fetchall(
        "UPDATE panel_watch SET down_alerted_at = ? WHERE panel = ? AND down_alerted_at IS NULL"
        " AND down_since <= ? RETURNING down_since", (now, panel, now - threshold_seconds))
    row = next(iter(due), None)
    return None if row is None else float(row[0])


async def mark_low(conn: aiosqlite.Connection, panel: str, now: float) -> bool:
    """The balance is under the threshold: True when its alert was not sent yet."""
    await _ensure(conn, panel)
    rows = await conn.execute_fetchall(
        "UPDATE panel_watch SET low_alerted_at = ? WHERE panel = ? AND low_alerted_at IS NULL"
        " RETURNING panel", (now, panel))
    return bool(list(rows))


async def rearm_low(conn: aiosqlite.Connection, panel: str) -> None:
    await conn.execute("UPDATE panel_watch SET low_alerted_at = NULL WHERE panel = ?", (panel,))


# ------------------------------------------------------------ daily summary


async def report_queued(db: Database, day: str) -> bool:
    return await db.fetchone("SELECT 1 FROM daily_reports WHERE day = ?", (day,)) is not None


async def claim_report(conn: aiosqlite.Connection, day: str) -> bool:
    """Mark ``day``'s summary as queued; False when it already was (another run)."""
    rows = await conn.execute_fetchall(
        "INSERT INTO daily_reports (day) VALUES (?) ON CONFLICT DO NOTHING RETURNING day", (day,))
    return bool(list(rows))
