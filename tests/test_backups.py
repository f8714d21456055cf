"""Backups and restores of the live database, on real SQLite files.

A backup is taken while a writer commits orders and ledger rows; it must pass
``PRAGMA integrity_check``, hold every row committed before it began, and keep
the books balanced (it is one snapshot). A restore is refused while a bot holds
the run lock, and refuses a source that is not a sound database of this shop.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.app import backups
from bot.app.backups import AutoBackup, BackupError, BotRunning, RunLock, backup, restore
from bot.app.bootstrap import run_bot
from bot.config import ConfigError, Settings, StartupError, load_settings
from bot.shop.messaging.alerts import AdminAlerts
from storage import ledger, orders, snapshot, users
from storage import schema as storage_schema
from storage.db import Database, DatabaseUnusable
from storage.schema import latest_schema_version

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {name.upper() for name in Settings.model_fields}
TOKEN = "123456789:AABackupsBackupsBackupsBackupsBack0"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env is read
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "shop.sqlite3"


async def make_shop(path: Path, customers: int = 3) -> None:
    """A database with a service, some customers and their money."""
    async with Database(path) as db:
        await db.write("INSERT INTO categories (id, panel, name, platform) VALUES (1, 'p', 'c', 'x')")
        await db.write("INSERT INTO services (id, panel, service_id, category_id, name, type,"
                       " sellable, category, rate, currency, min_quantity, max_quantity, synced_at)"
                       " VALUES (1, 'p', '1', 1, 's', 'Default', 1, 'c', '1', 'USD', 1, 10, 'now')")
        for user_id in range(1, customers + 1):
            await users.upsert_user(db, user_id, first_name=f"user{user_id}")
            async with db.transaction() as conn:
                await ledger.post(conn, user_id=user_id, amount_minor=100_000, kind="credit",
                                  key=f"seed:{user_id}")


def place(conn: sqlite3.Connection, user_id: int, token: str) -> None:
    """An order and its debit, in one transaction (as the shop places one)."""
    order = orders.insert_in(conn, token=token, user_id=user_id, panel="p", service_ref=1,
                             service_id="1", service_name="s", order_type="Default",
                             fields={"link": "https://x.test/a"}, quantity=10, price_minor=7,
                             currency="USD", panel_cost=Decimal("0.05"))
    ledger.post_in(conn, user_id=user_id, amount_minor=-7, kind="order", key=f"order:{token}",
                   order_id=order.id)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def integrity(path: Path) -> str:
    return rows(path, "PRAGMA integrity_check")[0][0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or ".restoring" in p.name)


# Plain file reads, out of the async tests' bodies (ruff's ASYNC240).
def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def content(path: Path) -> bytes:
    return path.read_bytes()


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


# --- backup while the bot writes ------------------------------------------------------

async def test_a_backup_taken_while_a_writer_commits_is_sound_and_complete(
    db_path: Path, tmp_path: Path,
) -> None:
    await make_shop(db_path)
    db = await Database(db_path).open()
    # Bulk, so that the copy takes long enough for the writer to commit during it (in one of
    # the shop's own tables: a table the migrations did not make is refused in a copy).
    await db.write_many("INSERT INTO audit_log (admin_id, action, target_kind, target_id, note)"
                        " VALUES (1, 'credit', 'user', '1', ?)",
                        [(os.urandom(2000).hex(),) for _ in range(5000)])
    committed: list[str] = []
    stop = asyncio.Event()
    reached: dict[int, asyncio.Event] = {}

    async def writer() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            token = f"w{number}"
            await db.transact(place, 1 + number % 3, token)
            committed.append(token)  # only once the transaction has committed
            if len(committed) in reached:
                reached[len(committed)].set()

    async def until(count: int) -> None:
        reached[count] = asyncio.Event()
        if len(committed) < count:
            await asyncio.wait_for(reached[count].wait(), 20)

    writing = asyncio.create_task(writer())
    try:
        await until(50)
        before = list(committed)
        report = await backup(db_path, tmp_path / "copy.sqlite3")
        during = len(committed) - len(before)
        await until(len(committed) + 20)  # the writer goes on after it
    finally:
        stop.set()
        await writing
        await db.close()

    copy = tmp_path / "copy.sqlite3"
    assert integrity(copy) == "ok"
    tokens = {t for (t,) in rows(copy, "SELECT token FROM orders")}
    keys = {k for (k,) in rows(copy, "SELECT idempotency_key FROM ledger")}
    assert set(before) <= tokens
    assert {f"order:{t}" for t in before} <= keys
    # One snapshot: no order without its debit, and every balance is its ledger's sum.
    assert keys == {f"order:{t}" for t in tokens} | {f"seed:{u}" for u in (1, 2, 3)}
    assert rows(copy, "SELECT u.id FROM users u WHERE u.balance_minor <>"
                      " (SELECT SUM(amount_minor) FROM ledger l WHERE l.user_id = u.id)") == []
    assert len(tokens) < len(committed)  # the live database went on growing
    assert (report.users, report.orders, report.ledger_rows) == (3, len(tokens), len(keys))
    assert report.size_bytes == size(copy) > 20_000_000
    assert report.schema_version == latest_schema_version()
    # The copy is one self-contained file (not a WAL database needing its -wal).
    assert [n for n in names(tmp_path) if n.startswith("copy")] == ["copy.sqlite3"]
    assert rows(copy, "PRAGMA journal_mode") == [("delete",)]
    assert during > 0  # the writer was not held up by the copy (WAL: readers never block)


async def test_the_final_name_only_ever_holds_a_verified_copy(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_shop(db_path)
    destination = tmp_path / "out" / "shop-backup.sqlite3"
    real_check = snapshot.check
    seen: list[tuple[bool, str]] = []

    def checking(path: Path, **kwargs: Any) -> snapshot.CopyFacts:
        # The copy is written whole here, not yet checked: the final name is not there.
        seen.append((destination.exists(), path.name))
        return real_check(path, **kwargs)

    monkeypatch.setattr(snapshot, "check", checking)
    await backup(db_path, destination)
    assert seen[0][0] is False
    assert seen[0][1].startswith(".shop-backup.sqlite3.") and seen[0][1].endswith(".tmp")
    assert destination.exists() and leftovers(destination.parent) == []

    # A copy that does not check out never replaces the previous backup.
    previous = destination.read_bytes()

    def failing(path: Path, **kwargs: Any) -> snapshot.CopyFacts:
        raise snapshot.CopyError(f"{kwargs.get('name')} fails SQLite's integrity check: page 7")

    monkeypatch.setattr(snapshot, "check", failing)
    with pytest.raises(BackupError, match="fails SQLite's integrity check: page 7"):
        await backup(db_path, destination)
    assert destination.read_bytes() == previous
    assert leftovers(destination.parent) == []


async def test_backup_refusals_are_one_line(db_path: Path, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"^no database file at .*shop\.sqlite3$"):
        await backup(db_path, tmp_path / "copy.sqlite3")
    await make_shop(db_path)
    with pytest.raises(BackupError, match="is the database itself"):
        await backup(db_path, db_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BackupError) as info:
        await backup(db_path, tmp_path / "afile" / "b" / "copy.sqlite3")
    assert str(info.value) == (f"cannot create the folder {tmp_path / 'afile' / 'b'}"
                               f" ({tmp_path / 'afile'} is a file)")


# --- the run lock -------------------------------------------------------------------

def test_the_run_lock_is_exclusive_and_released(db_path: Path) -> None:
    first = RunLock(db_path)
    assert first.acquire() and first.held
    assert first.path == Path(f"{db_path}.lock")
    assert first.path.read_text().strip() == str(os.getpid())
    second = RunLock(db_path)
    assert not second.acquire() and second.busy and not second.held
    assert second.holder() == f" (pid {os.getpid()})"
    first.release()
    assert second.acquire()
    second.release()
    assert first.path.exists()  # kept: see bot/app/backups.py


async def test_a_second_bot_on_the_same_database_is_refused(db_path: Path) -> None:
    settings = load_settings(bot_token=TOKEN, database_path=db_path,
                             telegram_api_url="http://127.0.0.1:9", telegram_wait=0)
    running = RunLock.hold_for_bot(settings)
    try:
        with pytest.raises(StartupError) as info:
            RunLock.hold_for_bot(settings)
        assert str(info.value) == (f"another bot is already running on DATABASE_PATH {db_path}"
                                   f" (pid {os.getpid()}): stop it first, or give this one its"
                                   " own DATABASE_PATH")
        with pytest.raises(StartupError, match="another bot is already running"):
            await run_bot(settings, handle_signals=False)
        assert size(db_path) == -1  # refused before the database was opened
    finally:
        running.release()
    # A bot that stops, however it stops, lets the next one start.
    with pytest.raises(StartupError, match="Telegram is not reachable"):
        await run_bot(settings, handle_signals=False)
    assert RunLock(db_path).acquire()


def test_a_second_bot_process_says_so_in_one_line_exit_1(db_path: Path, tmp_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with RunLock(db_path):
        result = run_module(tmp_path, env={"BOT_TOKEN": TOKEN, "DATABASE_PATH": str(db_path),
                                           "TELEGRAM_API_URL": "http://127.0.0.1:9",
                                           "TELEGRAM_WAIT": "0"})
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"another bot is already running on DATABASE_PATH {db_path} (pid {os.getpid()}): stop it"
        " first, or give this one its own DATABASE_PATH"]
    assert TOKEN not in result.stderr


# --- restore --------------------------------------------------------------------------

async def test_restore_is_refused_while_the_bot_runs(db_path: Path, tmp_path: Path) -> None:
    await make_shop(db_path)
    await backup(db_path, tmp_path / "b.sqlite3")
    before = content(db_path)
    with RunLock(db_path):
        with pytest.raises(BotRunning) as info:
            await restore(tmp_path / "b.sqlite3", db_path)
        result = await asyncio.to_thread(run_module, tmp_path, "restore",
                                         str(tmp_path / "b.sqlite3"),
                                         env={"DATABASE_PATH": str(db_path)})
    assert str(info.value) == (f"the bot is running on {db_path} (pid {os.getpid()}): stop it,"
                               " then restore")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"restore refused: {info.value}"]
    assert content(db_path) == before
    assert not [n for n in names(db_path.parent) if "before-restore" in n]


async def test_restore_swaps_the_backup_in_and_keeps_the_old_database(
    db_path: Path, tmp_path: Path,
) -> None:
    await make_shop(db_path, customers=2)
    await backup(db_path, tmp_path / "b.sqlite3")
    # Later changes, left in the -wal by a process that died without checkpointing.
    script = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
              " c.execute('PRAGMA wal_autocheckpoint = 0');"
              " c.execute(\"INSERT INTO users (id, first_name) VALUES (99, 'late')\"); c.commit();"
              " os._exit(0)")
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script, str(db_path)],
                            check=True)
    assert size(Path(f"{db_path}-wal")) > 0

    report = await restore(tmp_path / "b.sqlite3", db_path)

    assert report.kept is not None
    assert re.fullmatch(r"shop\.sqlite3\.before-restore-\d{8}-\d{6}", report.kept.name)
    assert (report.copy.users, report.copy.ledger_rows) == (2, 2)
    assert rows(db_path, "SELECT id FROM users ORDER BY id") == [(1,), (2,)]
    # The kept file is the whole old database, its -wal folded in; no stale -wal/-shm stay.
    assert rows(report.kept, "SELECT id FROM users ORDER BY id") == [(1,), (2,), (99,)]
    assert integrity(report.kept) == "ok"
    assert names(db_path.parent) == ["shop.sqlite3", report.kept.name, "shop.sqlite3.lock"]
    async with Database(db_path) as db:  # the bot opens it as its own
        assert await db.schema_version() == latest_schema_version()
        assert await ledger.balance_of(db, 2) == 100_000


async def test_restore_into_a_new_place_keeps_nothing(db_path: Path, tmp_path: Path) -> None:
    await make_shop(tmp_path / "old.sqlite3")
    report = await restore(tmp_path / "old.sqlite3", db_path)
    assert report.kept is None
    assert integrity(db_path) == "ok"


async def test_a_source_that_is_not_a_sound_backup_is_refused(db_path: Path, tmp_path: Path) -> None:
    await make_shop(db_path)
    before = content(db_path)
    text = tmp_path / "notes.sqlite3"
    await asyncio.to_thread(text.write_text, "this is not a database\n" * 200)
    with pytest.raises(BackupError) as info:
        await restore(text, db_path)
    assert str(info.value) == f"{text} cannot be read as a SQLite database (file is not a database)"

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(BackupError) as info:
        await restore(other, db_path)
    assert str(info.value) == (f"{other} is not this shop's database (no ledger, orders,"
                               " schema_migrations, users table)")

    newer = tmp_path / "newer.sqlite3"
    await backup(db_path, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    conn.close()
    with pytest.raises(BackupError, match=r"has schema version 9999, newer than this bot's \d+:"
                                          " update the bot first"):
        await restore(newer, db_path)

    with pytest.raises(BackupError, match=r"^no database file at "):
        await restore(tmp_path / "missing.sqlite3", db_path)
    assert content(db_path) == before
    assert [n for n in names(db_path.parent) if not n.startswith("shop.sqlite3")] == []


async def test_a_corrupt_page_is_caught_by_the_integrity_check(db_path: Path, tmp_path: Path) -> None:
    await make_shop(db_path, customers=50)
    copy = tmp_path / "b.sqlite3"
    await backup(db_path, copy)
    with sqlite3.connect(copy) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ledger'").fetchone()[0]
    conn.close()
    with copy.open("r+b") as file:  # scribble over the ledger's table page, past its header
        file.seek((root - 1) * page_size + 200)
        file.write(os.urandom(page_size - 400))
    with pytest.raises(BackupError) as info:
        await restore(copy, db_path)
    message = str(info.value)
    assert "\n" not in message
    assert ("fails SQLite's integrity check" in message
            or "cannot be read as a SQLite database" in message), message


# --- the command line -----------------------------------------------------------------

def run_module(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    clean["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), clean.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=45, check=False)


async def test_the_backup_and_restore_commands(db_path: Path, tmp_path: Path) -> None:
    await make_shop(db_path, customers=2)
    env = {"DATABASE_PATH": str(db_path)}
    folder = tmp_path / "backups"
    folder.mkdir()
    result = await asyncio.to_thread(run_module, tmp_path, "backup", str(folder), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    [line] = result.stdout.splitlines()
    match = re.fullmatch(rf"backed up {re.escape(str(db_path))} to"
                         rf" ({re.escape(str(folder))}/storefront-\d{{8}}-\d{{6}}\.sqlite3):"
                         rf" (\d+) bytes, 2 users, 0 orders, 2 ledger rows,"
                         rf" schema {latest_schema_version()}, integrity ok", line)
    assert match, line
    made = Path(match.group(1))
    assert size(made) == int(match.group(2))

    result = await asyncio.to_thread(run_module, tmp_path, "restore", str(made), env=env)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert re.fullmatch(rf"restored {re.escape(str(made))} into {re.escape(str(db_path))}:"
                        r" \d+ bytes, 2 users, 0 orders, 2 ledger rows, schema \d+, integrity ok;"
                        rf" the previous database is kept as {re.escape(str(db_path))}"
                        r"\.before-restore-\d{8}-\d{6}", line), line

    text = tmp_path / "x.txt"
    text.write_text("hello\n")
    result = await asyncio.to_thread(run_module, tmp_path, "restore", str(text), env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"restore refused: {text} cannot be read as a SQLite database (file is not a database)"]


def test_command_errors_are_one_line(db_path: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_PATH", str(db_path))
    assert cli.main(["backup", str(tmp_path / "b.sqlite3")]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"backup failed: no database file at {db_path}\n")

    with pytest.raises(SystemExit) as usage:
        cli.main(["backup"])
    assert usage.value.code == 2
    assert "the following arguments are required: PATH" in capsys.readouterr().err

    asyncio.run(make_shop(db_path))
    # A trailing slash names a folder that does not exist yet: a dated file in it.
    assert cli.main(["backup", f"{tmp_path / 'new'}/"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and len(out.splitlines()) == 1
    [made] = (tmp_path / "new").iterdir()
    assert backups.AUTO_NAME.match(made.name)


# --- automatic backups ------------------------------------------------------------------

class Alerts:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def __call__(self, text: str, *, details: str = "", key: str | None = None) -> None:
        self.sent.append(text)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 2, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


async def test_auto_backup_keeps_the_newest_and_only_prunes_its_own(
    db_path: Path, tmp_path: Path,
) -> None:
    await make_shop(db_path)
    folder = tmp_path / "backups"
    folder.mkdir()
    others = ["pre-migration-5.sqlite3", "storefront-latest.sqlite3", "notes.txt",
              "storefront-2020.sqlite3"]
    for name in others:
        (folder / name).write_text("kept")
    clock, alerts = Clock(), Alerts()
    auto = AutoBackup(db_path, folder, interval=3600, keep=3, alert=alerts, clock=clock)
    for _ in range(5):
        assert await auto.run_once() is not None
        clock.now += 3600
    made = sorted(p.name for p in folder.iterdir() if backups.AUTO_NAME.match(p.name))
    assert made == ["storefront-20250301-040000.sqlite3", "storefront-20250301-050000.sqlite3",
                    "storefront-20250301-060000.sqlite3"]
    assert all(integrity(folder / name) == "ok" for name in made)
    assert all((folder / name).read_text() == "kept" for name in others)
    assert alerts.sent == []


async def test_auto_backup_alerts_once_while_it_keeps_failing(db_path: Path, tmp_path: Path) -> None:
    await make_shop(db_path)
    (tmp_path / "afile").write_text("in the way")
    folder = tmp_path / "afile" / "backups"  # cannot be created: a file is in the way
    db = await Database(db_path).open()
    try:
        clock = Clock()
        auto = AutoBackup(db_path, folder, interval=3600, keep=2,
                          alert=AdminAlerts(db, [1_000_001], window=0).send, clock=clock)
        for _ in range(3):
            assert await auto.run_once() is None
            clock.now += 3600
        alerts = await db.fetchall("SELECT payload FROM outbox WHERE kind = 'alert'")
        assert len(alerts) == 1
        assert "The automatic database backup failed: cannot create the folder" in alerts[0][0]
        assert f"({tmp_path / 'afile'} is a file)" in alerts[0][0]

        (tmp_path / "afile").unlink()
        assert await auto.run_once() is not None
        alerts = await db.fetchall("SELECT payload FROM outbox WHERE kind = 'alert'")
        assert len(alerts) == 2 and "backups work again" in alerts[1][0]
    finally:
        await db.close()


async def test_auto_backup_runs_on_its_interval_and_never_dies(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_shop(db_path)
    clock, alerts = Clock(), Alerts()

    def tick() -> float:
        clock.now += 3600  # each backup an hour apart: distinct names
        return clock.now

    folder = tmp_path / "auto"
    auto = AutoBackup(db_path, folder, interval=0.01, keep=2, alert=alerts, first_delay=0,
                      clock=tick)
    calls = 0
    sixth = asyncio.Event()
    real_backup = backups.backup

    async def flaky(database_path: Path, destination: Path) -> backups.BackupReport:
        nonlocal calls
        calls += 1
        if calls == 6:
            sixth.set()
        if calls == 2:
            raise RuntimeError("something nobody expected")
        return await real_backup(database_path, destination)

    monkeypatch.setattr(backups, "backup", flaky)
    task = asyncio.create_task(auto.run())
    await asyncio.wait_for(sixth.wait(), 10)
    assert not task.done()  # an unexpected error did not end the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls >= 6
    assert len([n for n in names(folder) if backups.AUTO_NAME.match(n)]) == 2
    assert alerts.sent[0].startswith("💾 The automatic database backup failed: RuntimeError(")
    assert "backups work again" in alerts.sent[1]

    off = AutoBackup(db_path, folder, interval=None, keep=2, alert=alerts)
    await asyncio.wait_for(off.run(), 1)  # BACKUP_INTERVAL_HOURS empty: returns at once


def test_the_first_automatic_backup_is_due_an_interval_after_the_newest(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    clock = Clock()
    auto = AutoBackup(tmp_path / "x.sqlite3", folder, interval=3600, keep=2, alert=Alerts(),
                      clock=clock)
    assert auto.first_delay_now() == backups.FIRST_BACKUP_DELAY  # none yet: soon after start
    newest = folder / "storefront-20250301-013000.sqlite3"
    newest.write_text("")
    os.utime(newest, (clock.now - 1800, clock.now - 1800))
    assert auto.first_delay_now() == pytest.approx(1800)


def test_auto_backup_follows_the_settings(tmp_path: Path) -> None:
    settings = load_settings(database_path=tmp_path / "s.sqlite3", backup_interval_hours="6",
                             backup_dir=tmp_path / "bk", backup_keep="4")
    auto = AutoBackup.for_settings(settings, Alerts())
    assert (auto.interval, auto.folder, auto.keep) == (6 * 3600, tmp_path / "bk", 4)
    assert AutoBackup.for_settings(load_settings(), Alerts()).interval is None


# --- the copy before migrations -------------------------------------------------------

async def test_a_fresh_database_gets_no_pre_migration_copy(db_path: Path) -> None:
    async with Database(db_path):
        pass
    assert not (db_path.parent / "backups").exists()


async def test_pending_migrations_are_preceded_by_a_copy(
    db_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_shop(db_path)
    latest = latest_schema_version()
    real = storage_schema.migrations()
    step = latest + 1
    monkeypatch.setattr(storage_schema, "migrations", lambda: [
        *real, (step, f"{step:04d}_test.sql", "CREATE TABLE added_later (x INTEGER);")])

    async with Database(db_path) as db:
        assert await db.schema_version() == step
    copy = db_path.parent / "backups" / f"pre-migration-{step}.sqlite3"
    assert integrity(copy) == "ok"
    assert rows(copy, "SELECT MAX(version) FROM schema_migrations") == [(latest,)]
    assert rows(copy, "SELECT name FROM sqlite_master WHERE name = 'added_later'") == []
    assert rows(copy, "SELECT COUNT(*) FROM ledger") == [(3,)]
    assert leftovers(copy.parent) == []

    async with Database(db_path):  # nothing pending: no new copy
        pass
    assert sorted(p.name for p in copy.parent.iterdir()) == [copy.name]


async def test_no_migration_without_its_copy(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_shop(db_path)
    latest = latest_schema_version()
    (db_path.parent / "backups").write_text("a file where the folder would be")
    real = storage_schema.migrations()
    monkeypatch.setattr(storage_schema, "migrations", lambda: [
        *real, (latest + 1, "x.sql", "CREATE TABLE added_later (x INTEGER);")])
    with pytest.raises(DatabaseUnusable) as info:
        await Database(db_path).open()
    assert str(info.value).startswith(f"cannot keep a copy of {db_path} in"
                                      f" {db_path.parent / 'backups'} before migration"
                                      f" {latest + 1:04d} (")
    assert str(info.value).endswith("); nothing was migrated")
    assert rows(db_path, "SELECT MAX(version) FROM schema_migrations") == [(latest,)]



# --- the database's own files are never a backup's target ---------------------------

OWN_FILES = [("", "the database itself"), ("-wal", "the database's write-ahead log"),
             ("-shm", "the database's shared-memory index"),
             ("-journal", "the database's rollback journal"), (".lock", "the bot's run lock file")]


async def test_backup_onto_the_live_wal_is_refused_while_the_bot_writes(
        db_path: Path, tmp_path: Path) -> None:
    """The reported case, as a real process: the shop keeps its rows after a crash."""
    await make_shop(db_path, customers=2)
    live = sqlite3.connect(db_path, isolation_level=None)  # the running bot: a WAL not yet folded
    try:
        live.execute("PRAGMA journal_mode = WAL")
        live.execute("PRAGMA wal_autocheckpoint = 0")
        users_before = live.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        live.execute("INSERT INTO users (id, first_name) VALUES (777, 'late')")
        wal = Path(f"{db_path}-wal")
        before = content(wal)
        env = {"DATABASE_PATH": str(db_path)}
        result = await asyncio.to_thread(run_module, tmp_path, "backup", f"{db_path}-wal", env=env)
        assert (result.returncode, result.stdout) == (1, ""), result.stderr
        assert result.stderr.splitlines() == [
            f"backup failed: {db_path}-wal is the database's write-ahead log: back it up to"
            " another path"]
        assert content(wal) == before
    finally:
        live.close()  # closing folds the log: the late row is in the database
    assert rows(db_path, "SELECT COUNT(*) FROM users") == [(users_before + 1,)]
    assert leftovers(db_path.parent) == []


def _links_to(db_path: Path, suffix: str, tmp_path: Path) -> tuple[Path, Path]:
    """The lock file, a symlink to the file, and one to the database's folder."""
    Path(f"{db_path}.lock").write_text("")
    link = tmp_path / "link-to-it"
    link.symlink_to(Path(f"{db_path}{suffix}"))
    folder_link = tmp_path / "data-link"
    folder_link.symlink_to(db_path.parent, target_is_directory=True)
    return link, folder_link


