"""Start-up and the first update read no whole table (issue 24): on a shop with a
million orders, what every start and every first update asks is answered from an
index. The statements are the ones the code really runs (SQLite's trace), each
checked with EXPLAIN QUERY PLAN."""

from __future__ import annotations

from pathlib import Path

from storage import orders as order_store
from storage import users
from storage.db import Database


async def plans_of(db: Database, call) -> dict[str, list[str]]:
    """Each statement ``call`` runs, with SQLite's plan for it."""
    conn = db._conn  # the test reads SQLite's own trace of the statements
    assert conn is not None
    statements: list[str] = []
    await conn.set_trace_callback(statements.append)
    try:
        await call()
    finally:
        await conn.set_trace_callback(None)
    plans = {}
    for statement in statements:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            rows = await db.fetchall("EXPLAIN QUERY PLAN " + statement)
            plans[statement] = [str(row[3]) for row in rows]
    return plans


async def test_the_start_up_report_and_the_access_check_scan_no_table(tmp_path: Path) -> None:
    db = await Database(tmp_path / "shop.sqlite3").open()
    try:
        plans = {
            **await plans_of(db, lambda: order_store.unresolved(db, 0)),
            **await plans_of(db, lambda: users.banned_ids(db)),
        }
    finally:
        await db.close()
    assert len(plans) >= 2, plans
    scans = {s: p for s, p in plans.items()
             if any(step.startswith("SCAN") and "INDEX" not in step for step in p)
             or any("orders_by_created" in step for step in p)}
    assert scans == {}


async def test_the_tracker_and_the_interrupted_orders_read_only_their_own_rows(
        tmp_path: Path) -> None:
    """The tracker's first read at start (the orders a panel is working on) must not
    walk every order the panel ever had through the (panel, panel_order_id) index:
    on 1M orders that was 250 ms in front of the first update; nor may the orders
    a stopped process left in 'submitting' be found by a scan (60-130 ms)."""
    db = await Database(tmp_path / "shop.sqlite3").open()
    try:
        tracked = await plans_of(db, lambda: order_store.tracked(db, "main"))
        interrupted = await plans_of(db, lambda: order_store.interrupted_to_unknown(db))
    finally:
        await db.close()
    assert list(tracked.values()) == [["SEARCH orders USING INDEX orders_tracked (panel=? AND id>?)"]]
    assert list(interrupted.values()) == [["SCAN orders USING INDEX orders_submitting"]]
