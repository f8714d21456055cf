"""Conversation states and data (the ``fsm`` table), for bot/app/fsm_storage.py."""

from __future__ import annotations

from collections.abc import Iterable

from storage.db import Database

_UPSERT = ("INSERT INTO fsm (key, state, data) VALUES (?, ?, ?) ON CONFLICT (key)"
           " DO UPDATE SET state = excluded.state, data = excluded.data")


async def saved(db: Database) -> list[tuple[str, str | None, str]]:
    """Every (key, state, data as JSON) with a state or data: a row with neither is
    the same as no row."""
    rows = await db.fetchall("SELECT key, state, data FROM fsm"
                             " WHERE state IS NOT NULL OR data != '{}'")
    return [(str(r[0]), r[1], str(r[2])) for r in rows]


async def save(db: Database, rows: Iterable[tuple[str, str | None, str]]) -> None:
    """Write (key, state, data as JSON) rows, one statement for all."""
    await db.write_many(_UPSERT, rows)
