"""Watching the panels: a balance running low, a panel down, a panel back.

``PanelWatch.run()`` asks every panel its balance every ``interval`` seconds;
``poke()`` asks sooner (after a catalog refresh, after a placed order), in the
background and at most once per panel per ``debounce`` seconds, so a customer's
order never waits for it. Any ``PanelError`` from the balance call counts as the
panel being down, ``PanelRejected`` BAD_KEY included: the shop cannot order
there either way, and the alert quotes the panel's words ("invalid API key").

Each alert goes to every admin once per event, not per check: its "sent" mark
and its outbox rows are written in one transaction (storage/alert_state.py), so
a restart does not repeat it. The low-balance alert is re-armed when the balance
is back at or above ``PANEL_BALANCE_ALERT``; the "back" alert is sent only when
the "down" alert was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.observability.redaction import redact
from bot.panel import PanelClient, PanelError
from bot.shop.money.amounts import to_minor_down
from bot.shop.money.formatting import money
from storage import alert_state, outbox
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PanelStatus:
    """The last known state of one panel (the dashboard, /healthz)."""

    panel: str
    balance: Decimal | None  # panel currency
    currency: str | None
    balance_shop: Decimal | None  # converted with the panel's rate, SHOP_CURRENCY
    checked_at: float | None  # unix time of the last successful check
    down_since: float | None
    down_error: str | None


class PanelWatch:
    def __init__(self, db: Database, panels: Mapping[str, PanelClient], admin_ids: Sequence[int],
                 *, fx_rates: Mapping[str, Decimal], shop_currency: str,
                 balance_alert: Decimal | None, down_minutes: float = 10,
                 interval: float = 60, debounce: float = 60,
                 clock: Callable[[], float] = time.time,
                 on_queued: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.panels = panels
        self.admin_ids = list(admin_ids)
        self.fx_rates = fx_rates
        self.shop_currency = shop_currency
        self.balance_alert = balance_alert
        self.down_seconds = down_minutes * 60
        self.interval = interval
        self.debounce = debounce
        self._clock = clock
        self._on_queued = on_queued
        self._status: dict[str, PanelStatus] = {}
        self._last_check: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded = False

    # ------------------------------------------------------------- reading

    def status(self) -> dict[str, PanelStatus]:
        """The last known state of every panel, by name (nothing yet: not checked)."""
        return dict(self._status)

    def is_down(self, panel: str) -> bool:
        """Whether the last check of ``panel`` failed (orders skip it: routing)."""
        status = self._status.get(panel)
        return status is not None and status.down_since is not None

    def to_shop(self, panel: str, amount: Decimal) -> Decimal:
        return amount * self.fx_rates.get(panel, Decimal(1))

    async def load(self) -> None:
        """What the last run knew, so ``status()`` answers before the first check."""
        for row in await alert_state.load(self.db):
            self._status[row.panel] = PanelStatus(
                row.panel, row.balance, row.currency,
                None if row.balance is None else self.to_shop(row.panel, row.balance),
                row.checked_at, row.down_since, row.down_error)
        self._loaded = True

    # ------------------------------------------------------------- checking

    def poke(self, panel: str | None = None) -> None:
        """Check ``panel`` (every panel: None) soon, in the background; a panel
        checked less than ``debounce`` seconds ago, or being checked, is skipped."""
        now = self._clock()
        for name in [panel] if panel is not None else list(self.panels):
            if name not in self.panels or now - self._last_check.get(name, -1e18) < self.debounce:
                continue
            self._last_check[name] = now
            task = asyncio.create_task(self._guarded(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the checks ``poke`` started (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def check_all(self) -> None:
        await asyncio.gather(*(self._guarded(name) for name in self.panels))

    async def run(self) -> None:
        """Check every panel every ``interval`` seconds, until cancelled."""
        while True:
            await self.check_all()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _guarded(self, name: str) -> None:
        try:
            await self.check(name)
        except Exception:  # a watch must never die of one panel's surprise
            log.exception("panel watch: checking %s failed", name)

    async def check(self, name: str) -> None:
        """One balance call to panel ``name``, and the alerts it makes due."""
        if not self._loaded:
            await self.load()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            self._last_check[name] = self._clock()
            try:
                balance = await self.panels[name].balance()
            except PanelError as exc:
                await self._down(name, str(exc))
                return
            await self._up(name, balance.amount, balance.currency)

    async def _down(self, name: str, error: str) -> None:
        now = self._clock()
        error = redact(error)[:300]
        async with self.db.transaction() as conn:
            since = await alert_state.record_down(conn, name, error, now, self.down_seconds)
            if since is not None and self.admin_ids:
                minutes = max(1, int((now - since) // 60))
                await outbox.queue(conn, self.admin_ids, "alert", {"title": (
                    f"🔴 Panel {name} has not answered for {minutes} minute(s): {error}."
                    " Orders to it fail or wait until it is back.")})
        old = self._status.get(name)
        self._status[name] = PanelStatus(
            name, old.balance if old else None, old.currency if old else None,
            old.balance_shop if old else None, old.checked_at if old else None,
            old.down_since if old and old.down_since is not None else now, error)
        if since is not None:
            log.error("panel %s down since %s: %s", name, since, error)
            self._on_queued()

    async def _up(self, name: str, amount: Decimal, currency: str) -> None:
        now = self._clock()
        shop_amount = self.to_shop(name, amount)
        queued = False
        async with self.db.transaction() as conn:
            if await alert_state.record_up(conn, name, amount, currency, now) and self.admin_ids:
                await outbox.queue(conn, self.admin_ids, "alert", {
                    "title": f"🟢 Panel {name} answers again."})
                queued = True
            if self.balance_alert is not None:
                if shop_amount < self.balance_alert:
                    if await alert_state.mark_low(conn, name, now) and self.admin_ids:
                        shown = money(to_minor_down(shop_amount, self.shop_currency),
                                      self.shop_currency)
                        limit = money(to_minor_down(self.balance_alert, self.shop_currency),
                                      self.shop_currency)
                        await outbox.queue(conn, self.admin_ids, "alert", {"title": (
                            f"💸 Panel {name}'s balance is low: {amount} {currency}"
                            f" (≈ {shown}), under {limit}. Top it up before orders"
                            " are refused.")})
                        queued = True
                else:
                    await alert_state.rearm_low(conn, name)
        self._status[name] = PanelStatus(name, amount, currency, shop_amount, now, None, None)
        if queued:
            self._on_queued()
