"""The daily retention job (bot/shop/backoffice/retention.py) on a real SQLite file, with an injected
clock: what is pruned, what is never pruned, batches, and a failing run."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.shop.backoffice.retention import DAY, Retention
from bot.shop.messaging.broadcasts import Broadcasts, Draft
from bot.shop.money.topups import STARS, Refusal, StarsTopups
from storage import inbox, outbox, users
from storage import topups as topup_store
from storage.broadcasts import finish
from storage.db import Database

pytestmark = pytest.mark.timeout(60)

CUSTOMER, ADMIN = 42, 1


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def __call__(self, text: str, *, details: str = "", key: str | None = None) -> None:
        self.sent.append((text, details))


async def no_refund_problem(user_id: int, charge_id: str) -> None:
    """Telegram's refundStarPayment, agreeing."""


def topups_at(db: Database, clock: Clock) -> StarsTopups:
    return StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                       maximum_minor=100_000, clock=clock, pending_max=100)


async def backdate(db: Database, row_ids: list[int], days: float) -> None:
    """Make outbox rows look written and closed ``days`` ago (test set-up only)."""
    await db.write_many(
        "UPDATE outbox SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?),"
        " sent_at = CASE WHEN sent_at IS NULL THEN NULL"
        "  ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) END WHERE id = ?",
        [(f"-{days} days", f"-{days} days", row_id) for row_id in row_ids])


async def queue_alerts(db: Database, chats: list[int]) -> list[int]:
    async with db.transaction() as conn:
        await outbox.queue(conn, chats, "alert", {"title": "x", "details": ""})
    rows = await db.fetchall("SELECT id FROM outbox WHERE chat_id IN (SELECT value FROM"
                             " json_each(?)) ORDER BY id", (str(chats),))
    return [int(r[0]) for r in rows]


async def test_old_expired_top_ups_and_closed_outbox_rows_go_money_and_recent_rows_stay(
        db: Database) -> None:
    now = time.time()
    for user_id in (CUSTOMER, ADMIN, *range(100, 104)):
        await users.upsert_user(db, user_id, first_name="C")
    # Top-ups: made 40 days ago (expired 39 days ago), 10 days ago, and now.
    long_ago, lately = Clock(now - 40 * DAY), Clock(now - 10 * DAY)
    old = await topups_at(db, long_ago).create(CUSTOMER, 500)
    old_paid = await topups_at(db, long_ago).create(CUSTOMER, 600)
    old_refunded = await topups_at(db, long_ago).create(CUSTOMER, 700)
    recent_expired = await topups_at(db, lately).create(CUSTOMER, 800)
    today = topups_at(db, Clock(now))
    waiting = await today.create(CUSTOMER, 900)
    await today.record_payment(CUSTOMER, old_paid.payload, old_paid.stars, STARS, "c-paid")
    await today.record_payment(CUSTOMER, old_refunded.payload, old_refunded.stars, STARS, "c-ref")
    await today.refund("c-ref", no_refund_problem)
    await today.record_payment(CUSTOMER, "forged", 5, STARS, "c-stray")
    # Outbox: alerts sent, failed, dropped and still pending 40 days ago; one sent today.
    old_sent, old_failed, old_dropped, old_pending, new_sent = await queue_alerts(
        db, [100, 101, 102, 103, ADMIN])
    for row_id, state in ((old_sent, "sent"), (new_sent, "sent"), (old_failed, "failed"),
                          (old_dropped, "dropped")):
        await db.write("UPDATE outbox SET state = ?, sent_at = CASE ? WHEN 'sent' THEN"
                       " created_at END WHERE id = ?", (state, state, row_id))
    await backdate(db, [old_sent, old_failed, old_dropped, old_pending], 40)
    # Broadcasts sent 40 days ago: one finished, one still running (its counts need its rows).
    draft = Draft("<b>Sale</b>", 4)
    done, _ = await Broadcasts(db).create(admin_id=ADMIN, token="t1", draft=draft,
                                          audience="all", exclude=[ADMIN],
                                          progress_chat_id=ADMIN, progress_message_id=5)
    running, _ = await Broadcasts(db).create(admin_id=ADMIN, token="t2", draft=draft,
                                             audience="all", exclude=[ADMIN],
                                             progress_chat_id=ADMIN, progress_message_id=6)
    await db.write("UPDATE outbox SET state = 'sent', sent_at = created_at"
                   " WHERE broadcast_id IN (?, ?)", (done.id, running.id))
    broadcast_rows = [int(r[0]) for r in await db.fetchall(
        "SELECT id FROM outbox WHERE broadcast_id IS NOT NULL")]
    await backdate(db, broadcast_rows, 40)
    assert await finish(db, done.id, ADMIN)  # its summary row is queued now: kept
    # Inbox: updates handled 40 days ago and today, and one never handled (kept for good).
    seqs = await inbox.store(db, [(n, "{}") for n in (1, 2, 3, 4)])
    await inbox.mark_handled(db, [s for s in seqs[:3] if s is not None])
    await db.write("UPDATE inbox SET received_at = '2000-01-01T00:00:00.000Z',"
                   " handled_at = CASE WHEN handled_at IS NOT NULL THEN"
                   " '2000-01-01T00:00:01.000Z' END WHERE update_id IN (1, 2, 4)")
    # Catalog changes: one recorded 40 days ago goes, today's stays.
    await db.write("INSERT INTO catalog_changes (panel, kind, created_at) VALUES"
                   " ('main', 'added', '2000-01-01T00:00:00.000Z'), ('main', 'removed', ?)",
                   (datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),))
    ledger_before = await db.fetchall("SELECT * FROM ledger ORDER BY id")

    pruned = await Retention(db, days=30).prune()

    assert pruned == {"expired top-ups": 1, "closed outbox rows": 3 + done.queued,
                      "handled inbox updates": 2, "catalog changes": 1}
    assert [r[0] for r in await db.fetchall("SELECT kind FROM catalog_changes")] == ["removed"]
    assert [r[0] for r in await db.fetchall("SELECT update_id FROM inbox ORDER BY seq")] == [3, 4]
    kept = {int(r[0]): r[1] for r in await db.fetchall("SELECT id, state FROM topups")}
    assert kept == {old_paid.id: "paid", old_refunded.id: "refunded",
                    recent_expired.id: "pending", waiting.id: "pending"}
    assert old.id not in kept
    # Expired within RETENTION_DAYS: still refused as expired, not as unknown.
    assert await today.check(CUSTOMER, recent_expired.payload, recent_expired.stars,
                             STARS) is Refusal.EXPIRED
    assert await db.fetchall("SELECT * FROM ledger ORDER BY id") == ledger_before
    assert (await db.fetchone("SELECT COUNT(*) FROM stray_payments"))[0] == 1
    left = {int(r[0]) for r in await db.fetchall("SELECT id FROM outbox")}
    assert {old_pending, new_sent} <= left and not {old_sent, old_failed, old_dropped} & left
    running_left = await db.fetchone("SELECT COUNT(*) FROM outbox WHERE broadcast_id = ?",
                                     (running.id,))
    assert running_left[0] == running.queued == 5
    assert (await db.fetchone("SELECT COUNT(*) FROM outbox WHERE broadcast_id = ?",
                              (done.id,)))[0] == 0
    assert await Retention(db, days=30).prune() == {"expired top-ups": 0,
                                                    "closed outbox rows": 0,
                                                    "handled inbox updates": 0,
                                                    "catalog changes": 0}


