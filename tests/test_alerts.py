"""Issue 9, items 14 and 15: an error flood neither starves customers nor floods
the admins, and an alert always fits one valid Telegram HTML message.

Through the real sender and delivery, a real SQLite file, and the Bot API
emulator enforcing Telegram's rules; the crash cases end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.devtools.emulator import MAX_TEXT, BotApiEmulator, SendLimits, start_emulator, visible_text
from bot.shop.catalog.pricing import Pricer
from bot.shop.messaging.alerts import MAX_ALERT, AdminAlerts, render
from bot.shop.messaging.broadcasts import Broadcasts
from bot.shop.messaging.notifier import Notifier
from bot.shop.money.accounts import Accounts
from bot.shop.orders.service import OrderService
from handlers.middlewares.i18n import build_i18n
from handlers.outbound.notices import TelegramDelivery
from storage import outbox, users
from storage.db import Database
from storage.outbox import OrderNotice, OutboxRow
from tests.conftest import SandboxFactory
from tests.e2e import TOKEN, Shop, running_shop

pytestmark = pytest.mark.timeout(120)

ADMINS = [900, 901]


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[BotApiEmulator, Bot]]:
    emulator = BotApiEmulator()
    emulator.limits = SendLimits(per_second=30, per_chat_per_second=1)
    running = await start_emulator(emulator)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(running.url)),
              default=DefaultBotProperties(parse_mode="HTML"))
    yield emulator, bot
    await bot.session.close()
    await running.stop()


def delivery(db: Database, bot: Bot) -> TelegramDelivery:
    return TelegramDelivery(bot, build_i18n(),
                            OrderService(db, {}, Pricer(db, "USD", Decimal(0), {})),
                            Accounts(db), Broadcasts(db))


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def alert_rows(db: Database) -> list[tuple]:
    rows = await db.fetchall("SELECT chat_id, json_extract(payload, '$.more'), next_attempt_at,"
                             " json_extract(payload, '$.title') FROM outbox"
                             " WHERE kind = 'alert' ORDER BY id")
    return [tuple(r) for r in rows]


# ---------------------------------------------------------------- 14 (a) folding


async def test_alerts_of_one_kind_fold_into_one_follow_up_per_window(db: Database) -> None:
    clock = Clock()
    alerts = AdminAlerts(db, ADMINS, window=300, clock=clock)
    # 50 of one kind at once, from as many coroutines, and one of another kind.
    await asyncio.gather(*(alerts.send(f"🐞 Error {n}", key="boom") for n in range(50)),
                         alerts.send("⚠️ Panel balance low", key="funds"))
    rows = await alert_rows(db)
    first = [r for r in rows if r[1] is None]
    follow_ups = [r for r in rows if r[1] is not None]
    assert sorted(r[3] for r in first) == sorted(["🐞 Error 0"] * 2 + ["⚠️ Panel balance low"] * 2)
    assert {(r[0], r[1], r[2]) for r in follow_ups} == {(a, 49, clock.now + 300) for a in ADMINS}
    assert len(follow_ups) == 2 and all(r[3] == "🐞 Error 49" for r in follow_ups)
    # Still flooding after the follow-up was due: the next window's follow-up.
    clock.now += 301
    await alerts.send("🐞 Error 50", key="boom")
    assert (await alert_rows(db))[-1][1:3] == (1, clock.now - 301 + 600)
    # Quiet for a whole window after the last one: at once again.
    clock.now += 900
    await alerts.send("🐞 Error 51", key="boom")
    assert (await alert_rows(db))[-1][1:3] == (None, clock.now)


async def test_a_first_alert_waiting_for_a_retry_loses_nothing(db: Database) -> None:
    """One admin's first alert is sent, the other's waits for a retry (Telegram
    trouble): more of the kind still reach both, counted, and the waiting one keeps
    its own text."""
    clock = Clock()
    alerts = AdminAlerts(db, ADMINS, window=300, clock=clock)
    await alerts.send("🐞 Error first", key="boom")
    sent, waiting = await outbox.due(db, clock.now, 10)
    await outbox.mark_sent(db, sent)
    await outbox.retry_later(db, waiting, clock.now + 60, "network")
    clock.now += 10
    await alerts.send("🐞 Error second", key="boom")
    await alerts.send("🐞 Error third", key="boom")
    rows = await alert_rows(db)
    assert (waiting.chat_id, None, clock.now - 10 + 60, "🐞 Error first") in rows  # untouched
    follow_ups = {(r[0], r[1], r[2], r[3]) for r in rows if r[1] is not None}
    assert follow_ups == {(admin, 2, clock.now - 10 + 300, "🐞 Error third") for admin in ADMINS}


async def test_a_burst_reaches_the_admin_as_one_alert_and_one_follow_up(db, telegram) -> None:
    emulator, bot = telegram
    admin = emulator.user(ADMINS[0])
    alerts = AdminAlerts(db, ADMINS[:1], window=1.0)
    notifier = Notifier(db, delivery(db, bot), rate=30)
    sender = asyncio.create_task(notifier.run())
    try:
        await asyncio.gather(*(alerts.send(f"🐞 Error {n}: RuntimeError", details="trace",
                                           key="RuntimeError at x.py:1") for n in range(30)))
        await emulator.wait_for(lambda: len(admin.bot_messages) >= 2, timeout=10)
        await asyncio.sleep(1.5)  # nothing else comes
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    texts = [m.text for m in admin.bot_messages]
    assert len(texts) == 2
    assert texts[0].startswith("🐞 Error 0: RuntimeError")
    assert texts[1].startswith("…and 29 more like this in the last 1 seconds. The latest:")
    assert "🐞 Error 29" in texts[1]


# ---------------------------------------------------------------- 14 (b, c) order of sending


async def _order(db: Database, order_id: int, user_id: int) -> None:
    await users.upsert_user(db, user_id, first_name="C")
    await db.write("INSERT OR IGNORE INTO categories (id, panel, name, platform)"
                   " VALUES (1, 'p', 'c', 'x')")
    await db.write("INSERT OR IGNORE INTO services (id, panel, service_id, category_id, name,"
                   " type, sellable, category, rate, currency, min_quantity, max_quantity,"
                   " synced_at) VALUES (1, 'p', '1', 1, 's', 'Default', 1, 'c', '1', 'USD', 1,"
                   " 10, 'now')")
    await db.write("INSERT INTO orders (id, token, user_id, panel, service_ref, service_id,"
                   " service_name, order_type, fields, quantity, price_minor, currency, state)"
                   " VALUES (?, ?, ?, 'p', 1, '1', 's', 'Default', '{}', 10, 100, 'USD',"
                   " 'completed')", (order_id, f"t{order_id}", user_id))


async def test_customer_notices_go_before_admin_alerts(db: Database) -> None:
    for n in range(40):
        async with db.transaction() as conn:
            await outbox.queue(conn, [1000 + n], "alert", {"text": f"alert {n}"})
    for n in range(5):
        await _order(db, n + 1, 10 + n)
    async with db.transaction() as conn:
        await outbox.queue_order_notices(conn, [OrderNotice(10 + n, n + 1, "completed")
                                                for n in range(5)])
    sent: list[str] = []

    async def deliver(row: OutboxRow) -> None:
        sent.append(row.kind)

    await Notifier(db, deliver, rate=1000, per_chat_interval=0).drain()
    assert sent[:5] == ["order"] * 5 and sent[5:] == ["alert"] * 40


async def test_one_chats_backlog_never_delays_another_chat(db: Database) -> None:
    """1,000 rows wait for one admin chat's per-chat turn; another chat's message,
    queued after them, is still sent at once."""
    async with db.transaction() as conn:
        for n in range(1000):
            await outbox.queue(conn, [1], "alert", {"text": f"backlog {n}"})
        await outbox.queue(conn, [2], "alert", {"text": "someone else"})
    sent: list[int] = []  # the chats, in the order their messages went
    other_sent = asyncio.Event()

    async def deliver(row: OutboxRow) -> None:
        sent.append(row.chat_id)
        if row.chat_id == 2:
            other_sent.set()

    notifier = Notifier(db, deliver, rate=25)
    sender = asyncio.create_task(notifier.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(other_sent.wait(), 5)
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    # In the first round of sends, not after chat 1's backlog (nor a second of it).
    assert 2 in sent and sent.index(2) <= 1, sent[:5]
    assert notifier.sent <= 6  # chat 1 still got no more than one a second


async def test_the_due_read_takes_a_few_rows_per_chat_by_priority(db: Database) -> None:
    async with db.transaction() as conn:
        for n in range(10):
            await outbox.queue(conn, [1], "alert", {"text": f"a{n}"})
            await outbox.queue(conn, [2], "alert", {"text": f"b{n}"})
        await outbox.queue(conn, [3], "alert", {"text": "c0"})
        await outbox.queue(conn, [4], "refill", {"state": "completed"}, order_id=None)
    rows = await outbox.due(db, time.time(), 100, per_chat=2)
    assert [(r.chat_id, r.payload.get("text")) for r in rows] == [
        (4, None), (1, "a0"), (2, "b0"), (3, "c0"), (1, "a1"), (2, "b1")]
    skipped = await outbox.due(db, time.time(), 100, per_chat=1, skip_chats=[1, 4])
    assert [r.chat_id for r in skipped] == [2, 3]


# ---------------------------------------------------------------- 15 cut before HTML


async def test_a_huge_alert_is_cut_on_its_visible_text_and_stays_valid_html(db, telegram) -> None:
    emulator, bot = telegram
    admin = emulator.user(ADMINS[0])
    details = "Traceback <module> & 'quotes' 🐞\n" * 400 + "ValueError: the <end> & the last line"
    alerts = AdminAlerts(db, ADMINS[:1])
    await alerts.send("🐞 Error ABC: ValueError: <b>not bold</b> & " + "x" * 2000,
                      details=details)
    await Notifier(db, delivery(db, bot), rate=30).drain()
    [message] = admin.bot_messages
    assert message.raw_text.endswith("</pre>")
    assert len(message.text.encode("utf-16-le")) // 2 <= MAX_ALERT < MAX_TEXT
    assert message.text.startswith("🐞 Error ABC: ValueError: <b>not bold</b> & x")  # escaped
    assert message.text.endswith("ValueError: the <end> & the last line")  # the tail is kept


def test_render_escapes_every_part_and_never_cuts_markup() -> None:
    for size in (0, 10, 3000, 3999, 4000, 5000, 20000):
        text = render({"title": "t <&> " * (size // 6), "details": "<&>" * size, "more": 3,
                       "window": 300})
        shown = visible_text(text, "HTML")  # raises on invalid HTML
        assert len(shown.encode("utf-16-le")) // 2 <= MAX_ALERT
        assert shown.startswith("…and 3 more like this in the last 5 minutes.")


# ---------------------------------------------------------------- end to end


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as running:
        await running.admin.send("/start")
        yield running


def break_help(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    import handlers.customer.menu

    def broken(_settings: object) -> str:
        raise RuntimeError(message)

    monkeypatch.setattr(handlers.customer.menu, "help_text", broken)


async def test_a_crash_answered_too_late_gives_one_apology_and_one_alert_about_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The callback answer after a failed handler is past Telegram's deadline: the
    answer's own "query is too old" must not replace the crash."""
    break_help(monkeypatch, "the help page broke")
    customer = shop.user(42)
    await customer.send("/start")
    shop.emulator.query_timeout = 0.0  # every answer is late (a handler slower than ~15 s)
    with contextlib.suppress(TimeoutError):  # the late answer never lands
        await customer.tap("Help", timeout=2)
    await customer.expect("something went wrong")
    alert = await shop.admin.expect("🐞", timeout=15)
    await shop.emulator.settle(quiet=0.5)
    assert len(customer.saying("something went wrong")) == 1
    assert len(shop.admin.saying("🐞")) == 1
    assert "RuntimeError: the help page broke" in alert.text
    assert "query is too old" not in alert.text


