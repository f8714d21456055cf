"""SQL aggregates for the admin dashboard (bot/shop/backoffice/stats.py says what each figure means).

Every figure is a ``COUNT``/``SUM`` over integer columns in SQLite, never a loop
over rows in Python: the dashboard answers in milliseconds with 100,000 orders
(bench/dashboard.py). Periods are given as ``(label, start, end)`` ranges of UTC
ISO strings, compared as strings (stored times are fixed-width UTC ISO text), and
joined as a VALUES table, so one statement answers every period, or every day of
the chart, each range read from an index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database
from storage.orders import OPEN_STATES

Range = tuple[str, str, str]  # (label, start inclusive, end exclusive), UTC ISO


def _ranges_cte(ranges: Sequence[Range]) -> tuple[str, list[str]]:
    if not ranges:
        raise ValueError("at least one range")
    values = ", ".join("(?, ?, ?)" for _ in ranges)
    return (f"WITH ranges (label, start, finish) AS (VALUES {values})",
            [part for r in ranges for part in r])


@dataclass(frozen=True, slots=True)
class OrderSums:
    count: int
    price_minor: int
    cost_minor: int
    discount_minor: int = 0  # what discounts took off these orders' list prices


async def order_sums(db: Database, ranges: Sequence[Range]) -> dict[tuple[str, str], OrderSums]:
    """(label, state) -> orders created in the range: count, price, panel cost, discount."""
    cte, params = _ranges_cte(ranges)
    rows = await db.fetchall(
        f"{cte} SELECT r.label, o.state, COUNT(*), COALESCE(SUM(o.price_minor), 0),"
        " COALESCE(SUM(o.cost_minor), 0), COALESCE(SUM(o.discount_minor), 0) FROM ranges r"
        " JOIN orders o ON o.created_at >= r.start AND o.created_at < r.finish"
        " GROUP BY r.label, o.state", params)
    return {(r[0], r[1]): OrderSums(int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows}


async def ledger_sums(db: Database, ranges: Sequence[Range],
                      kinds: Sequence[str]) -> dict[tuple[str, str], int]:
    """(label, kind) -> the sum of ``amount_minor`` of those ledger rows in the range."""
    cte, params = _ranges_cte(ranges)
    marks = ",".join("?" * len(kinds))
    rows = await db.fetchall(
        f"{cte} SELECT r.label, l.kind, COALESCE(SUM(l.amount_minor), 0) FROM ranges r"
        f" JOIN ledger l ON l.kind IN ({marks}) AND l.created_at >= r.start"
        " AND l.created_at < r.finish GROUP BY r.label, l.kind", [*params, *kinds])
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def new_customers(db: Database, ranges: Sequence[Range]) -> dict[str, int]:
    """label -> customers registered in the range."""
    cte, params = _ranges_cte(ranges)
    rows = await db.fetchall(
        f"{cte} SELECT r.label, COUNT(u.id) FROM ranges r"
        " JOIN users u ON u.created_at >= r.start AND u.created_at < r.finish"
        " GROUP BY r.label", params)
    return {r[0]: int(r[1]) for r in rows}


async def paid_topups(db: Database, start: str, end: str) -> tuple[int, int]:
    """(count, sum of amount_minor) of Stars top-ups paid in [start, end)."""
    row = await db.fetchone(
        "SELECT COUNT(*), COALESCE(SUM(amount_minor), 0) FROM topups"
        " WHERE state = 'paid' AND paid_at >= ? AND paid_at < ?", (start, end))
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def open_problems(db: Database) -> int:
    """Orders an admin should look at: of unknown outcome, or open and flagged."""
    marks = ",".join("?" * len(OPEN_STATES))
    row = await db.fetchone(
        "SELECT COUNT(*) FROM orders WHERE state = 'unknown'"
        f" OR (flagged_at IS NOT NULL AND state IN ({marks}))", OPEN_STATES)
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class Customers:
    total: int
    active_day: int
    active_week: int


async def customers(db: Database, day_ago: str, week_ago: str) -> Customers:
    """All customers, and those seen since ``day_ago`` and since ``week_ago``."""
    total = await db.fetchone("SELECT COUNT(*) FROM users")
    day = await db.fetchone("SELECT COUNT(*) FROM users WHERE last_seen_at >= ?", (day_ago,))
    week = await db.fetchone("SELECT COUNT(*) FROM users WHERE last_seen_at >= ?", (week_ago,))
    return Customers(*(int(r[0]) if r else 0 for r in (total, day, week)))


# ------------------------------------------------------------ the panel cost column

@dataclass(frozen=True, slots=True)
class CostlessOrder:
    id: int
    panel: str
    panel_cost: str | None
    charge: str | None
    fx_rate: str | None


async def costless(db: Database, limit: int = 5000) -> list[CostlessOrder]:
    """Orders without ``cost_minor`` yet (placed before migration 0011)."""
    rows = await db.fetchall(
        "SELECT id, panel, panel_cost, charge, fx_rate FROM orders WHERE cost_minor IS NULL"
        " ORDER BY id LIMIT ?", (limit,))
    return [CostlessOrder(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


async def set_costs(db: Database, costs: Sequence[tuple[int, str, int]]) -> None:
    """(order id, fx rate text, cost_minor): only where no cost was set meanwhile."""
    async with db.transaction() as conn:
        await conn.executemany(
            "UPDATE orders SET fx_rate = COALESCE(fx_rate, ?), cost_minor = ?"
            " WHERE id = ? AND cost_minor IS NULL",
            [(fx, cost, order_id) for order_id, fx, cost in costs])


def fx_rates_in(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str | None]:
    """Each order's fx rate at placement, in the caller's transaction in the database's
    thread."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT id, fx_rate FROM orders WHERE id IN ({marks})",
                        tuple(ids)).fetchall()
    return {int(r[0]): r[1] for r in rows}
