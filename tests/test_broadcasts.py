"""Broadcasts as a service (bot/shop/messaging/broadcasts.py), on a real SQLite file, without aiogram."""

from __future__ import annotations

import pytest

from bot.shop.messaging import broadcasts
from bot.shop.messaging.broadcasts import (
    Broadcast,
    Broadcasts,
    BroadcastWatcher,
    Counts,
    Draft,
    DraftProblem,
)
from storage import outbox, users
from storage.db import Database

pytestmark = pytest.mark.timeout(60)

ADMIN = 1


async def customers(db: Database, count: int, start: int = 100) -> list[int]:
    ids = list(range(start, start + count))
    for user_id in ids:
        await users.upsert_user(db, user_id, first_name="C")
    return ids


async def send(db: Database, confirm: str = "t1", audience: str = "all",
               exclude: tuple[int, ...] = (ADMIN,)) -> tuple[Broadcast, bool]:
    return await Broadcasts(db).create(
        admin_id=ADMIN, token=confirm, draft=Draft("<b>Sale</b>", 4), audience=audience,
        exclude=exclude, progress_chat_id=ADMIN, progress_message_id=5)


def test_drafts_over_telegram_limits_are_refused() -> None:
    assert broadcasts.check_draft(Draft("x" * 4096, 4096)) is None
    assert broadcasts.check_draft(Draft("x" * 4097, 4097)) is DraftProblem.TEXT_TOO_LONG
    assert broadcasts.check_draft(Draft("c", 1025, photo="F")) is DraftProblem.CAPTION_TOO_LONG
    assert broadcasts.check_draft(Draft("", 0, photo="F")) is None
    assert broadcasts.check_draft(Draft("  ", 2)) is DraftProblem.EMPTY


async def test_one_row_per_reachable_customer_and_the_blocked_counted(db: Database) -> None:
    ids = await customers(db, 10)
    await users.upsert_user(db, ADMIN, first_name="Boss")
    await db.write("UPDATE users SET blocked = 1 WHERE id IN (100, 101)")
    await db.write("UPDATE users SET banned_at = 'x' WHERE id = 102")
    broadcast, created = await send(db)
    again, created_again = await send(db)  # a second Confirm with the same token
    assert created and not created_again and again.id == broadcast.id
    rows = await db.fetchall("SELECT chat_id, kind, priority, payload FROM outbox"
                             " WHERE broadcast_id = ? ORDER BY chat_id", (broadcast.id,))
    assert [r[0] for r in rows] == ids[3:]  # not the admin, not the blocked or banned
    assert {(r[1], r[2], r[3]) for r in rows} == {("broadcast", 2, "{}")}  # no text copied
    assert (broadcast.queued, broadcast.skipped) == (7, 3)
    assert await Broadcasts(db).counts(broadcast) == Counts(queued=7, pending=7, blocked=3)
    audit = await db.fetchall("SELECT action, target_kind, target_id FROM audit_log")
    assert [tuple(r) for r in audit] == [("broadcast", "broadcast", str(broadcast.id))]


async def test_active_audience_is_the_last_30_days(db: Database) -> None:
    await customers(db, 4)
    await db.write("UPDATE users SET last_seen_at = '2000-01-01T00:00:00.000Z'"
                   " WHERE id IN (100, 101)")
    sizes = await Broadcasts(db).audience_sizes([ADMIN])
    assert sizes == {"all": (4, 0), "active": (2, 0)}
    broadcast, _ = await send(db, audience="active")
    assert broadcast.queued == 2


async def test_twenty_thousand_customers_are_queued_at_once(db: Database) -> None:
    await db.write("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                   " WHERE i < 20000) INSERT INTO users (id, first_name) SELECT 1000 + i, 'C'"
                   " FROM n")
    broadcast, _ = await send(db)
    assert broadcast.queued == 20_000


async def test_order_notices_go_before_broadcast_rows(db: Database) -> None:
    ids = await customers(db, 5)
    await send(db)
    async with db.transaction() as conn:
        await outbox.queue(conn, [ids[2]], "order", {"state": "completed"})
        await outbox.queue(conn, [ADMIN], "alert", {"text": "hi"})
    due = await outbox.due(db, now=1e12, limit=3)
    assert [row.kind for row in due] == ["order", "alert", "broadcast"]
    assert due[2].broadcast_id is not None
    # The customer with both: their order notice is their first row.
    theirs = [row.kind for row in await outbox.due(db, 1e12, 100) if row.chat_id == ids[2]]
    assert theirs == ["order", "broadcast"]


async def test_cancel_drops_what_is_pending_and_is_audited(db: Database) -> None:
    await customers(db, 5)
    broadcast, _ = await send(db)
    first_row = (await outbox.due(db, 1e12, 1))[0]
    await outbox.mark_sent(db, first_row)
    assert await Broadcasts(db).cancel(broadcast.id, ADMIN) == 4
    assert await Broadcasts(db).cancel(broadcast.id, ADMIN) is None  # once
    assert await Broadcasts(db).counts(broadcast) == Counts(queued=5, sent=1, canceled=4)
    actions = [r[0] for r in await db.fetchall("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["broadcast", "broadcast_cancel"]


async def test_the_watcher_shows_changes_and_finishes_once(db: Database) -> None:
    await customers(db, 2)
    broadcast, _ = await send(db)
    shown: list[tuple[Counts, bool]] = []
    woken: list[bool] = []

    async def show(b: Broadcast, counts: Counts, finished: bool) -> None:
        shown.append((counts, finished))

    watcher = BroadcastWatcher(db, show, lambda: woken.append(True))
    await watcher.step()
    await watcher.step()  # nothing changed: no second edit
    assert shown == [(Counts(queued=2, pending=2), False)]
    for row in await outbox.due(db, 1e12, 10):
        await outbox.mark_sent(db, row)
    await watcher.step()
    await watcher.step()
    assert shown[1:] == [(Counts(queued=2, sent=2), True)]
    summaries = await db.fetchall("SELECT chat_id, payload FROM outbox WHERE kind = 'alert'")
    assert [tuple(r) for r in summaries] == [(ADMIN, f'{{"broadcast_summary": {broadcast.id}}}')]
    assert woken == [True]
    done = await Broadcasts(db).get(broadcast.id)
    assert done is not None and done.state == "done" and done.finished


async def test_a_failing_edit_does_not_stop_the_watcher(db: Database) -> None:
    await customers(db, 1)
    broadcast, _ = await send(db)

    async def show(b: Broadcast, counts: Counts, finished: bool) -> None:
        raise RuntimeError("message to edit not found")

    watcher = BroadcastWatcher(db, show, lambda: None)
    await watcher.step()
    for row in await outbox.due(db, 1e12, 10):
        await outbox.mark_sent(db, row)
    await watcher.step()
    done = await Broadcasts(db).get(broadcast.id)
    assert done is not None and done.finished


async def test_the_rebuilt_outbox_keeps_every_index(db: Database) -> None:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'"
                             " AND tbl_name = 'outbox' AND sql IS NOT NULL")
    assert {r[0] for r in rows} == {
        "outbox_due", "outbox_one_per_order", "outbox_pending_by_chat", "outbox_by_fold_key",
        "outbox_one_per_broadcast", "outbox_by_broadcast"}
