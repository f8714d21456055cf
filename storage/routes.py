"""A shop service's backups on other panels (migration 0016, ``service_routes``).

The routing (bot/shop/routing/) reads ``backups_of`` when an order's own panel
certainly did not take it; the admin's Backups screen and ``python -m bot routes``
make and list the links.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from storage import catalog as catalog_store
from storage.catalog import StoredService
from storage.db import Database, first


@dataclass(frozen=True, slots=True)
class Link:
    service_ref: int
    backup_ref: int
    position: int


async def link(db: Database, service_ref: int, backup_ref: int, admin_id: int = 0,
               conn: aiosqlite.Connection | None = None) -> bool:
    """Make ``backup_ref`` the last backup of ``service_ref``; False when it is one
    already. Run in the caller's transaction (``conn``) to audit it with the change."""
    async def work(c: aiosqlite.Connection) -> bool:
        row = await first(
            c, "INSERT INTO service_routes (service_ref, backup_ref, position, created_by)"
            " SELECT ?, ?, COALESCE(MAX(position), 0) + 1, ? FROM service_routes"
            " WHERE service_ref = ? ON CONFLICT DO NOTHING RETURNING position",
            (service_ref, backup_ref, admin_id, service_ref))
        return row is not None

    if conn is not None:
        return await work(conn)
    async with db.transaction() as c:
        return await work(c)


async def unlink(conn: aiosqlite.Connection, service_ref: int, backup_ref: int) -> bool:
    """Remove the link (in the caller's transaction); False when there was none."""
    cursor = await conn.execute(
        "DELETE FROM service_routes WHERE service_ref = ? AND backup_ref = ?",
        (service_ref, backup_ref))
    return cursor.rowcount > 0


async def reaches(conn: aiosqlite.Connection, start: int, goal: int) -> bool:
    """Whether following links from ``start`` (its backups, their backups...) comes to
    ``goal``: linking ``goal`` -> ``start`` would then close a circle."""
    row = await first(
        conn, "WITH RECURSIVE reached (ref) AS (SELECT backup_ref FROM service_routes"
        " WHERE service_ref = ? UNION SELECT r.backup_ref FROM service_routes r"
        " JOIN reached ON r.service_ref = reached.ref) SELECT 1 FROM reached WHERE ref = ?",
        (start, goal))
    return row is not None


async def backups_of(db: Database, service_ref: int) -> list[StoredService]:
    """``service_ref``'s backups in their order (withdrawn or hidden ones too: the
    caller decides what may take an order)."""
    rows = await db.fetchall(
        "SELECT backup_ref FROM service_routes WHERE service_ref = ? ORDER BY position",
        (service_ref,))
    found = [await catalog_store.get(db, int(r[0])) for r in rows]
    return [s for s in found if s is not None]


async def links(db: Database) -> list[Link]:
    """Every link, by service then position."""
    rows = await db.fetchall(
        "SELECT service_ref, backup_ref, position FROM service_routes"
        " ORDER BY service_ref, position")
    return [Link(int(r[0]), int(r[1]), int(r[2])) for r in rows]


async def backup_refs(db: Database) -> set[int]:
    """Every service linked as a backup of another (not listed for customers)."""
    rows = await db.fetchall("SELECT DISTINCT backup_ref FROM service_routes")
    return {int(r[0]) for r in rows}
