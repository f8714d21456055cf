"""Shared fixtures: a real sandbox panel on loopback, real clients, a real SQLite file."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from bot.devtools.loopback import serve
from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox, SandboxPanel, start_sandbox
from bot.observability import redaction
from bot.panel import PanelClient, RetryPolicy
from bot.shop.orders.service import OrderService, Placement
from storage.db import Database
from tests.e2e import Shop, free_port, running_shop

# Property-based suites run in `make test`: bounded examples and no per-example
# deadline (the machine is noisy; parse time is bounded by explicit checks).
# HYPOTHESIS_PROFILE=thorough runs ten times as many.
settings.register_profile("default", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

async def place_as_shown(service: OrderService, user_id: int, ref: int,
                         values: Mapping[str, str], token: str | None = None) -> Placement:
    """Place an order as a customer does: confirming the price the confirmation showed."""
    quote = await service.quote(await service.on_sale(ref), values, user_id)
    return await service.place(user_id, ref, values, token or uuid.uuid4().hex, quote.price_minor)


FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=5)

SandboxFactory = Callable[..., Awaitable[RunningSandbox]]
ClientFactory = Callable[..., PanelClient]


@pytest.fixture(autouse=True)
def fresh_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no secret registered, so a test of masking proves that
    the code under test registered the secret (not an earlier test)."""
    monkeypatch.setattr(redaction, "_secrets", set())
    monkeypatch.setattr(redaction, "_pattern", None)


@pytest.fixture
async def make_sandbox() -> AsyncIterator[SandboxFactory]:
    running: list[RunningSandbox] = []

    async def make(dialect: str = "perfectpanel", **options: Any) -> RunningSandbox:
        options.setdefault("pace", 60.0)  # tests move the clock with advance()
        sandbox = await start_sandbox(SandboxPanel(dialect=dialect, **options))
        running.append(sandbox)
        return sandbox

    yield make
    for sandbox in running:
        await sandbox.stop()


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> RunningSandbox:
    return await make_sandbox()


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[PanelClient] = []

    def make(target: RunningSandbox | str, key: str = DEFAULT_KEY, **options: Any) -> PanelClient:
        url = target if isinstance(target, str) else target.url
        options.setdefault("rate_limit", 0)
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeout", 5.0)
        client = PanelClient(url, key, name="test", **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(sandbox: RunningSandbox, make_client: ClientFactory) -> PanelClient:
    return make_client(sandbox)


@pytest.fixture
async def db(tmp_path) -> AsyncIterator[Database]:
    database = await Database(tmp_path / "shop.sqlite3").open()
    yield database
    await database.close()


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    """The unmodified bot polling the Bot API emulator, on the sandbox panel."""
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1) as running:
        yield running


@pytest.fixture
async def serve_app() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Serve a one-off aiohttp app on loopback; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def serve_one(app: web.Application) -> str:
        runner, port = await serve(app)
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield serve_one
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def api_shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    """The unmodified bot with its wholesale API on (a port of its own), markup 50%."""
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            markup_percent=50) as shop:
        yield shop
