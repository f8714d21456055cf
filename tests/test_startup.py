"""The bot's first five minutes: each start-up mistake is one line on stderr and
an exit code, never a traceback.

Exit 2: a setting that cannot work as given, found before anything talks to the
network (a missing BOT_TOKEN, an unusable DATABASE_PATH, REDIS_URL without the
redis package, a LOCALES_DIR that is not there). Exit 1: what Telegram said, or
did not say (a refused token, no answer for TELEGRAM_WAIT seconds).

The headline cases run ``python -m bot`` as a subprocess, in an empty working
directory (no ``.env`` is read: pydantic-settings looks for it there) with every
setting removed from the environment but the ones a test gives.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import bootstrap as app
from bot.app.bootstrap import REFUSED_BY_TELEGRAM, build_bot, reach_telegram
from bot.app.preflight import Listeners, listen_ports, open_database
from bot.config import ConfigError, Settings, StartupError, load_settings
from bot.devtools.emulator import MALFORMED, BotApiEmulator, start_emulator
from handlers.middlewares.i18n import build_i18n

TOKEN = "123456789:AAStartupStartupStartupStartupStart0"
ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    """A loopback port free to bind (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# A port bound for as long as this test process lives and never listened on: a
# connection to it is refused. (A port merely found free can be taken meanwhile
# by another worker's server, and then it answers.)
_REFUSING = socket.socket()
_REFUSING.bind(("127.0.0.1", 0))
REFUSING_PORT: int = _REFUSING.getsockname()[1]


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    # Telegram is never the real one, even when a test is wrong about the order of checks.
    env.update({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{REFUSING_PORT}",
                "TELEGRAM_WAIT": "0", "DATABASE_PATH": str(tmp_path / "shop.sqlite3")})
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return {k: v for k, v in env.items() if v is not None}


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, expected: str) -> str:
    """The process exited with ``code`` and its last stderr line starts with ``expected``."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert TOKEN not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(expected), result.stderr
    return last


def run_bot_process(tmp_path: Path, *python_options: str,
                    **settings: str) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, *python_options, "-m", "bot"], cwd=workdir,
                          env=bot_env(tmp_path, **settings), capture_output=True, text=True,
                          timeout=45, check=False)


def said_before_aiogram(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The stderr lines of a ``-X importtime`` run up to aiogram's first import (all of
    them when it never was): what the owner reads in the first second, before the
    seconds aiogram's imports take. Import lines are left out."""
    lines = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            if line.rpartition("|")[2].strip().startswith("aiogram"):
                break
            continue
        lines.append(line)
    return lines


def imported_aiogram(result: subprocess.CompletedProcess[str]) -> bool:
    return any(line.startswith("import time:") and "aiogram" in line.rpartition("|")[2]
               for line in result.stderr.splitlines())


async def run_bot_process_async(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """The same, while this test's event loop serves the Bot API emulator."""
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=workdir, env=bot_env(tmp_path, **settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=45)
    except TimeoutError:
        process.kill()
        raise
    return subprocess.CompletedProcess(["python", "-m", "bot"], process.returncode or 0,
                                       out.decode(), err.decode())


# --- 1. Telegram unreachable ---------------------------------------------------

def test_unreachable_telegram_is_retried_visibly_then_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{REFUSING_PORT}"
    result = run_bot_process(tmp_path, TELEGRAM_API_URL=url, TELEGRAM_WAIT="1.5")
    assert_one_line(result, 1, f"Telegram is not reachable at {url} (connection refused); gave up"
                               " after 1.5 s: check TELEGRAM_API_URL and that a Bot API server"
                               " runs there, then start the bot again")
    countdown = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert countdown, result.stderr
    assert all(re.fullmatch(rf"Telegram is not reachable at {re.escape(url)} \(connection"
                            r" refused\); retrying in [12] s \(giving up in [12] s\)…", line)
               for line in countdown), countdown


async def test_telegram_back_within_the_wait_means_the_bot_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "TELEGRAM_RETRY_DELAY", 0.05)
    emulator = BotApiEmulator(username="shop_bot")
    emulator.inject("getMe", 502)
    emulator.inject("getMe", MALFORMED)  # a broken HTTP answer: a network error
    running = await start_emulator(emulator)
    bot = build_bot(load_settings(bot_token=TOKEN, telegram_api_url=running.url, telegram_wait=5))
    try:
        me = await reach_telegram(bot, load_settings(telegram_api_url=running.url, telegram_wait=5))
    finally:
        await bot.session.close()
        await running.stop()
    assert me.username == "shop_bot"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"Telegram is not reachable at {running.url} (server error: ")
    assert all("retrying in 1 s" in line for line in lines)


