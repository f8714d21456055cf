"""The tracker's poll cycle over 10,000 open orders, beside one-request-per-order polling.

10,000 orders exist on the sandbox panel and in a fresh SQLite database. Measured
in the same run:

- the tracker's cycle while nothing changes (the usual case): requests per cycle
  (must be exactly 100, the API's floor at 100 ids a request), wall time (target
  <= 2 s on loopback) and the database's share;
- one cycle in which every order changes (all start at once): each change is a
  state update, a history row and a notice in the outbox;
- the baseline most existing bots use: one ``status`` request per order (with the
  same 4 requests in flight).

The sandbox runs in this process, so its work is counted in the wall times.

    .venv/bin/python bench/tracker.py [--orders 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.devtools.sandbox.server import DEFAULT_KEY, SandboxPanel, start_sandbox
from bot.panel import PanelClient
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders.tracking import Tracker
from storage import catalog as catalog_store
from storage import orders as order_store
from storage import outbox, users
from storage.db import Database


async def seed(db: Database, panel_ids: list[int], service_ref: int) -> None:
    await users.upsert_user(db, 1, first_name="Bench")
    async with db.transaction() as conn:
        for panel_id in panel_ids:
            order_id = (await order_store.insert(
                conn, token=uuid.uuid4().hex, user_id=1, panel="bench", service_ref=service_ref,
                service_id="103", service_name="bench", order_type="Default",
                fields={"link": "https://example.com", "quantity": "1000"}, quantity=1000,
                price_minor=0, currency="USD", panel_cost=0)).id
            await order_store.set_outcome(conn, order_id, state="pending",
                                          panel_order_id=str(panel_id))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    panel = SandboxPanel(pace=3600)
    sandbox = await start_sandbox(panel)
    folder = tempfile.mkdtemp()
    async with Database(Path(folder) / "bench.sqlite3") as db, \
            PanelClient(sandbox.url, DEFAULT_KEY, name="bench", rate_limit=0) as client:
        await refresh_catalog(db, client, "USD")
        stored = await catalog_store.by_panel_id(db, "bench", "103")
        assert stored is not None
        panel_ids = panel.seed_orders(103, args.orders)
        await seed(db, panel_ids, stored.ref)

        async def alert(_text: str) -> None:
            return None

        tracker = Tracker(db, {"bench": client}, interval=60, alert=alert)
        await tracker.poll("bench")  # the first cycle records the start counts
        requests, walls, db_times = [], [], []
        for _ in range(args.rounds):
            before = panel.requests["status"]
            report = await tracker.poll("bench")
            requests.append(panel.requests["status"] - before)
            walls.append(report.seconds)
            db_times.append(report.db_seconds)
            assert report.orders == args.orders and report.changed == 0

        panel.advance(3600 * 1.5)  # every order starts
        before = panel.requests["status"]
        busy = await tracker.poll("bench")
        busy_requests = panel.requests["status"] - before
        assert busy.changed == args.orders
        queued = (await outbox.counts(db)).get("pending", 0)

        semaphore = asyncio.Semaphore(4)

        async def one(panel_id: int) -> None:
            async with semaphore:
                await client.status(str(panel_id))

        before = panel.requests["status"]
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in panel_ids))
        baseline = time.perf_counter() - started
        baseline_requests = panel.requests["status"] - before
    await sandbox.stop()

    print(f"tracker poll cycle over {args.orders} open orders ({args.rounds} quiet rounds, medians)")
    print(f"  requests per cycle:   {sorted(set(requests))}   (must be exactly "
          f"{-(-args.orders // 100)})")
    print(f"  cycle wall time:      {statistics.median(walls) * 1000:8.1f} ms   (target <= 2000 ms)")
    print(f"  database time:        {statistics.median(db_times) * 1000:8.1f} ms")
    print(f"one cycle in which all {args.orders} orders change")
    print(f"  requests:             {busy_requests}")
    print(f"  cycle wall time:      {busy.seconds * 1000:8.1f} ms   "
          f"(database {busy.db_seconds * 1000:.1f} ms; {queued} notices queued)")
    print("baseline: one status request per order (4 in flight)")
    print(f"  requests:             {baseline_requests}")
    print(f"  wall time:            {baseline * 1000:8.1f} ms   "
          f"({baseline / statistics.median(walls):.0f}x the tracker's quiet cycle)")


if __name__ == "__main__":
    asyncio.run(main())
