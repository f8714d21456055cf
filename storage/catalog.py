"""The cached catalog: services of every panel, refreshed from the panels.

The storefront browses this cache and never calls a panel on a click.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiosqlite

from bot.panel.models import Service
from storage import catalog_changes
from storage.catalog_changes import Change
from storage.db import Database, first, is_row_id, run


@dataclass(frozen=True, slots=True)
class StoredService:
    ref: int  # our id, used in callback data
    panel: str
    category_id: int
    platform: str
    currency: str
    active: bool
    service: Service
    hidden: bool = False  # by an admin: the service itself
    category_hidden: bool = False  # by an admin: its whole category
    hidden_at_loss: bool = False  # by the shop: it would sell below its cost (routing/changes.py)

    @property
    def hidden_by_admin(self) -> bool:
        return self.hidden or self.category_hidden


@dataclass(frozen=True, slots=True)
class Replaced:
    """What one refresh changed in a panel's stored list."""

    added: int  # services never stored before (or withdrawn and listed again)
    changed: int  # name, category, type, rate, limits or options differ
    withdrawn: int  # no longer listed: stop being sold


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


_COMPARED = ("service_id, name, type, category, rate, min_quantity, max_quantity, refill, cancel,"
             " dripfeed, description, active, id")


def _fingerprint(s: Service) -> tuple:
    return (s.name, s.type, s.category, str(s.rate), s.min, s.max, int(s.refill), int(s.cancel),
            int(s.dripfeed), s.description)


def _cost_moved(old: Decimal, new: Decimal, alert_percent: Decimal) -> str | None:
    """``cost_up``/``cost_down`` when the rate moved by more than ``alert_percent``."""
    if new == old:
        return None
    if old <= 0:
        return "cost_up"
    if abs(new - old) * 100 <= old * alert_percent:
        return None
    return "cost_up" if new > old else "cost_down"


async def replace_services(db: Database, panel: str, currency: str, services: Sequence[Service],
                           platforms: Mapping[str, str] | None = None,
                           alert_percent: Decimal | None = None) -> Replaced:
    """Store ``panel``'s current list; services it no longer lists stop being sold.

    ``platforms`` maps a category name to its platform slug (default ``other``).
    Returns how many services were added, changed and withdrawn (what an admin's
    "Refresh now" reports).

    With ``alert_percent`` the changes the admins' digest tells are stored in the
    same transaction (storage/catalog_changes.py): services added, withdrawn, their
    rate moved by more than ``alert_percent`` %, links whose backup was withdrawn.
    A panel's first refresh (nothing stored before) is not a change: a new panel's
    10,000 services are not 10,000 news.
    """
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    platforms = platforms or {}
    async with db.transaction() as conn:
        stored_rows = await conn.execute_fetchall(
            f"SELECT {_COMPARED} FROM services WHERE panel = ?", (panel,))
        before = {
            row[0]: ((row[1], row[2], row[3], row[4], int(row[5]), int(row[6]), int(row[7]),
                      int(row[8]), int(row[9]), row[10]), bool(row[11]))
            for row in stored_rows
        }
        refs = {row[0]: int(row[12]) for row in stored_rows}
        added = changed = 0
        news: list[Change] = []
        new_ids: list[str] = []
        for s in services:
            known = before.get(s.id)
            if known is None or not known[1]:
                added += 1
                new_ids.append(s.id)
            elif known[0] != _fingerprint(s):
                changed += 1
                moved = (None if alert_percent is None
                         else _cost_moved(Decimal(known[0][3]), s.rate, alert_percent))
                if moved:
                    news.append(Change(moved, refs[s.id], known[0][3], str(s.rate)))
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
        withdrawn = await conn.execute_fetchall(
            "UPDATE services SET active = 0 WHERE panel = ? AND active = 1 AND synced_at <> ?"
            " RETURNING id, rate", (panel, stamp))
        if alert_percent is not None and before:
            await _record_changes(conn, panel, news, new_ids, withdrawn)
        return Replaced(added, changed, len(withdrawn))


