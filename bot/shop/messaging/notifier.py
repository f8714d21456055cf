"""The one sender of every message the bot sends on its own initiative.

Rows come from the durable outbox (storage/outbox.py): customers' messages
before admin alerts, a few rows per chat, everyone's first before anyone's
second, and none for a chat that must wait its turn. Each pass reads about one
second of sends, so a message queued during a flood waits at most that long
before it is considered (by priority) with the rest. The sender
keeps under Telegram's limits: at most ``rate`` messages a second overall, evenly
spaced (with a 5 % margin, see WINDOW), and at most one a ``per_chat_interval``
to any chat. Delivery itself is
injected (``Deliver``: render in the user's language and send), so this module
knows nothing of aiogram; the delivery raises one of the exceptions below:

- ``RetryAfter``: Telegram said 429; all sending pauses that long.
- ``RecipientGone``: the user blocked the bot; they are marked, their rows closed.
- ``TemporaryFailure``: network trouble or a 5xx; retried with backoff, without end
  (the rows are durable; a long Telegram outage only delays them).
- ``PermanentFailure``: Telegram refused this message (chat not found...), or it
  cannot be written in any language (handlers/outbound/notices.py); closed as failed.

A row is closed after its send, so a restart re-sends at most the messages that
were on the wire when the process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from bot.observability import metrics
from storage import outbox
from storage.db import Database
from storage.outbox import OutboxRow

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
# Sends are spaced WINDOW / rate apart, not 1 / rate: evenly spaced at exactly
# 1 / rate, any one-second window holds rate + 1 sends, and arrival jitter adds
# more. The 5 % margin absorbs up to ~50 ms of jitter at 30/s.
WINDOW = 1.05
PASS_SECONDS = 1.0  # a pass reads about this many seconds' worth of sends
IDLE_POLL = 1.0


class RetryAfter(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class RecipientGone(Exception):
    """The user blocked the bot (or deleted their account)."""


class TemporaryFailure(Exception):
    """Worth trying again later."""


class PermanentFailure(Exception):
    """This message will never be accepted."""


Deliver = Callable[[OutboxRow], Awaitable[None]]


class Notifier:
    def __init__(self, db: Database, deliver: Deliver, *, rate: float = 25.0,
                 per_chat_interval: float = 1.05, max_in_flight: int = 30) -> None:
        self.db = db
        self._deliver = deliver
        self._spacing = WINDOW / rate
        self._batch = max(1, math.ceil(rate * PASS_SECONDS))
        self._per_chat = per_chat_interval
        self._slots = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._chat_free_at: dict[int, float] = {}
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.throttled = 0  # 429s received

    def wake(self) -> None:
        """Something was queued: look now rather than at the next idle poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send until cancelled."""
        try:
            while True:
                if not await self.send_due():
                    await self._idle()
        finally:
            for task in self._tasks:
                task.cancel()

    async def drain(self, timeout: float = 60.0) -> None:
        """Send until nothing is pending, retries included (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.send_due()
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            elif await outbox.next_due_at(self.db) is None:
                return
            else:
                await asyncio.sleep(0.05)  # rows wait for their chat's turn or a retry
        raise TimeoutError("the outbox did not drain")

    async def send_due(self) -> int:
        """Start sending the rows that are due now; returns how many were started."""
        now = time.monotonic()
        busy = [chat for chat, free_at in self._chat_free_at.items() if free_at > now]
        rows = await outbox.due(self.db, time.time(), self._batch, skip_chats=busy)
        blocked = [row for row in rows if row.blocked]
        if blocked:
            await outbox.drop_blocked(self.db, blocked)
            rows = [row for row in rows if not row.blocked]
        started = 0
        for row in rows:
            if row.id in self._in_flight:
                continue
            if self._chat_free_at.get(row.chat_id, 0.0) > time.monotonic():
                continue  # this chat had a message a moment ago; it waits its turn
            await self._take_slot()
            self._chat_free_at[row.chat_id] = time.monotonic() + self._per_chat
            self._in_flight.add(row.id)
            await self._slots.acquire()
            task = asyncio.create_task(self._send(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _take_slot(self) -> None:
        """Wait for the next send slot: evenly spaced, and after any 429 pause."""
        now = time.monotonic()
        slot = max(now, self._next_slot, self._paused_until)
        self._next_slot = slot + self._spacing
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _send(self, row: OutboxRow) -> None:
        try:
            await self._deliver(row)
        except RetryAfter as exc:
            self.throttled += 1
            metrics.telegram_throttled()
            metrics.outbox_send("retry")
            self._paused_until = max(self._paused_until, time.monotonic() + exc.seconds)
            log.warning("Telegram asked to slow down: pausing sends for %.1f s", exc.seconds)
            await outbox.retry_later(self.db, row, time.time() + exc.seconds, str(exc),
                                     count_attempt=False)
        except RecipientGone:
            metrics.outbox_send("gone")
            closed = await outbox.recipient_gone(self.db, row.chat_id)
            log.info("user %s blocked the bot; %d queued messages closed", row.chat_id, closed)
        except PermanentFailure as exc:
            metrics.outbox_send("failed")
            log.warning("outbox row %d to %s refused: %s", row.id, row.chat_id, exc)
            await outbox.mark_failed(self.db, row, str(exc))
        except Exception as exc:  # TemporaryFailure, and anything unexpected: try again later
            metrics.outbox_send("retry")
            delay = min(MAX_BACKOFF, 2.0 ** min(row.attempts, 10))
            if not isinstance(exc, TemporaryFailure):
                log.exception("outbox row %d: unexpected failure; retrying in %.0f s", row.id,
                              delay)
            await outbox.retry_later(self.db, row, time.time() + delay, str(exc) or repr(exc))
        else:
            self.sent += 1
            metrics.outbox_send("sent")
            if not await outbox.mark_sent(self.db, row):
                self.wake()  # merged while on the wire: the newer content is due now
        finally:
            self._in_flight.discard(row.id)
            self._slots.release()

    async def _idle(self) -> None:
        """Sleep until woken, the next retry is due, or a chat is free again."""
        self._wake.clear()
        timeout = IDLE_POLL
        now = time.monotonic()
        self._chat_free_at = {c: t for c, t in self._chat_free_at.items() if t > now}
        if self._chat_free_at:
            timeout = min(timeout, min(self._chat_free_at.values()) - now)
        next_due = await outbox.next_due_at(self.db)
        if next_due is not None and next_due > time.time():
            timeout = min(timeout, next_due - time.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