# --- 2. A token Telegram refuses ---------------------------------------------------

async def test_a_refused_token_is_said_in_one_line_exit_1(tmp_path: Path) -> None:
    emulator = BotApiEmulator()
    emulator.inject("getMe", 401, times=10)
    running = await start_emulator(emulator)
    try:
        result = await run_bot_process_async(tmp_path, TELEGRAM_API_URL=running.url,
                                             TELEGRAM_WAIT="30")
    finally:
        await running.stop()
    assert_one_line(result, 1, REFUSED_BY_TELEGRAM)
    assert result.stderr.strip().splitlines()[-1] == ("BOT_TOKEN was refused by Telegram: check it"
                                                      " with @BotFather")
    assert "retrying" not in result.stderr  # a refusal is not waited out
    assert [m for m, _ in emulator.calls] == ["getMe"]


async def test_a_404_means_a_wrong_api_url() -> None:
    # What a Bot API server answers under a wrong path (TELEGRAM_API_URL ending in /bot).
    emulator = BotApiEmulator()
    emulator.inject("getMe", 404)
    running = await start_emulator(emulator)
    url = running.url
    bot = build_bot(load_settings(bot_token=TOKEN, telegram_api_url=url))
    try:
        with pytest.raises(StartupError, match=r"404 Not Found\): check TELEGRAM_API_URL"):
            await reach_telegram(bot, load_settings(telegram_api_url=url, telegram_wait=5))
    finally:
        await bot.session.close()
        await running.stop()


# --- 3. DATABASE_PATH that cannot be a database ------------------------------------

def test_an_unusable_database_path_is_a_setting_error_exit_2(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / "afile" / "data" / "shop.sqlite3"
    result = run_bot_process(tmp_path, DATABASE_PATH=str(path))
    assert_one_line(result, 2, f"configuration error: DATABASE_PATH: cannot use {path}:"
                               f" {tmp_path / 'afile'} is a file, so it cannot hold a folder; set"
                               " it to a file in a folder the bot can write to")
    assert "Telegram" not in result.stderr  # said before any wait on the network


@pytest.mark.parametrize(("make", "reason"), [
    (lambda tmp: tmp / "afile" / "shop.sqlite3", "is a file, so it cannot hold a folder"),
    (lambda tmp: Path("/proc/storefront/shop.sqlite3"), "cannot create the folder /proc/storefront"),
    (lambda tmp: tmp, "it is a folder, not a file"),
    (lambda tmp: tmp / "garbage.sqlite3", "SQLite cannot open it (file is not a database)"),
])
async def test_each_unusable_database_path_names_itself(tmp_path: Path, make, reason: str) -> None:
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "garbage.sqlite3").write_bytes(b"\x07" * 4096)
    path = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        await open_database(load_settings(database_path=path))
    message = str(info.value)
    assert message.startswith(f"configuration error: DATABASE_PATH: cannot use {path}: "), message
    assert reason in message and "\n" not in message


# --- 4. REDIS_URL without the redis package ----------------------------------------

def test_redis_url_without_redis_says_what_to_install_exit_2(tmp_path: Path) -> None:
    # Whether or not redis is installed here, a package that fails to import stands in
    # for its absence: first on the path, so `import redis` finds it and fails.
    shadow = tmp_path / "no-redis"
    (shadow / "redis").mkdir(parents=True)
    (shadow / "redis" / "__init__.py").write_text("raise ImportError('simulated: no redis')\n")
    result = run_bot_process(tmp_path, REDIS_URL="redis://127.0.0.1:1/0",
                             PYTHONPATH=str(shadow))
    line = assert_one_line(result, 2, "configuration error: REDIS_URL is set but the redis package"
                                      " is not installed: run ")
    assert "-m pip install 'redis>=5'" in line and "leave REDIS_URL empty" in line
    assert "Telegram" not in result.stderr


