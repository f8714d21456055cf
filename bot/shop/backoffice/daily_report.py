"""The daily summary: yesterday's books, sent to every admin once a day.

At ``DAILY_REPORT_HOUR`` in ``SHOP_TIMEZONE`` (or at the first check after it,
when the bot was not running then) the summary of the previous shop day goes to
every admin. The day's row in ``daily_reports`` and the admins' outbox rows are
written in one transaction, so it is queued once per day, restarts included.

The figures are the dashboard's (``bot.stats.daily_figures``: turnover, refunds,
panel cost from each order's exact ``cost_minor``, profit), so the two never
disagree about a day. They are computed when the summary is queued and stored
in its outbox rows as numbers; the words are written when each row is sent, in
that admin's language (handlers/admin/dashboard.py ``daily_summary_text``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bot.shop.backoffice import stats
from bot.shop.backoffice.panel_watch import PanelWatch
from storage import alert_state, outbox
from storage import stats as stats_store
from storage.db import Database

log = logging.getLogger(__name__)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[str, str]:
    """[start, end) of the shop day ``day`` as stored UTC timestamps."""
    start = datetime.combine(day, datetime.min.time(), zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    return stats.iso(start), stats.iso(end)


@dataclass(frozen=True, slots=True)
class PanelLine:
    name: str
    balance: str | None  # Decimal text in the panel's currency; None: not answering
    currency: str


@dataclass(frozen=True, slots=True)
class Report:
    day: date
    zone: str
    currency: str
    figures: stats.DailyFigures
    open_problems: int
    panels: tuple[PanelLine, ...] = ()

    def payload(self) -> dict[str, Any]:
        """As stored in the outbox: JSON numbers and texts."""
        return {"day": self.day.isoformat(), "zone": self.zone, "currency": self.currency,
                "figures": asdict(self.figures), "open_problems": self.open_problems,
                "panels": [asdict(panel) for panel in self.panels]}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Report:
        return cls(date.fromisoformat(data["day"]), str(data["zone"]), str(data["currency"]),
                   stats.DailyFigures(**data["figures"]), int(data["open_problems"]),
                   tuple(PanelLine(**panel) for panel in data.get("panels", ())))


class DailyReport:
    def __init__(self, db: Database, admin_ids: Sequence[int], *, hour: int | None,
                 zone: ZoneInfo, currency: str, fx_rates: Mapping[str, Decimal],
                 watch: PanelWatch | None = None, clock: Callable[[], float] = time.time,
                 on_queued: Callable[[], None] = lambda: None, interval: float = 60) -> None:
        self.db = db
        self.admin_ids = list(admin_ids)
        self.hour = hour
        self.zone = zone
        self.currency = currency
        self.fx_rates = fx_rates
        self.watch = watch
        self._clock = clock
        self._on_queued = on_queued
        self.interval = interval

    def due_day(self) -> date | None:
        """The day whose summary is due now (yesterday, once the hour is reached)."""
        if self.hour is None:
            return None
        local = datetime.fromtimestamp(self._clock(), self.zone)
        if local.hour < self.hour:
            return None
        return local.date() - timedelta(days=1)

    async def build(self, day: date) -> Report:
        await stats.backfill_costs(self.db, self.fx_rates, self.currency)
        figures = await stats.daily_figures(self.db, *day_bounds(day, self.zone))
        panels = []
        if self.watch is not None:
            for name, status in sorted(self.watch.status().items()):
                if status.down_since is not None:
                    panels.append(PanelLine(name, None, ""))
                elif status.balance is not None:
                    panels.append(PanelLine(name, str(status.balance), status.currency or ""))
        return Report(day, self.zone.key, self.currency, figures,
                      await stats_store.open_problems(self.db), tuple(panels))

    async def tick(self) -> bool:
        """Queue the summary if one is due and not yet queued; True when queued."""
        day = self.due_day()
        if day is None or not self.admin_ids:
            return False
        key = day.isoformat()
        if await alert_state.report_queued(self.db, key):
            return False
        report = await self.build(day)
        async with self.db.transaction() as conn:
            if not await alert_state.claim_report(conn, key):
                return False
            await outbox.queue(conn, self.admin_ids, "alert", {"daily_report": report.payload()})
        log.info("daily summary of %s queued", key)
        self._on_queued()
        return True

    async def run(self) -> None:
        """Check every ``interval`` seconds, until cancelled."""
        if self.hour is None:
            return
        while True:
            try:
                await self.tick()
            except Exception:  # the summary must never stop the bot
                log.exception("daily summary failed")
            await asyncio.sleep(self.interval)
