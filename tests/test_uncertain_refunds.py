"""A Stars refund Telegram did not answer, settled either way (by /refund_stars asked
again, or by the reconciliation), and a reconciliation that survives what it cannot
read: the unmodified bot, the Bot API emulator, a real SQLite file. Each test
failed on the code before uncertain refunds were a state of their own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.devtools.emulator import Affiliate
from bot.shop.money import reconcile
from bot.shop.money.reconcile import StarPage, StarTransaction
from bot.shop.money.topups import STARS, Refund, StarsRefundRefused, StarsTopups
from handlers.outbound.star_transactions import telegram_transactions
from storage import ledger, users
from storage import schema as storage_schema
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, TOKEN, Shop, running_shop
from tests.test_reconcile import Alerts, age
from tests.test_stars import STARS as STARS_SETTINGS
from tests.test_stars import bought_stars
from tests.test_storefront import CUSTOMER

pytestmark = pytest.mark.timeout(120)
LATER = 3_600.0  # seconds: well past the reconciliation's in-flight window


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **STARS_SETTINGS) as running:
        yield running


@contextlib.asynccontextmanager
async def telegram(shop: Shop) -> AsyncIterator[Bot]:
    """A Bot of the shop's own token, for the reconciliation run from the test."""
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(shop.emulator_url)))
    try:
        yield bot
    finally:
        await bot.session.close()


def later() -> Callable[[], float]:
    return lambda: time.time() + LATER


async def state(shop: Shop, charge: str) -> str:
    [(found,)] = await shop.query("SELECT state FROM topups WHERE charge_id = ?", (charge,))
    return str(found)


async def refund_entries(shop: Shop, charge: str) -> list[tuple[str, int]]:
    """The ledger's refund debits and their reversals for ``charge``, in order."""
    rows = await shop.query("SELECT idempotency_key, amount_minor FROM ledger"
                            " WHERE kind = 'topup_refund' AND idempotency_key LIKE ?"
                            " ORDER BY id", (f"stars-refund%:{charge}:%",))
    return [(str(key), int(amount)) for key, amount in rows]


async def customer_with_stars(shop: Shop, *labels: str) -> list[str]:
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    return [await bought_stars(customer, label) for label in labels]


# ------------------------------------------------------------ /refund_stars again

async def test_an_unanswered_refund_asked_again_is_settled_as_refunded_with_one_debit(
        shop: Shop) -> None:
    """Before: the second /refund_stars said "refunded before" without asking Telegram."""
    [charge] = await customer_with_stars(shop, "$5.00 · 250 ⭐")
    shop.emulator.drop_refund_calls(refunded=True)  # made, but the answer is lost
    await shop.admin.send(f"/refund_stars {charge}")
    assert "Telegram did not answer" in shop.admin.text
    assert "run /refund_stars again to ask Telegram once more" in shop.admin.text
    assert await state(shop, charge) == "refund_uncertain"
    assert await shop.balance(CUSTOMER) == (0, 0) and len(shop.emulator.refunds) == 1

    await shop.admin.send(f"/refund_stars {charge}")  # Telegram: CHARGE_ALREADY_REFUNDED
    assert "Telegram has refunded the 250 ⭐ to user 42" in shop.admin.text
    assert await state(shop, charge) == "refunded"
    assert await shop.balance(CUSTOMER) == (0, 0)  # taken once
    assert await refund_entries(shop, charge) == [(f"stars-refund:{charge}:0", -500)]
    assert len(shop.emulator.refunds) == 1
    await shop.admin.send(f"/refund_stars {charge}")
    assert "refunded before" in shop.admin.text and len(shop.emulator.refunds) == 1