# --- 5. LOCALES_DIR that is not there -----------------------------------------------

def test_a_missing_locales_dir_is_exit_2_not_an_english_only_shop(tmp_path: Path) -> None:
    result = run_bot_process(tmp_path, LOCALES_DIR="locale")
    assert_one_line(result, 2, "configuration error: LOCALES_DIR: no folder 'locale' (in ")
    assert not (tmp_path / "cwd" / "locale").exists()  # no longer created on the quiet


def test_build_i18n_creates_no_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LOCALES_DIR: no folder"):
        build_i18n(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


# --- 6. Settings: a missing token says how to get one -------------------------------

def test_a_missing_token_says_how_to_get_one_exit_2(tmp_path: Path) -> None:
    result = run_bot_process(tmp_path, "-X", "importtime", BOT_TOKEN="")
    assert_one_line(result, 2, "configuration error: BOT_TOKEN is not set: create a bot with"
                               " @BotFather in Telegram (/newbot) and put its token in .env as"
                               " BOT_TOKEN=...")
    # Said before aiogram is imported, not after its seconds of imports.
    assert any(line.startswith("import time:") for line in result.stderr.splitlines())
    assert not imported_aiogram(result), result.stderr[-2000:]


def test_a_misspelt_token_is_named_before_it_is_missed(tmp_path: Path) -> None:
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / ".env").write_text(f"BOT_TOKN={TOKEN}\n")
    result = run_bot_process(tmp_path, BOT_TOKEN="")
    assert_one_line(result, 2, "configuration error: BOT_TOKEN is not set")
    assert result.stderr.splitlines() == [
        "warning: .env sets BOT_TOKN, which is no setting: did you mean BOT_TOKEN?",
        result.stderr.splitlines()[-1]]


def test_a_malformed_setting_is_still_one_line_exit_2(tmp_path: Path) -> None:
    result = run_bot_process(tmp_path, TELEGRAM_WAIT="soon")
    assert_one_line(result, 2, "configuration error: TELEGRAM_WAIT:")


def test_the_wait_is_a_documented_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    assert "\nTELEGRAM_WAIT=60\n" in example
    assert load_settings().telegram_wait == 60



def test_an_admin_id_sqlite_cannot_store_is_exit_2(tmp_path: Path) -> None:
    """It used to start, and then every alert failed, the valid admin's too."""
    result = run_bot_process(tmp_path, ADMIN_IDS="9009,99999999999999999999")
    assert_one_line(result, 2, "configuration error: ADMIN_IDS: '99999999999999999999' is not a"
                               " Telegram user id")
    assert len(result.stderr.strip().splitlines()) == 1


