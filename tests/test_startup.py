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
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import bootstrap as app
from bot.app.bootstrap import REFUSED_BY_TELEGRAM, build_bot, open_database, reach_telegram
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
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    # Telegram is never the real one, even when a test is wrong about the order of checks.
    env.update({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{closed_port()}",
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


def run_bot_process(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "bot"], cwd=workdir, env=bot_env(tmp_path, **settings),
                          capture_output=True, text=True, timeout=45, check=False)


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
    url = f"http://127.0.0.1:{closed_port()}"
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
    result = run_bot_process(tmp_path, BOT_TOKEN="")
    assert_one_line(result, 2, "configuration error: BOT_TOKEN is not set: create a bot with"
                               " @BotFather in Telegram (/newbot) and put its token in .env as"
                               " BOT_TOKEN=...")


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


def test_no_admins_and_unknown_env_keys_are_warned_at_start_up(tmp_path: Path) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / ".env").write_text("ADMIN_ID=42\nMARKUP_PERCENT=12\n")
    result = run_bot_process(tmp_path)  # then Telegram cannot be reached: exit 1
    assert_one_line(result, 1, "Telegram is not reachable")
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert any(line.endswith(".env sets ADMIN_ID, which is no setting: did you mean"
                             " ADMIN_IDS?") for line in warnings), result.stderr
    assert any(line.endswith("ADMIN_IDS is empty: nobody gets the shop's alerts or /paysupport"
                             " messages, and nobody can open the admin panel")
               for line in warnings), result.stderr