async def _record_changes(conn: aiosqlite.Connection, panel: str, news: list[Change],
                          new_ids: list[str], withdrawn: Sequence[Sequence]) -> None:
    if new_ids:
        ids = {row[0]: int(row[1]) for row in await conn.execute_fetchall(
            "SELECT service_id, id FROM services WHERE panel = ?", (panel,))}
        news += [Change("added", ids[i], None, None) for i in new_ids]
    news += [Change("removed", int(row[0]), str(row[1]), None) for row in withdrawn]
    gone = await catalog_changes.services_losing_backup(conn, (int(row[0]) for row in withdrawn))
    news += [Change("backup_gone", service) for service, _backup in gone]
    await catalog_changes.record_in(conn, panel, news)


_COLUMNS = ("s.id, s.panel, s.category_id, c.platform, s.currency, s.active, s.service_id,"
            " s.name, s.type, s.category, s.rate, s.min_quantity, s.max_quantity, s.refill,"
            " s.cancel, s.dripfeed, s.description, s.hidden, c.hidden, s.hidden_at_loss")
_FROM = " FROM services s JOIN categories c ON c.id = s.category_id"
# Hidden by an admin (the service or its category), or by the shop because it would
# sell at a loss: not sold, not searchable.
_ON_SALE = (" s.active = 1 AND s.sellable = 1 AND s.hidden = 0 AND c.hidden = 0"
            " AND s.hidden_at_loss = 0")


