"""Fetch, parse and store a 10,000-service catalog from the sandbox panel.

The sandbox runs in its own process so the peak RSS printed here is the bot
side's alone. Each phase is timed over several rounds; medians are printed.
Targets (issue 2): parse+store <= 0.5 s, peak RSS <= 100 MB.

    .venv/bin/python bench/catalog.py [--services 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import spawn_sandbox

from bot.devtools.sandbox.server import DEFAULT_KEY
from bot.panel.parsing import decode_body, parse_services
from storage import catalog
from storage.db import Database


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    server, url = await spawn_sandbox("--catalog-size", str(args.services))
    fetch, parse, store, total = [], [], [], []
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with httpx.AsyncClient(timeout=60) as http, \
                    Database(Path(folder) / "bench.sqlite3") as db:
                for round_ in range(args.rounds):
                    started = time.perf_counter()
                    response = await http.post(url, data={"key": DEFAULT_KEY, "action": "services"})
                    fetched = time.perf_counter()
                    services = parse_services(decode_body(response.text))
                    parsed = time.perf_counter()
                    # Alternate rounds store into a fresh panel name (all inserts) and
                    # the same one (all updates), as a first sync and a refresh do.
                    panel = "bench" if round_ % 2 else f"fresh{round_}"
                    await catalog.replace_services(db, panel, "USD", services)
                    stored = time.perf_counter()
                    assert len(services) == args.services
                    fetch.append(fetched - started)
                    parse.append(parsed - fetched)
                    store.append(stored - parsed)
                    total.append(stored - fetched)
                    del response, services  # a refresh holds one catalog at a time
    finally:
        server.terminate()
        await server.wait()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = statistics.median
    print(f"catalog of {args.services} services, {args.rounds} rounds (medians)")
    print(f"  fetch (HTTP, sandbox in another process): {med(fetch) * 1000:8.1f} ms")
    print(f"  parse:                                    {med(parse) * 1000:8.1f} ms")
    print(f"  store (SQLite upsert):                    {med(store) * 1000:8.1f} ms")
    print(f"  parse + store:                            {med(total) * 1000:8.1f} ms"
          f"   (target <= 500 ms)")
    print(f"  peak RSS of this process:                 {peak_mb:8.1f} MB   (target <= 100 MB)")


if __name__ == "__main__":
    asyncio.run(main())
