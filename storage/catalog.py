"""The cached catalog: services of every panel, refreshed from the panels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from bot.panel.models import Service
from storage.db import Database

_UPSERT = (
    "INSERT INTO services (panel, service_id, name, type, category, rate, currency,"
    " min_quantity, max_quantity, refill, cancel, dripfeed, description, active, synced_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
    " ON CONFLICT (panel, service_id) DO UPDATE SET name = excluded.name,"
    " type = excluded.type, category = excluded.category, rate = excluded.rate,"
    " currency = excluded.currency, min_quantity = excluded.min_quantity,"
    " max_quantity = excluded.max_quantity, refill = excluded.refill,"
    " cancel = excluded.cancel, dripfeed = excluded.dripfeed,"
    " description = excluded.description, active = 1, synced_at = excluded.synced_at"
)


async def replace_services(db: Database, panel: str, currency: str,
                           services: Sequence[Service]) -> int:
    """Store ``panel``'s current list; services it no longer lists stop being sold.

    Returns how many services were deactivated.
    """
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    # A generator, not a list: the rows are built as SQLite consumes them.
    rows = (
        (panel, s.id, s.name, s.type, s.category, str(s.rate), currency, s.min, s.max,
         int(s.refill), int(s.cancel), int(s.dripfeed), s.description, stamp)
        for s in services
    )
    async with db.transaction() as conn:
        await conn.executemany(_UPSERT, rows)
        cursor = await conn.execute(
            "UPDATE services SET active = 0 WHERE panel = ? AND active = 1 AND synced_at <> ?",
            (panel, stamp),
        )
        return cursor.rowcount


_SERVICE_COLUMNS = ("service_id, name, type, category, rate, min_quantity, max_quantity,"
                    " refill, cancel, dripfeed, description")


def _service(row: Sequence) -> Service:
    return Service(
        id=row[0], name=row[1], type=row[2], category=row[3], rate=Decimal(row[4]),
        min=int(row[5]), max=int(row[6]), refill=bool(row[7]), cancel=bool(row[8]),
        dripfeed=bool(row[9]), description=row[10],
    )


async def active_services(db: Database, panel: str) -> list[Service]:
    rows = await db.fetchall(
        f"SELECT {_SERVICE_COLUMNS} FROM services WHERE panel = ? AND active = 1"
        " ORDER BY category, CAST(service_id AS INTEGER), service_id", (panel,),
    )
    return [_service(row) for row in rows]


async def get_service(db: Database, panel: str, service_id: str,
                      *, include_inactive: bool = False) -> Service | None:
    row = await db.fetchone(
        f"SELECT {_SERVICE_COLUMNS} FROM services WHERE panel = ? AND service_id = ?"
        + ("" if include_inactive else " AND active = 1"),
        (panel, service_id),
    )
    return _service(row) if row else None
