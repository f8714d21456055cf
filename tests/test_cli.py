"""`python -m bot ...` as a reseller runs it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from bot.sandbox.dialects import DIALECTS
from bot.sandbox.server import DEFAULT_KEY, RunningSandbox
from tests.conftest import SandboxFactory

_SETTINGS = ("BOT_TOKEN", "TELEGRAM_API_URL", "PANEL_URL", "PANEL_KEY", "PANEL_NAME", "PANELS",
             "DATABASE_PATH", "ADMIN_IDS", "SHOP_CURRENCY", "MARKUP_PERCENT", "TRACK_INTERVAL")


async def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
                  limit: float = 30) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def panel_args(sandbox: RunningSandbox, *args: str) -> list[str]:
    return ["panel", "--url", sandbox.url, "--key", DEFAULT_KEY, *args]


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_services_json_in_every_dialect(dialect: str, make_sandbox: SandboxFactory,
                                              tmp_path: Path) -> None:
    sandbox = await make_sandbox(dialect)
    code, out, err = await run_cli(*panel_args(sandbox, "--json", "services"), cwd=tmp_path)
    assert code == 0, err
    services = json.loads(out)
    assert len(services) == len(sandbox.panel.catalog)
    for item in services:
        assert set(item) == {"id", "name", "type", "category", "rate", "min", "max", "refill",
                             "cancel", "dripfeed", "description"}
        assert isinstance(item["id"], str) and isinstance(item["rate"], str)
        assert isinstance(item["min"], int) and isinstance(item["max"], int)
        assert all(isinstance(item[k], bool) for k in ("refill", "cancel", "dripfeed"))
        entry = sandbox.panel.catalog[int(item["id"])]
        assert item["type"] == entry.type


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_status_json_in_every_dialect(dialect: str, make_sandbox: SandboxFactory,
                                            tmp_path: Path) -> None:
    sandbox = await make_sandbox(dialect)
    first, second = sandbox.panel.seed_orders(next(iter(sandbox.panel.catalog)), 2)
    code, out, err = await run_cli(*panel_args(sandbox, "--json", "status", str(first),
                                               str(second), "999"), cwd=tmp_path)
    assert code == 1  # one id was refused
    result = json.loads(out)
    assert result["999"] == {"error": "Incorrect order ID"}
    assert "999: Incorrect order ID" in err
    for order_id in (str(first), str(second)):
        assert set(result[order_id]) == {"status", "raw_status", "charge", "start_count",
                                         "remains", "currency"}
        assert result[order_id]["status"] == "pending"
        assert result[order_id]["currency"] == DIALECTS[dialect].currency

    code, out, _ = await run_cli(*panel_args(sandbox, "status", str(first)), cwd=tmp_path)
    assert code == 0 and "pending (Pending)" in out


async def test_add_balance_refill_cancel(sandbox: RunningSandbox, tmp_path: Path) -> None:
    code, out, err = await run_cli(*panel_args(sandbox, "--json", "add", "--service", "106",
                                               "--link", "https://instagram.com/p/abc",
                                               "--comments", "Nice\\nCool\\nWow\\nGreat\\nTop"),
                                   cwd=tmp_path)
    assert code == 0, err
    order_id = json.loads(out)["order"]
    assert len(sandbox.panel.orders[int(order_id)].fields["comments"].splitlines()) == 5

    code, out, _ = await run_cli(*panel_args(sandbox, "--json", "balance"), cwd=tmp_path)
    assert json.loads(out) == {"balance": "999.96000", "currency": "USD"}

    code, out, _ = await run_cli(*panel_args(sandbox, "--json", "cancel", order_id), cwd=tmp_path)
    assert code == 0 and json.loads(out)[order_id]["cancel"] == "accepted"

    code, _, err = await run_cli(*panel_args(sandbox, "refill", order_id), cwd=tmp_path)
    assert code == 1 and "Order cannot be refilled" in err

    code, out, _ = await run_cli(*panel_args(sandbox, "refill-status", "77"), cwd=tmp_path)
    assert code == 1


async def test_rejections_and_usage_errors(sandbox: RunningSandbox, tmp_path: Path) -> None:
    code, _, err = await run_cli(*panel_args(sandbox, "add", "--service", "101", "--link",
                                             "https://x.com/a", "--quantity", "5"), cwd=tmp_path)
    assert code == 1 and "Quantity less than minimal 100" in err
    code, _, err = await run_cli(*panel_args(sandbox, "add", "--service", "101", "--link",
                                             "https://x.com/a"), cwd=tmp_path)
    assert code == 2 and "--quantity" in err
    code, _, err = await run_cli("panel", "--url", sandbox.url, "--key", "wrong", "balance",
                                 cwd=tmp_path)
    assert code == 1 and "Invalid API key" in err and "Traceback" not in err
    assert sandbox.panel.orders == {}


async def test_panel_from_settings_and_unavailable_panel(sandbox: RunningSandbox,
                                                         tmp_path: Path) -> None:
    env = {"PANEL_URL": sandbox.url, "PANEL_KEY": DEFAULT_KEY}
    code, out, _ = await run_cli("panel", "balance", cwd=tmp_path, env=env)
    assert code == 0 and "1000.00000 USD" in out
    (tmp_path / ".env").write_text(f"PANEL_URL={sandbox.url}\nPANEL_KEY={DEFAULT_KEY}\n")
    code, out, _ = await run_cli("panel", "balance", cwd=tmp_path)
    assert code == 0, "settings are read from .env too"

    sandbox.panel.inject("html403", times=10)
    code, _, err = await run_cli("panel", "balance", cwd=tmp_path, env=env)
    assert code == 3 and "Cloudflare" in err


async def test_a_bad_setting_stops_with_one_line(tmp_path: Path) -> None:
    code, _, err = await run_cli("panel", "balance", cwd=tmp_path,
                                 env={"PANELS": "[{broken", "BOT_TOKEN": ""})
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("configuration error: PANELS")

    code, _, err = await run_cli("run", cwd=tmp_path, env={"BOT_TOKEN": ""})
    assert code == 2 and err.strip() == (
        "configuration error: BOT_TOKEN is not set (get one from @BotFather)")


async def test_no_panel_configured_says_how(tmp_path: Path) -> None:
    code, _, err = await run_cli("panel", "services", cwd=tmp_path)
    assert code == 2 and "PANEL_URL" in err and "make demo" in err
