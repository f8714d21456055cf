"""Orders and refills. Writers take the caller's transaction connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiosqlite

from storage.db import NOW, Database, error_text, first, in_thread, is_row_id, run

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
    discount_minor: int = 0  # taken off the list price (price_minor is what was charged)
    discount_source: str | None = None  # tier | promo
    # Set when a backup panel holds the order (``panel`` is the holder): the panel
    # it was first sent to, and why it moved (bot/shop/routing/failover.py).
    first_panel: str | None = None
    failover_reason: str | None = None
    via_api: bool = False  # placed through the wholesale API (bot/shop/wholesale/)


_COLUMNS = ("id, token, user_id, panel, service_ref, service_id, service_name, order_type, fields,"
            " quantity, price_minor, currency, state, panel_order_id, panel_status, start_count,"
            " remains, error, refreshed_at, cancel_requested_at, created_at, updated_at,"
            " discount_minor, discount_source, first_panel, failover_reason,"
            " api_repeat_key IS NOT NULL")


def _order(row: Sequence) -> StoredOrder:
    return StoredOrder(
        id=int(row[0]), token=row[1], user_id=int(row[2]), panel=row[3], service_ref=int(row[4]),
        service_id=row[5], service_name=row[6], order_type=row[7], fields=json.loads(row[8]),
        quantity=row[9], price_minor=int(row[10]), currency=row[11], state=row[12],
        panel_order_id=row[13], panel_status=row[14], start_count=row[15], remains=row[16],
        error=row[17], refreshed_at=row[18], cancel_requested=row[19] is not None,
        created_at=row[20], updated_at=row[21], discount_minor=int(row[22]),
        discount_source=row[23], first_panel=row[24], failover_reason=row[25],
        via_api=bool(row[26]),
    )


async def insert(conn: aiosqlite.Connection, **order: Any) -> StoredOrder:
    """``insert_in`` inside the caller's aiosqlite transaction, in one hop."""
    return await in_thread(conn, insert_in, **order)


def insert_in(conn: sqlite3.Connection, *, token: str, user_id: int, panel: str,
              service_ref: int, service_id: str, service_name: str, order_type: str,
              fields: Mapping[str, str], quantity: int | None, price_minor: int,
              currency: str, panel_cost: Decimal, fx_rate: Decimal | None = None,
              cost_minor: int | None = None, discount_minor: int = 0,
              discount_source: str | None = None,
              api_repeat_key: str | None = None) -> StoredOrder:
    """Insert an order in state ``submitting``; a reused token raises IntegrityError.
    ``fx_rate`` and ``cost_minor`` (the expected panel cost in shop minor units) feed
    the dashboard; ``price_minor`` is what is charged, ``discount_minor`` what a
    discount took off the list price; ``api_repeat_key`` marks an order placed through
    the wholesale API (``api_repeat_in``). Runs in the database's thread
    (``Database.transact``)."""
    row = conn.execute(
        "INSERT INTO orders (token, user_id, panel, service_ref, service_id, service_name,"
        " order_type, fields, quantity, price_minor, currency, panel_cost, fx_rate, cost_minor,"
        " discount_minor, discount_source, api_repeat_key, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitting')"
        f" RETURNING {_COLUMNS}",
        (token, user_id, panel, service_ref, service_id, service_name, order_type,
         json.dumps(dict(fields), ensure_ascii=False), quantity, price_minor, currency,
         str(panel_cost), None if fx_rate is None else str(fx_rate), cost_minor,
         discount_minor, discount_source if discount_minor else None,
         api_repeat_key)).fetchone()
    return _order(row)


API_REPEAT_SECONDS = 60  # a wholesale API add repeated within this answers the first order


