"""The durable inbox (bot/app/inbox.py): no update Telegram delivered is lost at a stop.

The storage rules on a real SQLite file; the feed's replay with a real aiogram
dispatcher; and the bot as a real process, stopped by SIGTERM past its grace and
killed with -9 right after the webhook answered 200, while a customer's payment
waits behind their own Confirm on a hanging panel: after a restart the money is
there exactly once and the receipt arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import Message

from bot.app.inbox import MAX_ATTEMPTS, UpdateFeed, canonical
from bot.devtools.emulator import BotApiEmulator, RunningEmulator, ScriptedUser, start_emulator
from bot.devtools.sandbox.server import RunningSandbox
from storage import inbox as inbox_store
from storage import ledger, users
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import TOKEN, Shop
from tests.test_webhook import PUBLIC, bot_process, free_port

pytestmark = pytest.mark.timeout(180)


def message(update_id: int, chat: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "text": text,
        "chat": {"id": chat, "type": "private", "first_name": "C"},
        "from": {"id": chat, "is_bot": False, "first_name": "C"}}}


def as_row(update: dict[str, Any]) -> tuple[int, str]:
    return update["update_id"], canonical(update)


# ------------------------------------------------------------ storage

async def unhandled(db: Database) -> int:
    [(count,)] = await db.fetchall("SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL")
    return int(count)


async def test_a_repeat_delivery_is_stored_once_and_a_reused_number_is_new(db: Database) -> None:
    first = message(10, 1, "a")
    [s10, s11] = await inbox_store.store(db, [as_row(first), as_row(message(11, 1, "b"))])
    assert s10 is not None and s11 is not None
    [again, s12] = await inbox_store.store(db, [as_row(first), as_row(message(12, 2, "c"))])
    assert again is None and s12 is not None  # the same update again: not stored
    assert await unhandled(db) == 3
    # Telegram numbers updates afresh after a week of none (and the demo's stand-in
    # starts again): the same number with other content is a new update.
    await inbox_store.mark_handled(db, [s10])
    [fresh] = await inbox_store.store(db, [as_row(message(10, 3, "fresh"))])
    assert fresh is not None
    rows = await inbox_store.take_unhandled(db)
    assert [(r.update_id, json.loads(r.body)["message"]["text"]) for r in rows] == [
        (11, "b"), (12, "c"), (10, "fresh")]


async def test_unhandled_rows_come_back_in_arrival_order_counted_and_handled_ones_prune(
        db: Database) -> None:
    seqs = await inbox_store.store(db, [as_row(message(i, 1, str(i))) for i in (30, 5, 17)])
    await inbox_store.mark_handled(db, [seqs[1]])
    rows = await inbox_store.take_unhandled(db)
    assert [(r.update_id, r.attempts) for r in rows] == [(30, 1), (17, 1)]  # arrival, not id
    assert [r.attempts for r in await inbox_store.take_unhandled(db)] == [2, 2]
    far_ahead = 4_000_000_000.0  # unix time in 2096: everything handled is older
    assert await inbox_store.prune_handled(db, far_ahead, limit=10) == 1  # only the handled one
    assert await inbox_store.prune_handled(db, far_ahead, limit=10) == 0
    assert await unhandled(db) == 2


async def test_a_secret_pasted_into_a_chat_is_not_stored(db: Database) -> None:
    from bot.observability import redaction
    redaction.register("panel-key-0123456789")
    await inbox_store.store(db, [as_row(message(1, 1, "my key is panel-key-0123456789"))])
    [(body,)] = await db.fetchall("SELECT body FROM inbox")
    assert "panel-key-0123456789" not in body and "***" in body


# ------------------------------------------------------------ the feed's replay

@dataclass
class Recorder:
    """A real dispatcher whose one handler records what it handled, per chat."""

    seen: list[tuple[int, str]] = field(default_factory=list)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)

    def dispatcher(self) -> Dispatcher:
        router = Router()

        @router.message()
        async def record(event: Message) -> None:
            assert event.text is not None
            if event.text in self.hold:
                await self.hold[event.text].wait()
            self.seen.append((event.chat.id, event.text))
            if event.text in self.fail:
                raise RuntimeError("a handler bug")

        dispatcher = Dispatcher(events_isolation=SimpleEventIsolation())
        dispatcher.include_router(router)
        return dispatcher


async def handled(db: Database) -> set[int]:
    """The update ids of the handled rows."""
    return {int(r[0]) for r in await db.fetchall(
        "SELECT update_id FROM inbox WHERE handled_at IS NOT NULL")}


async def test_replay_goes_first_in_each_chat_and_marks_what_it_handled(db: Database) -> None:
    recorder = Recorder(hold={"1a": asyncio.Event()}, fail={"2b"})
    bot = Bot(TOKEN)
    feed = UpdateFeed(recorder.dispatcher(), bot, db)
    await inbox_store.store(db, [as_row(u) for u in (
        message(1, 1, "1a"), message(2, 2, "2a"), message(3, 1, "1b"), message(4, 2, "2b"))])
    assert await feed.replay() == 4
    # A new update of chat 1 arrives while its first replayed one is still running.
    newer = message(5, 1, "1c")
    await feed.take([(feed.parse(newer), newer)])
    recorder.hold["1a"].set()
    assert await feed.drain(10)
    await feed.close()
    assert [text for chat, text in recorder.seen if chat == 1] == ["1a", "1b", "1c"]
    assert [text for chat, text in recorder.seen if chat == 2] == ["2a", "2b"]
    assert await handled(db) == {1, 2, 3, 4, 5}  # a failing handler is handled too
    await bot.session.close()


async def test_a_cut_off_update_stays_for_the_next_start_and_is_given_up_after_a_few(
        db: Database) -> None:
    alerts: list[str] = []

    async def alert(text: str, **_: Any) -> None:
        alerts.append(text)

    recorder = Recorder(hold={"stuck": asyncio.Event()})
    bot = Bot(TOKEN)
    feed = UpdateFeed(recorder.dispatcher(), bot, db, alert=alert)
    checkout = {"update_id": 8, "pre_checkout_query": {
        "id": "q1", "currency": "XTR", "total_amount": 5, "invoice_payload": "p",
        "from": {"id": 1, "is_bot": False, "first_name": "C"}}}
    await inbox_store.store(db, [as_row(message(7, 1, "stuck")), as_row(checkout)])
    for start in range(1, MAX_ATTEMPTS + 1):
        assert await feed.replay() == 1, start  # the checkout is never replayed
        assert not await feed.drain(0.05)
        await feed.cancel_rest()  # the stop, past its grace
        await feed.close()
        assert await handled(db) == {8}
    assert await feed.replay() == 0  # tried at MAX_ATTEMPTS starts: given up
    assert await handled(db) == {7, 8} and recorder.seen == []
    assert len(alerts) == 1 and "Update 7" in alerts[0]
    await bot.session.close()


# ------------------------------------------------------------ a real process

STARS_ENV = {"STARS_PER_UNIT": "50", "TOPUP_MIN": "1", "TOPUP_MAX": "1000"}
SEEDED = 10_000


@dataclass
class ProcessShop:
    """The bot as a real process (python -m bot) on an emulator and sandbox here."""

    emulator: BotApiEmulator
    running: RunningEmulator
    sandbox: RunningSandbox
    tmp_path: Path
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.emulator.calls.clear()
        self.process = await bot_process(self.tmp_path, self.running.url, self.sandbox.url,
                                         **self.env)
        await self.emulator.wait_for(self._ready, timeout=60)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"the bot exited with {self.process.returncode}")
        return any(m.lower() in ("getupdates", "setwebhook") for m, _ in self.emulator.calls)

    async def stopped(self) -> tuple[int, str]:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), 60)
        stderr = (await self.process.stderr.read()).decode() if self.process.stderr else ""
        return code, stderr

    async def money(self) -> tuple[int, int, list[tuple]]:
        """The customer's balance, how many top-up credits the ledger has, the top-ups."""
        async with Database(self.tmp_path / "shop.sqlite3") as db:
            balance = await ledger.balance_of(db, 42)
            [(credits,)] = await db.fetchall(
                "SELECT COUNT(*) FROM ledger WHERE user_id = 42 AND kind = 'topup'")
            topups = [tuple(r) for r in await db.fetchall("SELECT state, amount_minor FROM topups")]
        return balance, int(credits), topups


