"""Writes that need not hold up the answer, batched behind it.

Conversation state (bot/app/fsm_storage.py), the inbox's handled marks
(bot/app/inbox.py) and customers' activity (bot/shop/backoffice/customers.py) are
noted in memory and written by one task: whatever is noted while a write is
under way goes in the next one, one statement for all of it. Under a burst that
is one database round trip for many updates instead of one each, and none on
any update's own path. ``close()`` (at a stop) writes what is left.

Only what a crash may lose without harm goes here, and what it loses is said
where it is used: never money, never an order (those are written in their own
transactions before the customer is answered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

RETRY_AFTER = 1.0  # seconds between attempts while the database refuses the write


class WriteBehind(Generic[K]):
    """Keys noted as changed, written in batches by ``write(keys)``.

    A key noted twice before its write is written once. A failed write is logged
    and its keys are tried again after ``RETRY_AFTER`` seconds, with whatever
    was noted meanwhile, until ``close()``.
    """

    def __init__(self, write: Callable[[list[K]], Awaitable[None]], what: str) -> None:
        self._write_batch = write
        self._what = what  # for the log: "conversation states", ...
        self._pending: dict[K, None] = {}  # a set that keeps the order keys were noted in
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    def note(self, key: K) -> None:
        self._pending[key] = None
        self._start()

    def _start(self) -> None:
        """A writer for what is pending, unless one is under way (it takes it too)."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = list(self._pending), {}
            try:
                await self._write_batch(batch)
            except asyncio.CancelledError:  # given up at the stop: still not written
                self._pending = dict.fromkeys(batch) | self._pending
                raise
            except Exception:
                log.exception("could not write %d %s; trying again", len(batch), self._what)
                self._pending = dict.fromkeys(batch) | self._pending
                if self._closing:
                    return
                await asyncio.sleep(RETRY_AFTER)

    async def close(self, timeout: float) -> bool:
        """Write what is left, waiting up to ``timeout`` seconds: False (and logged)
        when some of it could not be written."""
        self._closing = True
        if self._pending:
            self._start()
        if self._writer is not None and not self._writer.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout)
            except TimeoutError:
                self._writer.cancel()
                await asyncio.wait([self._writer], timeout=1.0)
        if self._pending:
            log.error("%d %s could not be written before the stop", len(self._pending), self._what)
            return False
        return True
