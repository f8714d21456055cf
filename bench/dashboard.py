"""How long the admin dashboard takes with 100,000 orders and 20,000 customers.

Builds such a database in a temporary file (orders over a year, their debits,
some refunds), then prints the median of repeated dashboard computations (every
period's aggregates and the customer counts; no panel is asked) and of the
30-day chart's figures. Run: ``python bench/dashboard.py [orders] [customers]``.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.shop.backoffice import stats
from storage.db import Database

STATES = ["completed"] * 6 + ["partial", "canceled", "failed", "pending", "in_progress"]


def _iso(moment: datetime) -> str:
    return stats.iso(moment)


async def build(db: Database, orders: int, customers: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    await db.write_many(
        "INSERT INTO users (id, first_name, balance_minor, created_at, last_seen_at)"
        " VALUES (?, 'x', 1000000, ?, ?)",
        [(u, _iso(now - timedelta(days=rng.uniform(0, 365))),
          _iso(now - timedelta(days=rng.uniform(0, 30)))) for u in range(1, customers + 1)])
    await db.write("INSERT INTO categories (id, panel, name, platform) VALUES (1, 'main', 'c',"
                   " 'other')")
    await db.write("INSERT INTO services (id, panel, service_id, category_id, name, type,"
                   " sellable, category, rate, currency, min_quantity, max_quantity, synced_at)"
                   " VALUES (1, 'main', '1', 1, 'Likes', 'default', 1, 'c', '1', 'USD', 1, 10,"
                   " '')")
    order_rows, ledger_rows = [], []
    for i in range(1, orders + 1):
        at = _iso(now - timedelta(days=rng.uniform(0, 365)))
        price, state = rng.randint(10, 5000), rng.choice(STATES)
        order_rows.append((i, f"t{i}", rng.randint(1, customers), price, state,
                           price * 7 // 10, at))
        ledger_rows.append((order_rows[-1][2], -price, "order", f"order:{i}:debit", i, at))
        if state in ("failed", "canceled"):
            ledger_rows.append((order_rows[-1][2], price, "refund", f"order:{i}:refund", i, at))
    await db.write_many(
        "INSERT INTO orders (id, token, user_id, panel, service_ref, service_id, service_name,"
        " order_type, fields, price_minor, currency, panel_cost, state, fx_rate, cost_minor,"
        " created_at) VALUES (?, ?, ?, 'main', 1, '1', 'Likes', 'default', '{}', ?, 'USD',"
        " '0.1', ?, '1', ?, ?)", order_rows)
    await db.write_many(
        "INSERT INTO ledger (user_id, amount_minor, balance_after, kind, idempotency_key,"
        " order_id, created_at) VALUES (?, ?, 0, ?, ?, ?, ?)", ledger_rows)
    await db.write("ANALYZE")


async def main(orders: int, customers: int, runs: int = 21) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with Database(Path(folder) / "bench.sqlite3") as db:
            await build(db, orders, customers)
            board, chart = [], []
            for _ in range(runs):
                started = time.perf_counter()
                await stats.dashboard(db, panels={}, fx_rates={"main": Decimal(1)},
                                      currency="USD", timezone="Europe/Berlin",
                                      alert_below=None)
                board.append(time.perf_counter() - started)
                started = time.perf_counter()
                await stats.chart_days(db, stats.shop_zone("Europe/Berlin"))
                chart.append(time.perf_counter() - started)
    print(f"{orders} orders, {customers} customers: dashboard median "
          f"{statistics.median(board) * 1000:.1f} ms, 30-day chart figures median "
          f"{statistics.median(chart) * 1000:.1f} ms ({runs} runs)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args or [100_000, 20_000])))
