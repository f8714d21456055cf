"""Webhook mode through the emulator (it delivers updates by POST with the secret
header, as Telegram does), /healthz, and the graceful stop of a real process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.app import health
from bot.app.serving import SECRET_HEADER
from bot.devtools.emulator import BotApiEmulator, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import TOKEN, Shop, restart, running_shop

pytestmark = pytest.mark.timeout(120)
PUBLIC = "https://shop.test"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_settings(port: int, **extra: object) -> dict[str, object]:
    return {"webhook_url": f"{PUBLIC}/telegram", "webhook_host": "127.0.0.1",
            "webhook_port": port, **extra}


async def post(url: str, secret: str | None, body: object) -> int:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    async with aiohttp.ClientSession() as session, session.post(url, json=body,
                                                                headers=headers) as answer:
        return answer.status


async def test_updates_come_by_webhook_and_the_secret_is_checked(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox, port = await make_sandbox(), free_port()
    local = f"http://127.0.0.1:{port}"
    async with running_shop(sandbox, tmp_path, **webhook_settings(port)) as shop:
        shop.emulator.route_webhook(PUBLIC, local)
        hook = shop.emulator.webhook
        assert hook is not None and hook["url"] == f"{PUBLIC}/telegram"
        secret = hook["secret_token"]
        assert secret and len(secret) >= 32  # generated, as none was set
        assert "message" in hook["allowed_updates"] and "pre_checkout_query" in hook[
            "allowed_updates"]
        reply = await shop.user(42).send("/start")
        assert reply.text.startswith("Hi, Alex")
        assert set(shop.emulator.webhook_answers) == {200}

        forged = {"update_id": 999_999, "message": {
            "message_id": 1, "date": 0, "chat": {"id": 77, "type": "private", "first_name": "X"},
            "from": {"id": 77, "is_bot": False, "first_name": "X"}, "text": "/start"}}
        assert await post(f"{local}/telegram", None, forged) == 401
        assert await post(f"{local}/telegram", "wrong", forged) == 403
        await asyncio.sleep(0.3)
        assert await shop.query("SELECT id FROM users WHERE id = 77") == []  # no handler ran
        assert 77 not in shop.emulator.chats

        async with aiohttp.ClientSession() as session, session.get(f"{local}/healthz") as got:
            assert got.status == 200
            body = await got.json()
        assert body["status"] == "ok" and body["database"] == "ok"
        assert body["panels"] == {"main": "ok"} and isinstance(body["outbox_backlog"], int)
        async with aiohttp.ClientSession() as session, session.get(f"{local}/metrics") as got:
            assert got.status == 200 and got.content_type.startswith("text/plain")
            text = await got.text()
        assert 'storefront_updates_total{outcome="handled",type="message"}' in text

        await restart(shop, shop.emulator_url)
        assert shop.emulator.webhook is not None
        assert shop.emulator.webhook["secret_token"] == secret  # kept in the database
        assert (await shop.user(42).send("/help")).text.startswith("How it works")


async def test_a_set_secret_is_used_and_polling_deletes_the_webhook(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox, port = await make_sandbox(), free_port()
    async with running_shop(sandbox, tmp_path,
                            **webhook_settings(port, webhook_secret="my-own_Secret1")) as shop:
        assert shop.emulator.webhook is not None
        assert shop.emulator.webhook["secret_token"] == "my-own_Secret1"
    emulator = BotApiEmulator()
    emulator.webhook = {"url": f"{PUBLIC}/old", "secret_token": "x", "allowed_updates": None}
    running = await start_emulator(emulator)
    try:
        from tests.e2e import start_bot, stop_bot, wait_ready

        task = await start_bot(running.url, sandbox, tmp_path / "other.sqlite3")
        await wait_ready(emulator, task)
        await emulator.wait_for(lambda: any(m.lower() == "getupdates" for m, _ in emulator.calls))
        assert emulator.webhook is None  # deleted before polling
        await stop_bot(task)
    finally:
        await running.stop()


async def test_health_reports_a_panel_down_and_an_unusable_database(tmp_path: Path) -> None:
    class Down:
        down_since = 1_800_000_000.0

    class Up:
        down_since = None

    async with Database(tmp_path / "shop.sqlite3") as db:
        result = await health.check(db, lambda: {"main": Up(), "spare": Down()})
        assert result.http_status == 200  # a panel down is reported, not an error
        assert result.body["panels"] == {"main": "ok",
                                         "spare": "down since 2027-01-15T08:00:00+00:00"}
        assert result.body["outbox_backlog"] == 0 and result.body["version"]
    closed = result
    db = await Database(tmp_path / "shop.sqlite3").open()
    await db.close()
    closed = await health.check(db, dict)
    assert closed.http_status == 503
    assert closed.body["status"] == "error" and closed.body["database"].startswith("unusable")


# ------------------------------------------------------------ a real process, SIGTERM

async def bot_process(tmp_path: Path, emulator_url: str, panel_url: str,
                      **env: str) -> asyncio.subprocess.Process:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("BOT_", "PANEL", "TELEGRAM", "DATABASE", "ADMIN", "WEBHOOK"))}
    keep.update(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emulator_url, PANEL_URL=panel_url,
                PANEL_KEY=DEFAULT_KEY, PANEL_RATE_LIMIT="0", TELEGRAM_WAIT="0",
                DATABASE_PATH=str(tmp_path / "shop.sqlite3"), **env)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=ROOT, env=keep, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


@contextlib.asynccontextmanager
async def shop_in_a_process(sandbox, tmp_path: Path, **env: str):
    """The bot as a real process (python -m bot) polling an emulator here, with a
    customer holding $100 and on the confirmation of a 1000-follower order."""
    from storage import ledger, users
    from tests.test_storefront import _to_confirmation

    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    path = tmp_path / "shop.sqlite3"
    async with Database(path) as db:
        await users.upsert_user(db, 42, first_name="Alex")
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=42, amount_minor=10_000, kind="credit", key="seed")
    process = await bot_process(tmp_path, running.url, sandbox.url, **env)
    try:
        await emulator.wait_for(lambda: any(m.lower() == "getupdates" for m, _ in emulator.calls),
                                timeout=60)
        customer = emulator.user(42, "Alex")
        shop = Shop(emulator, sandbox, path, asyncio.create_task(asyncio.sleep(0)), {},
                    running.url)
        await _to_confirmation(customer, shop, "https://instagram.com/p/sigterm")
        yield process, customer
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running.stop()


@pytest.mark.parametrize(("grace", "expected"), [("20", "pending"), ("0.5", "submitting")])
async def test_sigterm_during_an_order_ends_placed_or_recoverable(
        make_sandbox: SandboxFactory, tmp_path: Path, grace: str, expected: str) -> None:
    from storage import ledger

    sandbox = await make_sandbox()
    async with shop_in_a_process(sandbox, tmp_path, SHUTDOWN_GRACE=grace) as (process, customer):
        sandbox.panel.inject("hang", action="add", delay=3)
        confirm = customer.with_button("Confirm")
        data = confirm.button("Confirm")["callback_data"]  # type: ignore[index]
        tap = asyncio.create_task(customer.tap_data(data, confirm, timeout=30))
        # The add is at the panel, hanging (not a fixed sleep: under load the tap may not
        # have got there yet, and the SIGTERM would come before any order).
        await customer.emulator.wait_for(lambda: sandbox.panel.requests["add"] == 1, 30)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
        assert code == 0 and "Traceback" not in stderr, stderr
        tap.cancel()
    async with Database(tmp_path / "shop.sqlite3") as db:
        [(state, count)] = [tuple(r) for r in await db.fetchall(
            "SELECT state, COUNT(*) FROM orders GROUP BY state")]
        balance = await ledger.balance_of(db, 42)
        debits = await db.fetchall("SELECT COUNT(*) FROM ledger WHERE kind = 'order'")
    assert (state, count) == (expected, 1)  # one order, never two, never lost
    assert debits[0][0] == 1 and balance == 10_000 - 156  # charged once


async def test_sigterm_during_a_tracker_batch_lets_it_finish(make_sandbox: SandboxFactory,
                                                             tmp_path: Path) -> None:
    """The tracker's cycle under way at SIGTERM completes: the status it fetched is
    applied (and its notice queued) before the process exits 0."""
    sandbox = await make_sandbox()
    async with shop_in_a_process(sandbox, tmp_path, TRACK_INTERVAL="1") as (process, customer):
        await customer.tap("Confirm")
        [panel_id] = list(sandbox.panel.orders)
        sandbox.panel.orders[panel_id].fate = "completed"
        sandbox.panel.advance(sandbox.panel.pace * 4)  # the panel now says Completed
        sandbox.panel.inject("slow", action="status", delay=2)
        await customer.emulator.wait_for(lambda: not sandbox.panel.faults, timeout=20)
        process.send_signal(signal.SIGTERM)  # the status call is under way
        assert await asyncio.wait_for(process.wait(), 60) == 0
    async with Database(tmp_path / "shop.sqlite3") as db:
        states = [tuple(r) for r in await db.fetchall("SELECT state FROM orders")]
        notices = await db.fetchall("SELECT COUNT(*) FROM outbox WHERE kind = 'order'")
    assert states == [("completed",)]  # the batch under way was applied, not cut off
    assert notices[0][0] >= 1


async def test_the_webhook_receiver_refuses_what_it_must(caplog: pytest.LogCaptureFixture) -> None:
    """Stopping: 503; full: 503 with Retry-After; a missing or wrong secret: 401/403,
    logged once a minute, never with the header's value."""
    import logging

    from bot.app.inbox import UpdateFeed
    from bot.app.serving import WebhookReceiver, web_app
    from bot.devtools.loopback import serve

    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    full = UpdateFeed(None, None, None, limit=0)  # type: ignore[arg-type]
    receiver = WebhookReceiver(full, "right-secret", clock=clock)

    async def healthy() -> health.Health:
        return health.Health(True, {"status": "ok"})

    runner, port = await serve(web_app(healthy, None, ("/hook", receiver)))
    url = f"http://127.0.0.1:{port}/hook"
    caplog.set_level(logging.WARNING, logger="bot.app.serving")
    try:
        assert await post(url, "right-secret", {"update_id": 1}) == 503  # at its limit
        for _ in range(3):
            assert await post(url, None, {}) == 401
            assert await post(url, "guess-wrong", {}) == 403
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1 and "guess-wrong" not in " ".join(refusals)
        clock.now += 61
        assert await post(url, "guess-again", {}) == 403
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 2 and "6 refused" in refusals[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # bytes, not UTF-8
        writer.write(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"X-Telegram-Bot-Api-Secret-Token: \xff\xfe\r\n\r\n{}")
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 403")
        writer.close()
        receiver.accepting = False
        assert await post(url, "right-secret", {"update_id": 1}) == 503  # stopping
    finally:
        await runner.cleanup()


async def test_a_webhook_body_that_is_no_update_is_400_and_stores_nothing(db: Database) -> None:
    """Not JSON, not UTF-8, not an object, no update_id, or JSON nested 100,000 deep
    (the parser's recursion limit): 400, and the inbox stays empty."""
    from bot.app.inbox import UpdateFeed
    from bot.app.serving import WebhookReceiver, web_app
    from bot.devtools.loopback import serve

    async def healthy() -> health.Health:
        return health.Health(True, {"status": "ok"})

    receiver = WebhookReceiver(UpdateFeed(None, None, db), "s")  # type: ignore[arg-type]
    runner, port = await serve(web_app(healthy, None, ("/hook", receiver)))
    try:
        async with aiohttp.ClientSession() as session:
            for body in (b"{", b"\xff\xfe", b"[1]", b'{"message": {}}',
                         b"[" * 100_000 + b"]" * 100_000,
                         b'{"update_id": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
                async with session.post(f"http://127.0.0.1:{port}/hook", data=body,
                                        headers={SECRET_HEADER: "s"}) as answer:
                    assert answer.status == 400, body[:30]
    finally:
        await runner.cleanup()
    assert await db.fetchall("SELECT * FROM inbox") == []


async def test_polling_mode_serves_health_on_its_port(make_sandbox: SandboxFactory,
                                                      tmp_path: Path) -> None:
    sandbox, port = await make_sandbox(), free_port()
    async with (running_shop(sandbox, tmp_path, health_port=port, webhook_host="127.0.0.1"),
                aiohttp.ClientSession() as session):
        async with session.get(f"http://127.0.0.1:{port}/healthz") as got:
            assert got.status == 200 and (await got.json())["database"] == "ok"
        async with session.get(f"http://127.0.0.1:{port}/metrics") as got:
            assert got.status == 200 and "storefront_" in await got.text()
        async with session.post(f"http://127.0.0.1:{port}/telegram", json={}) as got:
            assert got.status in (404, 405)  # no webhook in polling mode