def _stored(row: Sequence) -> StoredService:
    return StoredService(
        ref=int(row[0]), panel=row[1], category_id=int(row[2]), platform=row[3], currency=row[4],
        active=bool(row[5]),
        service=Service(id=row[6], name=row[7], type=row[8], category=row[9],
                        rate=Decimal(row[10]), min=int(row[11]), max=int(row[12]),
                        refill=bool(row[13]), cancel=bool(row[14]), dripfeed=bool(row[15]),
                        description=row[16]),
        hidden=bool(row[17]), category_hidden=bool(row[18]), hidden_at_loss=bool(row[19]),
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


async def listed_on(db: Database, panels: Sequence[str]) -> list[StoredService]:
    """Every service these panels list now, of a type the bot knows, hidden ones too
    (an admin may hide a copy and keep it as a backup): candidate backups."""
    if not panels:
        return []
    marks = ", ".join("?" for _ in panels)
    rows = await db.fetchall(f"SELECT {_COLUMNS}{_FROM} WHERE s.panel IN ({marks})"
                             " AND s.active = 1 AND s.sellable = 1 ORDER BY s.id", tuple(panels))
    return [_stored(r) for r in rows]


async def on_sale(db: Database) -> list[StoredService]:
    """Every service on sale (active, of a known type), by id: what customers browse."""
    rows = await db.fetchall(f"SELECT {_COLUMNS}{_FROM} WHERE{_ON_SALE} ORDER BY s.id")
    return [_stored(r) for r in rows]


async def sellable(db: Database) -> list[StoredService]:
    """Every active service of a known type, hidden ones too: what the loss check prices."""
    rows = await db.fetchall(
        f"SELECT {_COLUMNS}{_FROM} WHERE s.active = 1 AND s.sellable = 1 ORDER BY s.id")
    return [_stored(r) for r in rows]


async def set_hidden_at_loss(conn: aiosqlite.Connection, ref: int, hidden: bool,
                             old_rate: str | None, new_rate: str | None) -> bool:
    """Hide a service that would sell at a loss, or show it again, with its change row
    (``hidden_at_loss``/``shown_again``); whether it changed."""
    row = await first(conn, "UPDATE services SET hidden_at_loss = ? WHERE id = ?"
                            " AND hidden_at_loss <> ? RETURNING panel", (int(hidden), ref,
                                                                      int(hidden)))
    if row is None:
        return False
    await catalog_changes.record_in(conn, row[0], [Change(
        "hidden_at_loss" if hidden else "shown_again", ref, old_rate, new_rate)])
    return True


async def markups(db: Database) -> dict[tuple[str, str, str], Decimal]:
    """Every markup override, keyed by (scope, panel, target)."""
    rows = await db.fetchall("SELECT scope, panel, target, percent FROM markups")
    return {(r[0], r[1], r[2]): Decimal(r[3]) for r in rows}


async def set_markup(db: Database | aiosqlite.Connection, scope: str, panel: str, target: str,
                     percent: Decimal) -> None:
    await run(db, "INSERT INTO markups (scope, panel, target, percent) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (scope, panel, target) DO UPDATE SET percent = excluded.percent",
                   (scope, panel, target, str(percent)))


async def clear_markup(db: Database | aiosqlite.Connection, scope: str, panel: str,
                       target: str) -> None:
    """Drop an override: the category or service inherits again."""
    await run(db, "DELETE FROM markups WHERE scope = ? AND panel = ? AND target = ?",
              (scope, panel, target))


async def search_all(db: Database, text: str, limit: int) -> list[StoredService]:
    """Services (hidden and withdrawn too) by our id, panel id, or words of name or category.
    A leading ``#`` is dropped: cards show ids as ``#3`` and admins copy them so."""
    text = text.strip().removeprefix("#").strip()
    ref = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 0
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await db.fetchall(
        f"SELECT {_COLUMNS}{_FROM} WHERE s.id = ? OR s.service_id = ?"
        " OR s.name LIKE ? ESCAPE '\\' OR s.category LIKE ? ESCAPE '\\'"
        " ORDER BY (s.id = ? OR s.service_id = ?) DESC, s.active DESC, s.id LIMIT ?",
        (ref, text, pattern, pattern, ref, text, limit))
    return [_stored(r) for r in rows]


async def first_in_category(db: Database, category_id: int) -> StoredService | None:
    """A category's first service, on sale ones first (the example of a markup preview)."""
    row = await db.fetchone(f"SELECT {_COLUMNS}{_FROM} WHERE s.category_id = ?"
                            f" ORDER BY ({_ON_SALE}) DESC, s.id LIMIT 1", (category_id,))
    return _stored(row) if row else None


@dataclass(frozen=True, slots=True)
class StoredCategory:
    id: int
    panel: str
    name: str
    hidden: bool


async def category(db: Database | aiosqlite.Connection, category_id: int) -> StoredCategory | None:
    if not is_row_id(category_id):
        return None
    sql, params = "SELECT id, panel, name, hidden FROM categories WHERE id = ?", (category_id,)
    row = (await first(db, sql, params) if isinstance(db, aiosqlite.Connection)
           else await db.fetchone(sql, params))
    return StoredCategory(int(row[0]), row[1], row[2], bool(row[3])) if row else None


async def set_service_hidden(conn: aiosqlite.Connection, ref: int, hidden: bool) -> bool:
    """Hide or show a service; whether it changed."""
    cursor = await conn.execute("UPDATE services SET hidden = ? WHERE id = ? AND hidden <> ?",
                                (int(hidden), ref, int(hidden)))
    return cursor.rowcount > 0


async def set_category_hidden(conn: aiosqlite.Connection, category_id: int, hidden: bool) -> bool:
    cursor = await conn.execute("UPDATE categories SET hidden = ? WHERE id = ? AND hidden <> ?",
                                (int(hidden), category_id, int(hidden)))
    return cursor.rowcount > 0


async def setting(db: Database, key: str) -> str | None:
    """A shop setting an admin changed in the bot (shop_settings), or ``None``."""
    row = await db.fetchone("SELECT value FROM shop_settings WHERE key = ?", (key,))
    return str(row[0]) if row else None


async def set_setting(conn: Database | aiosqlite.Connection, key: str, value: str) -> None:
    await run(conn, "INSERT INTO shop_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO"
              " UPDATE SET value = excluded.value,"
              " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", (key, value))