@pytest.mark.parametrize(("suffix", "what"), OWN_FILES)
async def test_each_own_file_is_refused_however_it_is_written(
        db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        suffix: str, what: str) -> None:
    await make_shop(db_path)
    link, folder_link = _links_to(db_path, suffix, tmp_path)
    monkeypatch.chdir(tmp_path)
    before = {name: content(db_path.parent / name) for name in names(db_path.parent)}
    for written in (f"{db_path}{suffix}", f"./data/{db_path.name}{suffix}",
                    f"data/../data/./{db_path.name}{suffix}", str(link),
                    f"{folder_link}/{db_path.name}{suffix}"):
        with pytest.raises(BackupError) as info:
            await backup(db_path, Path(written))
        assert str(info.value) == f"{Path(written)} is {what}: back it up to another path"
    # Also when DATABASE_PATH itself is given relative or through a link.
    with pytest.raises(BackupError, match=f"is {what}"):
        await backup(Path("data") / db_path.name, Path(f"{folder_link}/{db_path.name}{suffix}"))
    with pytest.raises(BackupError, match=f"is {what}"):
        await backup(folder_link / db_path.name, Path(f"./data/{db_path.name}{suffix}"))
    assert {name: content(db_path.parent / name) for name in names(db_path.parent)} == before


