"""Backups and restores of the live SQLite database, and the "bot is running" lock.

``backup`` copies the database with SQLite's online backup API while the bot
keeps writing (storage/snapshot.py: one consistent snapshot, checked, renamed
into place only once it checks out). ``restore`` puts a checked copy back, only
while no bot runs on the database, and keeps the file it replaces.

``RunLock``: a running bot holds an exclusive ``flock`` on ``<DATABASE_PATH>.lock``
for as long as it runs. The kernel drops the lock when the process ends, however
it ends, so a crash never leaves a stale lock behind (a pid file would). The lock
file itself stays: removing it while another process waits to lock it would let
two holders lock two different files.

``AutoBackup`` takes a backup every ``BACKUP_INTERVAL_HOURS`` into ``BACKUP_DIR``
and keeps the newest ``BACKUP_KEEP``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.config import ConfigError, Settings, StartupError
from bot.shop.messaging.alerts import Alert
from storage import snapshot
from storage.schema import latest_schema_version

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, so no lock is taken there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

AUTO_NAME = re.compile(r"^storefront-\d{8}-\d{6}\.sqlite3$")  # only these are ever pruned
STAMP = "%Y%m%d-%H%M%S"  # UTC: names sort in time order and never repeat at a DST change
FIRST_BACKUP_DELAY = 60.0  # seconds after start-up: start-up's own work goes first


class BackupError(Exception):
    """A backup or restore did not happen; the text says why, in one line."""


class BotRunning(BackupError):
    """A bot holds the database's run lock."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A verified copy: where it is and what it holds."""

    path: Path
    size_bytes: int
    schema_version: int
    users: int
    orders: int
    ledger_rows: int

    @classmethod
    def of(cls, path: Path, facts: snapshot.CopyFacts) -> BackupReport:
        return cls(path, facts.size_bytes, facts.schema_version, facts.users, facts.orders,
                   facts.ledger_rows)

    def describe(self) -> str:
        return (f"{self.path}: {self.size_bytes} bytes, {self.users} users, {self.orders} orders,"
                f" {self.ledger_rows} ledger rows, schema {self.schema_version}, integrity ok")


@dataclass(frozen=True, slots=True)
class RestoreReport:
    source: Path
    database_path: Path
    kept: Path | None  # the replaced database, None when there was none
    copy: BackupReport


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(STAMP)


def backup_name(now: datetime | None = None) -> str:
    return f"storefront-{stamp(now)}.sqlite3"


def destination_for(path: str | Path, now: datetime | None = None) -> Path:
    """``path`` itself, or a dated file in it when it is a folder (an existing one,
    or one written with a trailing slash: ``Path`` drops it, so it is read first)."""
    if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
        return Path(path) / backup_name(now)
    return Path(path)


async def backup(database_path: Path, destination: Path) -> BackupReport:
    """Copy the database to ``destination`` (a file path; its folder is created),
    verified; safe while the bot writes. Raises ``BackupError``."""
    return await asyncio.to_thread(_backup, Path(database_path), Path(destination))


def _backup(database_path: Path, destination: Path) -> BackupReport:
    own = own_file(database_path, destination)
    if own is not None:
        # A copy renamed onto the live -wal (or -shm) replaced the log SQLite still had to
        # fold in: after a crash the shop started from the file alone, empty.
        raise BackupError(f"{destination} is {own}: back it up to another path")
    _make_folder(destination.parent)
    if destination.is_dir():
        raise BackupError(f"{destination} is a folder")
    try:
        source = snapshot.connect_existing(database_path)
        try:
            facts = snapshot.write_copy(source, destination, name=str(database_path))
        finally:
            source.close()
    except snapshot.CopyError as exc:
        raise BackupError(str(exc)) from None
    return BackupReport.of(destination, facts)


async def restore(source: Path, database_path: Path) -> RestoreReport:
    """Replace the database with a verified copy of ``source``; the replaced file
    is kept as ``<database>.before-restore-<UTC time>``. Refused (``BotRunning``)
    while a bot runs on the database; other refusals are ``BackupError``."""
    return await asyncio.to_thread(_restore, Path(source), Path(database_path))


