"""Serving an aiohttp app on a local port: the sandbox panel, the Bot API emulator."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, host: str = "127.0.0.1",
                port: int = 0) -> tuple[web.AppRunner, int]:
    """Start ``app``; returns its runner and the bound port (port 0 picks a free one).

    The shutdown is short so a handler held in an injected hang can't delay stop().
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
