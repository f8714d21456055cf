"""Orders and refills. Writers take the caller's transaction connection."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import aiosqlite

from storage.db import Database, first, is_row_id

OPEN_STATES = ("submitting", "pending", "in_progress", "unknown")


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    token: str
    user_id: int
    panel: str
    service_ref: int
    service_id: str
    service_name: str
    order_type: str
    fields: dict[str, str]
    quantity: int | None
    price_minor: int
    currency: str
    state: str
    panel_order_id: str | None
    panel_status: str | None
    start_count: int | None
    remains: int | None
    error: str | None
    refreshed_at: float | None
    cancel_requested: bool
    created_at: str
    updated_at: str


_COLUMNS = ("id, token, user_id, panel, service_ref, service_id, service_name, order_type, fields,"
            " quantity, price_minor, currency, state, panel_order_id, panel_status, start_count,"
            " remains, error, refreshed_at, cancel_requested_at, created_at, updated_at")
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _order(row: Sequence) -> StoredOrder:
    return StoredOrder(
        id=int(row[0]), token=row[1], user_id=int(row[2]), panel=row[3], service_ref=int(row[4]),
        service_id=row[5], service_name=row[6], order_type=row[7], fields=json.loads(row[8]),
        quantity=row[9], price_minor=int(row[10]), currency=row[11], state=row[12],
        panel_order_id=row[13], panel_status=row[14], start_count=row[15], remains=row[16],
        error=row[17], refreshed_at=row[18], cancel_requested=row[19] is not None,
        created_at=row[20], updated_at=row[21],
    )


async def insert(conn: aiosqlite.Connection, *, token: str, user_id: int, panel: str,
                 service_ref: int, service_id: str, service_name: str, order_type: str,
                 fields: Mapping[str, str], quantity: int | None, price_minor: int,
                 currency: str, panel_cost: Decimal) -> int:
    """Insert an order in state ``submitting``; a reused token raises IntegrityError."""
    row = await first(
        conn, "INSERT INTO orders (token, user_id, panel, service_ref, service_id, service_name,"
        " order_type, fields, quantity, price_minor, currency, panel_cost, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitting') RETURNING id",
        (token, user_id, panel, service_ref, service_id, service_name, order_type,
         json.dumps(dict(fields), ensure_ascii=False), quantity, price_minor, currency,
         str(panel_cost)))
    assert row is not None
    return int(row[0])


async def by_token(db: Database, token: str) -> StoredOrder | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM orders WHERE token = ?", (token,))
    return _order(row) if row else None


async def get(db: Database, order_id: int) -> StoredOrder | None:
    if not is_row_id(order_id):
        return None
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM orders WHERE id = ?", (order_id,))
    return _order(row) if row else None


async def get_in(conn: aiosqlite.Connection, order_id: int) -> StoredOrder | None:
    """Read an order inside a transaction (to decide on the state it is in now)."""
    row = await first(conn, f"SELECT {_COLUMNS} FROM orders WHERE id = ?", (order_id,))
    return _order(row) if row else None


async def for_user(db: Database, user_id: int, offset: int,
                   limit: int) -> tuple[list[StoredOrder], int]:
    """One page of a user's orders, newest first, and how many they have."""
    total = await db.fetchone("SELECT COUNT(*) FROM orders WHERE user_id = ?", (user_id,))
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        (user_id, limit, offset))
    return [_order(r) for r in rows], int(total[0]) if total else 0


async def set_outcome(conn: aiosqlite.Connection, order_id: int, *, state: str,
                      panel_order_id: str | None = None, error: str | None = None) -> None:
    """Record what ``add`` did to a ``submitting`` order."""
    await conn.execute(
        f"UPDATE orders SET state = ?, panel_order_id = COALESCE(?, panel_order_id),"
        f" error = ?, updated_at = {_NOW} WHERE id = ?",
        (state, panel_order_id, error, order_id))


async def set_status(conn: aiosqlite.Connection, order_id: int, *, state: str,
                     panel_status: str, start_count: int | None, remains: int | None,
                     charge: Decimal | None) -> None:
    await conn.execute(
        f"UPDATE orders SET state = ?, panel_status = ?, start_count = COALESCE(?, start_count),"
        f" remains = COALESCE(?, remains), charge = COALESCE(?, charge), updated_at = {_NOW}"
        " WHERE id = ?",
        (state, panel_status, start_count, remains, None if charge is None else str(charge),
         order_id))


async def mark_refreshed(db: Database, order_id: int, at: float) -> None:
    await db.write("UPDATE orders SET refreshed_at = ? WHERE id = ?", (at, order_id))


async def mark_cancel_requested(db: Database, order_id: int) -> None:
    await db.write(
        f"UPDATE orders SET cancel_requested_at = {_NOW}, updated_at = {_NOW} WHERE id = ?",
        (order_id,))


async def add_refill(db: Database, order_id: int, panel_refill_id: str) -> None:
    await db.write("INSERT INTO refills (order_id, panel_refill_id) VALUES (?, ?)"
                   " ON CONFLICT (order_id, panel_refill_id) DO NOTHING",
                   (order_id, panel_refill_id))


async def refills_of(db: Database, order_id: int) -> list[tuple[str, str]]:
    """(panel refill id, state) of an order's refills, oldest first."""
    rows = await db.fetchall(
        "SELECT panel_refill_id, state FROM refills WHERE order_id = ? ORDER BY id", (order_id,))
    return [(r[0], r[1]) for r in rows]
