"""`python -m bot ...` as a reseller runs it, over real sockets: as a real process where
the process is what is tested (settings from the environment and .env, signals, the
sandbox's try line), and through ``bot.cli.main`` in this process for what each panel
command answers (a new process spends ~3 s of CPU importing aiogram first)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot import cli
from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG
from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox
from bot.panel.dialects import DIALECTS
from bot.panel.order_types import Pricing, get_order_type
from tests.conftest import SandboxFactory
from tests.test_demo import ctrl_c_as_in_a_terminal

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


MainIn = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def main_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
            capsys: pytest.CaptureFixture[str]) -> MainIn:
    """``bot.cli.main(argv)`` in this process, with no setting from the environment;
    returns (exit code, stdout, stderr). It runs in a thread: the CLI has its own
    event loop, and the sandbox serves on the test's."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    async def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_services_json_in_every_dialect(dialect: str, make_sandbox: SandboxFactory,
                                              main_in: MainIn) -> None:
    sandbox = await make_sandbox(dialect)
    code, out, err = await main_in(*panel_args(sandbox, "--json", "services"))
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
                                            main_in: MainIn) -> None:
    sandbox = await make_sandbox(dialect)
    first, second = sandbox.panel.seed_orders(next(iter(sandbox.panel.catalog)), 2)
    code, out, err = await main_in(*panel_args(sandbox, "--json", "status", str(first),
                                               str(second), "999"))
    assert code == 1  # one id was refused
    result = json.loads(out)
    assert result["999"] == {"error": "Incorrect order ID"}
    assert "Incorrect order ID" not in err  # once: in the JSON, not again on stderr
    for order_id in (str(first), str(second)):
        assert set(result[order_id]) == {"status", "raw_status", "charge", "start_count",
                                         "remains", "currency"}
        assert result[order_id]["status"] == "pending"
        assert result[order_id]["currency"] == DIALECTS[dialect].currency

    code, out, _ = await main_in(*panel_args(sandbox, "status", str(first)))
    assert code == 0 and "pending (Pending)" in out


async def test_add_balance_refill_cancel(sandbox: RunningSandbox, main_in: MainIn) -> None:
    code, out, err = await main_in(*panel_args(sandbox, "--json", "add", "--service", "106",
                                               "--link", "https://instagram.com/p/abc",
                                               "--comments", "Nice\\nCool\\nWow\\nGreat\\nTop"))
    assert code == 0, err
    order_id = json.loads(out)["order"]
    assert len(sandbox.panel.orders[int(order_id)].fields["comments"].splitlines()) == 5

    code, out, _ = await main_in(*panel_args(sandbox, "--json", "balance"))
    assert json.loads(out) == {"balance": "999.96000", "currency": "USD"}

    code, out, _ = await main_in(*panel_args(sandbox, "--json", "cancel", order_id))
    assert code == 0 and json.loads(out)[order_id]["cancel"] == "accepted"

    code, _, err = await main_in(*panel_args(sandbox, "refill", order_id))
    assert code == 1 and "Order cannot be refilled" in err

    code, out, _ = await main_in(*panel_args(sandbox, "refill-status", "77"))
    assert code == 1


async def test_rejections_and_usage_errors(sandbox: RunningSandbox, main_in: MainIn) -> None:
    code, _, err = await main_in(*panel_args(sandbox, "add", "--service", "101", "--link",
                                             "https://x.com/a", "--quantity", "5"))
    assert code == 1 and "Quantity less than minimal 100" in err
    code, _, err = await main_in(*panel_args(sandbox, "add", "--service", "101", "--link",
                                             "https://x.com/a"))
    assert code == 2 and "--quantity" in err
    code, _, err = await main_in("panel", "--url", sandbox.url, "--key", "wrong", "balance")
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
        "configuration error: BOT_TOKEN is not set: create a bot with @BotFather in Telegram"
        " (/newbot) and put its token in .env as BOT_TOKEN=...")


async def test_no_panel_configured_says_how(tmp_path: Path) -> None:
    code, _, err = await run_cli("panel", "services", cwd=tmp_path)
    assert code == 2 and "PANEL_URL" in err and "make sandbox" in err