def api_repeat_in(conn: sqlite3.Connection, user_id: int, api_repeat_key: str) -> StoredOrder | None:
    """The customer's API order with ``api_repeat_key`` placed in the last
    ``API_REPEAT_SECONDS`` and not failed (a retry after a refusal places anew).
    Read in the placing transaction, so two repeats at once make one order."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM orders WHERE user_id = ? AND api_repeat_key = ?"
        " AND state <> 'failed' AND created_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)"
        " ORDER BY id DESC LIMIT 1",
        (user_id, api_repeat_key, f"-{API_REPEAT_SECONDS} seconds")).fetchone()
    return _order(row) if row else None


async def by_token(db: Database, token: str) -> StoredOrder | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM orders WHERE token = ?", (token,))
    return _order(row) if row else None


async def get(db: Database, order_id: int) -> StoredOrder | None:
    if not is_row_id(order_id):
        return None
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM orders WHERE id = ?", (order_id,))
    return _order(row) if row else None


async def for_user(db: Database, user_id: int, offset: int,
                   limit: int) -> tuple[list[StoredOrder], int]:
    """One page of a user's orders, newest first, and how many they have."""
    total = await db.fetchone("SELECT COUNT(*) FROM orders WHERE user_id = ?", (user_id,))
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        (user_id, limit, offset))
    return [_order(r) for r in rows], int(total[0]) if total else 0


async def set_outcome(target: Database | aiosqlite.Connection, order_id: int, *, state: str,
                      panel_order_id: str | None = None, error: str | None = None,
                      failure_reason: str | None = None) -> StoredOrder:
    """Record what ``add`` did to a ``submitting`` order. ``error`` is often the
    panel's own words: it is stored redacted (a panel may echo its key) and cut;
    ``failure_reason`` is the refusal's kind (a ``RejectReason`` value)."""
    if error is not None:
        error = error_text(error)
    rows = await run(
        target, f"UPDATE orders SET state = ?, panel_order_id = COALESCE(?, panel_order_id),"
        f" error = ?, failure_reason = ?, updated_at = {NOW} WHERE id = ? RETURNING {_COLUMNS}",
        (state, panel_order_id, error, failure_reason, order_id))
    return _order(rows[0])


async def switch_panel(db: Database, order_id: int, *, panel: str, service_id: str,
                       panel_cost: Decimal, fx_rate: Decimal, cost_minor: int,
                       reason: str) -> StoredOrder | None:
    """Move a ``submitting`` order to a backup panel before it is sent there: the
    holder's panel, service and cost, and (the first time) the panel it left and
    why, in one statement. ``None`` when the order is not ``submitting`` any more."""
    rows = await run(
        db, f"UPDATE orders SET first_panel = COALESCE(first_panel, panel),"
        f" failover_reason = COALESCE(failover_reason, ?), panel = ?, service_id = ?,"
        f" panel_cost = ?, fx_rate = ?, cost_minor = ?, updated_at = {NOW}"
        f" WHERE id = ? AND state = 'submitting' RETURNING {_COLUMNS}",
        (reason, panel, service_id, str(panel_cost), str(fx_rate), cost_minor, order_id))
    return _order(rows[0]) if rows else None


async def mark_refreshed(db: Database, order_id: int, at: float) -> None:
    await db.write("UPDATE orders SET refreshed_at = ? WHERE id = ?", (at, order_id))


async def mark_cancel_requested(db: Database, order_id: int) -> None:
    await db.write(
        f"UPDATE orders SET cancel_requested_at = {NOW}, updated_at = {NOW} WHERE id = ?",
        (order_id,))


async def add_refill(db: Database, order_id: int, panel_refill_id: str) -> int:
    """Record a refill the panel took; the shop's number for it (the wholesale API's
    refill id), the same when the panel answers an id it gave before."""
    rows = await db.write(
        "INSERT INTO refills (order_id, panel_refill_id) VALUES (?, ?)"
        " ON CONFLICT (order_id, panel_refill_id) DO UPDATE SET panel_refill_id ="
        " excluded.panel_refill_id RETURNING id", (order_id, panel_refill_id))
    return int(rows[0][0])