async def test_an_unanswered_refund_telegram_did_not_make_gives_the_balance_back_once(
        shop: Shop) -> None:
    [charge] = await customer_with_stars(shop, "$5.00 · 250 ⭐")
    shop.emulator.drop_refund_calls(refunded=False)  # the request never got there
    await shop.admin.send(f"/refund_stars {charge}")
    assert "Telegram did not answer" in shop.admin.text
    assert await shop.balance(CUSTOMER) == (0, 0) and shop.emulator.refunds == []

    shop.emulator.inject("refundStarPayment", 400)  # asked again: Telegram refuses
    await shop.admin.send(f"/refund_stars {charge}")
    assert ("Telegram did not refund the 250 ⭐ (Bad Request: chat not found); the $5.00 is"
            " back on user 42's balance ($5.00)") in shop.admin.text
    assert await state(shop, charge) == "paid" and shop.emulator.refunds == []
    assert await shop.balance(CUSTOMER) == (500, 500)
    assert await refund_entries(shop, charge) == [(f"stars-refund:{charge}:0", -500),
                                                  (f"stars-refund-undone:{charge}:0", 500)]
    db = await shop.db()
    try:
        async with telegram(shop) as bot:  # the reconciliation has nothing left to settle
            report = await reconcile.reconcile(db, telegram_transactions(bot), Alerts(),
                                               now=later())
    finally:
        await db.close()
    assert report.settled == [] and report.differences == []
    assert await shop.balance(CUSTOMER) == (500, 500)


# ------------------------------------------------------------ the reconciliation

async def test_the_reconciliation_settles_uncertain_refunds_both_ways_once(shop: Shop) -> None:
    """Before: the books kept the debit and only a report said Telegram made no refund."""
    made, lost = await customer_with_stars(shop, "$5.00 · 250 ⭐", "$10.00 · 500 ⭐")
    shop.emulator.drop_refund_calls(refunded=True)
    await shop.admin.send(f"/refund_stars {made}")
    shop.emulator.drop_refund_calls(refunded=False)
    await shop.admin.send(f"/refund_stars {lost}")
    assert "Telegram did not answer" in shop.admin.text
    assert await shop.balance(CUSTOMER) == (0, 0)
    db = await shop.db()
    try:
        async with telegram(shop) as bot:
            alerts, fetch = Alerts(), telegram_transactions(bot)
            now = await reconcile.reconcile(db, fetch, alerts)
            # Telegram lists the refund it made: settled at once. The other was asked
            # for a moment ago: Telegram may still be making it, so it waits.
            assert [(s.charge_id, s.refunded) for s in now.settled] == [(made, True)]
            assert await state(shop, made) == "refunded"
            assert await state(shop, lost) == "refund_uncertain"
            assert await shop.balance(CUSTOMER) == (0, 0)

            tomorrow = await reconcile.reconcile(db, fetch, alerts, now=later())
            assert [(s.charge_id, s.refunded) for s in tomorrow.settled] == [(lost, False)]
            assert await state(shop, lost) == "paid"
            assert await shop.balance(CUSTOMER) == (1_000, 1_000)  # the $10.00 is back
            assert any(lost in text and "gave back" in text for text in alerts.texts)
            assert any(made in text and "refunded" in text for text in alerts.texts)
            told = len(alerts.texts)

            again = await reconcile.reconcile(db, fetch, alerts, now=later())
            assert again.settled == [] and again.differences == []
            assert len(alerts.texts) == told
        assert await shop.balance(CUSTOMER) == (1_000, 1_000)
        assert await refund_entries(shop, made) == [(f"stars-refund:{made}:0", -500)]
        assert await refund_entries(shop, lost) == [(f"stars-refund:{lost}:0", -1_000),
                                                    (f"stars-refund-undone:{lost}:0", 1_000)]
        audit = await db.fetchall("SELECT target_id, before, after FROM audit_log"
                                  " WHERE action = 'refund_stars' ORDER BY id")
        assert [tuple(row) for row in audit][-2:] == [(made, "refund_uncertain", "refunded"),
                                                      (lost, "refund_uncertain", "paid")]
    finally:
        await db.close()


async def test_an_unreadable_transaction_is_skipped_and_counted_and_the_rest_reconciled(
        shop: Shop) -> None:
    """Before: aiogram's validation failed the whole page and the run stopped."""
    [kept] = await customer_with_stars(shop, "$5.00 · 250 ⭐")
    unseen = shop.emulator.complete_payment(shop.user(CUSTOMER).sender, 100, "never-delivered")
    age(shop, unseen)
    for _ in range(100):  # a whole page of them: the payments are on the next one
        shop.emulator.add_unreadable_transaction()
    db = await shop.db()
    try:
        async with telegram(shop) as bot:
            alerts = Alerts()
            report = await reconcile.reconcile(db, telegram_transactions(bot), alerts)
    finally:
        await db.close()
    assert report.unreadable == 100
    assert [(d.kind, d.charge_id) for d in report.differences] == [("uncredited", unseen)]
    assert kept not in " ".join(alerts.texts)  # found on the second page: no false alarm
    assert any("100 of Telegram's Star transactions could not be read" in text
               for text in alerts.texts)


