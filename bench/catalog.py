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
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.panel.parsing import decode_body, parse_services
from bot.sandbox.server import DEFAULT_KEY
from storage import catalog
from storage.db import Database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                await http.post(url, data={"key": DEFAULT_KEY, "action": "balance"})
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the sandbox did not start")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", str(port), "--catalog-size",
        str(args.services), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v2"
    fetch, parse, store, total = [], [], [], []
    try:
        await wait_ready(url)
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
