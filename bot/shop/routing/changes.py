"""Knowing what the panels did: services hidden at a loss, and the admins' digest.

A catalog refresh stores what it changed (storage/catalog.py ``replace_services``
writes ``catalog_changes`` in its own transaction). After it, ``after_refresh``:

1. **Loss check** (``check_losses``): every active service whose shop price per
   1000 at its markup is below its cost in the shop currency (rate × FX) is hidden
   (``services.hidden_at_loss``: not browsed, searched or ordered), and one hidden
   so that now sells at or above cost is shown again, each with its change row.
   It runs after every refresh (a rate or FX moved) and after every markup change
   (bot/shop/catalog/admin.py), the two things that move a price against its cost.
2. **Digest** (``tick``): when untold changes exist, one digest goes to every admin:
   at once when a linked service's cost moved (at most one per refresh: only a
   refresh makes such a change); else once a day, at ``DAILY_REPORT_HOUR`` (shop
   time; checked every minute) when that is set, otherwise with the first refresh
   24 h after the last digest (the first one 24 h after the bot first checked).
   Its outbox rows and the changes' ``told_at`` are written in one transaction,
   so it is queued once and each change told once, restarts included. The rows
   hold counts and the biggest few changes of each kind as data; the words are
   written when each row is sent, in that admin's language
   (handlers/views/catalog_digest.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.observability.metrics import SERVICES_AT_LOSS
from bot.shop.catalog.pricing import Pricer
from storage import catalog as catalog_store
from storage import catalog_changes, outbox
from storage.catalog_changes import KINDS, Told
from storage.db import Database

log = logging.getLogger(__name__)

__all__ = ["KINDS", "CatalogWatch", "Digest", "Told"]

TOP = 5  # changes listed per kind; the rest are counted
LAST_AT_KEY = "catalog_digest_at"  # shop_settings: unix time of the last digest
DAY = 24 * 3600
LAST_DAY_KEY = "catalog_digest_day"  # shop_settings: shop day of the last daily digest


@dataclass(frozen=True, slots=True)
class Digest:
    counts: dict[str, int]
    items: tuple[Told, ...]
    urgent: bool  # a linked service's cost moved
    up_to: int = 0  # the last change counted (not stored in the message)

    def payload(self) -> dict[str, Any]:
        return {"counts": self.counts, "items": [asdict(item) for item in self.items],
                "urgent": self.urgent}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Digest:
        return cls({str(k): int(v) for k, v in data["counts"].items()},
                   tuple(Told(**item) for item in data["items"]), bool(data.get("urgent")))


class CatalogWatch:
    def __init__(self, db: Database, pricer: Pricer, admin_ids: Sequence[int], *,
                 hour: int | None, zone: ZoneInfo, clock: Callable[[], float] = time.time,
                 on_queued: Callable[[], None] = lambda: None, interval: float = 60) -> None:
        self.db = db
        self.pricer = pricer
        self.admin_ids = list(admin_ids)
        self.hour = hour
        self.zone = zone
        self._clock = clock
        self._on_queued = on_queued
        self.interval = interval
        self._checking = asyncio.Lock()

    # ------------------------------------------------------------- at a loss

    async def check_losses(self) -> int:
        """Hide the services that would sell below cost, show the fixed ones; how many
        changed (the caller reloads the customers' catalog copy when any did)."""
        async with self._checking:  # a refresh and a markup change at once: one check
            moved = hidden = 0
            for stored in await catalog_store.sellable(self.db):
                price = await self.pricer.unit_price(stored)
                cost = self.pricer.unit_cost(stored)
                at_loss = price < cost
                hidden += at_loss
                if at_loss != stored.hidden_at_loss:
                    async with self.db.transaction() as conn:
                        if await catalog_store.set_hidden_at_loss(
                                conn, stored.ref, at_loss, None, str(stored.service.rate)):
                            moved += 1
                            log.warning("service %s %s: sells at %s, costs %s (minor units)",
                                        stored.ref, "hidden at a loss" if at_loss
                                        else "shown again", price, cost)
            SERVICES_AT_LOSS.set(hidden)
            return moved

    async def after_refresh(self) -> int:
        """The loss check, then the digest if one is due; how many were hidden or shown."""
        moved = await self.check_losses()
        try:
            await self.tick()
        except Exception:  # the digest must never stop a refresh
            log.exception("catalog digest failed")
        return moved

    # ------------------------------------------------------------- the digest

    async def _due(self, urgent: bool) -> tuple[str, str | None, str] | None:
        """The shop_settings key to claim (with its value now and the new one), or None."""
        now = self._clock()
        last_at = await catalog_changes.digest_state(self.db, LAST_AT_KEY)
        if urgent:
            return LAST_AT_KEY, last_at, repr(now)
        if self.hour is not None:
            local = datetime.fromtimestamp(now, self.zone)
            last_day = await catalog_changes.digest_state(self.db, LAST_DAY_KEY)
            today = local.date().isoformat()
            if local.hour < self.hour or last_day == today:
                return None
            return LAST_DAY_KEY, last_day, today
        if last_at is not None and now - float(last_at) < DAY:
            return None
        return LAST_AT_KEY, last_at, repr(now)

    async def build(self) -> Digest | None:
        up_to, counts = await catalog_changes.untold_counts(self.db)
        if not up_to:
            return None
        items: list[Told] = []
        for kind in KINDS:
            if counts.get(kind):
                items += await catalog_changes.untold_top(self.db, up_to, kind, TOP)
        return Digest(counts, tuple(items),
                      await catalog_changes.linked_cost_untold(self.db, up_to), up_to)

    async def tick(self) -> bool:
        """Queue the digest if changes are untold and one is due; True when queued."""
        if not self.admin_ids:
            return False
        if await catalog_changes.digest_state(self.db, LAST_AT_KEY) is None:
            # The first day's digest is due a day after the bot first looked.
            async with self.db.transaction() as conn:
                await catalog_changes.claim_digest_in(conn, LAST_AT_KEY, None,
                                                      repr(self._clock()))
        digest = await self.build()
        if digest is None:
            return False
        due = await self._due(digest.urgent)
        if due is None:
            return False
        key, expected, value = due
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        async with self.db.transaction() as conn:
            if not await catalog_changes.claim_digest_in(conn, key, expected, value):
                return False
            if key != LAST_AT_KEY:
                await catalog_changes.set_state_in(conn, LAST_AT_KEY, repr(self._clock()))
            # Everything counted is told, listed or not: ids up to the last one counted.
            await catalog_changes.mark_told_in(conn, digest.up_to, stamp)
            await outbox.queue(conn, self.admin_ids, "alert",
                               {"catalog_digest": digest.payload()})
        log.info("catalog digest queued: %s", digest.counts)
        self._on_queued()
        return True

    async def run(self) -> None:
        """With ``DAILY_REPORT_HOUR``: check every ``interval`` seconds, until cancelled."""
        if self.hour is None:
            return  # the digest is checked after each refresh
        while True:
            try:
                await self.tick()
            except Exception:  # the digest must never stop the bot
                log.exception("catalog digest failed")
            await asyncio.sleep(self.interval)