async def test_zero_days_keeps_everything(db: Database) -> None:
    await users.upsert_user(db, CUSTOMER, first_name="C")
    await topups_at(db, Clock(time.time() - 400 * DAY)).create(CUSTOMER, 500)
    retention = Retention(db, days=0, first_delay=0)
    assert await retention.prune() == {}
    await asyncio.wait_for(retention.run(), timeout=5)  # returns at once: nothing to do
    assert (await db.fetchone("SELECT COUNT(*) FROM topups"))[0] == 1


async def test_a_backlog_is_deleted_in_bounded_batches(db: Database) -> None:
    await users.upsert_user(db, CUSTOMER, first_name="C")
    await db.write(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
        " INSERT INTO topups (payload, user_id, amount_minor, currency, stars, expires_at)"
        " SELECT 'p' || i, ?, 100, 'USD', 50, ? FROM n", (CUSTOMER, time.time() - 60 * DAY))
    batches: list[int] = []

    async def counted(database: Database, before: float, limit: int) -> int:
        deleted = await topup_store.prune_expired(database, before, limit)
        batches.append(deleted)
        return deleted

    pruned = await Retention(db, days=30, kinds=[("expired top-ups", counted)]).prune()
    assert pruned == {"expired top-ups": 2500}
    assert batches == [1000, 1000, 500]
    assert (await db.fetchone("SELECT COUNT(*) FROM topups"))[0] == 0


async def test_a_failing_run_alerts_once_prunes_the_rest_and_tries_again_next_day(
        db: Database) -> None:
    await users.upsert_user(db, CUSTOMER, first_name="C")
    attempts: list[float] = []
    three_runs = asyncio.Event()

    async def broken_then_fine(database: Database, before: float, limit: int) -> int:
        attempts.append(before)
        if len(attempts) == 3:
            three_runs.set()
        if len(attempts) == 1:
            raise RuntimeError("database is locked")
        return 0

    pruned_outbox: list[int] = []

    async def outbox_rows(database: Database, before: float, limit: int) -> int:
        deleted = await outbox.prune_closed(database, before, limit)
        pruned_outbox.append(deleted)
        return deleted

    alerts = Alerts()
    retention = Retention(db, days=30, alert=alerts,
                          kinds=[("inbox", broken_then_fine), ("outbox", outbox_rows)],
                          first_delay=0, period=0.01)
    job = asyncio.create_task(retention.run())
    try:
        await asyncio.wait_for(three_runs.wait(), timeout=10)
    finally:
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
    assert len(alerts.sent) == 1  # the failing run, once; the next runs went well
    text, details = alerts.sent[0]
    assert "clean-up" in text and "try again tomorrow" in text
    assert "inbox: RuntimeError: database is locked" in details
    assert len(pruned_outbox) >= 2  # the other kind was pruned in the failing run too

