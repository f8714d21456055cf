"""The schema: the numbered migrations in ``storage/migrations/``, and what a
database's schema is compared with (a backup to restore must have exactly the
schema the migrations make at its version)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
)


def migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> Iterable[str]:
    """Split a migration into statements (they contain no semicolons in strings)."""
    without_comments = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [part.strip() for part in without_comments.split(";") if part.strip()]


def latest_schema_version() -> int:
    """The schema version this code migrates a database to."""
    return max((version for version, _, _ in migrations()), default=0)


# One schema object as sqlite_master has it: (type, name, tbl_name, sql with its
# whitespace normalised).
SchemaObject = tuple[str, str, str, str | None]
MAX_NAMED = 10  # differences named in the one line; the rest are counted


def objects(conn: sqlite3.Connection) -> frozenset[SchemaObject]:
    """Every table, index, view and trigger of ``conn``'s database. ANALYZE's
    statistics tables are left out: SQLite may make them on its own."""
    return frozenset(
        (kind, name, table, " ".join(sql.split()) if sql is not None else None)
        for kind, name, table, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE NOT (type = 'table' AND name LIKE 'sqlite_stat%')"))


def differences(conn: sqlite3.Connection, version: int) -> str:
    """What ``conn``'s schema has that the migrations up to ``version`` do not make, or
    lacks, or has changed ("extra trigger inflate, altered index x"); empty when it is
    theirs exactly. A trigger or view slipped into a backup would run in the shop once
    restored (a trigger can inflate every credit), and a dropped index or changed
    table breaks the guarantees the migrations give. A version newer than this
    code's is not judged here: restore refuses it as newer."""
    if version > latest_schema_version():
        return ""
    found = {(kind, name): (table, sql) for kind, name, table, sql in objects(conn)}
    expected = {(kind, name): (table, sql) for kind, name, table, sql in schema_at(version)}
    changes = [(name, f"extra {kind} {name}") for kind, name in found.keys() - expected.keys()]
    changes += [(name, f"missing {kind} {name}") for kind, name in expected.keys() - found.keys()]
    changes += [(name, f"altered {kind} {name}") for (kind, name) in found.keys() & expected.keys()
                if found[kind, name] != expected[kind, name]]
    named = [change for _, change in sorted(changes)]
    if len(named) > MAX_NAMED:
        named = [*named[:MAX_NAMED], f"and {len(named) - MAX_NAMED} more"]
    return ", ".join(named)


@lru_cache(maxsize=8)
def schema_at(version: int) -> frozenset[SchemaObject]:
    """The schema a new database has at ``version``: the migrations up to it, run on
    an empty database in memory (what a backup's schema is compared with)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # as the bot's own connection migrates
        conn.execute(SCHEMA_MIGRATIONS)
        for number, _name, sql in migrations():
            if number > version:
                break
            for statement in statements(sql):
                conn.execute(statement)
        return objects(conn)
    finally:
        conn.close()
