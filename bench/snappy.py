"""Snappy under load: 200 customers tapping once a second, timed as Telegram sees it.

The bot runs as in production (``python -m bot``, its own process, long polling)
against the loopback Bot API emulator in this process, which notes when each
update is handed to the bot (getUpdates returns it) and when the bot makes its
first call answering it (sendMessage, editMessageText, answerCallbackQuery...).
The sandbox panel runs in a third process.

Each customer loops through a whole order, one step a second (with jitter):
/start, Balance, /start, New order, platform, category, service, Order, link,
quantity, Skip (drip-feed runs), Confirm.
Confirm is the one step that calls the panel; it is reported apart from the rest.

Variants, measured in the same run, each with a fresh bot and database:

- ``rebuilt``: aiogram as it comes (its ``Response[T]`` classes rebuilt after
  every garbage collection: the session's fix undone in the bot's process);
- ``kept``: the bot as it ships (bot/app/telegram_session.py);
- ``uvloop``: as ``kept``, on uvloop's event loop (``pip install '.[fast]'``), when installed.

    .venv/bin/python bench/snappy.py [--customers 200] [--seconds 30] [--repeat 1]
        [--variants rebuilt,kept,uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import spawn_sandbox

from bot.devtools.emulator import BotApiEmulator, ScriptedUser, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY
from storage import ledger, users
from storage.db import Database

TOKEN = "123456789:AABenchBenchBenchBenchBenchBenchBench"
SERVICE_ID = "101"  # a Default service of the sandbox's catalog (link, quantity)

# The bot's process, with one variant applied before it starts.
LAUNCH = """
import sys
variant = sys.argv[1]
if variant == "rebuilt":
    from aiogram.client.session.aiohttp import AiohttpSession
    from bot.app.telegram_session import KeptResponsesSession
    KeptResponsesSession.check_response = AiohttpSession.check_response
if variant != "uvloop":
    sys.modules["uvloop"] = None  # asyncio's own loop
from bot.cli import main
sys.exit(main(["run"]))
"""

ANSWERING = ("sendmessage", "editmessagetext", "editmessagereplymarkup",
             "answercallbackquery", "sendphoto", "deletemessage")


class TimingEmulator(BotApiEmulator):
    """Notes each update's delivery and the bot's first call answering it."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: dict[int, float] = {}
        self.waiting: dict[int, tuple[int, str]] = {}  # chat id -> (update id, step)
        self.queries: dict[str, int] = {}  # callback query id -> chat id
        self.latencies: dict[str, list[float]] = {}
        self.recording = False

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        updates = await super()._m_getupdates(params)
        now = time.perf_counter()
        for update in updates:
            self.delivered.setdefault(update["update_id"], now)
        return updates

    def answered(self, params: dict[str, Any]) -> None:
        chat_id = params.get("chat_id")
        if chat_id is None:
            chat_id = self.queries.get(str(params.get("callback_query_id")))
        if chat_id is None:
            return
        waiting = self.waiting.pop(int(chat_id), None)
        if waiting is None:
            return
        update_id, step = waiting
        delivered = self.delivered.get(update_id)
        if delivered is not None and self.recording:
            self.latencies.setdefault(step, []).append(time.perf_counter() - delivered)


def answering(name: str) -> Any:
    async def method(self: TimingEmulator, params: dict[str, Any]) -> Any:
        self.answered(params)
        return await getattr(BotApiEmulator, f"_m_{name}")(self, params)
    return method


for _name in ANSWERING:
    setattr(TimingEmulator, f"_m_{_name}", answering(_name))


class Customer:
    def __init__(self, emulator: TimingEmulator, user: ScriptedUser, route: list[str],
                 quantity: str, pick: random.Random) -> None:
        self.emulator, self.user, self.route = emulator, user, route
        self.quantity, self.pick, self.round = quantity, pick, 0

    def _expect(self, update_id: int, step: str) -> None:
        self.emulator.waiting[self.user.id] = (update_id, step)

    async def _after(self, events: int) -> None:
        """Until the bot has shown something new in this chat (its whole answer may follow)."""
        with contextlib.suppress(TimeoutError):
            await self.emulator.wait_for(lambda: self.user.chat.events > events, 15)

    def send(self, text: str, step: str) -> int:
        message_id = self.emulator.new_message_id()
        body: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                "chat": self.user.chat.as_object(), "from": self.user.sender,
                                "text": text}
        if text.startswith("/"):
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
        update_id = self.emulator.push({"message": body})
        self._expect(update_id, step)
        return update_id

    def tap(self, label: str, step: str) -> int:
        message = self.user.with_button(label)
        button = message.button(label)
        assert button is not None and "callback_data" in button, (label, button)
        query_id = self.emulator.new_query_id()
        self.emulator.queries[query_id] = self.user.id
        update_id = self.emulator.push({"callback_query": {
            "id": query_id, "from": self.user.sender, "chat_instance": f"ci{self.user.id}",
            "data": button["callback_data"],
            "message": self.emulator._message_object(self.user.chat, message)}})
        self._expect(update_id, step)
        return update_id

    async def loop(self, until: float) -> None:
        await asyncio.sleep(self.pick.uniform(0, 1))
        while time.perf_counter() < until:
            self.round += 1
            link = f"https://instagram.com/p/u{self.user.id}r{self.round}"
            steps: list[tuple[str, str, str]] = [
                ("send", "/start", "/start"), ("tap", "Balance", "Balance"),
                ("send", "/start", "/start"), ("tap", "New order", "New order"),
                *(("tap", label, "browse") for label in self.route),
                ("tap", "🛒 Order", "browse"),
                ("send", link, "link"), ("send", self.quantity, "quantity"),
                ("skip", "Skip", "Skip"), ("tap", "Confirm", "Confirm")]
            for kind, what, step in steps:
                if kind == "skip":  # an optional step (drip-feed runs) before the summary
                    if self.user.last().button(what) is None:
                        continue
                    kind = "tap"
                started = time.perf_counter()
                events = self.user.chat.events
                try:
                    (self.send if kind == "send" else self.tap)(what, step)
                except AssertionError:  # the screen is not what the script expected
                    self.emulator.waiting.pop(self.user.id, None)
                    break
                await self._after(events)
                await asyncio.sleep(max(0.0, self.pick.uniform(0.8, 1.2)
                                        - (time.perf_counter() - started)))
                if time.perf_counter() >= until:
                    return


