"""The composition root: embedded sandbox by default, configured panels otherwise."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from bot.app.bootstrap import build_bot, build_dispatcher, start_runtime
from bot.config import SANDBOX_PANEL_NAME, load_settings
from bot.devtools.sandbox.embedded import embedded_sandbox
from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox
from storage import catalog


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("PANEL_URL", "PANEL_KEY", "PANELS", "BOT_TOKEN", "DATABASE_PATH"):
        monkeypatch.delenv(name, raising=False)


async def test_no_panel_means_the_embedded_sandbox_said_loudly(
    tmp_path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    runtime = await start_runtime(load_settings(database_path=tmp_path / "shop.sqlite3"),
                                  embedded_panel=embedded_sandbox)
    try:
        assert runtime.sandbox is not None
        assert list(runtime.panels) == [SANDBOX_PANEL_NAME]
        assert any("NO PANEL CONFIGURED" in r.getMessage() for r in caplog.records)
        services = await catalog.active_services(runtime.db, SANDBOX_PANEL_NAME)
        assert len(services) == len(runtime.sandbox.panel.catalog)
        assert runtime.panel_currencies == {SANDBOX_PANEL_NAME: "USD"}
        services = dispatcher_services(runtime)
        assert services["orders"].db is runtime.db and services["accounts"].db is runtime.db
        assert "db" not in services and "runtime" not in services  # handlers get services only
    finally:
        await runtime.close()


async def test_configured_panels_are_synced_and_a_down_one_is_survived(
    tmp_path, make_sandbox, caplog: pytest.LogCaptureFixture,
) -> None:
    euro: RunningSandbox = await make_sandbox("softaapp")
    down: RunningSandbox = await make_sandbox()
    down.panel.inject("http502", times=100)
    settings = load_settings(
        database_path=tmp_path / "shop.sqlite3", panel_url=euro.url, panel_key=DEFAULT_KEY,
        panels=f'[{{"name": "down", "url": "{down.url}", "key": "{DEFAULT_KEY}", "rate_limit": 0}}]',
    )
    caplog.set_level(logging.ERROR)
    runtime = await start_runtime(settings)
    try:
        assert runtime.sandbox is None
        assert runtime.panel_currencies["main"] == "EUR"
        assert len(await catalog.active_services(runtime.db, "main")) == len(euro.panel.catalog)
        assert await catalog.active_services(runtime.db, "down") == []
        assert any("down is not reachable" in r.getMessage() for r in caplog.records)
    finally:
        await runtime.close()


def dispatcher_services(runtime) -> dict:
    bot = build_bot(runtime.settings.model_copy(update={
        "bot_token": SecretStr("123456789:AAExampleExampleExampleExampleExample")}))
    return build_dispatcher(runtime, bot, "shop_bot")["services"]


async def test_a_busy_sandbox_port_moves_to_a_free_one(tmp_path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import socket

    caplog.set_level(logging.WARNING)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = await start_runtime(load_settings(database_path=tmp_path / "shop.sqlite3",
                                                    sandbox_port=port),
                                      embedded_panel=embedded_sandbox)
        try:
            assert runtime.sandbox is not None and runtime.sandbox.port != port
            assert any(f"SANDBOX_PORT {port} is busy" in r.getMessage() for r in caplog.records)
        finally:
            await runtime.close()
