"""The one owner of the SQLite connection.

One aiosqlite connection, WAL journal, foreign keys on. A block of several
statements runs inside ``transaction()``, which takes the connection's lock and
``BEGIN IMMEDIATE``, so a coroutine's reads and writes in one block are atomic
and never interleave with another's. A single call (one statement, or
``transact``'s whole transaction in the database thread) waits for that lock only
while such a block is open. Numbered migrations in ``storage/migrations`` run at
start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.observability.redaction import redact
from storage import schema, snapshot

log = logging.getLogger(__name__)

MAX_ROW_ID = 2**63 - 1
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"  # SQL: the current UTC time, as stored
MAX_ERROR = 500  # characters of an error text kept in a row
T = TypeVar("T")


def error_text(text: str) -> str:
    """An error text as stored: secrets masked first (a cut could leave half of one
    that no longer matches), then cut to ``MAX_ERROR``."""
    return redact(text)[:MAX_ERROR]


def is_row_id(value: int) -> bool:
    """Whether ``value`` can be a row id; ids from callback data are checked first."""
    return 0 < value <= MAX_ROW_ID


class DatabaseUnusable(Exception):
    """The database file cannot be created or opened; the text says why, in one line."""


# The WAL is copied into the database file by a connection of its own, in a worker
# thread, every CHECKPOINT_EVERY seconds (``PASSIVE``: it waits for no reader or
# writer, and none waits for it). SQLite's own checkpoint runs inside a commit, in
# the one database thread, so every statement queued behind that commit waited
# for the copy, longer as the file grew (bench/soak.py). Its automatic checkpoint
# stays as a bound on the WAL (AUTOCHECKPOINT_PAGES pages of 4 KB) should the
# background one fall behind.
CHECKPOINT_EVERY = 5.0
AUTOCHECKPOINT_PAGES = 10_000


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._checkpoints: asyncio.Task[None] | None = None

    async def open(self) -> Database:
        """Create (folder included) or open the file and migrate it.

        Raises ``DatabaseUnusable`` when the file cannot be had at all (its folder
        cannot be created, it is a folder, it is not SQLite...): a path problem,
        told in one line rather than as an OSError or sqlite3 traceback.
        """
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connecting = aiosqlite.connect(self.path, isolation_level=None)
            try:
                self._conn = await connecting
            except BaseException:
                await _joined(connecting)
                raise
            self._conn.row_factory = aiosqlite.Row
            # journal_mode is the first statement that reads and writes the file:
            # a folder, a read-only file or one that is not SQLite fails here.
            for pragma in ("PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON",
                           "PRAGMA synchronous = NORMAL", "PRAGMA busy_timeout = 5000",
                           f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}"):
                await self._conn.execute(pragma)
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise DatabaseUnusable(f"cannot use {self.path}: {_unusable(self.path, exc)}") from exc
        await self._migrate()
        if str(self.path) != ":memory:":
            self._checkpoints = asyncio.get_running_loop().create_task(self._checkpoint_often())
        return self

    async def _checkpoint_often(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            try:
                await asyncio.to_thread(_checkpoint, self.path)
            except sqlite3.Error as exc:  # busy, or the disk: the next one, or SQLite's own, goes on
                log.warning("database checkpoint failed (%s); trying again in %g s", exc,
                            CHECKPOINT_EVERY)

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
            self._checkpoints = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the database is not open")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """An atomic block: committed on exit, rolled back on any exception."""
        async with self._lock:
            conn = self.conn
            try:
                # Inside the try: a task cancelled while BEGIN is queued (a graceful stop
                # past its grace) still queues the ROLLBACK behind it, so the connection
                # is never left inside a transaction nobody owns.
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):  # no transaction began
                    await asyncio.shield(conn.execute("ROLLBACK"))
                raise
            await conn.execute("COMMIT")

    # Every aiosqlite call is a hop to its thread and back, so reads and single
    # statements use execute_fetchall: one hop, not three (execute, fetch, close).

    async def _single(self, call: Callable[[], Awaitable[T]]) -> T:
        """One call into the database thread, never inside another's ``transaction()``.

        The thread runs calls one at a time in the order they were queued, and
        ``call()`` queues its call before its first suspension, so no block can
        begin between the check and the queueing. So under a burst the calls
        queue once, in the thread's own queue, rather than first one by one on
        the lock (a wake-up of the event loop per call).
        """
        if not self._lock.locked():
            return await call()
        async with self._lock:
            return await call()

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        return await self._single(lambda: first(self.conn, sql, params))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._single(lambda: self.conn.execute_fetchall(sql, params)))

    async def write(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        """One statement, atomic on its own (autocommit): no BEGIN/COMMIT round trips."""
        return list(await self._single(lambda: self.conn.execute_fetchall(sql, params)))

    async def transact(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(connection, *args, **kwargs)`` as one transaction, run whole in the
        database's thread: one hop however many statements (the order's debit
        under a burst of Confirms)."""
        return await self._single(
            lambda: in_thread(self.conn, _atomically, work, *args, **kwargs))

    async def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement for many rows, in one hop and one implicit transaction."""
        await self._single(lambda: self.conn.executemany(sql, rows))

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        conn = self.conn
        await conn.execute(schema.SCHEMA_MIGRATIONS)
        current = await self.schema_version()
        pending = [m for m in schema.migrations() if m[0] > current]
        if current and pending and str(self.path) != ":memory:":
            await self._copy_before_migrating(pending[0][0])
        if current == 0 and pending:
            # One line for a new file, not one per migration ahead of start-up's own lines.
            log.info("creating the database %s (schema version %d)", self.path, pending[-1][0])
        for version, name, sql in pending:
            if current:
                log.info("applying database migration %04d %s", version, name)
            async with self.transaction() as tx:
                for statement in schema.statements(sql):
                    await tx.execute(statement)
                await tx.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                                 (version, name))

    async def _copy_before_migrating(self, version: int) -> None:
        """Keep the database as it was before ``version`` and later are applied:
        ``<its folder>/backups/pre-migration-<version>.sqlite3``, verified. A
        migration is one transaction, but the code that comes with it may still
        turn out wrong, and going back is then a restore of this copy. Nothing
        else uses the database yet, so the copy is simply the file as it is."""
        target = self.path.parent / "backups" / f"pre-migration-{version}.sqlite3"
        log.info("copying the database to %s before migrating it", target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            await in_thread(self.conn, snapshot.write_copy, target)
        except (OSError, snapshot.CopyError) as exc:
            await self.close()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            # No migration without its copy: the shop stays on the schema it had.
            raise DatabaseUnusable(f"cannot keep a copy of {self.path} in {target.parent} before"
                                   f" migration {version:04d} ({why}); nothing was migrated") from None


async def _joined(connection: aiosqlite.Connection) -> None:
    """Wait for the thread of a connection that failed to open.

    aiosqlite stops that thread without waiting for it; its last call back into
    the event loop, made after ``asyncio.run`` has closed the loop, printed a
    traceback on the way out of a start-up that had failed cleanly.
    """
    thread = getattr(connection, "_thread", None)  # private: tolerate its absence
    if thread is not None and thread.is_alive():
        await asyncio.to_thread(thread.join, 5)


def _unusable(path: Path, exc: OSError | sqlite3.Error) -> str:
    """Why ``path`` cannot be the database, for someone who only knows the path they set."""
    if path.is_dir():
        return "it is a folder, not a file"
    if isinstance(exc, FileExistsError | NotADirectoryError):
        in_the_way = next((p for p in path.parents if p.is_file()), path.parent)
        return f"{in_the_way} is a file, so it cannot hold a folder"
    if isinstance(exc, OSError):
        return f"cannot create the folder {path.parent} ({exc.strerror or exc})"
    return f"SQLite cannot open it ({exc})"


async def first(conn: aiosqlite.Connection, sql: str,
                params: Sequence[Any] = ()) -> aiosqlite.Row | None:
    """The first row of ``sql`` inside a transaction, in one hop."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


def _checkpoint(path: Path) -> None:
    """One passive checkpoint of ``path``'s WAL, on a short-lived connection."""
    conn = sqlite3.connect(path, timeout=1.0)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


def _atomically(conn: sqlite3.Connection, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn, *args, **kwargs)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


async def in_thread(conn: aiosqlite.Connection, work: Callable[..., T], *args: Any,
                    **kwargs: Any) -> T:
    """Run ``work(sqlite3_connection, ...)`` in aiosqlite's thread, in one hop.

    aiosqlite has no public call for this; ``_execute`` and ``_conn`` have kept
    their shape through the versions this project allows (see pyproject.toml),
    and every database test goes through here.
    """
    return await conn._execute(work, conn._conn, *args, **kwargs)


async def run(target: Database | aiosqlite.Connection, sql: str,
              params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
    """One statement in one hop: inside the caller's transaction when given its
    connection, else atomic on its own (for a single-statement change)."""
    if isinstance(target, Database):
        return await target.write(sql, params)
    return list(await target.execute_fetchall(sql, params))
