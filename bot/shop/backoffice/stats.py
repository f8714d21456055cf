"""The admin dashboard's figures, and the daily figures other reports reuse.

Definitions (README "Admin dashboard" says the same):

* **turnover**: what customers paid for orders: the sum of the ledger's
  ``order`` debits (negative amounts), reported as a positive amount;
* **refunds**: the sum of the ledger's ``refund`` rows (order refunds);
* **panel cost**: for every order that was not refused or canceled (a panel
  refunds a canceled order whole), the panel's charge
  (``orders.charge`` when the panel reported it, else the expected
  ``orders.panel_cost``) in shop minor units at that order's panel fx rate,
  rounded half up (``orders.cost_minor``, kept exact in integers);
* **discounts**: what loyalty tiers and discount codes took off the list
  prices of orders that were not refused or canceled (turnover is already net
  of them);
* **bonuses**: balance the shop gave away that customers can spend on orders:
  promo balance codes and referral commissions, less commissions taken back
  (ledger kinds ``promo``, ``referral``, ``referral_clawback``);
* **profit** = turnover − refunds − panel cost − bonuses.

Periods: "today" starts at local midnight in ``SHOP_TIMEZONE``; "7 days" and
"30 days" are today and the 6 (29) local days before it; "all time" is
everything. Boundaries are computed here with zoneinfo and compared as UTC ISO
strings in SQL; every sum is SQL over integers (storage/stats.py). Nothing here
knows aiogram.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.shop.backoffice.chart import ChartDay, render
from bot.shop.money.amounts import exponent
from storage import stats as stats_store
from storage.db import Database

log = logging.getLogger(__name__)

PERIODS = ("today", "7d", "30d", "all")
STATES = ("submitting", "pending", "in_progress", "completed", "partial", "canceled", "failed",
          "unknown")
BALANCE_TIMEOUT = 3.0  # seconds for each panel's balance call; they run in parallel
CHART_DAYS = 30
_BEGINNING, _END = "0000", "9999"  # before and after any stored time
NO_PANEL_COST = ("failed", "canceled")  # refused by the panel, or refunded whole by it


def cost_minor(amount: Decimal, fx_rate: Decimal, currency: str) -> int:
    """A panel amount in shop minor units at ``fx_rate``, rounded half up: the cost is
    an estimate of what the shop paid, neither side favoured."""
    return int((amount * fx_rate * 10 ** exponent(currency)).to_integral_value(ROUND_HALF_UP))


def iso(moment: datetime) -> str:
    """A time as stored: UTC, milliseconds, 'Z' (2026-12-02T10:14:36.123Z)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def shop_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown SHOP_TIMEZONE %r; using UTC", name)
        return ZoneInfo("UTC")


def local_midnight(now: datetime, zone: ZoneInfo, days_back: int = 0) -> datetime:
    """Local midnight ``days_back`` days before the local day of ``now`` (DST-safe:
    the calendar date is stepped, then its midnight is placed in the zone)."""
    day = now.astimezone(zone).date() - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def period_ranges(now: datetime, zone: ZoneInfo) -> list[stats_store.Range]:
    end = _END
    return [("today", iso(local_midnight(now, zone)), end),
            ("7d", iso(local_midnight(now, zone, 6)), end),
            ("30d", iso(local_midnight(now, zone, 29)), end),
            ("all", _BEGINNING, end)]


# ------------------------------------------------------------ figures

@dataclass(frozen=True, slots=True)
class Figures:
    """One period's money, in shop minor units, and its orders by state."""

    orders: int
    by_state: dict[str, int]
    turnover_minor: int
    refunds_minor: int
    cost_minor: int
    discounts_minor: int = 0
    bonuses_minor: int = 0

    @property
    def profit_minor(self) -> int:
        return self.turnover_minor - self.refunds_minor - self.cost_minor - self.bonuses_minor


BONUS_KINDS = ("promo", "referral", "referral_clawback")


def _figures(label: str, orders: Mapping[tuple[str, str], stats_store.OrderSums],
             ledger: Mapping[tuple[str, str], int]) -> Figures:
    by_state = {state: sums.count for (lab, state), sums in orders.items() if lab == label}
    kept = [sums for (lab, state), sums in orders.items()
            if lab == label and state not in NO_PANEL_COST]
    return Figures(orders=sum(by_state.values()), by_state=by_state,
                   turnover_minor=-ledger.get((label, "order"), 0),
                   refunds_minor=ledger.get((label, "refund"), 0),
                   cost_minor=sum(sums.cost_minor for sums in kept),
                   discounts_minor=sum(sums.discount_minor for sums in kept),
                   bonuses_minor=sum(ledger.get((label, kind), 0) for kind in BONUS_KINDS))


