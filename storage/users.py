"""Storefront users (Telegram accounts)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import NOW, Database


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str | None
    first_name: str
    language: str | None
    balance_minor: int
    blocked: bool


_COLUMNS = "id, username, first_name, language, balance_minor, blocked"


def _user(row: tuple) -> User:
    return User(int(row[0]), row[1], row[2], row[3], int(row[4]), bool(row[5]))


async def upsert_user(db: Database, user_id: int, *, username: str | None = None,
                      first_name: str = "", language: str | None = None) -> User:
    """Register ``user_id`` or refresh their names; the balance is untouched."""
    rows = await db.write(
        "INSERT INTO users (id, username, first_name, language) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET username = excluded.username,"
        " first_name = excluded.first_name,"
        " language = COALESCE(users.language, excluded.language), blocked = 0,"
        f" updated_at = {NOW}"
        f" RETURNING {_COLUMNS}",
        (user_id, username, first_name, language),
    )
    return _user(tuple(rows[0]))


async def get_user(db: Database, user_id: int) -> User | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return _user(tuple(row)) if row else None
