"""The audit log: one row per admin action, written with the change it records.

``record`` takes the caller's transaction connection (or the database, for a
change that is one statement of its own), so an action and its row commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from storage.db import Database, error_text, run

MAX_VALUE = 300  # characters of a before/after/note value kept


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    admin_id: int
    action: str
    target_kind: str
    target_id: str
    before: str
    after: str
    note: str
    created_at: str


_COLUMNS = "id, admin_id, action, target_kind, target_id, before, after, note, created_at"


def _entry(row: Sequence) -> AuditEntry:
    return AuditEntry(int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7],
                      row[8])


def _kept(value: object) -> str:
    return error_text(str(value))[:MAX_VALUE]


async def record(target: Database | aiosqlite.Connection, *, admin_id: int, action: str,
                 target_kind: str, target_id: object, before: object = "", after: object = "",
                 note: object = "") -> None:
    await run(target,
              "INSERT INTO audit_log (admin_id, action, target_kind, target_id, before, after,"
              " note) VALUES (?, ?, ?, ?, ?, ?, ?)",
              (admin_id, action, target_kind, str(target_id), _kept(before), _kept(after),
               _kept(note)))


async def recent(db: Database, limit: int, offset: int = 0) -> tuple[list[AuditEntry], int]:
    """The newest entries first, and how many there are."""
    total = await db.fetchone("SELECT COUNT(*) FROM audit_log")
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
                             (limit, offset))
    return [_entry(r) for r in rows], int(total[0]) if total else 0


async def about(db: Database, target_kind: str, target_id: object,
                limit: int) -> list[AuditEntry]:
    """The newest entries about one target (a customer's card shows theirs)."""
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM audit_log WHERE target_kind = ? AND target_id = ?"
        " ORDER BY id DESC LIMIT ?", (target_kind, str(target_id), limit))
    return [_entry(r) for r in rows]
