"""The durable inbox's rows (migration 0013): updates as Telegram delivered them.

A body is stored through the one redaction (bot/redaction.py), like every other
text the bot keeps: a secret pasted into a chat is never written to the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from bot.redaction import redact
from storage.db import NOW, Database

# Telegram keeps an undelivered update for 24 hours, so a second delivery of one
# comes within a day. An update_id stored longer ago than this is not a repeat:
# Telegram numbers updates afresh (at random) after a week without any, so an old
# number can come back on a new update, which must not be dropped as a repeat.
REPEAT_WINDOW_DAYS = 2
_REPEAT_WINDOW = f"-{REPEAT_WINDOW_DAYS} days"  # an SQLite date modifier


@dataclass(frozen=True, slots=True)
class InboxRow:
    update_id: int
    body: str
    attempts: int  # how many starts have already tried it, this one included


def _store(conn: sqlite3.Connection, updates: Sequence[tuple[int, str]]) -> list[int]:
    stored = []
    for update_id, body in updates:
        conn.execute("DELETE FROM inbox WHERE update_id = ? AND received_at <"
                     " strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)", (update_id, _REPEAT_WINDOW))
        cursor = conn.execute("INSERT OR IGNORE INTO inbox (update_id, body) VALUES (?, ?)",
                              (update_id, redact(body)))
        if cursor.rowcount:
            stored.append(update_id)
    return stored


async def store(db: Database, updates: Sequence[tuple[int, str]]) -> list[int]:
    """Write ``(update_id, body)`` rows in one transaction; returns the ids that were
    new (a repeat delivery of a stored update is not stored again)."""
    if not updates:
        return []
    return await db.transact(_store, updates)


async def mark_handled(db: Database, update_ids: Sequence[int]) -> None:
    await db.write_many(f"UPDATE inbox SET handled_at = {NOW} WHERE update_id = ?"
                        " AND handled_at IS NULL", [(i,) for i in update_ids])


def _take_unhandled(conn: sqlite3.Connection) -> list[InboxRow]:
    conn.execute("UPDATE inbox SET attempts = attempts + 1 WHERE handled_at IS NULL")
    rows = conn.execute("SELECT update_id, body, attempts FROM inbox WHERE handled_at IS NULL"
                        " ORDER BY seq").fetchall()
    return [InboxRow(int(r[0]), str(r[1]), int(r[2])) for r in rows]


async def take_unhandled(db: Database) -> list[InboxRow]:
    """The rows a previous run left unhandled, in arrival order, each counted as tried
    once more (in the same transaction, so a start that dies counts too)."""
    return await db.transact(_take_unhandled)


async def unhandled_count(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL")
    return int(row[0]) if row else 0


async def prune_handled(db: Database, before: float, limit: int) -> int:
    """Delete at most ``limit`` rows handled before ``before`` (unix time), oldest
    first, in one statement; returns how many went. Unhandled rows are never deleted."""
    rows = await db.write(
        "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE handled_at IS NOT NULL"
        " AND handled_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch')"
        " ORDER BY handled_at LIMIT ?) RETURNING seq", (before, limit))
    return len(rows)
