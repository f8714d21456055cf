"""Many customers completing a full order conversation, against the real dispatcher.

Each simulated customer sends /start, opens the shop, a platform, a category and a
service, fills the form (link, quantity) and confirms: 9 updates, the last of
which places the order on the sandbox panel (its own process) over loopback HTTP. Updates are fed
straight into the dispatcher (real SQLite FSM storage and database); the Bot API
is replaced by a recording session that answers instantly. Each round runs the
scripts twice: fed to the dispatcher directly, and through the durable inbox as
the bot takes every update (bot/app/inbox.py: committed, handled, marked handled).
Beside them, in the same run, a bare aiogram echo bot handles the same number of
updates with the same session: the baseline. Every update starts as Telegram's JSON
and is parsed with the bot attached, as polling and the webhook deliver it (an
``Update`` built without the bot is dumped and validated again by aiogram, which
production never does and which halved the echo baseline: issue 24).

Targets (issues 3 and 24): >= 1,000 updates/s and >= 1/4 of the fair echo bot's rate.

``--per-step N`` instead takes N customers through the conversation one at a
time and prints each step's median CPU time in the bot's main thread
(``time.thread_time``, so the database thread's and the panel's work are not
in it) beside the echo bot's per update: where the time goes, without the
noise of a burst.

    .venv/bin/python bench/conversation.py [--users 200] [--rounds 3] [--warm-up 1]
                                           [--per-step 300]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Message, Update
from loopback import spawn_sandbox

from bot.app.bootstrap import Runtime, build_dispatcher, settle_heap, start_runtime
from bot.app.inbox import UpdateFeed
from bot.config import load_settings
from bot.devtools.sandbox.server import DEFAULT_KEY
from handlers.callbacks import (
    CategoryCb,
    FormCb,
    MenuCb,
    OrderStartCb,
    PlatformCb,
    ServiceCb,
)
from storage import catalog as catalog_store
from storage import ledger, users

TOKEN = "123456789:AABenchBenchBenchBenchBenchBenchBench"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Shop", "username": "shop_bot"}


class RecordingSession(BaseSession):
    """Answers every Bot API call at once, as Telegram would shape the result."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._ids = itertools.count(1)
        self.confirm_data: dict[int, str] = {}  # the Confirm button last shown in each chat

    async def close(self) -> None:
        return None

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType],
                           timeout: int | None = None) -> TelegramType:
        self.calls += 1
        name = type(method).__name__
        if name in ("SendMessage", "EditMessageText"):
            chat_id = getattr(method, "chat_id", 0)
            markup = getattr(method, "reply_markup", None)
            for row in getattr(markup, "inline_keyboard", None) or []:
                for key in row:
                    if (key.callback_data or "").startswith(CONFIRM):
                        self.confirm_data[int(chat_id)] = key.callback_data
            result: Any = Message.model_validate({
                "message_id": getattr(method, "message_id", None) or next(self._ids),
                "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER, "text": "ok"}, context={"bot": bot})
            return result
        if name == "GetMe":
            return method.__returning__.model_validate(BOT_USER)  # type: ignore[union-attr]
        return True  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any):  # pragma: no cover
        raise NotImplementedError
        yield b""


async def start_shop(panel_url: str) -> tuple[Runtime, RecordingSession, Bot, Dispatcher]:
    """The storefront on a new database and the sandbox at ``panel_url``, answering
    Telegram calls with a recording session."""
    settings = load_settings(bot_token=TOKEN, panel_url=panel_url, panel_key=DEFAULT_KEY,
                             panel_rate_limit=0,
                             database_path=Path(tempfile.mkdtemp()) / "bench.sqlite3")
    runtime = await start_runtime(settings)
    session = RecordingSession()
    bot = Bot(TOKEN, session=session)
    return runtime, session, bot, build_dispatcher(runtime, bot, "shop_bot")


def message(user_id: int, text: str, update_id: int) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "U"},
        "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "en"},
        "text": text,
        **({"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}
           if text.startswith("/") else {})}}


def callback(user_id: int, data: str, update_id: int) -> dict[str, Any]:
    return {"update_id": update_id, "callback_query": {
        "id": str(update_id), "chat_instance": "x", "data": data,
        "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "en"},
        "message": {"message_id": 1, "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private"}, "from": BOT_USER,
                    "text": "menu"}}}


Step = dict[str, Any] | Callable[[], dict[str, Any]]
CONFIRM = FormCb(action="confirm").pack()  # "f:confirm:", followed by the screen's name