async def test_automatic_backups_never_prune_the_database(db_path: Path, tmp_path: Path) -> None:
    """A database restored by hand as a copy with a backup's name, in BACKUP_DIR."""
    folder = db_path.parent
    live = folder / "storefront-20200101-000000.sqlite3"
    await make_shop(live)
    clock = Clock()
    auto = AutoBackup(live, folder, interval=3600, keep=1, alert=Alerts(), clock=clock)
    for _ in range(3):
        assert await auto.run_once() is not None
        clock.now += 3600
    assert integrity(live) == "ok" and rows(live, "SELECT COUNT(*) FROM users") == [(3,)]
    with pytest.raises(ConfigError, match=r"^configuration error: BACKUP_DIR: "):
        AutoBackup.check_settings(load_settings(database_path=live, backup_dir=folder,
                                                backup_interval_hours="1"))
    AutoBackup.check_settings(load_settings(database_path=db_path, backup_dir=folder,
                                            backup_interval_hours="1"))


# --- a backup's schema is the migrations' schema, nothing added --------------------------

INFLATE = ("CREATE TRIGGER inflate AFTER INSERT ON ledger WHEN NEW.amount_minor > 0 BEGIN"
           " UPDATE users SET balance_minor = balance_minor + NEW.amount_minor * 9"
           " WHERE id = NEW.user_id; END")


def tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def schema_of(path: Path) -> list[tuple[Any, ...]]:
    return rows(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")


async def test_a_backup_carrying_a_trigger_that_inflates_credits_is_refused(
        db_path: Path, tmp_path: Path) -> None:
    await make_shop(db_path, customers=2)
    before = content(db_path)
    evil = tmp_path / "evil.sqlite3"
    await backup(db_path, evil)
    tamper(evil, INFLATE)
    result = await asyncio.to_thread(run_module, tmp_path, "restore", str(evil),
                                     env={"DATABASE_PATH": str(db_path)})
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert result.stderr.splitlines() == [
        f"restore refused: {evil}'s schema is not what this shop's migrations create"
        f" (schema {latest_schema_version()}): extra trigger inflate"]
    assert content(db_path) == before
    assert [n for n in names(db_path.parent) if not n.startswith("shop.sqlite3")] == []


@pytest.mark.parametrize(("statements", "named"), [
    (["CREATE VIEW rich AS SELECT id FROM users WHERE balance_minor > 0"], "extra view rich"),
    (["CREATE TABLE notes (x)"], "extra table notes"),
    (["CREATE INDEX users_by_name ON users (first_name)"], "extra index users_by_name"),
    (["DROP INDEX ledger_by_user", "CREATE INDEX ledger_by_user ON ledger (kind)"],
     "altered index ledger_by_user"),
    (["DROP INDEX ledger_by_user"], "missing index ledger_by_user"),
    (["ALTER TABLE users ADD COLUMN note TEXT"], "altered table users"),
    ([INFLATE, "CREATE VIEW rich AS SELECT 1"], "extra trigger inflate, extra view rich"),
])
async def test_every_schema_change_is_named_and_nothing_is_restored(
        db_path: Path, tmp_path: Path, statements: list[str], named: str) -> None:
    await make_shop(db_path)
    before = content(db_path)
    changed = tmp_path / "changed.sqlite3"
    await backup(db_path, changed)
    tamper(changed, *statements)
    with pytest.raises(BackupError) as info:
        await restore(changed, db_path)
    assert str(info.value).endswith(f"(schema {latest_schema_version()}): {named}")
    assert content(db_path) == before


async def test_an_older_backup_is_checked_against_its_own_version(
        db_path: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(old, isolation_level=None)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))")
        for version, name, sql in storage_schema.migrations()[:5]:
            for statement in storage_schema.statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                         (version, name))
    finally:
        conn.close()
    assert (await restore(old, db_path)).copy.schema_version == 5
    tamper(db_path, INFLATE)
    with pytest.raises(BackupError, match=r"\(schema 5\): extra trigger inflate$"):
        await restore(db_path, tmp_path / "elsewhere.sqlite3")
    # Opened by the bot, it is migrated like any older database, and checks out.
    tamper(db_path, "DROP TRIGGER inflate")
    async with Database(db_path):
        pass
    assert snapshot.check(db_path).schema_version == latest_schema_version()
