"""The outbox: messages the bot sends on its own initiative, written with their cause.

Writers that take ``conn`` run inside the caller's transaction, so a message is
queued exactly when the change it reports commits. The sender (bot/notifier.py)
reads due rows and closes each one after the send.

Every text stored here (payloads, ``last_error``) passes through the one
redaction (bot/redaction.py) first: no secret is written to the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.redaction import redact
from storage.db import NOW, Database

MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    chat_id: int
    kind: str
    order_id: int | None
    payload: dict[str, Any]
    version: int
    attempts: int
    blocked: bool = False  # the recipient is known to have blocked the bot


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """An order's change, queued for its owner; merges with one still waiting."""

    chat_id: int
    order_id: int
    state: str
    start_count: int | None = None
    remains: int | None = None
    refund_minor: int = 0
    balance_minor: int | None = None


async def queue_order_notices(conn: aiosqlite.Connection, notices: Sequence[OrderNotice]) -> None:
    """Queue order notices; a notice for an order whose previous one is still waiting
    replaces it, keeping the refunds of both (an order is refunded at most once)."""
    if not notices:
        return
    await conn.executemany(
        "INSERT INTO outbox (chat_id, kind, order_id, payload) VALUES (?, 'order', ?, ?)"
        " ON CONFLICT (order_id) WHERE state = 'pending' AND kind = 'order' DO UPDATE SET"
        "  payload = json_set(excluded.payload, '$.refund_minor',"
        "   json_extract(outbox.payload, '$.refund_minor')"
        "   + json_extract(excluded.payload, '$.refund_minor'),"
        "   '$.balance_minor', COALESCE(json_extract(excluded.payload, '$.balance_minor'),"
        "   json_extract(outbox.payload, '$.balance_minor'))),"
        "  version = outbox.version + 1",
        [(n.chat_id, n.order_id, json.dumps({
            "state": n.state, "start_count": n.start_count, "remains": n.remains,
            "refund_minor": n.refund_minor, "balance_minor": n.balance_minor}))
         for n in notices])


def stored(value: Any) -> Any:
    """``value`` with every string in it redacted: what a payload may hold in the table."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [stored(item) for item in value]
    return value


def _error(text: str) -> str:
    # Redacted before the cut: a cut could leave half a secret that no longer matches.
    return redact(text)[:MAX_ERROR]


async def queue(conn: aiosqlite.Connection, chat_ids: Iterable[int], kind: str,
                payload: dict[str, Any], order_id: int | None = None) -> None:
    """Queue one message of ``kind`` to each chat (refill results, admin alerts)."""
    body = json.dumps(stored(payload), ensure_ascii=False)
    await conn.executemany(
        "INSERT INTO outbox (chat_id, kind, order_id, payload) VALUES (?, ?, ?, ?)",
        [(chat_id, kind, order_id, body) for chat_id in chat_ids])


async def due(db: Database, now: float, limit: int) -> list[OutboxRow]:
    """The oldest rows that may be sent now, each saying whether its recipient has
    blocked the bot (such rows are dropped, not sent)."""
    rows = await db.fetchall(
        "SELECT o.id, o.chat_id, o.kind, o.order_id, o.payload, o.version, o.attempts,"
        " COALESCE(u.blocked, 0) FROM outbox o LEFT JOIN users u ON u.id = o.chat_id"
        " WHERE o.state = 'pending' AND o.next_attempt_at <= ? ORDER BY o.id LIMIT ?",
        (now, limit))
    return [OutboxRow(int(r[0]), int(r[1]), r[2], r[3], json.loads(r[4]), int(r[5]), int(r[6]),
                      bool(r[7])) for r in rows]


async def next_due_at(db: Database) -> float | None:
    row = await db.fetchone("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
    return None if row is None or row[0] is None else float(row[0])


async def mark_sent(db: Database, row: OutboxRow) -> bool:
    """Close a sent row; False when it was merged meanwhile (its new content is due)."""
    done = await db.write(
        f"UPDATE outbox SET state = 'sent', sent_at = {NOW}, attempts = attempts + 1"
        " WHERE id = ? AND version = ? RETURNING id", (row.id, row.version))
    return bool(done)


async def retry_later(db: Database, row: OutboxRow, at: float, error: str,
                      *, count_attempt: bool = True) -> None:
    await db.write(
        "UPDATE outbox SET next_attempt_at = ?, last_error = ?, attempts = attempts + ?"
        " WHERE id = ? AND state = 'pending'", (at, _error(error), int(count_attempt), row.id))


async def mark_failed(db: Database, row: OutboxRow, error: str) -> None:
    await db.write("UPDATE outbox SET state = 'failed', last_error = ?, attempts = attempts + 1"
                   " WHERE id = ?", (_error(error), row.id))


async def recipient_gone(db: Database, chat_id: int) -> int:
    """The user blocked the bot: mark them and close everything queued for them."""
    async with db.transaction() as conn:
        await conn.execute(f"UPDATE users SET blocked = 1, updated_at = {NOW} WHERE id = ?",
                           (chat_id,))
        rows = await conn.execute_fetchall(
            "UPDATE outbox SET state = 'dropped', last_error = 'blocked by the user'"
            " WHERE chat_id = ? AND state = 'pending' RETURNING id", (chat_id,))
        return len(list(rows))


async def drop_blocked(db: Database, rows: Sequence[OutboxRow]) -> None:
    """Close rows queued for users already known to have blocked the bot."""
    await db.write_many(
        "UPDATE outbox SET state = 'dropped', last_error = 'blocked by the user'"
        " WHERE id = ? AND state = 'pending'", [(row.id,) for row in rows])


async def counts(db: Database) -> dict[str, int]:
    rows = await db.fetchall("SELECT state, COUNT(*) FROM outbox GROUP BY state")
    return {r[0]: int(r[1]) for r in rows}
