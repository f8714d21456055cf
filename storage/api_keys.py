"""Customers' wholesale API access (migration 0017): their one key, kept as a hash,
its use, whether API orders notify in the chat, and the owner's off switch.

Writers that take ``conn`` run inside the caller's transaction, so a key change
and its audit row commit together (bot/shop/wholesale/keys.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from storage.db import NOW, Database, first, run


@dataclass(frozen=True, slots=True)
class ApiAccess:
    user_id: int
    has_key: bool
    key_hint: str | None  # the current key's last 4 characters
    key_created_at: str | None
    last_used_at: str | None
    requests: int
    notify: bool  # API orders' notices are sent in the chat
    disabled: bool  # the owner turned API access off
    banned: bool = False  # the customer is blocked in the shop


_COLUMNS = ("a.user_id, a.key_hash IS NOT NULL, a.key_hint, a.key_created_at, a.last_used_at,"
            " a.requests, a.notify, a.disabled_at IS NOT NULL, u.banned_at IS NOT NULL")
_FROM = "FROM api_access a JOIN users u ON u.id = a.user_id"


def _access(row: Sequence) -> ApiAccess:
    return ApiAccess(int(row[0]), bool(row[1]), row[2], row[3], row[4], int(row[5]),
                     bool(row[6]), bool(row[7]), bool(row[8]))


async def access_of(db: Database, user_id: int) -> ApiAccess | None:
    """The customer's access row; ``None`` when they never had a key."""
    row = await db.fetchone(f"SELECT {_COLUMNS} {_FROM} WHERE a.user_id = ?", (user_id,))
    return _access(row) if row else None


async def by_key_hash(db: Database, key_hash: str) -> ApiAccess | None:
    """Whose key hashes to ``key_hash`` (``None``: nobody's, or a revoked one)."""
    row = await db.fetchone(f"SELECT {_COLUMNS} {_FROM} WHERE a.key_hash = ?", (key_hash,))
    return _access(row) if row else None


def by_key_hash_in(conn: sqlite3.Connection, key_hash: str) -> ApiAccess | None:
    """``by_key_hash`` inside the caller's transaction, in the database's thread (an
    order's: bot/shop/wholesale/keys.py ``key_still_works_in``)."""
    row = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE a.key_hash = ?", (key_hash,)).fetchone()
    return _access(row) if row else None


async def set_key(conn: aiosqlite.Connection, user_id: int, key_hash: str,
                  key_hint: str) -> bool:
    """Make ``key_hash`` the customer's only key (the old one stops working in the
    same statement); True when it replaced a key they had."""
    row = await first(conn, "SELECT key_hash IS NOT NULL FROM api_access WHERE user_id = ?",
                      (user_id,))
    await conn.execute(
        "INSERT INTO api_access (user_id, key_hash, key_hint, key_created_at)"
        f" VALUES (?, ?, ?, {NOW}) ON CONFLICT (user_id) DO UPDATE SET"
        " key_hash = excluded.key_hash, key_hint = excluded.key_hint,"
        " key_created_at = excluded.key_created_at", (user_id, key_hash, key_hint))
    return bool(row and row[0])


async def revoke(conn: aiosqlite.Connection, user_id: int) -> str | None:
    """The customer's key stops working; its hint, or ``None`` when they had none."""
    row = await first(conn, "UPDATE api_access SET key_hash = NULL, key_created_at = NULL"
                            " WHERE user_id = ? AND key_hash IS NOT NULL RETURNING key_hint",
                      (user_id,))
    return None if row is None else str(row[0])


async def set_notify(db: Database, user_id: int, notify: bool) -> bool:
    """API orders notify (or not) in the chat; False when the customer has no access row."""
    rows = await db.write("UPDATE api_access SET notify = ? WHERE user_id = ? RETURNING user_id",
                          (int(notify), user_id))
    return bool(rows)


async def set_disabled(conn: aiosqlite.Connection, user_id: int, disabled: bool,
                       admin_id: int) -> bool | None:
    """The owner turns the customer's API access off (or on again); the previous
    state (``None``: no such customer). Works before the customer made a key, so
    access can be refused before it is ever asked for."""
    exists = await first(conn, "SELECT 1 FROM users WHERE id = ?", (user_id,))
    if exists is None:
        return None
    row = await first(conn, "SELECT disabled_at IS NOT NULL FROM api_access WHERE user_id = ?",
                      (user_id,))
    await conn.execute(
        "INSERT INTO api_access (user_id, disabled_at, disabled_by)"
        f" VALUES (?, CASE WHEN ? THEN {NOW} END, CASE WHEN ? THEN ? END)"
        " ON CONFLICT (user_id) DO UPDATE SET disabled_at = excluded.disabled_at,"
        " disabled_by = excluded.disabled_by",
        (user_id, int(disabled), int(disabled), admin_id))
    return bool(row and row[0])


async def note_use(db: Database, user_id: int) -> None:
    """One more request made with the customer's key, now."""
    await run(db, f"UPDATE api_access SET requests = requests + 1, last_used_at = {NOW}"
                  " WHERE user_id = ?", (user_id,))


@dataclass(frozen=True, slots=True)
class ApiHolder:
    """A customer on the owner's API list: their access and who they are."""

    access: ApiAccess
    first_name: str
    username: str | None


# On the owner's list: whoever has a key now, or whose access the owner turned off.
_LISTED = "WHERE a.key_hash IS NOT NULL OR a.disabled_at IS NOT NULL"


async def holders(db: Database, limit: int, offset: int = 0) -> tuple[list[ApiHolder], int]:
    """A page of the customers with a key or with access off, the latest used first
    (never used: the newest key first), and how many there are in all."""
    total = await db.fetchone(f"SELECT COUNT(*) FROM api_access a {_LISTED}")
    rows = await db.fetchall(
        f"SELECT {_COLUMNS}, u.first_name, u.username {_FROM} {_LISTED}"
        " ORDER BY a.last_used_at IS NULL, a.last_used_at DESC, a.key_created_at DESC,"
        " a.user_id LIMIT ? OFFSET ?", (limit, offset))
    return ([ApiHolder(_access(row), row[9] or "", row[10]) for row in rows],
            int(total[0]) if total else 0)
