"""The durable inbox's rows (migration 0013): updates as Telegram delivered them.

A body is stored through the one redaction (bot/observability/redaction.py), like every other
text the bot keeps: a secret pasted into a chat is never written to the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from bot.observability.redaction import redact
from storage.db import NOW, Database


@dataclass(frozen=True, slots=True)
class InboxRow:
    seq: int  # the row's own number, in arrival order
    update_id: int
    body: str
    attempts: int  # how many starts have already tried it, this one included


def _store(conn: sqlite3.Connection, updates: Sequence[tuple[int, str]]) -> list[int | None]:
    stored: list[int | None] = []
    for update_id, body in updates:
        body = redact(body)
        # A repeat delivery is the same update again: same number, same content. The
        # number alone is not enough: Telegram numbers updates afresh after a week
        # without any, and a stand-in for Telegram (the demo's) starts again at 1.
        if conn.execute("SELECT 1 FROM inbox WHERE update_id = ? AND body = ?",
                        (update_id, body)).fetchone():
            stored.append(None)
            continue
        cursor = conn.execute("INSERT INTO inbox (update_id, body) VALUES (?, ?)",
                              (update_id, body))
        stored.append(cursor.lastrowid)
    return stored


async def store(db: Database, updates: Sequence[tuple[int, str]]) -> list[int | None]:
    """Write ``(update_id, body)`` rows in one transaction; returns each one's row
    number (``seq``), or None for a repeat delivery of a stored update (not stored
    again). Bodies are compared as given: pass them in one canonical form."""
    if not updates:
        return []
    return await db.transact(_store, updates)


async def mark_handled(db: Database, seqs: Sequence[int]) -> None:
    await db.write_many(f"UPDATE inbox SET handled_at = {NOW} WHERE seq = ?"
                        " AND handled_at IS NULL", [(seq,) for seq in seqs])


def _take_unhandled(conn: sqlite3.Connection) -> list[InboxRow]:
    conn.execute("UPDATE inbox SET attempts = attempts + 1 WHERE handled_at IS NULL")
    rows = conn.execute("SELECT seq, update_id, body, attempts FROM inbox"
                        " WHERE handled_at IS NULL ORDER BY seq").fetchall()
    return [InboxRow(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows]
async def take_unhandled(db: Database) -> list[InboxRow]:
    """The rows a previous run left unhandled, in arrival order, each counted as tried
    once more (in the same transaction, so a start that dies counts too)."""
    return await db.transact(_take_unhandled)


async def prune_handled(db: Database, before: float, limit: int) -> int:
    """Delete at most ``limit`` rows handled before ``before`` (unix time), oldest
    first, in one statement; returns how many went. Unhandled rows are never deleted."""
    rows = await db.write(
        "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE handled_at IS NOT NULL"
        " AND handled_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch')"
        " ORDER BY handled_at LIMIT ?) RETURNING seq", (before, limit))
    return len(rows)
