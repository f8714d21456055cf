"""The outbox: messages the bot sends on its own initiative, written with their cause.

Writers that take ``conn`` run inside the caller's transaction, so a message is
queued exactly when the change it reports commits. The sender (bot/shop/messaging/notifier.py)
reads due rows and closes each one after the send.

Every text stored here (payloads, ``last_error``) passes through the one
redaction (bot/observability/redaction.py) first: no secret is written to the table.

The due-rows read is ordered by priority (``PRIORITY``: a customer's own
messages before admin alerts before broadcasts) and fair across chats: it takes
at most ``PER_CHAT`` rows of any one chat, everyone's first before anyone's
second, so one chat's backlog never delays another chat's message.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.observability.redaction import redact
from storage.db import NOW, Database, error_text, first, in_thread

log = logging.getLogger(__name__)

# The order rows are sent in, lower first. A new kind must say where it goes
# (queue raises KeyError otherwise); broadcasts, when written, go last.
PRIORITY: dict[str, int] = {"order": 0, "refill": 0, "referral": 0, "alert": 1, "broadcast": 2}
PER_CHAT = 3  # due rows read per chat and pass; the sender sends one a second to a chat


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
    broadcast_id: int | None = None  # kind 'broadcast': the message (storage/broadcasts.py)


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


# An order placed through the wholesale API whose owner did not ask for its notices
# in the chat (storage/api_keys.py): its changes are read through the API instead.
_QUIET_API_ORDER = ("SELECT 1 FROM orders o JOIN api_access a ON a.user_id = o.user_id"
                    " WHERE o.id = ?2 AND o.api_repeat_key IS NOT NULL AND a.notify = 0")


async def queue_order_notices(conn: aiosqlite.Connection, notices: Sequence[OrderNotice]) -> None:
    """``queue_order_notices_in`` in the caller's aiosqlite transaction (one hop)."""
    if notices:
        await in_thread(conn, queue_order_notices_in, notices)


