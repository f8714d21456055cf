"""Messages to the shop's admins (panel out of funds, orders to check, errors).

Alerts go through the outbox like every message the bot sends on its own, so
they survive a restart and respect Telegram's limits, after every customer's
own messages (storage/outbox.py PRIORITY). Queuing never fails the request that
raised the alert: a failure is logged.

Callers pass plain text: a title and, optionally, details (a traceback) shown
preformatted. Both are redacted (bot/observability/redaction.py) when queued; the HTML is built
when sent (``render``), after the visible text is cut to fit one Telegram
message, so markup is never cut and panel or customer text is always escaped.

Alerts of one kind are folded: the first goes out at once; more of the same
``key`` within ``WINDOW`` seconds (5 minutes) of it become one follow-up, sent
at the window's end, "…and N more like this in the last 5 minutes", with the
latest one's text. A steady flood so gives one alert per kind per window. The
key is the caller's (default: the title itself); errors use the exception's
type and where it was raised (handlers/middlewares/errors.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from html import escape
from typing import Any, Protocol, TypeVar

from bot.observability.redaction import redact
from storage import outbox
from storage.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

WINDOW = 300.0  # seconds: one alert per kind at most this often, plus its follow-up
MAX_ALERT = 4000  # visible characters (UTF-16 units), under Telegram's 4096
MAX_TITLE = 1000  # the rest of MAX_ALERT is for the details


class Alert(Protocol):
    """What services that raise alerts are given (``AdminAlerts.send``, or a test's)."""

    async def __call__(self, text: str, *, details: str = "", key: str | None = None) -> object:
        ...


async def no_alert(text: str, *, details: str = "", key: str | None = None) -> bool:
    """An ``Alert`` that drops everything (services built without admins: tests, benches)."""
    return False


class AdminAlerts:
    def __init__(self, db: Database, admin_ids: Sequence[int],
                 on_queued: Callable[[], None] = lambda: None, *,
                 window: float = WINDOW, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.admin_ids = list(admin_ids)
        self._on_queued = on_queued
        self.window = window
        self._clock = clock

    async def send(self, text: str, *, details: str = "", key: str | None = None) -> bool:
        """Alert the admins: ``text`` (plain, one line or a few) and optional plain
        ``details``; alerts with the same ``key`` (default: ``text``) fold. Returns
        whether at least one admin will get it (an admin whose row cannot be
        written is skipped and logged: the others still get it)."""
        async def fold(conn: Any, payload: dict[str, Any]) -> tuple[bool, Sequence[int]]:
            return await outbox.queue_folded(conn, self.admin_ids, "alert", payload,
                                             redact(key or text), self._clock(), self.window)

        queued = await self._queue(text, details, fold)
        if queued is None:
            return False
        folded, reached = queued
        if not reached:
            log.error("admin alert reached no admin: %s", redact(text))
        if not folded:
            self._on_queued()  # a follow-up is due later; the sender finds it then
        return bool(reached)

    async def send_once(self, text: str, *, details: str = "", key: str) -> None:
        """Alert the admins unless an alert with this ``key`` was queued before (a state
        found at each start, like a broken translation, is told once, not per start;
        again once the outbox's retention has pruned the first)."""
        async def once(conn: Any, payload: dict[str, Any]) -> bool:
            return await outbox.queue_once(conn, self.admin_ids, "alert", payload, redact(key),
                                           self._clock())

        if await self._queue(text, details, once):
            self._on_queued()

    async def _queue(self, text: str, details: str,
                     write: Callable[[Any, dict[str, Any]], Awaitable[T]]) -> T | None:
        """``write(transaction, payload)`` for a redacted alert, or None when it could
        not be queued: no admins, or the database failed (an alert never breaks what
        raised it; it is logged instead)."""
        text, details = redact(text), redact(details)
        if not self.admin_ids:
            log.warning("admin alert (no ADMIN_IDS set): %s\n%s", text, details)
            return None
        payload = {"title": text, "details": details, "window": self.window}
        try:
            async with self.db.transaction() as conn:
                return await write(conn, payload)
        except Exception:
            log.exception("could not queue an admin alert: %s", text)
            return None

def render(payload: Mapping[str, Any]) -> str:
    """An alert row's Telegram HTML: the visible text cut to MAX_ALERT, then escaped."""
    if "title" not in payload:  # queued before alerts were stored as plain parts: HTML
        return str(payload.get("text", ""))
    title = str(payload.get("title") or "")
    more = int(payload.get("more") or 0)
    if more:
        window = float(payload.get("window") or WINDOW)
        title = (f"…and {more} more like this in the last {_duration(window)}."
                 f" The latest:\n{title}")
    title = _head(title, MAX_TITLE)
    details = str(payload.get("details") or "")
    if not details:
        return escape(title, quote=False)
    details = _tail(details, MAX_ALERT - _units(title) - 1)
    return f"{escape(title, quote=False)}\n<pre>{escape(details, quote=False)}</pre>"


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def _units(text: str) -> int:
    """Telegram counts a message's length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _head(text: str, limit: int) -> str:
    if _units(text) <= limit:
        return text
    cut = text[:limit - 1]
    while _units(cut) > limit - 1:
        cut = cut[:-1]
    return cut + "…"


def _tail(text: str, limit: int) -> str:
    """The end of ``text`` (where a traceback says what happened), within ``limit``."""
    if _units(text) <= limit:
        return text
    cut = text[-(limit - 1):]
    while _units(cut) > limit - 1:
        cut = cut[1:]
    return "…" + cut