async def run_users(dp: Dispatcher, bot: Bot, scripts: list[list[Step]],
                    feed: UpdateFeed | None = None) -> tuple[float, list[float]]:
    timings: list[float] = []

    async def one(script: list[Step]) -> None:
        for step in script:
            raw = step() if callable(step) else step  # a tap on what the bot just showed
            started = time.perf_counter()
            # Parsed with the bot attached, as polling and the webhook do (bot/app/inbox.py):
            # an update built without it is dumped and validated again by aiogram.
            update = Update.model_validate(raw, context={"bot": bot})
            if feed is None:
                await dp.feed_update(bot, update)
            else:
                await asyncio.gather(*await feed.take([(update, raw)]))
            timings.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(script) for script in scripts))
    elapsed = time.perf_counter() - started
    print(f"    (bot process CPU {(time.process_time() - cpu) / elapsed:.0%} of the wall time)")
    return elapsed, timings


STEP_NAMES = ("/start", "shop", "platform", "category", "service", "order", "link",
              "quantity", "Confirm")


async def per_step(dp: Dispatcher, echo: Dispatcher, bot: Bot, scripts: list[list[Step]],
                   customers: int) -> None:
    """Each step's median main-thread CPU, one customer at a time (the first tenth,
    warming up, left out), and the echo bot's per update."""
    cpu: dict[str, list[float]] = {name: [] for name in STEP_NAMES}
    echoed: list[float] = []
    ids = itertools.count(10**9)
    for number, script in enumerate(scripts):
        user_id = None
        for name, step in zip(STEP_NAMES, script, strict=True):
            raw = step() if callable(step) else step
            started = time.thread_time()
            update = Update.model_validate(raw, context={"bot": bot})
            await dp.feed_update(bot, update)
            if number >= customers // 10:
                cpu[name].append(time.thread_time() - started)
            user_id = update.event.from_user.id  # type: ignore[union-attr]
        for text in range(len(STEP_NAMES)):
            started = time.thread_time()
            await echo.feed_update(bot, Update.model_validate(
                message(user_id or 1, f"hello {text}", next(ids)), context={"bot": bot}))
            if number >= customers // 10:
                echoed.append(time.thread_time() - started)
    total = 0.0
    for name in STEP_NAMES:
        median = statistics.median(cpu[name]) * 1000
        total += median
        print(f"  {name:<10} {median:6.3f} ms")
    per_update = statistics.median(echoed) * 1000
    print(f"  conversation {total:.2f} ms of CPU; echo {per_update:.3f} ms an update;"
          f" ratio {len(STEP_NAMES) * per_update / total:.3f}"
          f" (0.25 needs {len(STEP_NAMES) * per_update * 4:.2f} ms)")


def report(name: str, elapsed: float, timings: list[float]) -> float:
    rate = len(timings) / elapsed
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[int(len(ordered) * 0.99)] * 1000
    print(f"  {name:<13} {len(timings):6d} updates  {rate:8.0f} updates/s   "
          f"p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=1, metavar="N",
                        help="rounds run first and not counted (default 1)")
    parser.add_argument("--per-step", type=int, default=0, metavar="N",
                        help="N customers one at a time: each step's CPU (see the docstring)")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the storefront's direct runs into FILE (pstats)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    # The panel runs in its own process, as a real one would: the figures are the bot's.
    # Funded for every round's orders, which stay pending (--pace 3600).
    panel, panel_url = await spawn_sandbox("--pace", "3600", "--balance", "1000000000")
    try:
        await measure(args, panel_url)
    finally:
        panel.terminate()
        await panel.wait()


async def measure(args: argparse.Namespace, panel_url: str) -> None:
    profiler = cProfile.Profile() if args.profile else None
    runtime, session, bot, dp = await start_shop(panel_url)
    try:
        await rounds(args, profiler, runtime, session, bot, dp)
    finally:
        if profiler is not None:
            profiler.dump_stats(args.profile)
        await dp.storage.close()  # the writes behind (storage/behind.py), as at a stop
        await dp["services"]["customers"].close()
        await runtime.close()