def test_misspelt_keys_and_likely_mistakes_are_said_in_the_first_second(tmp_path: Path) -> None:
    """In .env and in the process environment (``docker run --env-file``, a platform's
    variables): a misspelt key is said first, the likely mistakes once the checks
    passed, all of it before aiogram's imports and the wait for Telegram."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / ".env").write_text("ADMIN_ID=42\nMARKUP_PERCENT=12\n")
    result = run_bot_process(tmp_path, "-X", "importtime", SHOP_CURENCY="EUR",
                             HOSTNAME="shop-1")  # then Telegram cannot be reached: exit 1
    assert_one_line(result, 1, "Telegram is not reachable")
    early = said_before_aiogram(result)
    assert early[:2] == [
        "warning: .env sets ADMIN_ID, which is no setting: did you mean ADMIN_IDS?",
        "warning: the environment sets SHOP_CURENCY, which is no setting: did you mean"
        " SHOP_CURRENCY?"]
    assert any(line.endswith("WARNING bot.app.preflight: ADMIN_IDS is empty: nobody gets the"
                             " shop's alerts or /paysupport messages, and nobody can open the"
                             " admin panel") for line in early), early
    assert imported_aiogram(result)  # it did start, after them
    assert "HOSTNAME" not in result.stderr  # the environment's own variables are no mistake


# --- 7. A port the bot would listen on is taken -------------------------------------

@pytest.mark.parametrize(("settings", "setting"), [
    ({}, "HEALTH_PORT"),  # polling mode's /healthz and /metrics
    ({"WEBHOOK_URL": "https://shop.example.com/hook"}, "WEBHOOK_PORT"),
    ({"WEBHOOK_URL": "https://shop.example.com/hook"}, "PORT"),  # the platform's
    ({"API_ENABLED": "true"}, "API_PORT"),  # the wholesale API's own server
])
def test_a_busy_port_is_one_line_exit_2_before_aiogram_and_telegram(
        tmp_path: Path, settings: dict[str, str], setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Telegram is unreachable and would be waited for 30 s: the port comes first.
        result = run_bot_process(tmp_path, "-X", "importtime", TELEGRAM_WAIT="30",
                                 **settings, **{setting: str(port)})
    last = assert_one_line(result, 2, f"configuration error: {setting}: port {port} is in use")
    assert last.endswith(f"stop it, or set {setting} to a free port")
    assert "Telegram" not in result.stderr
    assert not imported_aiogram(result)
    assert not (tmp_path / "shop.sqlite3").exists()  # nothing was started


def test_a_host_that_is_not_this_machine_names_webhook_host(tmp_path: Path) -> None:
    result = run_bot_process(tmp_path, HEALTH_PORT=str(closed_port()),
                             WEBHOOK_HOST="192.0.2.1")  # TEST-NET-1: nobody's address
    assert_one_line(result, 2, "configuration error: WEBHOOK_HOST: 192.0.2.1 is no address of"
                               " this machine")


def test_the_ports_are_named_by_the_setting_that_chose_them() -> None:
    hook = "https://shop.example.com/hook"
    assert [str(p) for p in listen_ports(load_settings(webhook_url=hook))] == [
        "port 8080 (the default: WEBHOOK_PORT and PORT are empty)"]
    assert [(p.setting, p.number) for p in listen_ports(load_settings(
        webhook_url=hook, webhook_port=9001, port=9002, health_port=9003, api_enabled=True,
        api_port=9004))] == [("WEBHOOK_PORT", 9001), ("API_PORT", 9004)]
    assert [(p.setting, p.number) for p in listen_ports(load_settings(
        health_port=9003, api_enabled=True))] == [("HEALTH_PORT", 9003)]  # the API on it
    assert listen_ports(load_settings()) == []  # polling without HEALTH_PORT: no server


async def test_the_checked_port_is_held_until_the_server_serves_it(tmp_path: Path) -> None:
    """No race between the check and the start: the bound socket is the one served."""
    port = closed_port()
    settings = load_settings(bot_token=TOKEN, health_port=port, webhook_host="127.0.0.1",
                             database_path=tmp_path / "shop.sqlite3")
    listeners = Listeners.bind(settings)
    try:
        with socket.socket() as late, pytest.raises(OSError) as refused:
            late.bind(("127.0.0.1", port))
        assert refused.value.errno == errno.EADDRINUSE
        with pytest.raises(ConfigError, match=f"HEALTH_PORT: port {port} is in use"):
            Listeners.bind(settings)  # a second copy of the bot
        (held,) = listeners.take(port)
        assert held.getsockname() == ("127.0.0.1", port)
        held.close()
    finally:
        listeners.close()
    Listeners.bind(settings).close()  # closed: free again


# --- the garbage collector during start-up ----------------------------------------

def test_the_collector_is_off_while_the_bot_starts_and_on_once_it_runs() -> None:
    """``python -m bot`` starts with the cyclic collector off (start-up's long-lived
    objects would be walked by hundreds of collections for nothing); settling the
    heap must turn it on, or the running bot would never free a cycle."""
    gc.disable()
    before = gc.get_threshold()
    try:
        app.settle_heap()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == app.COLLECT_AFTER  # not every other update
    finally:
        app.unsettle_heap()
        gc.enable()
    assert gc.get_threshold() == before


def test_commands_other_than_the_bot_run_with_the_collector_on(tmp_path: Path) -> None:
    script = ("import gc, runpy, sys\n"
              "sys.argv = ['bot', 'restore', 'no-such-backup.sqlite3']\n"
              "try:\n    runpy.run_module('bot', run_name='__main__')\n"
              "except SystemExit:\n    print('collector on' if gc.isenabled() else 'collector off')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=bot_env(tmp_path))
    assert result.stdout.strip() == "collector on", result.stderr