async def test_a_slow_handler_that_succeeds_gets_no_apology(shop: Shop) -> None:
    customer = shop.user(42)
    await customer.send("/start")
    shop.emulator.query_timeout = 0.0
    with contextlib.suppress(TimeoutError):
        await customer.tap("Help", timeout=2)
    await shop.emulator.settle(quiet=1.0)
    assert not customer.saying("something went wrong")
    assert not shop.admin.saying("🐞")


async def test_an_error_flood_gives_the_admin_one_alert(shop: Shop,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    break_help(monkeypatch, "the help page broke")
    customer = shop.user(42)
    for _ in range(20):
        customer.emulator.push({"message": {
            "message_id": shop.emulator.new_message_id(), "date": int(time.time()),
            "chat": {"id": 42, "type": "private", "first_name": "Alex"},
            "from": customer.chat.user, "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}})
    await shop.emulator.wait_for(
        lambda: len(customer.saying("something went wrong")) == 20, timeout=30)
    await shop.admin.expect("🐞", timeout=15)
    await asyncio.sleep(3)  # unfolded, three more would arrive meanwhile (one a second)
    assert len(shop.admin.saying("🐞")) == 1
    [(more,)] = await shop.query("SELECT json_extract(payload, '$.more') FROM outbox"
                                 " WHERE kind = 'alert' AND state = 'pending'")
    assert more == 19  # the rest wait, folded, for the window's end


async def test_a_traceback_of_panel_text_reaches_the_admin_whole_and_escaped(
    shop: Shop, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the traceback was escaped into <pre>, then the alert cut at 3,800
    characters, cutting </pre> off: Telegram refused it and the admin got nothing."""
    break_help(monkeypatch, "panel said: " + "<error code='1'> & " * 300)
    customer = shop.user(42)
    await customer.send("/start")
    await customer.tap("Help")
    alert = await shop.admin.expect("🐞", timeout=15)
    assert alert.raw_text.endswith("</pre>")
    assert "<error code='1'> & " in alert.text


# ---------------------------------------------------------------- one recipient never stops the others

TOO_BIG = 99999999999999999999  # no SQLite integer: its row cannot be written


async def test_an_admin_whose_row_cannot_be_written_does_not_stop_the_others(
        db: Database) -> None:
    clock = Clock()
    alerts = AdminAlerts(db, [9009, TOO_BIG, 9010], window=60, clock=clock)
    assert await alerts.send("panel down", key="down") is True
    assert [(r[0], r[1]) for r in await alert_rows(db)] == [(9009, None), (9010, None)]
    clock.now += 1
    assert await alerts.send("panel still down", key="down") is True  # folded, for both
    assert [(r[0], r[1]) for r in await alert_rows(db)] == [
        (9009, None), (9010, None), (9009, 1), (9010, 1)]
    assert await AdminAlerts(db, [TOO_BIG]).send("nobody") is False
    assert await AdminAlerts(db, []).send("nobody") is False


async def test_each_recipient_is_queued_on_its_own_inside_the_callers_transaction(
        db: Database) -> None:
    """As the panel watch and the daily summary queue: with the mark they record."""
    await users.upsert_user(db, 5, first_name="x")
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET first_name = 'marked' WHERE id = 5")
        queued = await outbox.queue(conn, [1, TOO_BIG, 2, -(2**70)], "alert", {"title": "t"})
    assert queued == [1, 2]
    assert [r[0] for r in await alert_rows(db)] == [1, 2]
    assert [tuple(r) for r in await db.fetchall("SELECT first_name FROM users")] == [("marked",)]


async def test_paysupport_without_an_admin_to_tell_says_so(make_sandbox: SandboxFactory,
                                                           tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, admin_ids="", support_contact="@shop_help") as shop:
        customer = shop.user(42)
        await customer.send("/paysupport")
        await customer.send("Where is my refund?")
        assert "could not be passed on" in customer.text and "@shop_help" in customer.text
        assert "admins have your message" not in customer.text
