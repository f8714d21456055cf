"""Broadcasts: the message once, and one outbox row per recipient naming it.

``create`` writes the broadcast, queues every recipient with one INSERT ... SELECT
and writes the audit row, all in one transaction: a broadcast exists exactly
when its recipients are queued. The unique token makes a repeated Confirm the
same broadcast; the unique (broadcast_id, chat_id) index makes a customer one row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage import audit, outbox
from storage.db import NOW, Database, first

BLOCKED_ERROR = "blocked by the user"  # storage/outbox.py writes it on a 403
CANCELED_ERROR = "broadcast canceled"
SENDING_ERROR = "broadcast on the wire"
ACTIVE_DAYS = 30


class NoRecipients(Exception):
    """Nobody in the audience can be sent the broadcast: nothing was written."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    admin_id: int
    text: str
    photo: str | None
    audience: str
    state: str
    queued: int
    skipped: int
    progress_chat_id: int | None
    progress_message_id: int | None
    shown: str
    finished: bool


@dataclass(frozen=True, slots=True)
class Counts:
    """What became of a broadcast's rows so far."""

    queued: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0   # skipped when queued, and dropped on a 403 since
    canceled: int = 0

    def key(self) -> str:
        return json.dumps([self.queued, self.pending, self.sent, self.failed, self.blocked,
                           self.canceled])


_COLUMNS = ("id, admin_id, text, photo, audience, state, queued, skipped, progress_chat_id,"
            " progress_message_id, shown, finished_at IS NOT NULL")


def _broadcast(row: Sequence) -> Broadcast:
    return Broadcast(int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], int(row[6]),
                     int(row[7]), row[8], row[9], row[10], bool(row[11]))


def _audience_filter(audience: str) -> str:
    if audience == "all":
        return ""
    # last_seen_at is kept by the customers' activity (bot/shop/backoffice/customers.py); a user
    # never seen since it was added counts from their last update.
    return (f" AND COALESCE(last_seen_at, updated_at) >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now',"
            f" '-{ACTIVE_DAYS} days')")