@dataclass(frozen=True, slots=True)
class ShopRefill:
    id: int  # the shop's number for it
    order_id: int
    user_id: int
    state: str  # pending | in_progress | completed | rejected | ...


async def refills_by_id(db: Database, refill_ids: Sequence[int]) -> dict[int, ShopRefill]:
    """Refills by the shop's numbers (ids that are none are left out)."""
    ids = [i for i in refill_ids if is_row_id(i)]
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = await db.fetchall(
        f"SELECT r.id, r.order_id, o.user_id, r.state FROM refills r"
        f" JOIN orders o ON o.id = r.order_id WHERE r.id IN ({marks})", ids)
    return {int(r[0]): ShopRefill(int(r[0]), int(r[1]), int(r[2]), r[3]) for r in rows}


async def refills_of(db: Database, order_id: int) -> list[tuple[str, str]]:
    """(panel refill id, state) of an order's refills, oldest first."""
    rows = await db.fetchall(
        "SELECT panel_refill_id, state FROM refills WHERE order_id = ? ORDER BY id", (order_id,))
    return [(r[0], r[1]) for r in rows]


# ------------------------------------------------------------ tracking

@dataclass(frozen=True, slots=True)
class TrackedOrder:
    """What the tracker compares a panel's answer with."""

    id: int
    panel_order_id: str
    state: str
    panel_status: str | None
    start_count: int | None
    remains: int | None
    missing_polls: int
    unusable_polls: int = 0


@dataclass(frozen=True, slots=True)
class StatusChange:
    order_id: int
    state: str
    panel_status: str
    start_count: int | None
    remains: int | None
    charge: Decimal | None
    cost_minor: int | None = None  # the charge in shop minor units (bot/shop/backoffice/stats.py)


async def tracked(db: Database, panel: str, *, after_id: int = 0,
                  limit: int = -1) -> list[TrackedOrder]:
    """The orders of ``panel`` the panel is working on, oldest first: those after
    ``after_id``, at most ``limit`` of them (-1: all)."""
    rows = await db.fetchall(
        "SELECT id, panel_order_id, state, panel_status, start_count, remains, missing_polls,"
        " unusable_polls FROM orders"
        " WHERE panel = ? AND state IN ('pending', 'in_progress')"
        " AND panel_order_id IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
        (panel, after_id, limit))
    return [TrackedOrder(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]))
            for r in rows]


async def get_many(db: Database, ids: Sequence[int]) -> dict[int, StoredOrder]:
    """Orders by id (ids that are none are left out); at most a few hundred ids."""
    wanted = [i for i in ids if is_row_id(i)]
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM orders WHERE id IN ({marks})", wanted)
    return {order.id: order for order in map(_order, rows)}


def get_many_in(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, StoredOrder]:
    """Orders by id, in the caller's transaction in the database's thread (at most a
    few hundred ids)."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT {_COLUMNS} FROM orders WHERE id IN ({marks})",
                        tuple(ids)).fetchall()
    return {order.id: order for order in map(_order, rows)}


def set_statuses_in(conn: sqlite3.Connection, changes: Sequence[StatusChange]) -> None:
    """In the caller's transaction, in the database's thread."""
    conn.executemany(
        f"UPDATE orders SET state = ?, panel_status = ?, start_count = COALESCE(?, start_count),"
        f" remains = COALESCE(?, remains), charge = COALESCE(?, charge), missing_polls = 0,"
        f" unusable_polls = 0, cost_minor = COALESCE(?, cost_minor), updated_at = {NOW}"
        " WHERE id = ?",
        [(c.state, c.panel_status, c.start_count, c.remains,
          None if c.charge is None else str(c.charge), c.cost_minor, c.order_id)
         for c in changes])


HistoryEntry = tuple[int, str, str | None, int | None, int | None, int]


async def add_history(conn: aiosqlite.Connection, entries: Sequence[HistoryEntry],
                      source: str) -> None:
    """(order id, state, panel status, start count, remains, refund) rows, in the
    caller's aiosqlite transaction (one hop)."""
    await in_thread(conn, add_history_in, entries, source)


