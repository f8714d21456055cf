"""aiogram FSM storage in SQLite, so a half-filled order form survives a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey

from storage.db import Database


class SqliteStorage(BaseStorage):
    """Write-through: every change is written to SQLite before it counts, and reads
    are served from memory once a key has been seen. Correct because this process
    is the database's only writer (one bot per database)."""

    def __init__(self, db: Database, key_builder: KeyBuilder | None = None) -> None:
        self.db = db
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self._cache: dict[str, tuple[str | None, dict[str, Any]]] = {}

    async def _load(self, key: str) -> tuple[str | None, dict[str, Any]]:
        cached = self._cache.get(key)
        if cached is None:
            row = await self.db.fetchone("SELECT state, data FROM fsm WHERE key = ?", (key,))
            cached = (row[0], json.loads(row[1])) if row else (None, {})
            self._cache[key] = cached
        return cached

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        built = self.key_builder.build(key)
        current, data = await self._load(built)
        if value == current:
            return
        await self.db.write("INSERT INTO fsm (key, state) VALUES (?, ?)"
                            " ON CONFLICT (key) DO UPDATE SET state = excluded.state",
                            (built, value))
        self._cache[built] = (value, data)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._load(self.key_builder.build(key)))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        built = self.key_builder.build(key)
        state, current = await self._load(built)
        # A JSON round trip: what is cached is exactly what a restart would read.
        encoded = json.dumps(dict(data), ensure_ascii=False)
        fresh = json.loads(encoded)
        if fresh == current:
            return
        await self.db.write("INSERT INTO fsm (key, data) VALUES (?, ?)"
                            " ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                            (built, encoded))
        self._cache[built] = (state, fresh)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return json.loads(json.dumps((await self._load(self.key_builder.build(key)))[1]))

    async def close(self) -> None:
        """The database belongs to the runtime, which closes it."""