async def audience_sizes(db: Database, audience: str,
                         exclude: Iterable[int]) -> tuple[int, int]:
    """(reachable, skipped) customers of ``audience``: skipped blocked the bot or were
    blocked by an admin."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(blocked = 0 AND banned_at IS NULL), 0),"
        " COALESCE(SUM(blocked != 0 OR banned_at IS NOT NULL), 0) FROM users"
        " WHERE id NOT IN (SELECT value FROM json_each(?))" + _audience_filter(audience),
        (json.dumps(list(exclude)),))
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def create(db: Database, *, admin_id: int, token: str, text: str, photo: str | None,
                 audience: str, exclude: Iterable[int], progress_chat_id: int,
                 progress_message_id: int, note: str) -> tuple[Broadcast, bool]:
    """The broadcast of ``token``, queued now unless it was already; and whether it is new.
    ``NoRecipients`` (nothing written) when nobody in ``audience`` can be sent it."""
    excluded = json.dumps(list(exclude))
    async with db.transaction() as conn:
        found = await first(conn, f"SELECT {_COLUMNS} FROM broadcasts WHERE token = ?", (token,))
        if found is not None:
            return _broadcast(found), False
        row = await first(
            conn, "INSERT INTO broadcasts (admin_id, token, text, photo, audience,"
            " progress_chat_id, progress_message_id) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (admin_id, token, text, photo, audience, progress_chat_id, progress_message_id))
        assert row is not None
        broadcast_id = int(row[0])
        queued = await conn.execute_fetchall(
            "INSERT INTO outbox (chat_id, kind, payload, priority, broadcast_id)"
            f" SELECT id, 'broadcast', '{{}}', {outbox.PRIORITY['broadcast']}, ? FROM users"
            " WHERE blocked = 0 AND banned_at IS NULL"
            " AND id NOT IN (SELECT value FROM json_each(?))" + _audience_filter(audience)
            + " ON CONFLICT DO NOTHING RETURNING id", (broadcast_id, excluded))
        skipped = await first(
            conn, "SELECT COUNT(*) FROM users WHERE (blocked != 0 OR banned_at IS NOT NULL)"
            " AND id NOT IN (SELECT value FROM json_each(?))" + _audience_filter(audience),
            (excluded,))
        count, skipped_count = len(list(queued)), int(skipped[0]) if skipped else 0
        if count == 0:  # rolls the broadcast row back: a broadcast to nobody is not one
            raise NoRecipients(audience)
        done = await first(
            conn, "UPDATE broadcasts SET queued = ?, skipped = ? WHERE id = ?"
            f" RETURNING {_COLUMNS}", (count, skipped_count, broadcast_id))
        assert done is not None
        await audit.record(conn, admin_id=admin_id, action="broadcast", target_kind="broadcast",
                           target_id=broadcast_id,
                           after=f"{audience}: {count} queued, {skipped_count} skipped",
                           note=note)
        return _broadcast(done), True


async def get(db: Database, broadcast_id: int) -> Broadcast | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM broadcasts WHERE id = ?", (broadcast_id,))
    return _broadcast(row) if row else None


async def recent(db: Database, limit: int) -> list[Broadcast]:
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM broadcasts ORDER BY id DESC LIMIT ?",
                             (limit,))
    return [_broadcast(r) for r in rows]


async def unfinished(db: Database) -> list[Broadcast]:
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM broadcasts WHERE finished_at IS NULL ORDER BY id")
    return [_broadcast(r) for r in rows]


async def counts(db: Database, broadcast: Broadcast) -> Counts:
    rows = await db.fetchall(
        "SELECT state, COALESCE(last_error = ?, 0), COUNT(*) FROM outbox"
        " WHERE broadcast_id = ? GROUP BY 1, 2", (CANCELED_ERROR, broadcast.id))
    tally = {"pending": 0, "sent": 0, "failed": 0, "blocked": broadcast.skipped, "canceled": 0}
    for state, canceled, n in rows:
        if state == "dropped":
            tally["canceled" if canceled else "blocked"] += int(n)
        elif state in tally:
            tally[state] += int(n)
    return Counts(queued=broadcast.queued, **tally)


async def cancel(db: Database, broadcast_id: int, admin_id: int) -> int | None:
    """Stop a running broadcast: its pending rows dropped. The rows dropped, or None
    when it was not running."""
    async with db.transaction() as conn:
        row = await first(conn, "UPDATE broadcasts SET state = 'canceled'"
                          " WHERE id = ? AND state = 'running' RETURNING id", (broadcast_id,))
        if row is None:
            return None
        dropped = await conn.execute_fetchall(
            "UPDATE outbox SET state = 'dropped', last_error = ?"
            " WHERE broadcast_id = ? AND state = 'pending' RETURNING id",
            (CANCELED_ERROR, broadcast_id))
        count = len(list(dropped))
        await audit.record(conn, admin_id=admin_id, action="broadcast_cancel",
                           target_kind="broadcast", target_id=broadcast_id, before="running",
                           after=f"canceled: {count} not sent")
        return count


async def set_shown(db: Database, broadcast_id: int, shown: str) -> None:
    await db.write("UPDATE broadcasts SET shown = ? WHERE id = ?", (shown, broadcast_id))


async def finish(db: Database, broadcast_id: int, summary_to: int) -> bool:
    """Nothing is pending: close the broadcast and queue its summary to ``summary_to``
    (an alert row naming it, rendered when sent) in one step. False when it was
    finished already (a second watcher, a step repeated)."""
    async with db.transaction() as conn:
        row = await first(
            conn, f"UPDATE broadcasts SET finished_at = {NOW},"
            " state = CASE state WHEN 'running' THEN 'done' ELSE state END"
            " WHERE id = ? AND finished_at IS NULL RETURNING id", (broadcast_id,))
        if row is None:
            return False
        await outbox.queue(conn, [summary_to], "alert", {"broadcast_summary": broadcast_id})
        return True


async def claim(db: Database, row_id: int) -> bool:
    """Close a broadcast row before its send: a restart (or a crash) mid-send can
    then never send it twice. False when it is no longer pending (canceled)."""
    done = await db.write(
        f"UPDATE outbox SET state = 'sent', sent_at = {NOW}, last_error = ?"
        " WHERE id = ? AND state = 'pending' RETURNING id", (SENDING_ERROR, row_id))
    return bool(done)


async def release(db: Database, row_id: int) -> None:
    """The send was refused before it reached anyone: pending again, for the
    notifier to retry or drop."""
    await db.write("UPDATE outbox SET state = 'pending', sent_at = NULL, last_error = NULL"
                   " WHERE id = ? AND state = 'sent'", (row_id,))