def add_history_in(conn: sqlite3.Connection, entries: Sequence[HistoryEntry], source: str) -> None:
    """``add_history`` in the database's thread."""
    conn.executemany(
        "INSERT INTO order_history (order_id, state, panel_status, start_count, remains,"
        " refund_minor, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*entry, source) for entry in entries])


async def reset_missing(db: Database, ids: Sequence[int]) -> None:
    """The panel gave these orders a usable status again: start counting afresh."""
    if ids:
        marks = ",".join("?" * len(ids))
        await db.write(f"UPDATE orders SET missing_polls = 0, unusable_polls = 0"
                       f" WHERE id IN ({marks})", tuple(ids))


async def count_missing(db: Database, ids: Sequence[int], threshold: int) -> list[StoredOrder]:
    """Count one more "Incorrect order ID" poll for each order; returns those that
    reach ``threshold`` now (each is flagged once)."""
    if not ids:
        return []
    async with db.transaction() as conn:
        await conn.executemany(
            "UPDATE orders SET missing_polls = missing_polls + 1 WHERE id = ?",
            [(i,) for i in ids])
        marks = ",".join("?" * len(ids))
        rows = await conn.execute_fetchall(
            f"UPDATE orders SET flagged_at = {NOW} WHERE id IN ({marks})"
            f" AND flagged_at IS NULL AND missing_polls >= ? RETURNING {_COLUMNS}",
            (*ids, threshold))
        return [_order(r) for r in rows]


async def count_unusable(db: Database, answers: Mapping[int, str],
                         threshold: int) -> list[tuple[StoredOrder, str]]:
    """Count one more unusable answer for each order (id -> the answer, kept raw);
    returns those that reach ``threshold`` now, each with its answer (flagged once)."""
    if not answers:
        return []
    ids = list(answers)
    async with db.transaction() as conn:
        await conn.executemany(
            "UPDATE orders SET unusable_polls = unusable_polls + 1, unusable_answer = ?"
            " WHERE id = ?", [(raw, order_id) for order_id, raw in answers.items()])
        marks = ",".join("?" * len(ids))
        rows = await conn.execute_fetchall(
            f"UPDATE orders SET unusable_flagged_at = {NOW} WHERE id IN ({marks})"
            f" AND unusable_flagged_at IS NULL AND unusable_polls >= ? RETURNING {_COLUMNS}",
            (*ids, threshold))
        return [(order, answers[order.id]) for order in map(_order, rows)]


@dataclass(frozen=True, slots=True)
class OpenRefill:
    id: int
    order_id: int
    user_id: int
    panel_refill_id: str
    state: str
    quiet: bool = False  # an API order whose owner keeps its notices off: no chat message


async def open_refills(db: Database, panel: str) -> list[OpenRefill]:
    rows = await db.fetchall(
        "SELECT r.id, r.order_id, o.user_id, r.panel_refill_id, r.state,"
        " o.api_repeat_key IS NOT NULL AND COALESCE(a.notify, 0) = 0 FROM refills r"
        " JOIN orders o ON o.id = r.order_id LEFT JOIN api_access a ON a.user_id = o.user_id"
        " WHERE o.panel = ? AND r.state IN ('pending', 'in_progress') ORDER BY r.id", (panel,))
    return [OpenRefill(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], bool(r[5])) for r in rows]


async def set_refill_state(conn: aiosqlite.Connection, refill_id: int, state: str,
                           panel_status: str) -> bool:
    """Move a refill on; False when it had already reached ``state``."""
    rows = await conn.execute_fetchall(
        f"UPDATE refills SET state = ?, panel_status = ?, updated_at = {NOW}"
        " WHERE id = ? AND state <> ? RETURNING id", (state, panel_status, refill_id, state))
    return bool(list(rows))


# ------------------------------------------------------------ reconciliation

