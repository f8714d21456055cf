"""Issue 9, item 13: no secret reaches an alert, an outbox row or a log line.

The bot token reached the admins: aiohttp put the request URL (with the token)
in an exception's text, the error handler put the traceback in an alert, and
the outbox stored it. Here the unmodified bot meets the same fault end to end.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.devtools.emulator import MALFORMED
from bot.observability import redaction
from bot.observability.logs import RedactSecrets, setup_logging
from storage import outbox
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import TOKEN, running_shop

pytestmark = pytest.mark.timeout(120)

SECRET_PART = TOKEN.split(":", 1)[1]  # the part that makes it a credential


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The process's log output as the bot's own set-up writes it (bot/observability/logs.py)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


async def test_a_token_in_an_exception_reaches_neither_the_alert_nor_the_outbox_nor_the_logs(
    make_sandbox: SandboxFactory, tmp_path: Path, logs: io.StringIO,
) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        await shop.admin.send("/start")
        customer = shop.user(42)
        # The reply to /start gets a garbled HTTP answer: aiohttp raises with the
        # URL, /bot<token>/sendMessage, in its text, and the handler fails with it.
        shop.emulator.inject("sendMessage", MALFORMED)
        await customer.send("/start")
        assert "something went wrong" in customer.text
        alert = await shop.admin.expect("🐞", timeout=15)
        rows = await shop.query("SELECT payload, COALESCE(last_error, '') FROM outbox")
    assert "ClientResponseError" in alert.text  # the details did arrive...
    assert "/bot***/sendMessage" in alert.text  # ...with the token masked
    assert SECRET_PART not in alert.raw_text and SECRET_PART not in alert.text
    assert rows and all(SECRET_PART not in payload + error for payload, error in rows)
    written = logs.getvalue()
    assert "ClientResponseError" in written and SECRET_PART not in written


async def test_outbox_writers_store_no_secret(db: Database) -> None:
    secret = "panel-key-0123456789abcdef"
    redaction.register(secret)
    async with db.transaction() as conn:
        await outbox.queue(conn, [1], "alert", {"title": f"key={secret}",
                                                "details": [f"url?key={secret}"]})
    [row] = await outbox.due(db, 1e12, 10)
    await outbox.retry_later(db, row, 0, f"failed with {secret}")
    stored = await db.fetchall("SELECT payload, last_error FROM outbox")
    assert secret not in repr([tuple(r) for r in stored])
    await outbox.mark_failed(db, row, f"refused {secret}")
    stored = await db.fetchall("SELECT payload, last_error FROM outbox")
    assert secret not in repr([tuple(r) for r in stored])
    assert "refused ***" in stored[0][1]


def test_the_log_filter_is_the_one_redaction() -> None:
    """A secret registered anywhere (the Bot, a panel client) is masked in the logs,
    even when the filter was built before it was known."""
    redactor = RedactSecrets()
    late = "registered-after-logging-began"
    redaction.register(late)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (late,), None)
    redactor.filter(record)
    assert record.getMessage() == "token ***"
