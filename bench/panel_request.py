"""CPU per panel request: the client's own transport against httpx's default one.

The same ``PanelClient`` asks the sandbox panel (its own process, loopback HTTP)
for its balance, first one request at a time, then in bursts of 200 at once (as
the Confirms of many customers arrive together), with bot/panel/transport.py and
with ``httpx.AsyncHTTPTransport`` (httpcore on anyio), alternating, in one run.
The figure is this process's CPU time per request (``time.process_time``), not
the wall time: the panel's own work is in the other process.

    .venv/bin/python bench/panel_request.py [--rounds 4] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from loopback import spawn_sandbox

from bot.devtools.sandbox.server import DEFAULT_KEY
from bot.panel.client import MAX_CONNECTIONS, PanelClient, _tls

BURST = 200


def httpx_default() -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(verify=_tls(), limits=httpx.Limits(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS))


async def cpu_per_request(url: str, transport: httpx.AsyncBaseTransport | None,
                          requests: int) -> tuple[float, float]:
    """(sequential, burst) milliseconds of CPU per request."""
    async with PanelClient(url, DEFAULT_KEY, rate_limit=0, transport=transport) as client:
        for _ in range(20):  # warm: connections open, code paths taken
            await client.balance()
        started = time.process_time()
        for _ in range(requests):
            await client.balance()
        sequential = (time.process_time() - started) / requests * 1000
        started = time.process_time()
        for _ in range(requests // BURST or 1):
            await asyncio.gather(*(client.balance() for _ in range(BURST)))
        burst = (time.process_time() - started) / ((requests // BURST or 1) * BURST) * 1000
    return sequential, burst


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    panel, url = await spawn_sandbox("--pace", "3600")
    figures: dict[str, list[tuple[float, float]]] = {"own transport": [], "httpx default": []}
    try:
        for round_ in range(args.rounds):
            for name in figures:
                transport = httpx_default() if name == "httpx default" else None
                figures[name].append(await cpu_per_request(url, transport, args.requests))
                sequential, burst = figures[name][-1]
                print(f" round {round_ + 1}  {name:<14} one at a time {sequential:6.3f} ms"
                      f"   in bursts of {BURST} {burst:6.3f} ms CPU per request")
    finally:
        panel.terminate()
        await panel.wait()
    own, default = figures["own transport"], figures["httpx default"]
    for label, index in (("one at a time", 0), (f"bursts of {BURST}", 1)):
        mine = statistics.median(f[index] for f in own)
        theirs = statistics.median(f[index] for f in default)
        ratio = statistics.median(a[index] / b[index] for a, b in zip(own, default, strict=True))
        print(f"median, {label}: own {mine:.3f} ms, httpx default {theirs:.3f} ms,"
              f" ratio {ratio:.2f} (per round)")


if __name__ == "__main__":
    asyncio.run(main())
