"""Following orders and refills on their panels until they are final.

One loop per panel, so a slow or broken panel never delays another. Each cycle
asks for every open order of the panel with the multi-id ``status`` call (100 ids
a request, the client bounds how many are in flight) and writes what changed
through ``apply_statuses``: state, history, refund and notice in one transaction
per request's worth of orders. An unreachable panel is retried with a growing
pause (up to ``MAX_BACKOFF``); nothing is refunded because a panel is down.

An order the panel answers "Incorrect order ID" for ``MISSING_POLLS`` cycles in a
row is flagged to the admins, never refunded on a guess. So is an order whose
answer can't be used for as many cycles (an item the parser could not read, a
Partial without remains, any other item error): it keeps its state, the answer
is kept raw, and the rest of the panel's answer is applied as usual. Refills asked for from
an order card are followed with ``refill_status`` (the multi form where the
panel has it, one request per refill otherwise) and the owner is told the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.observability import metrics
from bot.panel import (
    ItemError,
    OrderStatus,
    PanelClient,
    PanelError,
    PanelRejected,
    PanelUnavailable,
    RefillStatus,
    RejectReason,
)
from bot.shop.messaging.alerts import Alert
from bot.shop.orders.service import AppliedStatus, apply_statuses, status_change
from storage import orders as order_store
from storage import outbox
from storage.db import Database

log = logging.getLogger(__name__)

MISSING_POLLS = 3
MAX_BACKOFF = 15 * 60
BATCH = 100
# Open orders read and asked at a time: with 10,000 open orders, one read of them
# all held ~5 MB and the database thread for 60-250 ms (in front of customers'
# updates); a page keeps both small, and still fills the client's connections.
PAGE = 1_000
# Status changes applied per transaction. A transaction holds the database, and a
# customer's statement waits behind it: a hundred refunds at once held it 35-80 ms
# and set the 99th percentile of Confirm in bench/soak.py (97 ms in a tracker's
# window, rising as the tables grew); ten hold it a few milliseconds.
APPLY_AT_ONCE = 10



@dataclass
class CycleReport:
    """What one poll of one panel did (for logs, tests and bench/tracker.py)."""

    panel: str
    orders: int = 0
    changed: int = 0
    refunded_minor: int = 0
    flagged: int = 0
    refills_finished: int = 0
    seconds: float = 0.0
    db_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class Tracker:
    def __init__(self, db: Database, panels: Mapping[str, PanelClient], *, interval: float,
                 alert: Alert, on_notice: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.panels = panels
        self.interval = interval
        self._alert = alert
        self._on_notice = on_notice
        self._single_refill_status: set[str] = set()  # panels without the multi form
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Track every panel until cancelled, or until ``stop()`` (then the cycle under
        way finishes first: its statuses and refunds are applied, not cut off)."""
        await asyncio.gather(*(self._follow(name) for name in self.panels))

    def stop(self) -> None:
        self._stopping.set()

    async def _follow(self, panel: str) -> None:
        pause = self.interval
        while not self._stopping.is_set():
            try:
                report = await self.poll(panel)
            except Exception as exc:  # the whole cycle failed; a bug must not stop tracking
                pause = min(MAX_BACKOFF, max(self.interval, pause * 2))
                if isinstance(exc, PanelError):
                    log.warning("panel %s: tracking paused %.0f s: %s", panel, pause, exc)
                else:
                    log.exception("panel %s: tracking cycle failed", panel)
            else:
                pause = self.interval
                if report.changed or report.flagged or report.refills_finished:
                    log.info("panel %s: %d orders, %d changed, %d flagged, %d refills done"
                             " (%.2f s)", panel, report.orders, report.changed, report.flagged,
                             report.refills_finished, report.seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def poll(self, panel: str) -> CycleReport:
        """One cycle for ``panel``: every open order, a page at a time, then every
        open refill. A stop (``stop()``) ends the cycle after the page under way.

        Raises ``PanelUnavailable`` when the panel answered nothing for a whole page
        (the rest of the cycle would only wait on it too).
        """
        started = time.perf_counter()
        report = CycleReport(panel)
        client = self.panels[panel]

        async def ask(chunk: list[order_store.TrackedOrder]
                      ) -> dict[str, OrderStatus | ItemError] | None:
            try:
                return await client.statuses(o.panel_order_id for o in chunk)
            except PanelError as exc:
                report.errors.append(str(exc))
                return None

        after_id = 0
        while True:
            db_started = time.perf_counter()
            page = await order_store.tracked(self.db, panel, after_id=after_id, limit=PAGE)
            report.db_seconds += time.perf_counter() - db_started
            report.orders += len(page)
            chunks = [page[i:i + BATCH] for i in range(0, len(page), BATCH)]
            # Ask the page's batches first (the client bounds the requests in flight),
            # then write: one transaction per request's worth of answers.
            answers = await asyncio.gather(*(ask(chunk) for chunk in chunks))
            if chunks and all(part is None for part in answers):
                raise PanelUnavailable(f"no status answer ({(report.errors or ['empty'])[0]})",
                                       panel=panel, action="status")
            for chunk, part in zip(chunks, answers, strict=True):
                if part is not None:
                    await self._record(report, chunk, part)
            if len(page) < PAGE or self._stopping.is_set():
                break
            after_id = page[-1].id
        await self._follow_refills(panel, client, report)
        report.seconds = time.perf_counter() - started
        metrics.tracker_cycle(panel, report.seconds)
        return report

    async def _record(self, report: CycleReport, asked: list[order_store.TrackedOrder],
                      answers: Mapping[str, OrderStatus | ItemError]) -> None:
        """Apply one request's answers. An order the answer leaves out (or names by
        another spelling of its id) counts like "Incorrect order ID": flagged after
        ``MISSING_POLLS`` such polls, never refunded on a guess."""
        statuses: dict[int, OrderStatus] = {}
        missing: list[int] = []
        unusable: dict[int, str] = {}
        known_again: list[int] = []
        for order in asked:
            answer = answers.get(order.panel_order_id)
            if answer is None:
                missing.append(order.id)
                continue
            if isinstance(answer, ItemError):
                if answer.reason is RejectReason.BAD_ORDER:
                    missing.append(order.id)
                else:
                    unusable[order.id] = answer.raw or answer.message
                continue
            if order.missing_polls or order.unusable_polls:
                known_again.append(order.id)
            if status_change(order, answer) is not None:
                statuses[order.id] = answer
        db_started = time.perf_counter()
        applied: list[AppliedStatus] = []
        changes = list(statuses.items())
        for start in range(0, len(changes), APPLY_AT_ONCE):
            applied += await apply_statuses(
                self.db, dict(changes[start:start + APPLY_AT_ONCE]), source="tracker")
        await order_store.reset_missing(self.db, known_again)
        flagged = await order_store.count_missing(self.db, missing, MISSING_POLLS)
        flagged_unusable = await order_store.count_unusable(self.db, unusable, MISSING_POLLS)
        report.db_seconds += time.perf_counter() - db_started
        report.changed += len(applied)
        report.refunded_minor += sum(a.refund_minor for a in applied)
        report.flagged += len(flagged) + len(flagged_unusable)
        if applied:
            self._on_notice()
        # Plain text: bot/shop/messaging/alerts.py escapes panel-supplied text when it is sent. One key
        # per panel and kind, so a panel that loses many orders at once is one alert.
        for order in flagged:
            await self._alert(
                f"⚠️ Order #{order.id}: panel {order.panel} answered \"Incorrect order ID\" for"
                f" panel order {order.panel_order_id or '?'}, or left it out of its answer,"
                f" {MISSING_POLLS} times in a row. It was not refunded; check it on the panel.",
                key=f"missing:{order.panel}")
        for order, raw in flagged_unusable:
            await self._alert(
                f"⚠️ Order #{order.id}: panel {order.panel} sent an answer the bot can't use for"
                f" panel order {order.panel_order_id or '?'} {MISSING_POLLS} times in a row. It"
                f" keeps its state ({order.state}) and was not refunded; check it on the panel."
                " The last answer:", details=raw[:500], key=f"unusable:{order.panel}")

    async def _follow_refills(self, panel: str, client: PanelClient,
                              report: CycleReport) -> None:
        refills = await order_store.open_refills(self.db, panel)
        if not refills:
            return
        ids = [r.panel_refill_id for r in refills]
        answers: dict[str, RefillStatus | ItemError] = {}
        if panel not in self._single_refill_status:
            try:
                answers = await client.refill_statuses(ids)
            except PanelRejected:
                log.info("panel %s has no multi refill_status; asking one refill at a time",
                         panel)
                self._single_refill_status.add(panel)
            except PanelError as exc:
                report.errors.append(str(exc))
                return
        if panel in self._single_refill_status:
            answers = await _one_by_one(client, ids)
        finished = []
        for refill in refills:
            answer = answers.get(refill.panel_refill_id)
            if not isinstance(answer, RefillStatus) or not answer.recognised:
                continue
            if answer.status.value == refill.state:
                continue
            async with self.db.transaction() as conn:
                moved = await order_store.set_refill_state(conn, refill.id, answer.status.value,
                                                           answer.raw_status)
                if moved and answer.is_final:
                    finished.append(refill)
                    if not refill.quiet:
                        await outbox.queue(conn, [refill.user_id], "refill",
                                           {"refill": refill.panel_refill_id,
                                            "state": answer.status.value},
                                           order_id=refill.order_id)
        report.refills_finished += len(finished)
        if any(not refill.quiet for refill in finished):
            self._on_notice()


async def _one_by_one(client: PanelClient, ids: list[str]) -> dict[str, RefillStatus | ItemError]:
    answers: dict[str, RefillStatus | ItemError] = {}
    for refill_id in ids:
        try:
            answers[refill_id] = await client.refill_status(refill_id)
        except PanelRejected as exc:
            answers[refill_id] = ItemError(exc.message, exc.reason)
        except PanelError:
            break  # the panel is struggling: the rest waits for the next cycle
    return answers