@contextlib.asynccontextmanager
async def process_shop(make_sandbox: SandboxFactory, tmp_path: Path,
                       **env: str) -> AsyncIterator[ProcessShop]:
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    async with Database(tmp_path / "shop.sqlite3") as db:
        await users.upsert_user(db, 42, first_name="Alex")
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=42, amount_minor=SEEDED, kind="credit", key="seed")
    shop = ProcessShop(emulator, running, await make_sandbox(), tmp_path, {**STARS_ENV, **env})
    try:
        await shop.start()
        yield shop
    finally:
        if shop.process is not None and shop.process.returncode is None:
            shop.process.kill()
            await shop.process.wait()
        await running.stop()


async def invoice_then_confirmation(shop: ProcessShop) -> ScriptedUser:
    """The customer asks for a $5.00 top-up invoice, then fills an order to its Confirm."""
    from tests.test_storefront import _to_confirmation

    customer = shop.emulator.user(42, "Alex")
    await customer.send("/start")
    await customer.tap("Balance")
    await customer.tap("Top up")
    await customer.tap("$5.00 · 250 ⭐")
    assert customer.invoices()
    holder = Shop(shop.emulator, shop.sandbox, shop.tmp_path / "shop.sqlite3",
                  asyncio.create_task(asyncio.sleep(0)), {}, shop.running.url)
    await _to_confirmation(customer, holder, "https://instagram.com/p/inbox")
    return customer