async def period_figures(db: Database,
                         ranges: list[stats_store.Range]) -> dict[str, Figures]:
    orders = await stats_store.order_sums(db, ranges)
    ledger = await stats_store.ledger_sums(db, ranges, ("order", "refund", *BONUS_KINDS))
    return {label: _figures(label, orders, ledger) for label, _, _ in ranges}


async def nested_figures(db: Database,
                         ranges: list[stats_store.Range]) -> dict[str, Figures]:
    """Periods that all end at the same time (today within 7 days within 30 within
    all): summed in disjoint slices, so SQLite reads each row once, then added up."""
    starts = sorted({start for _, start, _ in ranges})
    end = ranges[0][2]
    slices = [(start, start, finish) for start, finish in zip(starts, [*starts[1:], end],
                                                             strict=True)]
    parts = await period_figures(db, slices)
    out = {}
    for label, start, _ in ranges:
        inside = [parts[s] for s, _, _ in slices if s >= start]
        by_state: dict[str, int] = {}
        for part in inside:
            for state, count in part.by_state.items():
                by_state[state] = by_state.get(state, 0) + count
        out[label] = Figures(sum(p.orders for p in inside), by_state,
                             sum(p.turnover_minor for p in inside),
                             sum(p.refunds_minor for p in inside),
                             sum(p.cost_minor for p in inside),
                             sum(p.discounts_minor for p in inside),
                             sum(p.bonuses_minor for p in inside))
    return out


@dataclass(frozen=True, slots=True)
class DailyFigures:
    """What happened in [start, end): for the daily summary and the chart."""

    orders: int
    turnover_minor: int
    refunds_minor: int
    cost_minor: int
    new_customers: int
    topups: int
    topups_minor: int
    discounts_minor: int = 0
    bonuses_minor: int = 0

    @property
    def profit_minor(self) -> int:
        return self.turnover_minor - self.refunds_minor - self.cost_minor - self.bonuses_minor


async def daily_figures(db: Database, start_utc_iso: str, end_utc_iso: str) -> DailyFigures:
    """Orders, turnover, refunds, panel cost, profit, new customers and paid Stars
    top-ups of [start, end), bounds as stored UTC ISO strings."""
    ranges = [("day", start_utc_iso, end_utc_iso)]
    figures = (await period_figures(db, ranges))["day"]
    new = (await stats_store.new_customers(db, ranges)).get("day", 0)
    topups, topups_minor = await stats_store.paid_topups(db, start_utc_iso, end_utc_iso)
    return DailyFigures(figures.orders, figures.turnover_minor, figures.refunds_minor,
                        figures.cost_minor, new, topups, topups_minor, figures.discounts_minor,
                        figures.bonuses_minor)


async def chart_days(db: Database, zone: ZoneInfo, now: datetime | None = None,
                     days: int = CHART_DAYS) -> list[ChartDay]:
    """The last ``days`` local days, oldest first, today included."""
    now = now or datetime.now(UTC)
    ranges = []
    for back in range(days - 1, -1, -1):
        start = local_midnight(now, zone, back)
        end = local_midnight(now, zone, back - 1)
        ranges.append((start.date().isoformat(), iso(start), iso(end)))
    figures = await period_figures(db, ranges)
    return [ChartDay(label, figures[label].orders, figures[label].turnover_minor,
                     figures[label].profit_minor) for label, _, _ in ranges]


async def chart_png(db: Database, zone: ZoneInfo, currency: str,
                    now: datetime | None = None) -> bytes:
    """The 30-day chart as PNG, drawn in a thread (pure Python: ~20 ms of CPU)."""
    days = await chart_days(db, zone, now)
    return await asyncio.to_thread(render, days, currency)


# ------------------------------------------------------------ panel balances

class BalanceSource(Protocol):
    def balance(self) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class PanelBalance:
    panel: str
    amount: Decimal | None  # None: unreachable
    currency: str
    shop_minor: int | None  # in shop minor units at the panel's fx rate (rounded down)
    low: bool  # below PANEL_BALANCE_ALERT


