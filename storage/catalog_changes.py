"""What catalog refreshes changed, kept until a digest told the admins (migration 0016,
``catalog_changes``).

``record_in`` runs inside the refresh's own transaction (storage/catalog.py
``replace_services``), so a change is stored exactly when the catalog moved.
The digest (bot/shop/routing/changes.py) reads ``untold_counts``/``untold_top``
and marks them with ``mark_told_in`` in the transaction that queues it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiosqlite

from storage.db import Database, first

KINDS = ("added", "removed", "cost_up", "cost_down", "backup_gone", "hidden_at_loss",
         "shown_again")


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    service_ref: int
    old_rate: str | None = None
    new_rate: str | None = None


@dataclass(frozen=True, slots=True)
class Told:
    """One change as a digest lists it."""

    id: int
    panel: str
    kind: str
    service_ref: int | None
    service_id: str
    name: str
    currency: str
    old_rate: str | None
    new_rate: str | None
    linked: bool


async def linked_refs(conn: aiosqlite.Connection, refs: Iterable[int]) -> set[int]:
    """Which of ``refs`` have backups or are one."""
    wanted = set(refs)
    if not wanted:
        return set()
    rows = await conn.execute_fetchall(
        "SELECT service_ref FROM service_routes UNION SELECT backup_ref FROM service_routes")
    return wanted & {int(r[0]) for r in rows}


async def services_losing_backup(conn: aiosqlite.Connection,
                                 withdrawn: Iterable[int]) -> list[tuple[int, int]]:
    """(service, backup) links whose backup is among ``withdrawn``."""
    gone = list(withdrawn)
    found: list[tuple[int, int]] = []
    for start in range(0, len(gone), 500):  # SQLite's limit on parameters
        chunk = gone[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = await conn.execute_fetchall(
            f"SELECT service_ref, backup_ref FROM service_routes WHERE backup_ref IN ({marks})"
            " ORDER BY service_ref, position", chunk)
        found += [(int(r[0]), int(r[1])) for r in rows]
    return found


async def record_in(conn: aiosqlite.Connection, panel: str, changes: Sequence[Change]) -> None:
    """Store ``changes`` of ``panel`` (in the caller's transaction), each with ``linked``."""
    if not changes:
        return
    linked = await linked_refs(conn, (c.service_ref for c in changes))
    await conn.executemany(
        "INSERT INTO catalog_changes (panel, service_ref, kind, old_rate, new_rate, linked)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ((panel, c.service_ref, c.kind, c.old_rate, c.new_rate,
          int(c.kind == "backup_gone" or c.service_ref in linked)) for c in changes))


async def untold_counts(db: Database) -> tuple[int, dict[str, int]]:
    """The last untold change's id, and how many of each kind are untold up to it."""
    rows = await db.fetchall(
        "SELECT kind, COUNT(*), MAX(id) FROM catalog_changes WHERE told_at IS NULL GROUP BY kind")
    return max((int(r[2]) for r in rows), default=0), {r[0]: int(r[1]) for r in rows}


async def linked_cost_untold(db: Database, up_to: int) -> bool:
    """Whether an untold change (id up to ``up_to``) moved the cost of a linked service."""
    return await db.fetchone(
        "SELECT 1 FROM catalog_changes WHERE told_at IS NULL AND id <= ? AND linked = 1"
        " AND kind IN ('cost_up', 'cost_down') LIMIT 1", (up_to,)) is not None


# Biggest first: a linked service's, then the largest relative move of the cost;
# the others by their cost (lost backups in order).
# The panel shown is the service's (a lost backup's row names the service that lost it).
_TOP = (
    "SELECT c.id, COALESCE(s.panel, c.panel), c.kind, c.service_ref, COALESCE(s.service_id, ''),"
    " COALESCE(s.name, ''), COALESCE(s.currency, ''), c.old_rate, c.new_rate, c.linked"
    " FROM catalog_changes c LEFT JOIN services s ON s.id = c.service_ref"
    " WHERE c.told_at IS NULL AND c.id <= ? AND c.kind = ?"
    " ORDER BY c.linked DESC, CASE WHEN c.kind IN ('cost_up', 'cost_down') THEN"
    "  abs(CAST(c.new_rate AS REAL) - CAST(c.old_rate AS REAL))"
    "  / max(CAST(c.old_rate AS REAL), 1e-9)"
    "  ELSE CAST(COALESCE(c.new_rate, c.old_rate, '0') AS REAL) END DESC, c.id LIMIT ?"
)


async def untold_top(db: Database, up_to: int, kind: str, limit: int) -> list[Told]:
    """At most ``limit`` untold changes of ``kind`` (ids up to ``up_to``), biggest first.
    The REAL casts only order the list; the rates shown stay the stored Decimal text."""
    rows = await db.fetchall(_TOP, (up_to, kind, limit))
    return [Told(int(r[0]), r[1], r[2], None if r[3] is None else int(r[3]), r[4], r[5], r[6],
                 r[7], r[8], bool(r[9])) for r in rows]


async def mark_told_in(conn: aiosqlite.Connection, up_to: int, stamp: str) -> int:
    """Mark every untold change up to id ``up_to`` as told (in the queuing transaction)."""
    cursor = await conn.execute(
        "UPDATE catalog_changes SET told_at = ? WHERE told_at IS NULL AND id <= ?",
        (stamp, up_to))
    return cursor.rowcount


async def digest_state(db: Database, key: str) -> str | None:
    row = await db.fetchone("SELECT value FROM shop_settings WHERE key = ?", (key,))
    return str(row[0]) if row else None


async def set_state_in(conn: aiosqlite.Connection, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO shop_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
        " value = excluded.value, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        (key, value))


async def claim_digest_in(conn: aiosqlite.Connection, key: str, expected: str | None,
                          value: str) -> bool:
    """Set shop_settings ``key`` to ``value`` if it still holds ``expected``: two checks
    racing for one digest queue it once."""
    row = await first(conn, "SELECT value FROM shop_settings WHERE key = ?", (key,))
    if (None if row is None else str(row[0])) != expected:
        return False
    await set_state_in(conn, key, value)
    return True


async def prune_old(db: Database, before: float, limit: int) -> int:
    """Delete at most ``limit`` changes recorded before ``before`` (unix time), oldest
    first; told or not (untold that long only when the shop has no admin: stale news)."""
    rows = await db.write(
        "DELETE FROM catalog_changes WHERE id IN (SELECT id FROM catalog_changes"
        " WHERE created_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch')"
        " ORDER BY id LIMIT ?) RETURNING id", (before, limit))
    return len(rows)
