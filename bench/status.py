"""Statuses of 10,000 orders: how many requests, and how long.

The multi-id `status` call takes at most 100 ids, so 10,000 orders must cost
exactly 100 requests (the API's floor). The sandbox runs in this process and
counts the requests it serves.

    .venv/bin/python bench/status.py [--orders 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.devtools.sandbox.server import DEFAULT_KEY, SandboxPanel, start_sandbox
from bot.panel import ItemError, PanelClient


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    sandbox = await start_sandbox(SandboxPanel(pace=3600))
    ids = [str(i) for i in sandbox.panel.seed_orders(103, args.orders)]
    requests, seconds = [], []
    try:
        async with PanelClient(sandbox.url, DEFAULT_KEY, name="bench", rate_limit=0) as client:
            for _ in range(args.rounds):
                before = sandbox.panel.requests["status"]
                started = time.perf_counter()
                statuses = await client.statuses(ids)
                seconds.append(time.perf_counter() - started)
                requests.append(sandbox.panel.requests["status"] - before)
                assert len(statuses) == args.orders
                assert not any(isinstance(s, ItemError) for s in statuses.values())
    finally:
        await sandbox.stop()

    print(f"statuses of {args.orders} orders, {args.rounds} rounds")
    print(f"  requests per round:  {sorted(set(requests))}   (must be exactly "
          f"{-(-args.orders // 100)})")
    print(f"  wall time (median):  {statistics.median(seconds) * 1000:8.1f} ms "
          "(client and sandbox share one process and core)")


if __name__ == "__main__":
    asyncio.run(main())