async def confirm_on_a_hanging_panel_then_pay(shop: ProcessShop,
                                              customer: ScriptedUser) -> list[asyncio.Task]:
    """Confirm (the panel's add hangs), then pay the invoice: the payment's update
    reaches the bot while the Confirm holds the customer's chat."""
    shop.sandbox.panel.inject("hang", action="add", delay=60)
    confirm = customer.with_button("Confirm")
    data = confirm.button("Confirm")["callback_data"]  # type: ignore[index]
    tapping = asyncio.create_task(customer.tap_data(data, confirm, timeout=120))
    await shop.emulator.wait_for(lambda: shop.sandbox.panel.requests["add"] == 1, timeout=30)
    paying = asyncio.create_task(customer.pay(customer.invoices()[-1], timeout=120))
    await shop.emulator.wait_for(lambda: any(
        "successful_payment" in u.get("message", {}) for u in shop.emulator.pushed),
        timeout=30)
    return [tapping, paying]


async def restart_and_expect_the_receipt(shop: ProcessShop, customer: ScriptedUser) -> None:
    shop.sandbox.panel.clear_faults()
    await shop.start()
    await customer.expect("$5.00 added to your balance for 250 ⭐", timeout=30)
    balance, credits, topups = await shop.money()
    assert topups == [("paid", 500)] and credits == 1  # credited, once
    # The Confirm cut off at its panel holds its price ($1.56) as an order being checked.
    assert balance == SEEDED - 156 + 500
    async with Database(shop.tmp_path / "shop.sqlite3") as db:
        states = [r[0] for r in await db.fetchall("SELECT state FROM orders")]
    assert states == ["unknown"]


async def test_sigterm_while_a_payment_waits_behind_a_slow_confirm_loses_no_money(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    async with process_shop(make_sandbox, tmp_path, SHUTDOWN_GRACE="0.5") as shop:
        customer = await invoice_then_confirmation(shop)
        waiting = await confirm_on_a_hanging_panel_then_pay(shop, customer)
        # Acknowledged to Telegram: a later getUpdates has passed it.
        await shop.emulator.wait_for(lambda: not any(
            "successful_payment" in u.get("message", {}) for u in shop.emulator.pending),
            timeout=30)
        assert shop.process is not None
        shop.process.send_signal(signal.SIGTERM)
        code, stderr = await shop.stopped()
        assert code == 0 and "Traceback" not in stderr, stderr
        for task in waiting:
            task.cancel()
        balance, credits, _ = await shop.money()
        assert credits == 1 and balance == SEEDED - 156 + 500  # credited at arrival
        await restart_and_expect_the_receipt(shop, customer)


async def test_kill_9_right_after_the_webhook_answered_200_loses_no_money(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    port = free_port()
    async with process_shop(make_sandbox, tmp_path, WEBHOOK_URL=f"{PUBLIC}/telegram",
                            WEBHOOK_HOST="127.0.0.1", WEBHOOK_PORT=str(port)) as shop:
        shop.emulator.route_webhook(PUBLIC, f"http://127.0.0.1:{port}")
        customer = await invoice_then_confirmation(shop)
        killed = asyncio.Event()

        def kill_at_the_payments_200(update: dict[str, Any], status: int) -> None:
            if status == 200 and "successful_payment" in update.get("message", {}):
                assert shop.process is not None
                shop.process.kill()  # SIGKILL, before this loop runs anything else
                killed.set()

        shop.emulator.on_webhook_answer = kill_at_the_payments_200
        waiting = await confirm_on_a_hanging_panel_then_pay(shop, customer)
        await asyncio.wait_for(killed.wait(), 30)
        code, _ = await shop.stopped()
        assert code == -signal.SIGKILL
        shop.emulator.on_webhook_answer = None
        for task in waiting:
            task.cancel()
        await restart_and_expect_the_receipt(shop, customer)