def queue_order_notices_in(conn: sqlite3.Connection, notices: Sequence[OrderNotice]) -> None:
    """Queue order notices; a notice for an order whose previous one is still waiting
    replaces it, keeping the refunds of both (an order is refunded at most once).
    Nothing is queued for an API order whose owner keeps its notices off. In the
    database's thread."""
    if not notices:
        return
    conn.executemany(
        "INSERT INTO outbox (chat_id, kind, order_id, payload, priority)"
        f" SELECT ?1, 'order', ?2, ?3, {PRIORITY['order']} WHERE NOT EXISTS ({_QUIET_API_ORDER})"
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


_QUEUE = ("INSERT INTO outbox (chat_id, kind, order_id, payload, priority, fold_key,"
          " next_attempt_at, scheduled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


async def queue(conn: aiosqlite.Connection, chat_ids: Iterable[int], kind: str,
                payload: dict[str, Any], order_id: int | None = None, *,
                fold_key: str | None = None, at: float = 0.0) -> list[int]:
    """Queue one message of ``kind`` to each chat (refill results, admin alerts),
    due at ``at`` (unix time; 0: now). ``fold_key`` marks an alert's kind (bot/shop/messaging/alerts.py).

    Each chat's row stands on its own: a chat whose row cannot be written (an id
    SQLite cannot store) is logged and skipped, and the others, and the caller's
    transaction, go on. Returns the chats queued."""
    body = json.dumps(stored(payload), ensure_ascii=False)
    priority = PRIORITY[kind]
    chats = list(chat_ids)

    def row(chat_id: int) -> tuple[Any, ...]:
        return (chat_id, kind, order_id, body, priority, fold_key, at,
                None if fold_key is None else at)

    # All at once first (one hop); one by one only when that fails, to find the culprit.
    if await _in_savepoint(conn, lambda: conn.executemany(_QUEUE, [row(c) for c in chats])):
        return chats
    queued = []
    for chat_id in chats:
        if await _in_savepoint(conn, lambda chat_id=chat_id: conn.execute(_QUEUE, row(chat_id))):
            queued.append(chat_id)
        else:
            log.error("could not queue a %s message for chat %s: skipped, the others are queued",
                      kind, chat_id)
    return queued


async def _in_savepoint(conn: aiosqlite.Connection, write: Any) -> bool:
    """``await write()`` inside a savepoint of the caller's transaction: undone alone
    (False) when it fails with a database or overflow error."""
    await conn.execute("SAVEPOINT outbox_queue")
    try:
        await write()
    except (sqlite3.Error, OverflowError, ValueError):
        await conn.execute("ROLLBACK TO outbox_queue")
        await conn.execute("RELEASE outbox_queue")
        return False
    await conn.execute("RELEASE outbox_queue")
    return True


async def queue_folded(conn: aiosqlite.Connection, chat_ids: Sequence[int], kind: str,
                       payload: dict[str, Any], fold_key: str, now: float,
                       window: float) -> tuple[bool, list[int]]:
    """Queue a message of a kind that folds: the first of ``fold_key`` is due now;
    more within ``window`` seconds of the last one scheduled fold into one follow-up
    row, due ``window`` after it, whose payload holds the latest ``payload`` and
    ``more``, the count folded in. Returns whether it was folded, and the chats that
    have it (queued, or folded into their waiting follow-up).

    Durable (the follow-up is a row, not a timer) and safe from many coroutines:
    it runs inside the caller's transaction, which holds the database's lock.
    """
    row = await first(conn, "SELECT MAX(scheduled_at) FROM outbox WHERE fold_key = ?",
                      (fold_key,))
    last = None if row is None or row[0] is None else float(row[0])
    if last is None or last <= now - window:
        return False, await queue(conn, chat_ids, kind, payload, fold_key=fold_key, at=now)
    body = json.dumps(stored(payload), ensure_ascii=False)
    # Each chat's follow-up not yet due takes this one in (a first alert waiting for
    # a retry is not a follow-up: it keeps its text). One already due may be on
    # the wire, so chats without a follow-up waiting get a new one: at the one
    # scheduled, or a window after the last.
    merged = await conn.execute_fetchall(
        "UPDATE outbox SET payload = json_set(?, '$.more', json_extract(payload, '$.more') + 1),"
        " version = version + 1"
        " WHERE fold_key = ? AND state = 'pending' AND scheduled_at > ?"
        " AND json_extract(payload, '$.more') IS NOT NULL RETURNING chat_id",
        (body, fold_key, now))
    waiting = {int(r[0]) for r in merged}
    rest = [chat_id for chat_id in chat_ids if chat_id not in waiting]
    queued = []
    if rest:
        queued = await queue(conn, rest, kind, {**payload, "more": 1}, fold_key=fold_key,
                             at=last if last > now else last + window)
    return True, [chat_id for chat_id in chat_ids if chat_id in waiting] + queued


async def queue_once(conn: aiosqlite.Connection, chat_ids: Sequence[int], kind: str,
                     payload: dict[str, Any], fold_key: str, now: float) -> bool:
    """Queue a message of ``fold_key`` unless one was within the outbox's retention
    (closed rows are pruned after ``RETENTION_DAYS``: then it is told again);
    returns whether it was queued. Inside the caller's transaction, like
    ``queue_folded``, so two callers never both queue it."""
    if await first(conn, "SELECT 1 FROM outbox WHERE fold_key = ? LIMIT 1", (fold_key,)):
        return False
    await queue(conn, chat_ids, kind, payload, fold_key=fold_key, at=now)
    return True


async def due(db: Database, now: float, limit: int, *, per_chat: int = PER_CHAT,
              skip_chats: Iterable[int] = ()) -> list[OutboxRow]:
    """Rows that may be sent now: by priority, then each chat's first rows before
    any chat's later ones, then oldest first; at most ``per_chat`` of one chat, none
    of ``skip_chats`` (chats the sender cannot send to yet). Each row says whether
    its recipient has blocked the bot (such rows are dropped, not sent)."""
    rows = await db.fetchall(
        "SELECT r.id, r.chat_id, r.kind, r.order_id, r.payload, r.version, r.attempts,"
        " COALESCE(u.blocked, 0), r.broadcast_id FROM ("
        "  SELECT o.id, o.chat_id, o.kind, o.order_id, o.payload, o.version, o.attempts,"
        "   o.priority, o.broadcast_id, ROW_NUMBER() OVER ("
        "    PARTITION BY o.chat_id ORDER BY o.priority, o.id) AS turn"
        "  FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
        "   AND o.chat_id NOT IN (SELECT value FROM json_each(?))"
        " ) r LEFT JOIN users u ON u.id = r.chat_id"
        " WHERE r.turn <= ? ORDER BY r.priority, r.turn, r.id LIMIT ?",
        (now, json.dumps(list(skip_chats)), per_chat, limit))
    return [OutboxRow(int(r[0]), int(r[1]), r[2], r[3], json.loads(r[4]), int(r[5]), int(r[6]),
                      bool(r[7]), r[8]) for r in rows]


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
        " WHERE id = ? AND state = 'pending'", (at, error_text(error), int(count_attempt), row.id))


async def mark_failed(db: Database, row: OutboxRow, error: str) -> None:
    await db.write("UPDATE outbox SET state = 'failed', last_error = ?, attempts = attempts + 1"
                   " WHERE id = ?", (error_text(error), row.id))


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


async def backlog(db: Database) -> int:
    """Messages waiting to be sent (the health check's ``outbox_backlog``)."""
    row = await db.fetchone("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
    return int(row[0]) if row else 0


async def prune_closed(db: Database, before: float, limit: int) -> int:
    """Delete up to ``limit`` closed rows (sent, dropped, failed) last touched before
    ``before`` (unix time), oldest first; how many were deleted. Pending rows are
    never deleted, nor the rows of a broadcast still running (its progress counts
    them). One statement, so one short transaction per batch."""
    rows = await db.write(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
        " WHERE state IN ('sent', 'dropped', 'failed')"
        "  AND COALESCE(sent_at, created_at) < strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch')"
        "  AND (broadcast_id IS NULL OR broadcast_id IN"
        "   (SELECT id FROM broadcasts WHERE finished_at IS NOT NULL))"
        " ORDER BY id LIMIT ?) RETURNING id", (before, limit))
    return len(rows)
