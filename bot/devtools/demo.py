"""``python -m bot demo``: the whole storefront, offline, as a chat in this terminal.

Everything runs in this process, on loopback: the sandbox panel (bot/sandbox),
the Bot API emulator standing in for Telegram (bot/devtools/emulator.py), the bot itself,
unmodified, long-polling the emulator, and the terminal chat
(bot/devtools/terminal_chat.py), in which you are a customer with a demo balance
and also the shop's admin (``/admin``). Nothing is real: no Telegram, no panel,
no money. The shop's data is kept in ``./data/demo.sqlite3`` between runs
(``--fresh`` starts over); the bot's log goes to ``./data/demo.log``.

No setting is read from the environment or ``.env``: the demo can never reach a
real panel or a real bot token, whatever the folder holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.app.backups import RunLock
from bot.config import ConfigError, Settings, StartupError
from bot.devtools.emulator import BotApiEmulator, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY, SandboxPanel, start_sandbox
from bot.devtools.terminal_chat import TerminalChat
from storage import ledger, users
from storage.db import Database

CUSTOMER_ID = 100_001
CUSTOMER_NAME = "Alex"
DEMO_TOKEN = "123456789:DEMOdemoDEMOdemoDEMOdemoDEMOdemo000"  # noqa: S105 (not a secret)
WELCOME_MINOR = 5_000  # $50.00 of demo balance, credited once per database
READY_TIMEOUT = 30.0
LOOPBACK = "127.0.0.1"

OPENING = """\
This is a demo of your future Telegram shop: the bot, a sandbox SMM panel and a stand-in for
Telegram all run here, offline. Nothing is real: no Telegram, no panel, no money ($50 to play with).
Type a button's number to tap it, anything else to send it; /admin is the owner's view, /quit leaves."""


class DemoSettings(Settings):
    """The shop's settings with only what the demo passes: no environment, no .env."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   *args: PydanticBaseSettingsSource,
                                   **kwargs: Any) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_settings(emulator_url: str, panel_url: str, database: Path, pace: float,
                  api_port: int) -> Settings:
    return DemoSettings(
        bot_token=DEMO_TOKEN, telegram_api_url=emulator_url, panel_url=panel_url,
        panel_key=DEFAULT_KEY, panel_rate_limit=0, database_path=database,
        admin_ids=str(CUSTOMER_ID), stars_per_unit=Decimal(50),
        track_interval=max(1.0, min(pace, 5.0)), log_level="INFO",
        support_contact="@your_support",
        # The growth features on, to be tried: /invite, loyalty on the balance screen.
        referral_percent=Decimal(10), loyalty_tiers="10:3,50:5",
        # The wholesale API on loopback: /api gives a key to try it with curl.
        api_enabled=True, api_port=api_port, webhook_host=LOOPBACK,
        api_public_url=f"http://{LOOPBACK}:{api_port}/api/v2",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


async def _credit_welcome(database: Path, lang: str) -> None:
    async with Database(database) as db:
        await users.upsert_user(db, CUSTOMER_ID, first_name=CUSTOMER_NAME, language=lang)
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=CUSTOMER_ID, amount_minor=WELCOME_MINOR,
                              kind="credit", key="demo:welcome", note="demo balance")


async def demo(args: argparse.Namespace) -> int:
    from bot.app.bootstrap import run_bot

    database = Path(args.data)
    database.parent.mkdir(parents=True, exist_ok=True)
    with RunLock(database) as lock:  # one demo per folder; --fresh never under a running one
        if lock.busy:
            raise StartupError(f"a demo is already running in this folder{lock.holder()}: quit"
                               " it (/quit), or run this one from another folder")
        if args.fresh:
            for leftover in database.parent.glob(database.name + "*"):
                if leftover != lock.path:
                    leftover.unlink()
    _quiet_logs(database.with_suffix(".log"))
    sandbox = await start_sandbox(SandboxPanel(dialect=args.dialect, pace=args.pace))
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    settings = demo_settings(running.url, sandbox.url, database, args.pace, _free_port())
    await _credit_welcome(database, args.lang)
    bot_task = asyncio.create_task(run_bot(settings, handle_signals=False))
    try:
        await emulator.wait_for(lambda: bot_task.done() or any(
            method.lower() == "getupdates" for method, _ in emulator.calls), READY_TIMEOUT)
        if bot_task.done():
            bot_task.result()  # it failed to start: say why
        user = emulator.user(CUSTOMER_ID, CUSTOMER_NAME, language_code=args.lang)
        chat = TerminalChat(emulator, user)
        chat.say(OPENING)
        await chat.handle("/start")
        await chat.run()
    finally:
        bot_task.cancel()
        with contextlib.suppress(BaseException):
            await bot_task
        await running.stop()
        await sandbox.stop()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """The demo with ``args`` checked (bot/cli.py, before this module is imported)."""
    try:
        return asyncio.run(demo(args))
    except KeyboardInterrupt:  # Ctrl-C: leave as /quit does
        print(file=sys.stderr)
        return 0
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ConfigError, OSError, TimeoutError) as exc:
        print(f"the demo could not start: {exc}", file=sys.stderr)
        return 1


def _quiet_logs(path: Path) -> None:
    """The bot's log goes to a file: the terminal is the chat."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
