"""Start-up time and memory, against aiogram's own floor.

Each round launches, in turn, a bare aiogram echo bot and the storefront
(``python -m bot``) as processes polling a stand-in Telegram (the loopback Bot
API emulator, in this process), with a customer's message already waiting: the
figure is the time from launch to the bot's first answer in that chat. Resident
memory (``VmRSS``) is read when the answer has come and again a second later.
The storefront runs on an empty database and on one with 100k customers and 1M
orders (made with SQL in a few seconds); the sandbox panel runs in its own
process. Goals (issue 24): the first answer within 0.5 s of the echo bot's, and
memory within 25 MB of the echo bot's, on both databases.

Both bots run on a fresh ``pip install .`` (made first, in a temporary folder,
as bench/install_size.py makes it), as a reseller's server runs them: the
development venv's test tools change what the shop imports (import-linter brings
rich, click and pygments, which httpx then loads: ~10 MB and ~0.1 s that no
reseller pays). ``--python PATH`` runs both on another interpreter (``--python
.venv/bin/python`` for the development venv).

    .venv/bin/python bench/startup.py [--rounds 3] [--customers 100000] [--orders 1000000]
                                      [--python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from install_size import fresh_install
from loopback import spawn_sandbox

from bot.config import Settings
from bot.devtools.emulator import BotApiEmulator, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAStartupBenchStartupBenchStartupBen"
CUSTOMER = 42

# The floor: aiogram alone, polling, answering every message with its text.
ECHO_BOT = """
import asyncio, os, sys
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

async def main() -> None:
    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"])
    bot = Bot(sys.argv[1], session=AiohttpSession(api=api))
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    await dp.start_polling(bot, handle_signals=True)

asyncio.run(main())
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def first_answer(command: list[str], env: dict[str, str], text: str) -> tuple[float, float, float]:
    """Launch ``command`` against a fresh emulator holding one message; returns the
    seconds to the first answer and the resident MB then and a second later."""
    emulator = BotApiEmulator(username="shop_bot")
    running = await start_emulator(emulator)
    user = emulator.user(CUSTOMER, "Ann")
    emulator.push({"message": {"message_id": emulator.new_message_id(), "date": int(time.time()),
                               "chat": user.chat.as_object(), "from": user.sender, "text": text,
                               **({"entities": [{"type": "bot_command", "offset": 0,
                                                 "length": len(text)}]}
                                  if text.startswith("/") else {})}})
    env = {**env, "TELEGRAM_API_URL": running.url}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, cwd=env.get("WORKDIR", str(ROOT)), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await emulator.wait_for(lambda: bool(user.bot_messages), timeout=60)
        took = time.perf_counter() - started
        at_answer = rss_mb(process.pid)
        await asyncio.sleep(1)
        settled = rss_mb(process.pid)
    except (TimeoutError, ProcessLookupError, FileNotFoundError):
        if process.returncode is None:
            process.kill()
        _, err = await process.communicate()
        raise RuntimeError(f"no answer: {err.decode()[-2000:]}") from None
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
        await running.stop()
    return took, at_answer, settled


def fill(database: Path, customers: int, orders: int) -> None:
    """``customers`` customers and ``orders`` orders (1 % of them still open), with SQL."""
    started = time.perf_counter()
    with sqlite3.connect(database) as conn:
        [(service, panel, service_id)] = conn.execute(
            "SELECT id, panel, service_id FROM services ORDER BY id LIMIT 1").fetchall()
        conn.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO users (id, first_name, username, balance_minor)
            SELECT 1000000 + i, 'Customer ' || i, 'c' || i, 0 FROM n""", (customers,))
        conn.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO orders (token, user_id, panel, service_ref, service_id, service_name,
                                order_type, fields, quantity, price_minor, currency, panel_cost,
                                state, panel_order_id, created_at, updated_at)
            SELECT 'bench-' || i, 1000000 + (i % ?) + 1, ?, ?, ?, 'Followers', 'default',
                   '{"link":"https://instagram.com/x"}', 1000, 250, 'USD', '1.5',
                   CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'completed' END, 'p' || i,
                   strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i % 365) || ' days'),
                   strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i % 365) || ' days')
            FROM n""", (orders, customers, panel, service, service_id))
    print(f"  filled: {customers} customers, {orders} orders in {time.perf_counter() - started:.0f} s")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--python", type=Path,
                        help="the interpreter both bots run on (default: a fresh `pip install .`)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    python = args.python or fresh_install(folder / "venv")
    print(f"  both bots on {python}")
    panel, panel_url = await spawn_sandbox()
    settings = {name.upper() for name in Settings.model_fields}
    base = {k: v for k, v in os.environ.items() if k not in settings}  # no developer .env either
    base.update({"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "WORKDIR": str(folder)})
    shop_env = {**base, "BOT_TOKEN": TOKEN, "PANEL_URL": panel_url, "PANEL_KEY": DEFAULT_KEY,
                "TELEGRAM_WAIT": "5", "LOG_LEVEL": "WARNING", "CATALOG_REFRESH": "30"}
    echo = [str(python), "-c", ECHO_BOT, TOKEN]
    shop = [str(python), "-m", "bot"]
    empty, big = folder / "empty.sqlite3", folder / "big.sqlite3"
    # The big database: the shop's own schema and catalog (a first start), then the rows.
    await first_answer(shop, {**shop_env, "DATABASE_PATH": str(big)}, "/start")
    fill(big, args.customers, args.orders)
    results: dict[str, list[tuple[float, float, float]]] = {"echo": [], "empty": [], "big": []}
    for round_ in range(args.rounds):
        empty.unlink(missing_ok=True)
        for name, command, env, text in (
                ("echo", echo, base, "hello"),
                ("empty", shop, {**shop_env, "DATABASE_PATH": str(empty)}, "/start"),
                ("big", shop, {**shop_env, "DATABASE_PATH": str(big)}, "/start")):
            took, at_answer, settled = await first_answer(command, env, text)
            results[name].append((took, at_answer, settled))
            print(f" round {round_ + 1} {name:<6} first answer {took:5.2f} s   "
                  f"RSS {at_answer:5.0f} MB, {settled:5.0f} MB a second later")
    floor = {i: statistics.median(r[i] for r in results["echo"]) for i in range(3)}
    print(f"median echo bot: first answer {floor[0]:.2f} s, RSS {floor[2]:.0f} MB")
    for name, label in (("empty", "empty database"), ("big", f"{args.customers} customers, "
                                                             f"{args.orders} orders")):
        took = statistics.median(r[0] for r in results[name])
        rss = statistics.median(r[2] for r in results[name])
        late = statistics.median(r[0] - e[0] for r, e in zip(results[name], results["echo"],
                                                               strict=True))
        print(f"median storefront, {label}: first answer {took:.2f} s ({late:+.2f} s vs echo,"
              f" goal <= +0.5), RSS {rss:.0f} MB ({rss - floor[2]:+.0f} MB vs echo, goal <= +25)")
    panel.terminate()
    await panel.wait()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