def one_line(err: str) -> str:
    """The single line a failure prints on stderr (and no traceback)."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def test_panel_options_work_before_and_after_the_action(sandbox: RunningSandbox,
                                                              main_in: MainIn) -> None:
    url, key = sandbox.url, DEFAULT_KEY
    for argv in (("panel", "services", "--json", "--url", url, "--key", key),
                 ("panel", "--json", "services", "--url", url, "--key", key),
                 ("panel", "--url", url, "--json", "services", "--key", key),
                 ("panel", "--url", url, "--key", key, "--json", "services")):
        code, out, err = await main_in(*argv)
        assert code == 0, (argv, err)
        assert len(json.loads(out)) == len(sandbox.panel.catalog), argv

    (order_id,) = sandbox.panel.seed_orders(next(iter(sandbox.panel.catalog)), 1)
    code, out, err = await main_in("panel", "status", str(order_id), "--url", url, "--key", key)
    assert code == 0, err
    assert out.startswith(f"{order_id}: pending (Pending)")
    # Given on both sides, the one after the action wins; one before it is not reset.
    code, out, err = await main_in("panel", "--url", "http://127.0.0.1:9/api/v2", "--key", key,
                                   "--json", "balance", "--url", url)
    assert code == 0, err
    assert json.loads(out)["currency"] == "USD"


@pytest.mark.parametrize("url", ["ftp://x", "notaurl", "http://", "https://panel.example:port/x",
                                 "http://panel .example/api/v2"])
async def test_a_bad_url_is_a_usage_error(url: str, main_in: MainIn) -> None:
    code, out, err = await main_in("panel", "--url", url, "--key", "k", "balance")
    assert (code, out) == (2, "")
    assert one_line(err) == "--url must be an http(s) URL, like https://panel.example/api/v2"


async def test_field_errors_are_rendered(sandbox: RunningSandbox, main_in: MainIn) -> None:
    add = ("panel", "--url", sandbox.url, "--key", DEFAULT_KEY, "add", "--service", "101",
           "--link", "https://x.y")
    code, _, err = await main_in(*add, "--quantity", "0")
    assert code == 2
    assert one_line(err) == "invalid --quantity: The smallest allowed value is 1."
    for negative in (("--quantity", "-5"), ("--quantity=-5",)):
        code, _, err = await main_in(*add, *negative)
        assert code == 2
        assert one_line(err) == ("invalid --quantity: must be positive (a whole number above"
                                 " zero), not -5")
    code, _, err = await main_in(*add, "--quantity", "many")
    assert code == 2 and "{" not in one_line(err) and "whole number" in err
    assert sandbox.panel.orders == {}


async def test_cannot_connect_names_the_host_and_the_cause(main_in: MainIn) -> None:
    # A port bound but never listened on refuses connections, and is held for the
    # whole call: a port merely found free could be taken meanwhile by another
    # worker's server (it was: an answer instead of "connection refused").
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        code, out, err = await main_in("panel", "--url", f"http://127.0.0.1:{port}/api/v2",
                                       "--key", "k", "balance")
    assert (code, out) == (3, "")
    assert one_line(err) == (f"panel unavailable: cannot connect to 127.0.0.1:{port}"
                             " (connection refused)")


async def test_an_item_error_is_printed_once(sandbox: RunningSandbox, main_in: MainIn) -> None:
    (order_id,) = sandbox.panel.seed_orders(next(iter(sandbox.panel.catalog)), 1)
    code, out, err = await main_in(*panel_args(sandbox, "status", str(order_id), "999"))
    assert code == 1  # some item failed
    assert out.count("Incorrect order ID") == 1 and "999: error: Incorrect order ID" in out
    assert err == ""
    code, out, err = await main_in(*panel_args(sandbox, "cancel", str(order_id), "999", "--json"))
    assert code == 1 and err == ""
    assert json.loads(out)["999"] == {"error": "Incorrect order ID"}


async def test_json_with_one_bad_id_is_still_json(sandbox: RunningSandbox, main_in: MainIn) -> None:
    """A script reading ``--json`` gets JSON whatever the ids: the good ids' answers and an
    error object for the bad one, exit 1; nothing on stderr."""
    (order_id,) = sandbox.panel.seed_orders(next(iter(sandbox.panel.catalog)), 1)
    for action in ("status", "refill-status", "cancel"):
        code, out, err = await main_in(*panel_args(sandbox, "--json", action, "123abc"))
        assert (code, err) == (1, ""), (action, err)
        assert set(json.loads(out)) == {"123abc"} and "error" in json.loads(out)["123abc"]
    code, out, err = await main_in(*panel_args(sandbox, "status", "123abc", "--json"))
    assert (code, err) == (1, "")
    assert json.loads(out) == {"123abc": {"error": "Incorrect order ID"}}
    code, out, err = await main_in(*panel_args(sandbox, "--json", "status", str(order_id),
                                               "123abc", str(order_id)))
    assert (code, err) == (1, "")
    result = json.loads(out)
    assert list(result) == [str(order_id), "123abc"]
    assert result[str(order_id)]["status"] == "pending" and result["123abc"] == {
        "error": "Incorrect order ID"}
    # Without --json a person reads the panel's refusal, as before.
    code, out, err = await main_in(*panel_args(sandbox, "status", "123abc"))
    assert (code, out) == (1, "")
    assert one_line(err) == "panel rejected the call (bad_order): Incorrect order ID"


@pytest.mark.parametrize(("answer", "error"), [
    # a panel refusing the whole batch for one bad id
    ({"error": "Incorrect order ID"}, {"error": "Incorrect order ID"}),
    # a panel leaving an id out of its answer
    ({"7": {"status": "Completed", "charge": "1", "start_count": "0", "remains": "0"}},
     {"error": "the panel's answer says nothing of it"}),
])
async def test_json_names_every_id_asked(serve_app: Callable[[web.Application], Awaitable[str]],
                                         main_in: MainIn, answer: dict[str, object],
                                         error: dict[str, str]) -> None:
    async def panel(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["action"] == "status" and form["orders"] == "7,8x"
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/api/v2", panel)
    url = await serve_app(app) + "/api/v2"
    code, out, err = await main_in("panel", "--url", url, "--key", "k", "--json", "status",
                                   "7", "8x")
    assert (code, err) == (1, "")
    result = json.loads(out)
    assert list(result) == ["7", "8x"] and result["8x"] == error
    assert result["7"] == (error if "7" not in answer else {
        "status": "completed", "raw_status": "Completed", "charge": "1", "start_count": 0,
        "remains": 0, "currency": None})


@pytest.mark.parametrize(("command", "explained"), [
    ("backup", ("DATABASE_PATH", "a folder", "ending in /", "storefront-YYYYMMDD-HHMMSS.sqlite3",
                "file name, replaced if it exists")),
    ("restore", ("DATABASE_PATH", "Stop the bot first", "the backup file to restore",
                 "before-restore-")),
])
async def test_backup_and_restore_help_say_what_path_is(tmp_path: Path, command: str,
                                                        explained: tuple[str, ...]) -> None:
    code, out, err = await run_cli(command, "--help", cwd=tmp_path)
    assert (code, err) == (0, "")
    text = " ".join(out.split())  # argparse wraps lines (and breaks at hyphens)
    text = text.replace("- ", "-")
    assert "PATH" in text
    for words in explained:
        assert words in text, (words, text)


async def test_services_grouped_by_category_with_flat_package_prices(sandbox: RunningSandbox,
                                                                     main_in: MainIn) -> None:
    categories = [entry.category for entry in DEFAULT_CATALOG]
    first_seen = list(dict.fromkeys(categories))
    runs = [c for i, c in enumerate(categories) if i == 0 or categories[i - 1] != c]
    assert len(runs) > len(first_seen), "the catalog must split a category to test grouping"

    code, out, err = await main_in(*panel_args(sandbox, "services"))
    assert code == 0, err
    headings = [line[1:-1] for line in out.splitlines() if line.startswith("[")]
    assert headings == first_seen
    under: dict[str, list[str]] = {}
    heading = ""
    for line in out.splitlines():
        if line.startswith("["):
            heading = line[1:-1]
        elif heading and line.startswith("  ") and line.split()[0].isdigit():
            under.setdefault(heading, []).append(line)
    for entry in DEFAULT_CATALOG:
        (line,) = [row for row in under[entry.category] if row.split()[0] == str(entry.id)]
        flat = get_order_type(entry.type).pricing is Pricing.FLAT
        assert f" {entry.rate.normalize()} {'flat' if flat else 'per 1k'} " in line, line
    assert "/1k" not in out
    assert any(get_order_type(e.type).pricing is Pricing.FLAT for e in DEFAULT_CATALOG)


# ------------------------------------------------------------ the sandbox command


def test_the_try_line_names_the_running_interpreter(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    assert cli._interpreter() == ".venv/bin/python"
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert cli._interpreter() == "./python"
    elsewhere = tmp_path.parent / "other env" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(elsewhere))
    assert shlex.split(cli._interpreter()) == [str(elsewhere)]


async def test_sandbox_on_a_busy_port_moves_and_its_try_line_works(tmp_path: Path) -> None:
    # The project folder as a reseller has it: the virtualenv in it, run from it.
    if sys.prefix != sys.base_prefix:
        (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
        python = tmp_path / ".venv" / Path(sys.executable).relative_to(sys.prefix)
        shown = str(python.relative_to(tmp_path))
    else:  # pragma: no cover - the suite runs in the project's virtualenv
        python = Path(sys.executable)
        shown = str(python)
    clean = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            str(python), "-m", "bot", "sandbox", "--port", str(port), "--balance", "25.5",
            cwd=tmp_path, env=clean,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=ctrl_c_as_in_a_terminal)
        assert process.stdout is not None and process.stderr is not None
        try:
            lines = []
            while not lines or not lines[-1].startswith("Press Ctrl+C"):
                line = await asyncio.wait_for(process.stdout.readline(), 30)
                assert line, (lines, await process.stderr.read())
                lines.append(line.decode().strip())
            notice = (await asyncio.wait_for(process.stderr.readline(), 5)).decode().strip()
            moved = re.fullmatch(rf"port {port} is busy; serving on (\d+) instead", notice)
            assert moved, notice
            url = f"http://127.0.0.1:{moved.group(1)}/api/v2"
            assert lines[1] == f"Try: {shown} -m bot panel --url {url} --key {DEFAULT_KEY} services"

            command = shlex.split(lines[1].removeprefix("Try: "))
            tried = await asyncio.create_subprocess_exec(
                *command, cwd=tmp_path, env=clean, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(tried.communicate(), 30)
            assert tried.returncode == 0, err
            assert out.decode().startswith(f"{len(DEFAULT_CATALOG)} services")
            async with httpx.AsyncClient() as http:
                answer = await http.post(url, data={"key": DEFAULT_KEY, "action": "balance"})
            assert Decimal(answer.json()["balance"]) == Decimal("25.5")  # --balance
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            _, rest = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    assert rest == b""  # no traceback on Ctrl+C