async def rounds(args: argparse.Namespace, profiler: cProfile.Profile | None, runtime: Runtime,
                 session: RecordingSession, bot: Bot, dp: Dispatcher) -> None:
    echo = Dispatcher()

    @echo.message()
    async def repeat(msg: Message) -> None:
        await msg.answer(msg.text or "")

    stored = await catalog_store.by_panel_id(runtime.db, "main", "102")
    assert stored is not None
    settle_heap()  # as run_bot does before polling
    ids = itertools.count(1)
    feed = UpdateFeed(dp, bot, runtime.db)
    shop_rates, inbox_rates, echo_rates = [], [], []
    if not args.per_step:
        print(f"{args.users} customers x 9 updates each, {args.rounds} rounds"
              f" after {args.warm_up} to warm up")
    def customers_of(group: int) -> list[int]:
        return [1_000_000 * group + n for n in range(args.users)]

    async def fund(customers: list[int]) -> None:
        for user_id in customers:
            await users.upsert_user(runtime.db, user_id, first_name="U")
            async with runtime.db.transaction() as conn:
                await ledger.post(conn, user_id=user_id, amount_minor=10_000, kind="credit",
                                  key=f"bench:{user_id}")

    def scripts_of(customers: list[int]) -> list[list[Step]]:
        return [[
            message(u, "/start", next(ids)),
            callback(u, MenuCb(action="shop").pack(), next(ids)),
            callback(u, PlatformCb(slug=stored.platform).pack(), next(ids)),
            callback(u, CategoryCb(id=stored.category_id).pack(), next(ids)),
            callback(u, ServiceCb(ref=stored.ref).pack(), next(ids)),
            callback(u, OrderStartCb(ref=stored.ref).pack(), next(ids)),
            message(u, f"https://instagram.com/p/bench{u}", next(ids)),
            message(u, "1000", next(ids)),
            lambda u=u: callback(u, session.confirm_data[u], next(ids)),
        ] for u in customers]

    async def all_placed(customers: list[int]) -> None:
        placed = await runtime.db.fetchone("SELECT COUNT(*) FROM orders WHERE state = 'pending'"
                                           " AND user_id BETWEEN ? AND ?",
                                           (customers[0], customers[-1]))
        assert placed is not None and placed[0] == args.users, placed

    if args.per_step:
        customers = [5_000_000 + n for n in range(args.per_step)]
        await fund(customers)
        await per_step(dp, echo, bot, scripts_of(customers), len(customers))
    # The first rounds warm both bots up (the storefront's caches and the classes
    # aiogram and pydantic build on first use) and are not counted: the figures are
    # a bot that has been running, as in production.
    for round_ in range(0 if args.per_step else args.warm_up + args.rounds):
        warming = round_ < args.warm_up
        direct, inboxed = customers_of(2 * round_ + 1), customers_of(2 * round_ + 2)
        await fund(direct + inboxed)
        print(" warm-up (not counted)" if warming else f" round {round_ + 1 - args.warm_up}")
        if profiler is not None and not warming:
            profiler.enable()
        elapsed, timings = await run_users(dp, bot, scripts_of(direct))
        if profiler is not None:
            profiler.disable()
        shop = report("storefront", elapsed, timings)
        await all_placed(direct)
        elapsed, timings = await run_users(dp, bot, scripts_of(inboxed), feed)
        inboxed_rate = report("  + inbox", elapsed, timings)
        await all_placed(inboxed)
        echo_scripts = [[message(u, f"hello {n}", next(ids)) for n in range(9)]
                        for u in direct]
        elapsed, timings = await run_users(echo, bot, echo_scripts)
        echo_rate = report("echo baseline", elapsed, timings)
        print(f"  ratio         {shop / echo_rate:.2f}"
              f"   (through the inbox {inboxed_rate / echo_rate:.2f})")
        if not warming:
            shop_rates.append(shop)
            inbox_rates.append(inboxed_rate)
            echo_rates.append(echo_rate)

    if shop_rates:
        # Each round's pair runs back to back, so its ratio is measured under the same
        # machine conditions; the median of those is the figure quoted.
        shop, echo_rate = statistics.median(shop_rates), statistics.median(echo_rates)
        ratio = statistics.median(a / b for a, b in zip(shop_rates, echo_rates, strict=True))
        inboxed = statistics.median(inbox_rates)
        cost = statistics.median(a / b for a, b in zip(inbox_rates, shop_rates, strict=True))
        print(f"median: storefront {shop:.0f} updates/s, echo {echo_rate:.0f} updates/s, "
              f"ratio {ratio:.3f} (per round; targets: >= 1000 updates/s, ratio >= 0.25)")
        print(f"        through the inbox {inboxed:.0f} updates/s, {cost:.2f} of direct"
              " (per round)")


if __name__ == "__main__":
    asyncio.run(main())
