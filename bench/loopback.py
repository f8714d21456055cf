"""The sandbox panel in its own process, for benchmarks that measure the bot side."""

from __future__ import annotations

import asyncio
import socket
import sys

import httpx

from bot.devtools.sandbox.server import DEFAULT_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def spawn_sandbox(*options: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``python -m bot sandbox`` on a free port; returns the process and API URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", str(port), *options,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v2"
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                await http.post(url, data={"key": DEFAULT_KEY, "action": "balance"})
                return process, url
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("the sandbox did not start")
