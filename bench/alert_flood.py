"""Customer notices during an admin-alert flood (issue 9, item 14).

1,000 admin alerts wait in the outbox (spread over ``--admins`` admin chats, so
with the default 40 the alerts alone could fill SEND_RATE), then 10 customers'
order notices arrive: first all queued before the sender starts ("behind"), then
one every 0.2 s while the flood is being sent ("mid-flood"). The real sender
(bot/shop/messaging/notifier.py) and delivery (handlers/outbound/notices.py) against the Bot API
emulator enforcing 30/s overall and 1/s per chat. Prints when each customer
notice was sent, after it was queued; target: all within 2 s.

    .venv/bin/python bench/alert_flood.py [--rounds 3] [--admins 40] [--alerts 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.notify import limited_telegram, seed
from bot.shop.catalog.pricing import Pricer
from bot.shop.messaging.broadcasts import Broadcasts
from bot.shop.messaging.notifier import Notifier
from bot.shop.money.accounts import Accounts
from bot.shop.orders.service import OrderService
from handlers.middlewares.i18n import build_i18n
from handlers.outbound.notices import TelegramDelivery
from storage import outbox
from storage.db import Database

CUSTOMERS = 10
GIVE_UP = 60.0  # seconds; a notice not sent by then is reported as such


async def one_round(args: argparse.Namespace, mid_flood: bool) -> list[float]:
    """Seconds from queueing to sending, per customer notice (GIVE_UP if never)."""
    emulator, running, bot = await limited_telegram()
    folder = tempfile.mkdtemp()
    admins = [1_000_000 + n for n in range(args.admins)]
    for admin in admins:
        emulator.user(admin)
    queued_at: dict[int, float] = {}
    latencies: list[float] = []
    async with Database(Path(folder) / "bench.sqlite3") as db:
        notices = await seed(db, emulator, CUSTOMERS)
        async with db.transaction() as conn:
            for n in range(args.alerts):
                await outbox.queue(conn, [admins[n % len(admins)]], "alert",
                                   {"text": f"🐞 Error {n:04d}: RuntimeError"})
        orders = OrderService(db, {}, Pricer(db, "USD", Decimal(0), {}))
        notifier = Notifier(db, TelegramDelivery(bot, build_i18n(), orders, Accounts(db),
                                                 Broadcasts(db)), rate=args.rate)

        async def notify(index: int) -> None:
            async with db.transaction() as conn:
                await outbox.queue_order_notices(conn, [notices[index]])
            queued_at[notices[index].chat_id] = time.monotonic()
            notifier.wake()  # as the tracker does after queueing

        if not mid_flood:
            for index in range(CUSTOMERS):
                await notify(index)
        sender = asyncio.create_task(notifier.run())
        started = time.monotonic()
        if mid_flood:
            await asyncio.sleep(2.0)
            for index in range(CUSTOMERS):
                await notify(index)
                await asyncio.sleep(0.2)
        customers = [n.chat_id for n in notices]

        def all_sent() -> bool:
            return all(emulator.chats[c].messages for c in customers)

        with contextlib.suppress(TimeoutError):
            await emulator.wait_for(all_sent, started + GIVE_UP + 4.0 - time.monotonic())
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        for chat_id in customers:
            sent = emulator.sent_by_chat.get(chat_id, [])
            latencies.append(sent[0] - queued_at[chat_id] if sent else GIVE_UP)
        alerts_sent = sum(len(emulator.chats[a].messages) for a in admins)
    await bot.session.close()
    await running.stop()
    label = "mid-flood" if mid_flood else "behind   "
    print(f"  {label}  notices sent after (s): "
          + " ".join(f"{x:5.2f}" if x < GIVE_UP else " never" for x in latencies)
          + f"   | max {max(latencies):5.2f} s, alerts sent meanwhile {alerts_sent},"
          f" 429s {emulator.throttled}")
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--admins", type=int, default=40)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="SEND_RATE")
    args = parser.parse_args()
    print(f"{args.alerts} admin alerts over {args.admins} admin chats, then {CUSTOMERS} customer"
          f" notices; SEND_RATE {args.rate:g}, emulator enforcing 30/s and 1/s per chat")
    worst: dict[bool, list[float]] = {False: [], True: []}
    for round_no in range(1, args.rounds + 1):
        print(f" round {round_no}")
        for mid_flood in (False, True):
            worst[mid_flood].append(max(await one_round(args, mid_flood)))
    for mid_flood, label in ((False, "behind"), (True, "mid-flood")):
        print(f"median of the slowest notice per round, {label}: "
              f"{statistics.median(worst[mid_flood]):.2f} s   (target <= 2 s)")


if __name__ == "__main__":
    asyncio.run(main())