def _restore(source: Path, database_path: Path) -> RestoreReport:
    if str(database_path) == ":memory:":
        raise BackupError("DATABASE_PATH is :memory:, there is no file to restore into")
    if _same_file(source, database_path):
        raise BackupError(f"{source} is the database itself")
    _make_folder(database_path.parent)
    # Held to the end: a bot started meanwhile stops at its own lock, not on a
    # database being swapped under it.
    with RunLock(database_path) as lock:
        if lock.busy:
            raise BotRunning(f"the bot is running on {database_path}{lock.holder()}: stop it,"
                             " then restore")
        if not lock.held:
            raise BackupError(f"cannot lock {lock.path} ({lock.problem})")
        return _swap_in(source, database_path)


def _swap_in(source: Path, database_path: Path) -> RestoreReport:
    # The source is copied through SQLite, not as bytes: a WAL source's -wal is
    # read too, and the copy is checked where it will be renamed into place.
    try:
        reader = snapshot.connect_existing(source, read_only=True)
        try:
            staged = database_path.parent / f".{database_path.name}.restoring"
            facts = snapshot.write_copy(reader, staged, name=str(source))
        finally:
            reader.close()
    except snapshot.CopyError as exc:
        raise BackupError(str(exc)) from None
    try:
        latest = latest_schema_version()
        if facts.schema_version > latest:
            raise BackupError(f"{source} has schema version {facts.schema_version}, newer than"
                              f" this bot's {latest}: update the bot first")
        kept = None
        if not database_path.exists() and Path(f"{database_path}-wal").exists():
            # SQLite would replay that log into the restored file.
            raise BackupError(f"{database_path}-wal is there without {database_path}: move it"
                              " away, then restore")
        if database_path.exists():
            _same_owner(staged, database_path)
            kept = _keep_current(database_path)
        os.replace(staged, database_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        raise
    snapshot.fsync_folder(database_path.parent)
    return RestoreReport(source, database_path, kept,
                         BackupReport.of(database_path, facts))


def _same_owner(new: Path, old: Path) -> None:
    """The restored file gets the replaced one's mode and, where allowed, owner: a
    restore run as root must not leave a database the bot's own user cannot open."""
    status = old.stat()
    os.chmod(new, stat.S_IMODE(status.st_mode))
    with contextlib.suppress(PermissionError, AttributeError):  # not root; no chown (Windows)
        os.chown(new, status.st_uid, status.st_gid)


def _keep_current(database_path: Path) -> Path:
    """Keep the current database under a new name, whole, before it is replaced.

    Its write-ahead log is folded into it first, so the kept file is complete on
    its own and no ``-wal``/``-shm`` of the old database is left to be mistaken
    for the new one's. One that SQLite cannot read (a corrupt database is a
    reason to restore) keeps its ``-wal`` beside it under the new name, as is.
    """
    try:
        snapshot.quiesce(database_path)
    except snapshot.DatabaseInUse as exc:
        raise BackupError(f"{exc}: stop it (a `python -m bot` command?), then restore") from None
    except snapshot.CopyError:
        pass
    kept = _free_name(database_path, f"before-restore-{stamp()}")
    # A hard link keeps the old file under its new name while the database path
    # still names it: the path is never without a database, even for a moment.
    try:
        os.link(database_path, kept)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
            raise BackupError(f"cannot keep {database_path} as {kept}"
                              f" ({exc.strerror or exc})") from None
        # A filesystem without hard links: a rename, then the new file takes the path.
        os.replace(database_path, kept)
    wal = Path(f"{database_path}-wal")
    if wal.exists():
        os.replace(wal, f"{kept}-wal")
    # Only an index into the -wal, rebuilt from it; a stale one must not meet the new file.
    with contextlib.suppress(FileNotFoundError):
        Path(f"{database_path}-shm").unlink()
    return kept


def _free_name(database_path: Path, suffix: str) -> Path:
    candidate = Path(f"{database_path}.{suffix}")
    number = 1
    while candidate.exists() or Path(f"{candidate}-wal").exists():
        number += 1
        candidate = Path(f"{database_path}.{suffix}-{number}")
    return candidate


# The files SQLite and the bot keep beside DATABASE_PATH, each named for the refusal.
OWN_FILES = (("", "the database itself"), ("-wal", "the database's write-ahead log"),
             ("-shm", "the database's shared-memory index"),
             ("-journal", "the database's rollback journal"), (".lock", "the bot's run lock file"))


def own_file(database_path: Path, path: Path) -> str | None:
    """What ``path`` is among the database's own files (the database, its ``-wal``,
    ``-shm``, ``-journal``, the run lock), or None: compared on resolved paths, so a
    relative path, ``./``, ``..`` or a symlink (to the file or to a folder on the
    way) is the file it names. SQLite names its sidecars after the path it was
    given and after that path resolved; both count."""
    with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: a symlink loop
        target = path.resolve()
        for base in {database_path.absolute(), database_path.resolve()}:
            for suffix, what in OWN_FILES:
                own = Path(f"{base}{suffix}")
                if target == own.resolve() or (target.exists() and own.exists()
                                               and target.samefile(own)):
                    return what
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _make_folder(folder: Path) -> None:
    """``folder`` and its parents, or a ``BackupError`` that says what is in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the folder {folder}"
                          f" ({_folder_problem(folder, exc)})") from None


def _folder_problem(folder: Path, exc: OSError) -> str:
    if isinstance(exc, FileExistsError | NotADirectoryError):
        in_the_way = next((p for p in (folder, *folder.parents) if p.is_file()), folder)
        return f"{in_the_way} is a file"
    return exc.strerror or str(exc)


class RunLock:
    """The exclusive, non-blocking ``flock`` on ``<database>.lock`` that says a
    bot runs on that database.

    ``acquire()`` says whether it was taken; ``hold_for_bot`` raises the bot's
    start-up refusal instead. A lock file that cannot be created (its folder is
    not there and cannot be) is not taken: opening the database then says why
    the path cannot work, in the words the bot uses for every path problem.
    """

    def __init__(self, database_path: Path | str) -> None:
        self.database_path = Path(database_path)
        self.path = Path(f"{database_path}.lock")
        self.held = False
        self.busy = False  # the last acquire found another holder (not a path problem)
        self.problem = ""  # why the lock file could not be opened
        self._handle: int | None = None

    @classmethod
    def hold_for_bot(cls, settings: Settings) -> RunLock:
        """The lock for the bot's whole run; ``StartupError`` while another holds it."""
        lock = cls(settings.database_path)
        if not lock.acquire() and lock.busy:
            raise StartupError(f"another bot is already running on DATABASE_PATH"
                               f" {settings.database_path}{lock.holder()}: stop it first, or give"
                               " this one its own DATABASE_PATH")
        return lock

    def acquire(self) -> bool:
        if fcntl is None or str(self.database_path) == ":memory:":
            self.held = True  # nothing to share a memory database with, or no flock here
            return True
        if self.database_path.is_dir():  # not a database path: no lock file beside the folder
            self.problem = f"{self.database_path} is a folder"
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = _open_lock_file(self.path)
        except OSError as exc:
            self.problem = exc.strerror or str(exc)
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(handle)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                self.busy = True
            else:
                self.problem = exc.strerror or str(exc)
            return False
        # Who holds it, for the refusal another start or a restore prints.
        with contextlib.suppress(OSError):  # a lock file opened read-only: no pid, same lock
            os.ftruncate(handle, 0)
            os.write(handle, f"{os.getpid()}\n".encode())
        self._handle, self.held = handle, True
        return True

    def holder(self) -> str:
        """`` (pid N)`` as the holder wrote it, or nothing."""
        try:
            pid = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def release(self) -> None:
        if self._handle is not None:
            # Closing drops the flock; the file stays (see the module's docstring).
            os.close(self._handle)
            self._handle = None
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _open_lock_file(path: Path) -> int:
    """Read-write, created when missing; read-only when another user made it (a
    restore run as root): flock needs no write access."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY)


class AutoBackup:
    """A verified backup every ``interval`` seconds into ``folder``, the newest
    ``keep`` kept. A failure is logged and told to the admins once; they hear
    again when a backup succeeds, not at every failed try in between."""

    def __init__(self, database_path: Path, folder: Path, *, interval: float | None, keep: int,
                 alert: Alert, first_delay: float = FIRST_BACKUP_DELAY,
                 clock: Callable[[], float] = time.time) -> None:
        self.database_path = Path(database_path)
        self.folder = Path(folder)
        self.interval = interval
        self.keep = keep
        self.alert = alert
        self.first_delay = first_delay
        self._clock = clock
        self.failing = False

    @classmethod
    def for_settings(cls, settings: Settings, alert: Alert) -> AutoBackup:
        hours = settings.backup_interval_hours
        return cls(settings.database_path, settings.backup_dir,
                   interval=hours * 3600 if hours else None, keep=settings.backup_keep,
                   alert=alert)

    @staticmethod
    def check_settings(settings: Settings) -> None:
        """``ConfigError`` when DATABASE_PATH is a file automatic backups would prune: one
        in BACKUP_DIR with a backup's name (a backup put back by hand, not by ``restore``).
        Their dated names can never be the database's -wal, -shm, -journal or lock."""
        if not settings.backup_interval_hours:
            return
        database = settings.database_path
        with contextlib.suppress(OSError, RuntimeError):
            if (AUTO_NAME.match(database.resolve().name)
                    and database.resolve().parent == settings.backup_dir.resolve()):
                raise ConfigError(f"configuration error: BACKUP_DIR: {settings.backup_dir} holds"
                                  f" DATABASE_PATH {database} under an automatic backup's name,"
                                  " so pruning old backups would delete the shop's database:"
                                  " rename the database or choose another BACKUP_DIR")

    async def run(self) -> None:
        """Until cancelled; returns at once when automatic backups are off."""
        if not self.interval:
            return
        log.info("automatic backups every %g h into %s (the newest %d kept)",
                 self.interval / 3600, self.folder, self.keep)
        await asyncio.sleep(self.first_delay_now())
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    def first_delay_now(self) -> float:
        """Until the next backup is due: an interval after the newest one in the
        folder, so restarts (a deploy a day) do not postpone backups forever."""
        newest = max((_mtime(p) for p in self._backups()), default=None)
        if newest is None or not self.interval:
            return self.first_delay
        return max(self.first_delay, newest + self.interval - self._clock())

    async def run_once(self) -> BackupReport | None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            report = await backup(self.database_path, self.folder / backup_name(now))
            removed = await asyncio.to_thread(self.prune)
        except Exception as exc:  # whatever it is, the bot goes on and the admins hear of it
            if isinstance(exc, BackupError):
                why = str(exc)
                log.error("automatic backup failed: %s", why)
            else:
                why = (exc.strerror if isinstance(exc, OSError) else None) or repr(exc)[:300]
                log.exception("automatic backup failed")
            if not self.failing:
                self.failing = True
                await self.alert(f"💾 The automatic database backup failed: {why}. It is tried"
                                 " again at every interval; you will hear when one succeeds.",
                                 key="backup-failed")
            return None
        log.info("backup %s%s", report.describe(),
                 f"; removed {len(removed)} older" if removed else "")
        if self.failing:
            self.failing = False
            await self.alert(f"💾 Automatic database backups work again: {report.path}.",
                             key="backup-recovered")
        return report

    def prune(self) -> list[Path]:
        """Remove all but the newest ``keep`` automatic backups (their names sort by time)."""
        old = sorted(self._backups(), key=lambda p: p.name)[:-self.keep]
        # Never the database itself, whatever its name (see check_settings).
        old = [path for path in old if own_file(self.database_path, path) is None]
        for path in old:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return old

    def _backups(self) -> list[Path]:
        try:
            return [p for p in self.folder.iterdir() if AUTO_NAME.match(p.name) and p.is_file()]
        except OSError:
            return []


def _mtime(path: Path) -> float:
    """A backup's time; 0 for one deleted between listing and looking (an operator's
    clean-up): it must not end automatic backups."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