async def test_the_command_counts_unreadable_transactions_and_goes_on(
        shop: Shop, tmp_path: Path) -> None:
    """Before: ``stars reconcile`` exited 3, "could not reconcile"."""
    [charge] = await customer_with_stars(shop, "$5.00 · 250 ⭐")
    shop.emulator.add_unreadable_transaction()
    shop.emulator.drop_refund_calls(refunded=True)
    await shop.admin.send(f"/refund_stars {charge}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANEL", "BOT_"))}
    env.update(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=shop.emulator_url,
               DATABASE_PATH=str(shop.database_path), ADMIN_IDS=str(ADMIN_ID),
               LOG_LEVEL="ERROR")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "stars", "reconcile", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1, err.decode()
    printed = out.decode()
    assert "1 transaction(s) Telegram listed could not be read" in printed
    assert f"settled\t{charge}\trefunded" in printed
    assert await state(shop, charge) == "refunded"
    assert TOKEN not in printed + err.decode()


async def test_affiliate_shares_neither_break_the_reconciliation_nor_mislead_it(
        shop: Shop) -> None:
    """Before: a payment through an affiliate program lists the bot's share (212.5 of
    250 Stars): reported as "Telegram took 212 Stars; the top-up was for 250"."""
    partner = {"id": 555_000, "is_bot": True, "first_name": "Partner", "username": "partner_bot"}
    shop.emulator.affiliate = Affiliate(partner, commission_per_mille=150)
    kept, refunded = await customer_with_stars(shop, "$5.00 · 250 ⭐", "$10.00 · 500 ⭐")
    await shop.admin.send(f"/refund_stars {refunded}")
    assert "Refunded 500 ⭐ to user 42" in shop.admin.text
    [refund] = shop.emulator.refunds
    assert refund["receiver"]["affiliate"]["amount"] < 0  # the partner gives its share back
    commission = shop.emulator.earn_affiliate_commission(partner, 40)  # the bot's own
    age(shop, commission)
    db = await shop.db()
    try:
        async with telegram(shop) as bot:
            alerts = Alerts()
            report = await reconcile.reconcile(db, telegram_transactions(bot), alerts,
                                               now=later())
    finally:
        await db.close()
    assert report.differences == [] and report.settled == [] and report.unreadable == 0
    assert alerts.texts == []
    assert await state(shop, kept) == "paid" and await state(shop, refunded) == "refunded"
    assert await shop.balance(CUSTOMER) == (500, 500)


# ------------------------------------------------------------ as services

@pytest.fixture
async def topups(db: Database) -> StarsTopups:
    await users.upsert_user(db, CUSTOMER, first_name="Alex")
    return StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                       maximum_minor=100_000)


async def no_answer(user_id: int, charge: str) -> None:
    raise ConnectionError("timeout")


async def not_found(user_id: int, charge: str) -> None:
    raise StarsRefundRefused("Bad Request: CHARGE_NOT_FOUND")