async def panel_balances(panels: Mapping[str, BalanceSource], fx_rates: Mapping[str, Decimal],
                         currency: str, alert_below: Decimal | None,
                         timeout: float = BALANCE_TIMEOUT) -> list[PanelBalance]:
    """Each panel's live balance, all asked at once, each bounded by ``timeout``."""
    async def one(name: str, client: BalanceSource) -> PanelBalance:
        try:
            answer = await asyncio.wait_for(client.balance(), timeout)
            amount, panel_currency = Decimal(answer.amount), str(answer.currency)
        except Exception as exc:  # any failure is "unreachable", never a crash
            log.warning("panel %s balance: %s", name, exc)
            return PanelBalance(name, None, "", None, False)
        fx = fx_rates.get(name, Decimal(1))
        shop = int((amount * fx * 10 ** exponent(currency)).to_integral_value(ROUND_FLOOR))
        low = alert_below is not None and shop < alert_below * 10 ** exponent(currency)
        return PanelBalance(name, amount, panel_currency, shop, low)

    return list(await asyncio.gather(*(one(n, c) for n, c in panels.items())))


# ------------------------------------------------------------ the dashboard

@dataclass(frozen=True, slots=True)
class Dashboard:
    customers: int
    active_day: int
    active_week: int
    new_today: int
    periods: dict[str, Figures]
    balances: list[PanelBalance]
    currency: str


async def backfill_costs(db: Database, fx_rates: Mapping[str, Decimal], currency: str,
                         batch: int = 5000) -> int:
    """Give orders placed before migration 0011 their fx rate (today's, the best
    known) and cost once; cheap when there are none (a partial index)."""
    done = 0
    while rows := await stats_store.costless(db, batch):
        costs = []
        for row in rows:
            fx = _decimal(row.fx_rate) or fx_rates.get(row.panel, Decimal(1))
            amount = _decimal(row.charge) or _decimal(row.panel_cost) or Decimal(0)
            costs.append((row.id, str(fx), cost_minor(amount, fx, currency)))
        await stats_store.set_costs(db, costs)
        done += len(rows)
    return done


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


async def dashboard(db: Database, *, panels: Mapping[str, BalanceSource],
                    fx_rates: Mapping[str, Decimal], currency: str, timezone: str | None,
                    alert_below: Decimal | None, now: datetime | None = None,
                    balance_timeout: float = BALANCE_TIMEOUT) -> Dashboard:
    """Everything the dashboard shows; the panels are asked while SQLite sums."""
    now = now or datetime.now(UTC)
    zone = shop_zone(timezone)
    balances = asyncio.create_task(panel_balances(panels, fx_rates, currency, alert_below,
                                                  balance_timeout))
    try:
        await backfill_costs(db, fx_rates, currency)
        ranges = period_ranges(now, zone)
        periods = await nested_figures(db, ranges)
        people = await stats_store.customers(db, iso(now - timedelta(days=1)),
                                             iso(now - timedelta(days=7)))
        new = await stats_store.new_customers(db, ranges[:1])
    except BaseException:
        balances.cancel()
        raise
    return Dashboard(people.total, people.active_day, people.active_week, new.get("today", 0),
                     periods, await balances, currency)



class ShopStats:
    """The dashboard and its chart for this shop.

    The database, the panels, their fx rates, the currency, the zone and the
    balance alert level are bound once at start-up, so the admin screens ask for
    figures without holding the database or the panel clients.
    """

    def __init__(self, db: Database, *, panels: Mapping[str, BalanceSource],
                 fx_rates: Mapping[str, Decimal], currency: str, timezone: str | None,
                 alert_below: Decimal | None) -> None:
        self.db = db
        self.panels = panels
        self.fx_rates = fx_rates
        self.currency = currency
        self.timezone = timezone
        self.alert_below = alert_below

    async def dashboard(self, now: datetime | None = None) -> Dashboard:
        return await dashboard(self.db, panels=self.panels, fx_rates=self.fx_rates,
                               currency=self.currency, timezone=self.timezone,
                               alert_below=self.alert_below, now=now)

    async def chart_png(self, now: datetime | None = None) -> bytes:
        return await chart_png(self.db, shop_zone(self.timezone), self.currency, now)
