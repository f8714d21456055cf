"""aiogram FSM storage in SQLite, so a half-filled order form survives a restart.

The aiogram side of it; its SQL is storage/fsm.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Literal

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    DEFAULT_DESTINY,
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)

from storage import fsm as fsm_store
from storage.behind import WriteBehind
from storage.db import Database

CLOSE_TIMEOUT = 10.0


class DestinyKeys(KeyBuilder):
    """Redis keys as aiogram's default builds them, so conversations stored before are
    still found, and another destiny's (the order form /start set aside:
    handlers/customer/kept_order.py) with the destiny in the key, which the default
    builder refuses."""

    def __init__(self) -> None:
        self._plain = DefaultKeyBuilder()
        self._destined = DefaultKeyBuilder(with_destiny=True)

    def build(self, key: StorageKey, part: Literal["data", "state", "lock"] | None = None) -> str:
        builder = self._plain if key.destiny == DEFAULT_DESTINY else self._destined
        return builder.build(key, part)


def _encoded(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))


def _canonical(stored: str) -> str:
    """Stored data in the form ``_encoded`` writes (rows written before are compared alike)."""
    return _encoded(json.loads(stored))


EMPTY = _encoded({})


class SqliteStorage(BaseStorage):
    """Reads are served from memory: every conversation left in a state or with
    data is read at the first use, in one query, and a key not among them has
    none (no read per new customer). Changes are written behind, batched
    (storage/behind.py): a single statement for all users. Correct because this
    process is the database's only writer (one bot per database).

    ``close()`` (aiogram calls it at shutdown) writes what is left, so a restart
    keeps every form. A crash can lose the last few milliseconds of form input,
    never money: orders and the ledger are written in their own transactions.
    """

    def __init__(self, db: Database, key_builder: KeyBuilder | None = None) -> None:
        self.db = db
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        # Each key's state and data, the data as the JSON text a restart would read:
        # a read decodes a fresh copy, a write encodes once (and is stored as is).
        self._cache: dict[str, tuple[str | None, str]] = {}
        self._loaded = False
        self._loading = asyncio.Lock()
        self._changes = WriteBehind(self._save, "conversation states")

    async def _load(self, key: str) -> tuple[str | None, str]:
        if not self._loaded:
            async with self._loading:
                if not self._loaded:
                    for stored_key, state, data in await fsm_store.saved(self.db):
                        self._cache.setdefault(stored_key, (state, _canonical(data)))
                    self._loaded = True
        # A key never set is not cached: reading every customer's empty slots (the
        # kept order form is read for each menu) costs no memory.
        return self._cache.get(key) or (None, EMPTY)

    def _changed(self, key: str, value: tuple[str | None, str]) -> None:
        self._cache[key] = value
        self._changes.note(key)

    async def _save(self, keys: list[str]) -> None:
        await fsm_store.save(self.db, [(key, *self._cache[key]) for key in keys])

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        built = self.key_builder.build(key)
        current, data = await self._load(built)
        if value != current:
            self._changed(built, (value, data))

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._load(self.key_builder.build(key)))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        built = self.key_builder.build(key)
        state, current = await self._load(built)
        fresh = _encoded(data)
        if fresh != current:
            self._changed(built, (state, fresh))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((await self._load(self.key_builder.build(key)))[1])
        return data

    async def close(self) -> None:
        """Write what is left; the database belongs to the runtime, which closes it."""
        await self._changes.close(CLOSE_TIMEOUT)