async def test_asked_again_with_no_answer_it_stays_uncertain_then_telegram_refusing_gives_it_back(
        db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-u")
    first = await topups.refund("charge-u", no_answer)
    again = await topups.refund("charge-u", no_answer)
    assert first.outcome is again.outcome is Refund.UNCERTAIN and again.balance_minor == 0
    given = await topups.refund("charge-u", not_found)
    assert given.outcome is Refund.GIVEN_BACK and given.balance_minor == 500
    assert "CHARGE_NOT_FOUND" in given.telegram
    assert await ledger.balance_of(db, CUSTOMER) == 500 == await ledger.ledger_sum(db, CUSTOMER)

    async def empty(offset: int, limit: int) -> StarPage:
        return StarPage([], 0)

    report = await reconcile.reconcile(db, empty, Alerts(), now=later())
    assert report.settled == []  # nothing uncertain any more: given back once
    assert await ledger.balance_of(db, CUSTOMER) == 500


async def test_an_uncertain_refund_is_not_given_back_while_telegram_lists_what_cannot_be_read(
        db: Database, topups: StarsTopups) -> None:
    """The refund may be that very transaction: only /refund_stars, or a later run that
    reads it, can tell."""
    topup = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-x")
    await topups.refund("charge-x", no_answer)
    payment = StarTransaction("charge-x", 250, CUSTOMER, False, time.time() - LATER)

    async def listing(offset: int, limit: int) -> StarPage:
        return StarPage([payment], 2, unreadable_ids=("charge-x",))

    alerts = Alerts()
    report = await reconcile.reconcile(db, listing, alerts, now=later())
    assert report.settled == [] and report.unreadable == 1
    assert [d.kind for d in report.differences] == ["refund_uncertain"]
    assert await ledger.balance_of(db, CUSTOMER) == 0  # still taken: not settled on a guess


async def test_a_failed_daily_run_alerts_the_admins(db: Database) -> None:
    """Before: the exception was only logged."""
    told = asyncio.Event()
    texts: list[str] = []

    async def alert(text: str, *, details: str = "", key: str | None = None) -> None:
        texts.append(f"{text}\n{details}")
        told.set()

    async def unreachable(offset: int, limit: int) -> StarPage:
        raise ConnectionError("Telegram is down")

    daily = asyncio.create_task(reconcile.every_day(db, unreachable, alert, first_delay=0))
    try:
        await asyncio.wait_for(told.wait(), 10)
    finally:
        daily.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await daily
    assert "Stars reconciliation failed" in texts[0] and "Telegram is down" in texts[0]


async def test_the_migration_keeps_every_top_up_and_allows_the_new_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = storage_schema.migrations()
    monkeypatch.setattr(storage_schema, "migrations", lambda: [m for m in real if m[0] < 14])
    path = tmp_path / "shop.sqlite3"
    async with Database(path) as old:
        # Today's storage functions speak today's schema: the old one gets plain SQL.
        await old.write("INSERT INTO users (id, first_name) VALUES (?, 'Alex')", (CUSTOMER,))
        for n, state in enumerate(("pending", "paid", "refunded")):
            await old.write("INSERT INTO topups (payload, user_id, amount_minor, currency, stars,"
                            " state, charge_id, expires_at, paid_at) VALUES (?, ?, 500, 'USD',"
                            " 250, ?, ?, 0, ?)", (f"p{n}", CUSTOMER, state,
                                                  None if n == 0 else f"c{n}",
                                                  None if n == 0 else "2026-01-01"))
        with pytest.raises(sqlite3.IntegrityError):  # the old CHECK
            await old.write("UPDATE topups SET state = 'refund_uncertain' WHERE id = 2")
    monkeypatch.setattr(storage_schema, "migrations", lambda: real)
    async with Database(path) as db:
        rows = await db.fetchall("SELECT id, payload, state, charge_id, paid_at,"
                                 " refund_requested_at FROM topups ORDER BY id")
        assert [tuple(r) for r in rows] == [
            (1, "p0", "pending", None, None, None), (2, "p1", "paid", "c1", "2026-01-01", None),
            (3, "p2", "refunded", "c2", "2026-01-01", None)]
        await db.write("UPDATE topups SET state = 'refund_uncertain' WHERE id = 2")
        with pytest.raises(sqlite3.IntegrityError):
            await db.write("UPDATE topups SET state = 'lost' WHERE id = 2")
        topups = StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                             maximum_minor=100_000)
        assert (await topups.create(CUSTOMER, 500)).id == 4  # ids go on, never reused
        indexes = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'"
                                    " AND tbl_name = 'topups' AND name NOT LIKE 'sqlite_%'")
        assert {r[0] for r in indexes} == {"topups_by_user", "topups_paid",
                                           "topups_refund_uncertain"}
        integrity = await db.fetchone("PRAGMA integrity_check")
        assert integrity is not None and integrity[0] == "ok"
