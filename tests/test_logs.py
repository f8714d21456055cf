"""Issue 14: LOG_FORMAT=json, one JSON object a line, redacted like the text lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Update

from bot.devtools.emulator import MALFORMED
from bot.devtools.sandbox.server import RunningSandbox
from bot.observability import redaction
from bot.observability.logs import current_update_id, setup_logging
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders.service import OrderService, Outcome
from handlers.middlewares.metrics import UpdateMetrics
from storage import catalog as catalog_store
from storage import ledger, users
from storage.db import Database
from tests.conftest import ClientFactory, SandboxFactory, place_as_shown
from tests.e2e import TOKEN, running_shop

pytestmark = pytest.mark.timeout(120)

Logs = Callable[..., io.StringIO]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """``logs(log_format)``: the root logger set up as the bot does it, into a string."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def setup(log_format: str = "json", level: str = "INFO") -> io.StringIO:
        stream = io.StringIO()
        setup_logging(level, stream=stream, log_format=log_format)
        return stream

    try:
        yield setup
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_one_json_object_with_time_level_logger_message(logs: Logs) -> None:
    stream = logs("json")
    log = logging.getLogger("bot.example")
    log.info("hello %s, line\nbreak and \"quotes\"", "world")
    log.warning("ünïcode 🚀")
    first, second = lines(stream)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "bot.example"
    assert first["message"] == "hello world, line\nbreak and \"quotes\""
    assert second["level"] == "WARNING" and second["message"] == "ünïcode 🚀"
    assert first["time"].endswith("Z")
    when = datetime.fromisoformat(first["time"])
    assert when.tzinfo is not None and when.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)


def test_an_exception_is_a_string_field_and_ids_are_kept(logs: Logs) -> None:
    stream = logs("json")
    log = logging.getLogger("bot.shop.orders.service")
    try:
        raise ValueError("the panel said no")
    except ValueError:
        log.exception("order %d failed", 7, extra={"order_id": 7})
    log.info("no ids")
    failed, plain = lines(stream)
    assert failed["message"] == "order 7 failed"
    assert isinstance(failed["exc"], str)
    assert "Traceback" in failed["exc"] and "ValueError: the panel said no" in failed["exc"]
    assert failed["order_id"] == 7 and "update_id" not in failed
    assert "exc" not in plain and "order_id" not in plain


def test_a_registered_secret_never_appears(logs: Logs) -> None:
    early = "panel-key-0123456789abcdef"
    redaction.register(early)
    stream = logs("json")
    late = 'bot:tök"en\\registered-late'  # quotes and non-ASCII: JSON escapes them
    redaction.register(late)
    log = logging.getLogger("bot.panel.client")
    log.error("panel answered %s", f"key={early}")
    log.warning(f"url /bot{late}/getMe")  # the secret in the message itself, no args
    try:
        raise RuntimeError(f"POST https://panel.example/api?key={early}&t={late}")
    except RuntimeError:
        log.exception("request failed", extra={"order_id": f"order-{early}"})
    written = stream.getvalue()
    entries = lines(stream)
    assert len(entries) == 3
    for secret in (early, late, json.dumps(late)[1:-1]):
        assert secret not in written
        assert all(secret not in str(value) for entry in entries for value in entry.values())
    assert entries[0]["message"] == "panel answered key=***"
    assert entries[1]["message"] == "url /bot***/getMe"
    assert "key=***&t=***" in entries[2]["exc"] and entries[2]["order_id"] == "order-***"


def test_the_text_format_is_unchanged(logs: Logs) -> None:
    stream = logs("text")
    logging.getLogger("bot.example").info("hello")
    line = stream.getvalue().rstrip("\n")
    assert line.endswith(" INFO    bot.example: hello") and not line.startswith("{")


async def test_the_update_middleware_names_the_update_in_its_lines(logs: Logs) -> None:
    stream = logs("json")
    log = logging.getLogger("handlers.example")

    async def handler(_event: Any, _data: dict[str, Any]) -> None:
        log.info("handling")

    update = Update.model_validate({"update_id": 4242, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi"}})
    await UpdateMetrics()(handler, update, {})
    log.info("after")
    during, after = lines(stream)
    assert during["update_id"] == 4242 and during["message"] == "handling"
    assert "update_id" not in after
    assert current_update_id.get() is None


@pytest.fixture
async def service(db: Database, sandbox: RunningSandbox, make_client: ClientFactory
                  ) -> OrderService:
    client = make_client(sandbox)
    await refresh_catalog(db, client, "USD")
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=10_000, kind="credit", key="seed")
    return OrderService(db, {"test": client}, Pricer(db, "USD", Decimal(30), {"test": Decimal(1)}))


async def test_an_order_placement_line_carries_the_order_id(
        logs: Logs, db: Database, sandbox: RunningSandbox, service: OrderService) -> None:
    stream = logs("json")
    stored = await catalog_store.by_panel_id(db, "test", "102")
    assert stored is not None
    sandbox.panel.inject("http502", action="add")
    unknown = await place_as_shown(service, 7, stored.ref, {"link": "https://instagram.com/p/j",
                                                            "quantity": "1000"})
    assert unknown.outcome is Outcome.AMBIGUOUS and unknown.order is not None
    [entry] = [e for e in lines(stream) if e["logger"] == "bot.shop.orders.service"]
    assert entry["level"] == "ERROR" and entry["order_id"] == unknown.order.id
    assert entry["message"].startswith(f"order {unknown.order.id}: outcome unknown")


async def test_a_failing_update_is_logged_with_its_id_and_no_token(
        logs: Logs, make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    """The bot end to end in JSON: aiohttp's error carries the token in its URL."""
    stream = logs("json")
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        customer = shop.user(42)
        shop.emulator.inject("sendMessage", MALFORMED)
        await customer.send("/start")
        assert "something went wrong" in customer.text
    written = stream.getvalue()
    assert TOKEN.split(":", 1)[1] not in written
    entries = lines(stream)
    [failed] = [e for e in entries if e["message"].startswith("unhandled error")]
    assert isinstance(failed["update_id"], int)
    assert failed["message"].endswith(f"in update {failed['update_id']}")
    assert "ClientResponseError" in failed["exc"] and "/bot***/sendMessage" in failed["exc"]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_aiogram_per_update_lines_are_debug_detail(
        logs: Logs, make_sandbox: SandboxFactory, tmp_path: Path, level: str) -> None:
    """No line per update at INFO (a busy shop's log was mostly "is handled");
    LOG_LEVEL=DEBUG shows them."""
    stream = logs("text", level)
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        customer = shop.user(42)
        await customer.send("/start")
        await customer.tap("Balance")
        assert "Your balance" in customer.last().text
    written = stream.getvalue()
    shown = level == "DEBUG"
    assert ("is handled" in written) is shown
    assert ("Answer to callback query" in written) is shown
