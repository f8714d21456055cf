"""The bot process killed between the debit and the panel's answer (kill -9)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.devtools.emulator import BotApiEmulator, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY
from storage import ledger, users
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import TOKEN

pytestmark = pytest.mark.timeout(120)
CUSTOMER = 42


async def spawn(emulator_url: str, panel_url: str, database: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANEL", "BOT_"))}
    env.update(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emulator_url, PANEL_URL=panel_url,
               PANEL_KEY=DEFAULT_KEY, PANEL_RATE_LIMIT="0", DATABASE_PATH=str(database),
               LOG_LEVEL="WARNING")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=database.parent,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def rows(database: Path, sql: str) -> list[tuple]:
    async with Database(database) as db:
        return [tuple(r) for r in await db.fetchall(sql)]


async def test_a_crash_after_the_debit_loses_nothing_and_sends_nothing_twice(
    make_sandbox: SandboxFactory, tmp_path: Path,
) -> None:
    sandbox = await make_sandbox()
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    database = tmp_path / "shop.sqlite3"
    async with Database(database) as db:
        await users.upsert_user(db, CUSTOMER, first_name="Alex")
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=CUSTOMER, amount_minor=10_000, kind="credit",
                              key="test-credit")
    process = await spawn(running.url, sandbox.url, database)
    customer = emulator.user(CUSTOMER)
    try:
        await emulator.wait_for(lambda: any(m == "getUpdates" for m, _ in emulator.calls), 30)
        await customer.send("/search 102")
        await customer.tap("Instagram Followers [Cheap")
        await customer.tap("🛒 Order")
        await customer.send("https://instagram.com/p/crash")
        await customer.send("1000")
        assert "Check your order" in customer.text
        sandbox.panel.inject("hang", action="add", delay=600)  # the panel never answers
        confirm = asyncio.create_task(customer.tap("Confirm", timeout=60))
        await emulator.wait_for(lambda: sandbox.panel.requests["add"] == 1, 30)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        confirm.cancel()

        assert await rows(database, "SELECT state FROM orders") == [("submitting",)]
        assert await rows(database, "SELECT balance_minor FROM users") == [(10_000 - 59,)]
        assert await rows(database, "SELECT SUM(amount_minor) FROM ledger") == [(10_000 - 59,)]

        emulator.calls.clear()
        process = await spawn(running.url, sandbox.url, database)
        await emulator.wait_for(lambda: any(m == "getUpdates" for m, _ in emulator.calls), 30)
        # The restarted bot can't know whether the panel got it: an admin must check.
        assert await rows(database, "SELECT state FROM orders") == [("unknown",)]
        # The tap the crash cut off is handled again by the restarted bot (the inbox
        # replays it before anything new): the order is shown, never placed again.
        await emulator.wait_for(lambda: "already placed as #1" in customer.text, 30)
        assert "Status: ❔ Being checked" in customer.text  # shown, not lost
        await customer.tap("My orders")
        assert "❔ #1" in customer.last().buttons[0][0]
        assert sandbox.panel.requests["add"] == 1  # and never sent again on a guess
        assert sandbox.panel.orders == {}
        assert await rows(database, "SELECT COUNT(*) FROM orders") == [(1,)]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running.stop()