async def interrupted_to_unknown(db: Database) -> list[int]:
    """Orders left in ``submitting`` by a process that died before the panel answered:
    whether the panel has them is unknown, so they become ``unknown`` for an admin."""
    rows = await db.write(
        f"UPDATE orders SET state = 'unknown', error = 'the bot stopped before the panel"
        f" answered', updated_at = {NOW} WHERE state = 'submitting' RETURNING id")
    return [int(r[0]) for r in rows]


async def unresolved(db: Database, limit: int) -> tuple[list[StoredOrder], int]:
    total = await db.fetchone("SELECT COUNT(*) FROM orders WHERE state = 'unknown'")
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM orders WHERE state = 'unknown' ORDER BY id LIMIT ?", (limit,))
    return [_order(r) for r in rows], int(total[0]) if total else 0


async def attach_panel_id(conn: aiosqlite.Connection, order_id: int,
                          panel_order_id: str) -> StoredOrder | None:
    """Give an ``unknown`` order the panel's id; it is then tracked as ``pending``.
    ``None`` if the order is not ``unknown``; a panel id that another order has
    raises IntegrityError."""
    row = await first(
        conn, f"UPDATE orders SET state = 'pending', panel_order_id = ?, error = NULL,"
        f" updated_at = {NOW} WHERE id = ? AND state = 'unknown' RETURNING {_COLUMNS}",
        (panel_order_id, order_id))
    return _order(row) if row else None


async def fail_unknown(conn: aiosqlite.Connection, order_id: int) -> StoredOrder | None:
    """An ``unknown`` order the panel never took becomes ``failed``; ``None`` if the
    order is not ``unknown``."""
    row = await first(
        conn, f"UPDATE orders SET state = 'failed', error = 'not on the panel (checked by an"
        f" admin)', updated_at = {NOW} WHERE id = ? AND state = 'unknown' RETURNING {_COLUMNS}",
        (order_id,))
    return _order(row) if row else None



# ------------------------------------------------------------ the admins' views

@dataclass(frozen=True, slots=True)
class HistoryRow:
    state: str
    panel_status: str | None
    remains: int | None
    refund_minor: int
    source: str
    created_at: str


async def history_of(db: Database, order_id: int, limit: int = 20) -> list[HistoryRow]:
    """An order's status history, oldest first (its last ``limit`` changes)."""
    rows = await db.fetchall(
        "SELECT state, panel_status, remains, refund_minor, source, created_at FROM ("
        " SELECT * FROM order_history WHERE order_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
        (order_id, limit))
    return [HistoryRow(r[0], r[1], r[2], int(r[3]), r[4], r[5]) for r in rows]


async def panel_details(db: Database, order_id: int) -> tuple[str | None, str | None]:
    """(the panel's charge, the expected panel cost) of an order, Decimal text."""
    row = await db.fetchone("SELECT charge, panel_cost FROM orders WHERE id = ?", (order_id,))
    return (row[0], row[1]) if row else (None, None)


async def flagged(db: Database, limit: int) -> tuple[list[StoredOrder], int]:
    """Open orders the panel kept answering "Incorrect order ID" for, oldest first."""
    where = ("flagged_at IS NOT NULL AND state IN ('pending', 'in_progress')")
    total = await db.fetchone(f"SELECT COUNT(*) FROM orders WHERE {where}")
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM orders WHERE {where} ORDER BY id LIMIT ?",
                             (limit,))
    return [_order(r) for r in rows], int(total[0]) if total else 0


async def failed_for(db: Database, reason: str, limit: int) -> tuple[list[StoredOrder], int]:
    """Failed (and refunded) orders the panel refused for ``reason``, newest first."""
    total = await db.fetchone(
        "SELECT COUNT(*) FROM orders WHERE state = 'failed' AND failure_reason = ?", (reason,))
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM orders WHERE state = 'failed' AND failure_reason = ?"
        " ORDER BY id DESC LIMIT ?", (reason, limit))
    return [_order(r) for r in rows], int(total[0]) if total else 0
