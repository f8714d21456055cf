"""Driving the unmodified bot end to end: sandbox panel + Bot API emulator + polling."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app.bootstrap import run_bot
from bot.config import load_settings
from bot.devtools.emulator import BotApiEmulator, RunningEmulator, ScriptedUser, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox
from bot.shop.wholesale.keys import ApiKeys
from storage import ledger, users
from storage.db import Database

TOKEN = "123456789:AAEmulatorEmulatorEmulatorEmulator00"
ADMIN_ID = 1_000_001


@dataclass
class Shop:
    emulator: BotApiEmulator
    sandbox: RunningSandbox
    database_path: Path
    task: asyncio.Task[None]
    settings_overrides: dict[str, Any]
    emulator_url: str

    def user(self, user_id: int = 42, first_name: str = "Alex", **extra: Any) -> ScriptedUser:
        return self.emulator.user(user_id, first_name, **extra)

    @property
    def admin(self) -> ScriptedUser:
        return self.emulator.user(ADMIN_ID, "Boss")

    async def db(self) -> Database:
        return await Database(self.database_path).open()

    async def credit(self, user_id: int, minor: int) -> None:
        database = await self.db()
        try:
            await users.upsert_user(database, user_id, first_name="Alex")
            async with database.transaction() as conn:
                await ledger.post(conn, user_id=user_id, amount_minor=minor, kind="credit",
                                  key=f"test:{user_id}:{minor}:{id(conn)}")
        finally:
            await database.close()

    async def balance(self, user_id: int) -> tuple[int, int]:
        """(balance, ledger sum) of a user, read from the database file."""
        database = await self.db()
        try:
            return (await ledger.balance_of(database, user_id),
                    await ledger.ledger_sum(database, user_id))
        finally:
            await database.close()

    async def api_key(self, user_id: int) -> str:
        """A new wholesale API key for ``user_id`` (made as /api makes it)."""
        database = await self.db()
        try:
            await users.upsert_user(database, user_id, first_name="Reseller")
            return (await ApiKeys(database, [], enabled=True, url=None).new_key(user_id)).key
        finally:
            await database.close()

    @property
    def api_url(self) -> str:
        """The wholesale API's URL (the shop was started with ``api_port``)."""
        return f"http://127.0.0.1:{self.settings_overrides['api_port']}/api/v2"

    async def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        database = await self.db()
        try:
            return [tuple(r) for r in await database.fetchall(sql, params)]
        finally:
            await database.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Until ``check()`` holds (the bot's tracker and notifier work on their own
    clocks: a test waits on the condition they bring about), or fail."""
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def free_port() -> int:
    """A TCP port nothing listens on now (for a server the test starts next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_bot(emulator_url: str, sandbox: RunningSandbox, database_path: Path,
                    **overrides: Any) -> asyncio.Task[None]:
    settings = load_settings(**{
        "bot_token": TOKEN, "telegram_api_url": emulator_url, "panel_url": sandbox.url,
        "panel_key": DEFAULT_KEY, "panel_rate_limit": 0, "database_path": database_path,
        "admin_ids": str(ADMIN_ID), **overrides,  # a test may give its own ADMIN_IDS
    })
    task = asyncio.create_task(run_bot(settings, handle_signals=False))
    return task


async def wait_ready(emulator: BotApiEmulator, task: asyncio.Task[None]) -> None:
    """Until the bot polls for updates or has set its webhook (or died trying)."""
    def polling() -> bool:
        return task.done() or emulator.webhook is not None or any(
            m.lower() == "getupdates" for m, _ in emulator.calls)

    await emulator.wait_for(polling, timeout=20)
    if task.done():
        task.result()


async def stop_bot(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def running_shop(sandbox: RunningSandbox, tmp_path: Path,
                       **overrides: Any) -> AsyncIterator[Shop]:
    emulator = BotApiEmulator()
    running: RunningEmulator = await start_emulator(emulator)
    database_path = tmp_path / "shop.sqlite3"
    task = await start_bot(running.url, sandbox, database_path, **overrides)
    shop = Shop(emulator, sandbox, database_path, task, overrides, running.url)
    try:
        await wait_ready(emulator, task)
        yield shop
    finally:
        await stop_bot(shop.task)
        await running.stop()


async def restart(shop: Shop, emulator_url: str) -> None:
    """Stop the bot process's work and start it again on the same database."""
    await stop_bot(shop.task)
    shop.emulator.calls.clear()
    shop.task = await start_bot(emulator_url, shop.sandbox, shop.database_path,
                                **shop.settings_overrides)
    await wait_ready(shop.emulator, shop.task)
