"""Retention: once a day, rows nobody needs any more are deleted.

What is pruned is a list of kinds (``PRUNABLE``), each a name for the log and a
storage function ``prune(db, before, limit) -> deleted``: delete at most
``limit`` rows of that kind older than ``before`` (unix time) in one short
transaction and say how many. The job calls it batch after batch until a
batch comes back short, so a big backlog never holds the database for long:
every other coroutine gets its turn between two batches.

Pruned, when older than ``RETENTION_DAYS`` (30):
- top-ups never paid, expired that long ago (until then a late tap on the
  invoice is still refused at pre-checkout as expired);
- closed outbox rows (sent, dropped, failed), but none of a broadcast still
  running;
- updates of the durable inbox that were handled (bot/app/inbox.py);
- catalog changes (storage/catalog_changes.py): told in a digest long ago.

Never pruned: money records (the ledger, paid and refunded top-ups, stray
payments, orders), pending outbox rows, unhandled inbox updates. ``RETENTION_DAYS=0`` keeps everything.

A run that fails (one kind or several; the others are still pruned) is
logged and alerts the admins once, in English like every admin alert; the
next run, a day later, tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from bot.shop.messaging.alerts import Alert, no_alert
from storage import catalog_changes, inbox, outbox
from storage import topups as topup_store
from storage.db import Database

log = logging.getLogger(__name__)

DAY = 86_400.0
BATCH = 1_000  # rows deleted per transaction
FIRST_DELAY = 900.0  # seconds after start-up: not in the middle of start-up's own work

# (db, before: unix time, limit) -> rows deleted, at most limit, in one transaction.
PruneBatch = Callable[[Database, float, int], Awaitable[int]]

# What the daily run prunes, in this order: (name in the log, storage function).
PRUNABLE: tuple[tuple[str, PruneBatch], ...] = (
    ("expired top-ups", topup_store.prune_expired),
    ("closed outbox rows", outbox.prune_closed),
    ("handled inbox updates", inbox.prune_handled),
    ("catalog changes", catalog_changes.prune_old),
)


class Retention:
    def __init__(self, db: Database, *, days: int, alert: Alert = no_alert,
                 kinds: Sequence[tuple[str, PruneBatch]] = PRUNABLE, batch: int = BATCH,
                 clock: Callable[[], float] = time.time, first_delay: float = FIRST_DELAY,
                 period: float = DAY) -> None:
        self.db = db
        self.days = days
        self.kinds = list(kinds)
        self.batch = batch
        self._alert = alert
        self._clock = clock
        self.first_delay = first_delay
        self.period = period

    async def prune(self) -> dict[str, int]:
        """One run: every kind pruned, batch by batch; the rows deleted per kind.
        A kind that fails is left for the next run (the admins alerted once)."""
        if self.days <= 0:
            return {}
        before = self._clock() - self.days * DAY
        pruned: dict[str, int] = {}
        failed: list[str] = []
        for name, prune in self.kinds:
            try:
                pruned[name] = await self._prune_kind(prune, before)
            except Exception as exc:  # the other kinds are still pruned
                log.exception("retention: pruning %s failed", name)
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        log.info("retention: pruned %s (older than %d days)",
                 ", ".join(f"{count} {name}" for name, count in pruned.items()) or "nothing",
                 self.days)
        if failed:
            await self._alert(
                "🧹 The daily clean-up of old rows failed; nothing else is affected, and it"
                " will try again tomorrow.", details="\n".join(failed), key="retention failed")
        return pruned

    async def _prune_kind(self, prune: PruneBatch, before: float) -> int:
        total = 0
        while True:
            deleted = await prune(self.db, before, self.batch)
            total += deleted
            if deleted < self.batch:
                return total
            await asyncio.sleep(0)  # the others' turn at the database between batches

    async def run(self) -> None:
        """Prune once a day (first ``first_delay`` after start-up) until cancelled."""
        if self.days <= 0:
            log.info("retention: RETENTION_DAYS=0, every row is kept")
            return
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.prune()
            except Exception:  # the alert itself failed: never stop the bot
                log.exception("retention run failed")
            await asyncio.sleep(self.period)
