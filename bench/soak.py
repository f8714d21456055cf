"""Steady over time: customers looping order -> cancel for half an hour.

50 customers (``--customers``) each go round the whole conversation (/start, shop,
platform, category, service, order, link, quantity, Confirm: the order is placed on
the sandbox panel, its own process), then open the order and cancel it, and start
again, with ``--think`` seconds between taps. The dispatcher, the SQLite database,
the FSM storage, the tracker and the notifier are the real ones; Telegram is a
stand-in that answers at once (bench/conversation.py's recording session), and
updates arrive as Telegram's JSON, parsed as polling and the webhook parse them.

Per window (``--window`` seconds, 5 minutes by default) it prints the updates
handled, their latency percentiles and the process's resident memory at the end
of the window, then each step's 99th percentile (to tell which step grows).
Goals (issue 24): memory flat within 5 % after the first window (warm-up), and
the last window's percentiles like the second's.

    .venv/bin/python bench/soak.py [--minutes 30] [--window 300] [--customers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiogram.types import Update
from conversation import callback, message, start_shop
from loopback import spawn_sandbox

from bot.app.bootstrap import settle_heap
from handlers.callbacks import (
    CategoryCb,
    MenuCb,
    OrderCb,
    OrderStartCb,
    PlatformCb,
    ServiceCb,
)
from storage import catalog as catalog_store
from storage import ledger, users

# The conversation's steps, named in the per-step line (Confirm and the cancel follow).
STEPS = ("start", "shop", "platform", "category", "service", "order", "link", "quantity")


def rss_mb() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000 if ordered else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--window", type=float, default=300, help="seconds per printed window")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--think", type=float, default=0.2, help="seconds between a customer's taps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    panel, panel_url = await spawn_sandbox()
    runtime, session, bot, dp = await start_shop(panel_url)
    tracker = dp["services"]["tracker"]
    cycles: list = []  # the tracker's reports in the window (bot/shop/orders/tracking.py)
    poll = tracker.poll

    async def recorded_poll(name: str):
        report = await poll(name)
        cycles.append(report)
        return report

    tracker.poll = recorded_poll
    background = [asyncio.create_task(tracker.run()),
                  asyncio.create_task(dp["services"]["notifier"].run())]
    stored = await catalog_store.by_panel_id(runtime.db, "main", "102")
    assert stored is not None
    customers = [2_000_000 + n for n in range(args.customers)]
    for user_id in customers:
        await users.upsert_user(runtime.db, user_id, first_name="U")
        async with runtime.db.transaction() as conn:
            await ledger.post(conn, user_id=user_id, amount_minor=10**9, kind="credit",
                              key=f"soak:{user_id}")
    settle_heap()
    ids = itertools.count(1)
    timings: list[float] = []
    by_step: dict[str, list[float]] = {}  # the same timings per step, for the p99 line
    errors = 0
    stop_at = time.monotonic() + args.minutes * 60

    async def feed(raw: dict, step: str) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            await dp.feed_update(bot, Update.model_validate(raw, context={"bot": bot}))
        except Exception:
            errors += 1
        took = time.perf_counter() - started
        timings.append(took)
        by_step.setdefault(step, []).append(took)
        await asyncio.sleep(args.think * random.uniform(0.5, 1.5))

    async def customer(user_id: int) -> None:
        await asyncio.sleep(random.uniform(0, args.think * 9))  # not all in step
        loop = 0
        while time.monotonic() < stop_at:
            loop += 1
            for step, raw in zip(STEPS, (message(user_id, "/start", next(ids)),
                        callback(user_id, MenuCb(action="shop").pack(), next(ids)),
                        callback(user_id, PlatformCb(slug=stored.platform).pack(), next(ids)),
                        callback(user_id, CategoryCb(id=stored.category_id).pack(), next(ids)),
                        callback(user_id, ServiceCb(ref=stored.ref).pack(), next(ids)),
                        callback(user_id, OrderStartCb(ref=stored.ref).pack(), next(ids)),
                        message(user_id, f"https://instagram.com/p/soak{user_id}x{loop}",
                                next(ids)),
                        message(user_id, "1000", next(ids))), strict=True):
                await feed(raw, step)
            await feed(callback(user_id, session.confirm_data[user_id], next(ids)), "confirm")
            row = await runtime.db.fetchone("SELECT MAX(id) FROM orders WHERE user_id = ?",
                                            (user_id,))
            if row is not None and row[0] is not None:
                await feed(callback(user_id, OrderCb(id=row[0], action="cancel").pack(),
                                    next(ids)), "cancel")

    print(f"{args.customers} customers looping order -> cancel for {args.minutes:g} min, "
          f"{args.window:g} s windows")
    print(" window  updates   p50 ms   p95 ms   p99 ms   RSS MB   orders")
    workers = [asyncio.create_task(customer(u)) for u in customers]
    window = 0
    rows = []
    full = []  # whether each window ran its whole length (the last one, the customers'
    # final laps after the deadline, is a few seconds: not compared)
    while not all(w.done() for w in workers):
        began = time.monotonic()
        await asyncio.wait(workers, timeout=args.window)
        full.append(time.monotonic() - began >= args.window * 0.9)
        window += 1
        taken, timings[:] = sorted(timings), []
        gc.collect()
        rss = rss_mb()
        [(orders,)] = [tuple(r) for r in await runtime.db.fetchall("SELECT COUNT(*) FROM orders")]
        rows.append((percentile(taken, 0.5), percentile(taken, 0.95), percentile(taken, 0.99), rss))
        print(f" {window:6d} {len(taken):8d} {rows[-1][0]:8.2f} {rows[-1][1]:8.2f} "
              f"{rows[-1][2]:8.2f} {rss:8.1f} {orders:8d}", flush=True)
        steps = {step: sorted(taken_step) for step, taken_step in by_step.items()}
        by_step.clear()
        print("        p99 ms by step: " + ", ".join(
            f"{step} {percentile(steps[step], 0.99):.1f}"
            for step in (*STEPS, "confirm", "cancel") if step in steps), flush=True)
        if cycles:  # what the tracker did meanwhile, in the database thread
            print(f"        tracker: {len(cycles)} cycles, {max(c.orders for c in cycles)} open"
                  f" orders, {sum(c.changed for c in cycles)} changed, longest"
                  f" {max(c.seconds for c in cycles):.2f} s of which database"
                  f" {max(c.db_seconds for c in cycles):.2f} s", flush=True)
            cycles.clear()
    whole = [row for row, ran in zip(rows, full, strict=True) if ran]
    if len(whole) >= 3:
        settled = [r[3] for r in rows[1:]]
        print(f"memory after warm-up: {min(settled):.1f}-{max(settled):.1f} MB "
              f"({(max(settled) - min(settled)) / min(settled):.1%} spread; goal <= 5 %); "
              f"p95 / p99 second window {whole[1][1]:.1f} / {whole[1][2]:.1f} ms, last full"
              f" window {whole[-1][1]:.1f} / {whole[-1][2]:.1f} ms; errors {errors}")
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    await runtime.close()
    panel.terminate()
    await panel.wait()


if __name__ == "__main__":
    asyncio.run(main())
