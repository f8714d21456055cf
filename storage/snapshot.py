"""Verified copies of the database file: SQLite's online backup API, then a check.

Synchronous on purpose: each function runs in a thread (``asyncio.to_thread``, or
the database's own thread for the pre-migration copy), never on the event loop.

``write_copy`` never leaves a half-written file under the final name: it copies
into a temporary file beside the destination, checks that file
(``PRAGMA integrity_check`` and this project's schema), and only then renames it
into place. The copy is made in one backup step (``pages=-1``): SQLite reads the
whole source inside one read transaction, so the copy is the database as it was
when the step began, while the bot goes on writing (WAL: readers never block
writers), and a write during the copy cannot make the step start over.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from storage import schema

BUSY_TIMEOUT_MS = 5000  # as the bot's own connection: a writer's commit is waited for


class CopyError(Exception):
    """A copy could not be made or is not a usable database; the text is one line."""


class DatabaseInUse(CopyError):
    """Another process has the database open."""


@dataclass(frozen=True, slots=True)
class CopyFacts:
    """What a verified copy holds."""

    size_bytes: int
    schema_version: int
    users: int
    orders: int
    ledger_rows: int


def connect_existing(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to a file that must already exist: ``sqlite3.connect`` would
    otherwise create an empty database where a path was mistyped."""
    if not path.is_file():
        raise CopyError(f"no database file at {path}")
    mode = "ro" if read_only else "rw"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode={mode}", uri=True,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise CopyError(f"SQLite cannot open {path} ({exc})") from None
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def write_copy(source: sqlite3.Connection, destination: Path, *,
               name: str = "the database") -> CopyFacts:
    """Copy the database behind ``source`` (called ``name`` in errors) to
    ``destination``, verified.

    The destination's folder must exist. Raises ``CopyError`` (the temporary
    file removed) when the copy cannot be written or does not check out.
    """
    try:
        handle, temp_name = tempfile.mkstemp(dir=destination.parent,
                                             prefix=f".{destination.name}.", suffix=".tmp")
    except OSError as exc:
        raise CopyError(f"cannot write in {destination.parent} ({exc.strerror or exc})") from None
    os.close(handle)
    temp = Path(temp_name)
    try:
        target = sqlite3.connect(temp, isolation_level=None)
        try:
            source.backup(target)  # pages=-1: one step, one consistent snapshot
            # The copy of a WAL database is a WAL database; DELETE mode makes it
            # one self-contained file that is checked (and can be copied) alone.
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        facts = check(temp, name=name)
        _fsync(temp)
        os.replace(temp, destination)
        fsync_folder(destination.parent)
    except sqlite3.Error as exc:
        _remove(temp)
        if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "malformed"
            raise CopyError(f"{name} cannot be read as a SQLite database ({_reason(exc)})") from None
        raise CopyError(f"cannot copy {name} ({_reason(exc)})") from None
    except OSError as exc:
        _remove(temp)
        raise CopyError(f"cannot write {destination} ({exc.strerror or exc})") from None
    except BaseException:
        _remove(temp)
        raise
    return facts


def check(path: Path, *, name: str | None = None) -> CopyFacts:
    """``path`` passes ``PRAGMA integrity_check`` and has this project's schema;
    its size and row counts. ``CopyError`` says what is wrong (of ``name``, by
    default the path), in one line."""
    conn = connect_existing(path, read_only=True)
    path_name = name or str(path)
    try:
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise CopyError(f"{path_name} cannot be read as a SQLite database ({_reason(exc)})") from None
        if problems != ["ok"]:
            # A problem row can hold several lines: the error stays one line.
            found = " ".join("; ".join(problems).split())
            raise CopyError(f"{path_name} fails SQLite's integrity check: {found[:300]}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"schema_migrations", "users", "orders", "ledger"} - tables
        if missing:
            raise CopyError(f"{path_name} is not this shop's database (no {', '.join(sorted(missing))}"
                            " table)")
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        differences = schema.differences(conn, int(version))
        if differences:
            raise CopyError(f"{path_name}'s schema is not what this shop's migrations create"
                            f" (schema {version}): {differences}")
        users, orders, ledger_rows = conn.execute(
            "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM orders),"
            " (SELECT COUNT(*) FROM ledger)").fetchone()
    except sqlite3.Error as exc:
        raise CopyError(f"cannot read {path_name} ({_reason(exc)})") from None
    finally:
        conn.close()
    return CopyFacts(size_bytes=path.stat().st_size, schema_version=int(version), users=users,
                     orders=orders, ledger_rows=ledger_rows)


def quiesce(path: Path) -> None:
    """Fold ``path``'s write-ahead log into the file and drop its ``-wal``/``-shm``.

    Leaving WAL mode needs the only connection, so this also proves that no other
    process has the database open (``DatabaseInUse``). Afterwards the file alone
    is the whole database and can be renamed. ``CopyError``: it is not a readable
    database (its sidecars are then left as they are).
    """
    conn = connect_existing(path)
    try:
        conn.execute("PRAGMA busy_timeout = 0")  # another user: say so now, do not wait
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if mode != "delete":
            raise DatabaseInUse(f"{path} is in use by another process (it stays in {mode} mode)")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseInUse(f"{path} is in use by another process ({exc})") from None
        raise CopyError(f"cannot read {path} ({_reason(exc)})") from None
    except sqlite3.Error as exc:
        raise CopyError(f"cannot read {path} ({_reason(exc)})") from None
    finally:
        conn.close()


def _reason(exc: sqlite3.Error) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _remove(path: Path) -> None:
    for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _fsync(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def fsync_folder(folder: Path) -> None:
    """The rename itself survives a power cut only once the folder is synced."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders (Windows): the rename stands
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
