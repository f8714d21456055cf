"""The daily summary: yesterday's books, sent to every admin once a day.

At ``DAILY_REPORT_HOUR`` in ``SHOP_TIMEZONE`` (or at the first check after it,
when the bot was not running then) the summary of the previous shop day goes to
every admin. The day's row in ``daily_reports`` and the admins' outbox rows are
written in one transaction, so it is queued once per day, restarts included.

Profit is turnover minus refunds minus what the panels charge: each order's
``panel_cost`` (Decimal text in its panel's currency) is converted exactly with
that panel's rate and summed in Python. Failed and canceled orders count no
panel cost; a partial order counts its full expected cost (the panel's partial
refund is not known here), so profit errs low, never high.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.money import format_minor, from_minor, to_minor_down
from bot.panel_watch import PanelWatch
from storage import alert_state, outbox
from storage.alert_state import DayFigures
from storage.db import Database

log = logging.getLogger(__name__)


def _stored(moment: datetime) -> str:
    """A UTC time as the database stores them (comparable as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def day_bounds(day: date, zone: ZoneInfo) -> tuple[str, str]:
    """[start, end) of the shop day ``day`` as stored UTC timestamps."""
    start = datetime.combine(day, datetime.min.time(), zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    return _stored(start), _stored(end)


@dataclass(frozen=True, slots=True)
class Report:
    day: date
    figures: DayFigures
    panel_cost: Decimal  # SHOP_CURRENCY, exact
    profit: Decimal


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
        start, end = day_bounds(day, self.zone)
        figures = await alert_state.day_figures(self.db, start, end)
        cost = sum((Decimal(text) * self.fx_rates.get(panel, Decimal(1))
                    for panel, text in figures.panel_costs), Decimal(0))
        money = from_minor(figures.turnover_minor - figures.refunds_minor, self.currency)
        return Report(day, figures, cost, money - cost)

    def render(self, report: Report) -> str:
        f, cur = report.figures, self.currency

        def shown(amount: Decimal) -> str:
            sign = "−" if amount < 0 else ""
            return sign + format_minor(to_minor_down(abs(amount), cur), cur)

        lines = [
            f"📊 Summary of {report.day.isoformat()} ({self.zone.key})",
            f"Orders: {f.orders}",
            f"Turnover: {format_minor(f.turnover_minor, cur)}",
            f"Refunds: {format_minor(f.refunds_minor, cur)}",
            f"Panel cost: {shown(report.panel_cost)}",
            f"Profit: {shown(report.profit)}",
            f"New customers: {f.new_customers}",
            f"Stars top-ups: {f.topups} ({format_minor(f.topups_minor, cur)})",
            f"Problem orders open: {f.open_problems}",
        ]
        if self.watch is not None:
            for name, status in sorted(self.watch.status().items()):
                if status.down_since is not None:
                    lines.append(f"Panel {name}: not answering")
                elif status.balance is not None:
                    lines.append(f"Panel {name}: {status.balance} {status.currency}")
        return "\n".join(lines)

    async def tick(self) -> bool:
        """Queue the summary if one is due and not yet queued; True when queued."""
        day = self.due_day()
        if day is None or not self.admin_ids:
            return False
        key = day.isoformat()
        if await alert_state.report_queued(self.db, key):
            return False
        text = self.render(await self.build(day))
        async with self.db.transaction() as conn:
            if not await alert_state.claim_report(conn, key):
                return False
            await outbox.queue(conn, self.admin_ids, "alert", {"title": text})
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
