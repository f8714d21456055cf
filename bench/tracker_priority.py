"""A Confirm's panel call while the tracker polls 10,000 orders at the panel's rate limit.

At the default 1 request/s a status cycle over 10,000 open orders needs 100 requests,
so it is always running. Measured in the same run, on the sandbox panel over loopback:

- ``fifo``: the rate limiter as it was (every request spaced 1/rate apart, first come
  first served), a copy kept here as the baseline;
- ``priority``: ``bot.panel.client.RateLimiter`` (add/cancel/refill before status
  batches, which keep one token in reserve).

For each, the tracker's cycle runs in the background while ``--confirms`` orders are
placed one at a time at uneven moments; it prints the median, range and the
tracker's progress, and the time of the two start-up calls (balance, services).

    .venv/bin/python bench/tracker_priority.py [--orders 10000] [--confirms 8] [--rate 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tracker import seed

from bot.devtools.sandbox.server import DEFAULT_KEY, SandboxPanel, start_sandbox
from bot.panel import PanelClient
from bot.panel.client import RateLimiter
from bot.panel.order_types import get_order_type
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders.tracking import Tracker
from storage import catalog as catalog_store
from storage.db import Database


class FifoLimiter:
    """The limiter before priorities: spaced evenly, first come first served."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self, *, background: bool = False) -> None:
        del background  # no priorities
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)

    def defer(self, seconds: float) -> None:
        self._next = max(self._next, time.monotonic() + seconds)


LIMITERS = {"fifo": FifoLimiter, "priority": RateLimiter}


def client_with(kind: str, url: str, rate: float) -> PanelClient:
    client = PanelClient(url, DEFAULT_KEY, name="bench", rate_limit=rate)
    client._limiter = LIMITERS[kind](rate)  # the one thing compared
    return client


async def startup_calls(kind: str, url: str, rate: float) -> float:
    async with client_with(kind, url, rate) as client:
        started = time.perf_counter()
        await client.balance()
        await client.services()
        return time.perf_counter() - started


async def confirms_while_polling(kind: str, url: str, rate: float, db: Database,
                                 panel: SandboxPanel, confirms: int) -> tuple[list[float], float, float]:
    """Latencies of ``confirms`` adds during a status cycle; status and all requests a second."""
    order_type = get_order_type("Default")
    pick = random.Random(24)
    async with client_with(kind, url, rate) as client:
        async def alert(_text: str) -> None:
            return None

        tracker = Tracker(db, {"bench": client}, interval=60, alert=alert)
        before, before_all = panel.requests["status"], panel.requests["total"]
        window = time.perf_counter()
        cycle = asyncio.create_task(tracker.poll("bench"))
        await asyncio.sleep(3 / rate)  # the cycle is under way, its batches queued
        latencies = []
        for n in range(confirms):
            values = {"link": f"https://instagram.com/p/{kind}{n}", "quantity": "100"}
            await asyncio.sleep(pick.uniform(0.3, 1.7) / rate)
            started = time.perf_counter()
            await client.add("101", order_type, values)
            latencies.append(time.perf_counter() - started)
        cycle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cycle
        seconds = time.perf_counter() - window
        return (latencies, (panel.requests["status"] - before) / seconds,
                (panel.requests["total"] - before_all) / seconds)


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:7.0f} ms   range "
            f"{min(values) * 1000:.0f}-{max(values) * 1000:.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--confirms", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1.0, help="panel requests a second")
    args = parser.parse_args()

    panel = SandboxPanel(pace=3600)
    sandbox = await start_sandbox(panel)
    folder = tempfile.mkdtemp()
    async with Database(Path(folder) / "bench.sqlite3") as db:
        async with PanelClient(sandbox.url, DEFAULT_KEY, name="bench", rate_limit=0) as setup:
            await refresh_catalog(db, setup, "USD")
        stored = await catalog_store.by_panel_id(db, "bench", "103")
        assert stored is not None
        await seed(db, panel.seed_orders(103, args.orders), stored.ref)
        results = {}
        for kind in LIMITERS:
            startup = await startup_calls(kind, sandbox.url, args.rate)
            latencies, polled, total = await confirms_while_polling(kind, sandbox.url, args.rate, db,
                                                            panel, args.confirms)
            results[kind] = (startup, latencies, polled, total)
    await sandbox.stop()

    print(f"Confirm's panel call during a status cycle over {args.orders} open orders, "
          f"panel limit {args.rate:g} request/s, {args.confirms} confirms each")
    for kind, (startup, latencies, polled, total) in results.items():
        print(f"  {kind:9} confirm {spread(latencies)}   start-up calls "
              f"{startup * 1000:5.0f} ms   status requests {polled:.2f}/s, all {total:.2f}/s")
    ratio = (statistics.median(results["priority"][1]) / statistics.median(results["fifo"][1]))
    print(f"  priority / fifo confirm median: {ratio:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
