"""1,000 order notifications to 1,000 users through the Bot API emulator enforcing
Telegram's 30 messages a second: the sustained send rate and the 429s received.

The real sender (bot/shop/messaging/notifier.py) with the real delivery (handlers/outbound/notices.py:
rendered in the user's language, order buttons) and aiogram's HTTP session, over
loopback. Targets (issue 4): >= 90 % of SEND_RATE and no 429 at all.

    .venv/bin/python bench/notify.py [--messages 1000] [--rate 25]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.devtools.emulator import BotApiEmulator, RunningEmulator, SendLimits, start_emulator
from bot.shop.catalog.pricing import Pricer
from bot.shop.messaging.broadcasts import Broadcasts
from bot.shop.messaging.notifier import Notifier
from bot.shop.money.accounts import Accounts
from bot.shop.orders.service import OrderService
from handlers.middlewares.i18n import build_i18n
from handlers.outbound.notices import TelegramDelivery
from storage import orders as order_store
from storage import outbox, users
from storage.db import Database
from storage.outbox import OrderNotice

TOKEN = "123456789:AABenchBenchBenchBenchBenchBenchBench"


async def seed(db: Database, emulator: BotApiEmulator, count: int) -> list[OrderNotice]:
    await db.write("INSERT INTO categories (id, panel, name, platform) VALUES (1, 'p', 'c', 'x')")
    await db.write("INSERT INTO services (id, panel, service_id, category_id, name, type,"
                   " sellable, category, rate, currency, min_quantity, max_quantity, synced_at)"
                   " VALUES (1, 'p', '1', 1, 'Instagram Likes', 'Default', 1, 'c', '1', 'USD',"
                   " 10, 10000, 'now')")
    notices = []
    for n in range(count):
        user_id = 10_000 + n
        emulator.user(user_id)
        await users.upsert_user(db, user_id, first_name="U", language="en")
        async with db.transaction() as conn:
            order_id = (await order_store.insert(
                conn, token=uuid.uuid4().hex, user_id=user_id, panel="p", service_ref=1,
                service_id="1", service_name="Instagram Likes", order_type="Default",
                fields={"link": "https://instagram.com/p/x", "quantity": "1000"}, quantity=1000,
                price_minor=0, currency="USD", panel_cost=0)).id
            await order_store.set_outcome(conn, order_id, state="completed",
                                          panel_order_id=str(n + 1))
        notices.append(OrderNotice(user_id, order_id, "completed"))
    return notices


async def limited_telegram() -> tuple[BotApiEmulator, RunningEmulator, Bot]:
    """The emulator enforcing Telegram's limits (30/s, 1/s per chat), and a bot on it."""
    emulator = BotApiEmulator()
    emulator.limits = SendLimits(per_second=30, per_chat_per_second=1)
    running = await start_emulator(emulator)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(running.url)),
              default=DefaultBotProperties(parse_mode="HTML"))
    return emulator, running, bot


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="SEND_RATE")
    args = parser.parse_args()

    emulator, running, bot = await limited_telegram()
    folder = tempfile.mkdtemp()
    async with Database(Path(folder) / "bench.sqlite3") as db:
        notices = await seed(db, emulator, args.messages)
        async with db.transaction() as conn:
            await outbox.queue_order_notices(conn, notices)
        orders = OrderService(db, {}, Pricer(db, "USD", Decimal(0), {}))
        notifier = Notifier(db, TelegramDelivery(bot, build_i18n(), orders, Accounts(db),
                                                 Broadcasts(db)), rate=args.rate)
        started = time.monotonic()
        await notifier.drain(timeout=600)
        elapsed = time.monotonic() - started
        counts = await outbox.counts(db)
    await bot.session.close()
    await running.stop()

    times = emulator.sent_times
    sustained = (len(times) - 1) / (times[-1] - times[0])
    print(f"{args.messages} notifications to {args.messages} users, SEND_RATE {args.rate:g}, "
          "emulator enforcing 30/s overall and 1/s per chat")
    print(f"  delivered:        {len(times)}   (outbox: {counts})")
    print(f"  sustained rate:   {sustained:6.2f} msg/s = {sustained / args.rate:.1%} of SEND_RATE"
          "   (target >= 90 %)")
    print(f"  429 answers:      {emulator.throttled}   (target 0)")
    print(f"  total time:       {elapsed:6.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
