"""Storefront users (Telegram accounts)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from storage.db import NOW, Database


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str | None
    first_name: str
    language: str | None
    balance_minor: int
    blocked: bool  # the customer blocked the bot
    banned: bool = False  # an admin blocked the customer
    created_at: str = ""
    last_seen_at: str | None = None
    chosen_language: str | None = None  # picked with /language; wins over ``language``

    @property
    def speaks(self) -> str | None:
        """The language to write to them in: their choice, else Telegram's code."""
        return self.chosen_language or self.language


_COLUMNS = ("id, username, first_name, language, balance_minor, blocked, banned_at IS NOT NULL,"
            " created_at, last_seen_at, chosen_language")


def _user(row: tuple) -> User:
    return User(int(row[0]), row[1], row[2], row[3], int(row[4]), bool(row[5]), bool(row[6]),
                row[7], row[8], row[9])


async def upsert_user(db: Database, user_id: int, *, username: str | None = None,
                      first_name: str = "", language: str | None = None,
                      starting: bool = False) -> User:
    """Register ``user_id`` or refresh their names and Telegram language (kept when
    Telegram sends none); the balance and a chosen language are untouched.
    ``starting`` (a /start) records the first one's time (``started_at``) in the
    same statement. It is activity too (``last_seen_at``): a new customer's first
    update is noted before their account exists, so ``mark_seen`` may find no row."""
    rows = await db.write(
        "INSERT INTO users (id, username, first_name, language, started_at, last_seen_at)"
        f" VALUES (?, ?, ?, ?, CASE WHEN ? THEN {NOW} END, {NOW})"
        " ON CONFLICT (id) DO UPDATE SET username = excluded.username,"
        " first_name = excluded.first_name,"
        " language = COALESCE(excluded.language, users.language), blocked = 0,"
        " started_at = COALESCE(users.started_at, excluded.started_at),"
        f" last_seen_at = {NOW}, updated_at = {NOW}"
        f" RETURNING {_COLUMNS}",
        (user_id, username, first_name, language, starting),
    )
    return _user(tuple(rows[0]))


async def get_user(db: Database, user_id: int) -> User | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return _user(tuple(row)) if row else None


def _like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def find(db: Database, *, user_id: int | None = None, username: str | None = None,
               name: str | None = None, limit: int = 10) -> list[User]:
    """Customers by exact id, by @username (exact first, then containing it), or by a
    name or username containing ``name``; newest customers first."""
    if user_id is not None:
        found = await get_user(db, user_id)
        return [found] if found else []
    if username is not None:
        rows = await db.fetchall(
            f"SELECT {_COLUMNS} FROM users WHERE username LIKE ? ESCAPE '\\'"
            " ORDER BY username = ? COLLATE NOCASE DESC, id DESC LIMIT ?",
            (_like(username), username, limit))
        return [_user(tuple(r)) for r in rows]
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM users WHERE first_name LIKE ? ESCAPE '\\'"
        " OR username LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT ?",
        (_like(name or ""), _like(name or ""), limit))
    return [_user(tuple(r)) for r in rows]


async def set_banned(conn: aiosqlite.Connection, user_id: int, banned: bool) -> bool | None:
    """Block or unblock a customer; the previous state (``None``: no such customer)."""
    rows = await conn.execute_fetchall(
        "SELECT banned_at IS NOT NULL FROM users WHERE id = ?", (user_id,))
    row = next(iter(rows), None)
    if row is None:
        return None
    await conn.execute(
        f"UPDATE users SET banned_at = CASE WHEN ? THEN COALESCE(banned_at, {NOW}) END"
        " WHERE id = ?", (int(banned), user_id))
    return bool(row[0])


async def banned_ids(db: Database) -> set[int]:
    rows = await db.fetchall("SELECT id FROM users WHERE banned_at IS NOT NULL")
    return {int(r[0]) for r in rows}


async def mark_seen(db: Database, user_ids: list[int]) -> None:
    """These customers were active just now (one statement for all of them)."""
    await db.write_many(f"UPDATE users SET last_seen_at = {NOW} WHERE id = ?",
                        [(user_id,) for user_id in user_ids])


async def choose_language(db: Database, user_id: int, language: str) -> bool:
    """Store the language a customer picked; False when they have no account yet."""
    rows = await db.write(
        f"UPDATE users SET chosen_language = ?, updated_at = {NOW} WHERE id = ? RETURNING id",
        (language, user_id))
    return bool(rows)


async def chosen_languages(db: Database) -> dict[int, str]:
    """Every customer's chosen language (only those who chose one)."""
    rows = await db.fetchall(
        "SELECT id, chosen_language FROM users WHERE chosen_language IS NOT NULL")
    return {int(r[0]): str(r[1]) for r in rows}
