"""The cached catalog: services of every panel, refreshed from the panels.

The storefront browses this cache and never calls a panel on a click.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from bot.panel.models import Service
from storage.db import Database, first, is_row_id


@dataclass(frozen=True, slots=True)
class StoredService:
    ref: int  # our id, used in callback data
    panel: str
    category_id: int
    platform: str
    currency: str
    active: bool
    service: Service


_UPSERT_CATEGORY = (
    "INSERT INTO categories (panel, name, platform) VALUES (?, ?, ?)"
    " ON CONFLICT (panel, name) DO UPDATE SET platform = excluded.platform RETURNING id"
)
_UPSERT_SERVICE = (
    "INSERT INTO services (panel, service_id, category_id, name, type, sellable, category, rate,"
    " currency, min_quantity, max_quantity, refill, cancel, dripfeed, description, active,"
    " synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
    " ON CONFLICT (panel, service_id) DO UPDATE SET category_id = excluded.category_id,"
    " name = excluded.name, type = excluded.type, sellable = excluded.sellable,"
    " category = excluded.category, rate = excluded.rate, currency = excluded.currency,"
    " min_quantity = excluded.min_quantity, max_quantity = excluded.max_quantity,"
    " refill = excluded.refill, cancel = excluded.cancel, dripfeed = excluded.dripfeed,"
    " description = excluded.description, active = 1, synced_at = excluded.synced_at"
)


async def replace_services(db: Database, panel: str, currency: str, services: Sequence[Service],
                           platforms: Mapping[str, str] | None = None) -> int:
    """Store ``panel``'s current list; services it no longer lists stop being sold.

    ``platforms`` maps a category name to its platform slug (default ``other``).
    Returns how many services were withdrawn.
    """
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    platforms = platforms or {}
    async with db.transaction() as conn:
        category_ids: dict[str, int] = {}
        for name in dict.fromkeys(s.category for s in services):
            row = await first(conn, _UPSERT_CATEGORY, (panel, name, platforms.get(name, "other")))
            assert row is not None
            category_ids[name] = int(row[0])
        # A generator, not a list: the rows are built as SQLite consumes them.
        rows = (
            (panel, s.id, category_ids[s.category], s.name, s.type, int(s.order_type is not None),
             s.category, str(s.rate), currency, s.min, s.max, int(s.refill), int(s.cancel),
             int(s.dripfeed), s.description, stamp)
            for s in services
        )
        await conn.executemany(_UPSERT_SERVICE, rows)
        cursor = await conn.execute(
            "UPDATE services SET active = 0 WHERE panel = ? AND active = 1 AND synced_at <> ?",
            (panel, stamp),
        )
        return cursor.rowcount


_COLUMNS = ("s.id, s.panel, s.category_id, c.platform, s.currency, s.active, s.service_id,"
            " s.name, s.type, s.category, s.rate, s.min_quantity, s.max_quantity, s.refill,"
            " s.cancel, s.dripfeed, s.description")
_FROM = " FROM services s JOIN categories c ON c.id = s.category_id"
_ON_SALE = " s.active = 1 AND s.sellable = 1"


def _stored(row: Sequence) -> StoredService:
    return StoredService(
        ref=int(row[0]), panel=row[1], category_id=int(row[2]), platform=row[3], currency=row[4],
        active=bool(row[5]),
        service=Service(id=row[6], name=row[7], type=row[8], category=row[9],
                        rate=Decimal(row[10]), min=int(row[11]), max=int(row[12]),
                        refill=bool(row[13]), cancel=bool(row[14]), dripfeed=bool(row[15]),
                        description=row[16]),
    )


async def get(db: Database, ref: int) -> StoredService | None:
    """A service by our id, on sale or not (old orders still show it)."""
    if not is_row_id(ref):
        return None
    row = await db.fetchone(f"SELECT {_COLUMNS}{_FROM} WHERE s.id = ?", (ref,))
    return _stored(row) if row else None


async def by_panel_id(db: Database, panel: str, service_id: str) -> StoredService | None:
    row = await db.fetchone(f"SELECT {_COLUMNS}{_FROM} WHERE s.panel = ? AND s.service_id = ?",
                            (panel, service_id))
    return _stored(row) if row else None


async def active_services(db: Database, panel: str) -> list[Service]:
    rows = await db.fetchall(
        f"SELECT {_COLUMNS}{_FROM} WHERE s.panel = ? AND s.active = 1 ORDER BY s.id", (panel,))
    return [_stored(row).service for row in rows]


async def on_sale(db: Database) -> list[StoredService]:
    """Every service on sale (active, of a known type), by id: what customers browse."""
    rows = await db.fetchall(f"SELECT {_COLUMNS}{_FROM} WHERE{_ON_SALE} ORDER BY s.id")
    return [_stored(r) for r in rows]


async def markups(db: Database) -> dict[tuple[str, str, str], Decimal]:
    """Every markup override, keyed by (scope, panel, target)."""
    rows = await db.fetchall("SELECT scope, panel, target, percent FROM markups")
    return {(r[0], r[1], r[2]): Decimal(r[3]) for r in rows}


async def set_markup(db: Database, scope: str, panel: str, target: str, percent: Decimal) -> None:
    await db.write("INSERT INTO markups (scope, panel, target, percent) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (scope, panel, target) DO UPDATE SET percent = excluded.percent",
                   (scope, panel, target, str(percent)))