async def route_to_service(path: Path) -> tuple[list[str], str]:
    """The labels from the platform list to the service, and its minimum quantity."""
    async with Database(path) as db:
        [(platform, category, name, minimum)] = [tuple(r) for r in await db.fetchall(
            "SELECT c.platform, c.name, s.name, s.min_quantity FROM services s JOIN categories c"
            " ON c.id = s.category_id WHERE s.service_id = ?", (SERVICE_ID,))]
    word = {"twitter": "Twitter", "web": "Website", "youtube": "YouTube",
            "tiktok": "TikTok"}.get(platform, platform.capitalize())
    return [word, category, name[:40]], str(minimum)


async def credit(path: Path, user_ids: list[int]) -> None:
    async with Database(path) as db:
        for user_id in user_ids:
            await users.upsert_user(db, user_id, first_name=f"C{user_id}")
            async with db.transaction() as conn:
                await ledger.post(conn, user_id=user_id, amount_minor=10_000_000, kind="credit",
                                  key=f"bench:{user_id}")


async def one_variant(variant: str, panel_url: str, customers: int,
                      seconds: float) -> dict[str, list[float]]:
    emulator = TimingEmulator()
    running = await start_emulator(emulator)
    folder = Path(tempfile.mkdtemp())
    database = folder / "shop.sqlite3"
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": running.url,
           "PANEL_URL": panel_url, "PANEL_KEY": DEFAULT_KEY, "PANEL_RATE_LIMIT": "0",
           "DATABASE_PATH": str(database), "HEALTH_PORT": "", "ADMIN_IDS": "1"}
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, variant, env=env, cwd=folder,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await emulator.wait_for(lambda: any(m.lower() == "getupdates" for m, _ in emulator.calls),
                                60)
        ids = [500_000 + n for n in range(customers)]
        await credit(database, ids)
        route, quantity = await route_to_service(database)
        pick = random.Random(24)
        crowd = [Customer(emulator, emulator.user(i, f"C{i}"), route, quantity,
                          random.Random(pick.random())) for i in ids]
        warm_up = time.perf_counter() + 5
        until = warm_up + seconds
        loops = asyncio.gather(*(c.loop(until) for c in crowd))
        await asyncio.sleep(5)  # everyone past the first screens
        emulator.recording = True
        await loops
        return emulator.latencies
    finally:
        bot.terminate()
        await bot.wait()
        await running.stop()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(latencies: dict[str, list[float]]) -> dict[str, list[float]]:
    """The non-panel updates together, Confirm and three screens apart."""
    return {"non-panel": [v for step, values in latencies.items() if step != "Confirm"
                          for v in values],
            **{step: latencies.get(step, []) for step in ("Confirm", "/start", "Balance",
                                                          "quantity")}}


def summary(name: str, runs: list[list[float]]) -> str:
    """p50 and p99 of each run: their median, and their range when there are several."""
    runs = [run for run in runs if run]
    if not runs:
        return f"    {name:10} (none)"

    def spread(q: float) -> str:
        values = [quantile(run, q) * 1000 for run in runs]
        text = f"{statistics.median(values):7.1f} ms"
        return text + (f" ({min(values):.0f}-{max(values):.0f})" if len(values) > 1 else "")

    count = statistics.median(len(run) for run in runs)
    return f"    {name:10} n={count:6.0f}  p50 {spread(0.5)}  p99 {spread(0.99)}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every variant, interleaved")
    parser.add_argument("--variants", default="rebuilt,kept,uvloop")
    args = parser.parse_args()
    variants = args.variants.split(",")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if "uvloop" in variants:
            print("(uvloop is not installed: pip install '.[fast]'; its variant is skipped)")
            variants.remove("uvloop")

    sandbox, panel_url = await spawn_sandbox()
    results: dict[str, list[dict[str, list[float]]]] = {variant: [] for variant in variants}
    try:
        for _ in range(args.repeat):
            for variant in variants:
                results[variant].append(figures(await one_variant(
                    variant, panel_url, args.customers, args.seconds)))
    finally:
        sandbox.terminate()
        await sandbox.wait()

    print(f"{args.customers} customers, one step a second each, {args.seconds:g} s measured "
          f"after 5 s, {args.repeat} round(s); update delivered -> the bot's first answering "
          "call; medians over the rounds (range)")
    for variant, runs in results.items():
        print(f"  {variant}:")
        for name in runs[0]:
            print(summary(name, [run[name] for run in runs]))

    def p99(variant: str) -> float:
        return statistics.median(quantile(run["non-panel"], 0.99) for run in results[variant])

    for variant in variants:
        if variant != "kept" and "kept" in results:
            print(f"  non-panel p99 kept / {variant}: {p99('kept') / p99(variant):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
