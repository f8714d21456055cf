"""Placing orders safely, and the customer's view of them afterwards.

``place`` runs three steps, never more than once per draft token:

1. one transaction debits the balance (never below zero) and inserts the order
   in state ``submitting`` with the draft's unique token;
2. the panel's ``add``; when that panel certainly did not take it (nothing
   sent, marked down, or a refusal in ``FAILS_OVER``) and the service has a
   backup that may (bot/shop/routing/failover.py), the order row is moved to the
   backup in one statement and sent there: never two panels for one order;
3. one transaction records the outcome: ``pending`` with the panel's id;
   ``failed`` with a refund when the panels refused or provably never saw it;
   ``unknown`` (no refund, admins alerted) when the request may have reached the
   panel, or the panel answered an order id that another order already has.

Before step 1 the form is validated and priced again: never more than the
price the customer was shown is charged, and never at a loss: when no panel's
cost leaves ``MIN_MARGIN_PERCENT`` of that price (or every one is marked down),
nothing is charged (``NO_PANEL``). The price is the customer's: the list
price less their discount (bot/shop/growth/discounts.py). A discount code is
consumed in step 1's transaction and given back when the order fails or is
refunded in full.

A second confirm of the same draft hits the token's unique index and returns
the first order.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol

import aiosqlite

from bot.observability import metrics
from bot.panel import (
    CancelAccepted,
    ItemError,
    OrderState,
    OrderStatus,
    PanelAmbiguous,
    PanelClient,
    PanelError,
    PanelRejected,
    PanelUnavailable,
    RejectReason,
)
from bot.panel.order_types import OrderType
from bot.shop.backoffice.stats import cost_minor
from bot.shop.catalog.pricing import Discount, Pricer, Quote
from bot.shop.catalog.shop_catalog import ShopCatalog
from bot.shop.growth.discounts import Discounts
from bot.shop.messaging.alerts import Alert, no_alert
from bot.shop.money.amounts import MAX_AMOUNT_MINOR
from bot.shop.orders import form
from bot.shop.routing.failover import (
    DOWN,
    FAILOVER_REASONS,
    FAILS_OVER,
    UNAVAILABLE,
    Candidate,
    Plan,
    Router,
)
from storage import audit, ledger, outbox
from storage import catalog as catalog_store
from storage import orders as order_store
from storage import promo as promo_store
from storage import stats as stats_store
from storage.catalog import StoredService
from storage.db import Database, in_thread
from storage.orders import StoredOrder
from storage.outbox import OrderNotice

log = logging.getLogger(__name__)

REFRESH_EVERY_SECONDS = 30
_FINAL_STATES = {OrderState.CANCELED.value, OrderState.FAILED.value, OrderState.PARTIAL.value,
                 OrderState.COMPLETED.value}
_UNDONE_STATES = {OrderState.CANCELED.value, OrderState.FAILED.value}  # refunded in full
Notify = Literal["all", "refunds"]


class Outcome(StrEnum):
    PLACED = "placed"
    REJECTED = "rejected"  # the panel refused; refunded
    UNAVAILABLE = "unavailable"  # the panel never saw it; refunded
    AMBIGUOUS = "ambiguous"  # may exist on the panel; being checked, not refunded
    INSUFFICIENT = "insufficient"  # not enough balance; nothing happened
    PRICE_CHANGED = "price_changed"  # dearer than the price shown; nothing happened
    ALREADY = "already"  # this draft was confirmed before
    GONE = "gone"  # the service is no longer sold
    NO_PANEL = "no_panel"  # no panel may take it now (down, or at a loss); nothing charged


OUTCOMES = frozenset(Outcome)  # the labels the metrics may count


@dataclass(frozen=True, slots=True)
class Placement:
    outcome: Outcome
    order: StoredOrder | None = None
    reason: RejectReason | None = None
    message: str = ""
    missing_minor: int = 0
    price_minor: int = 0  # PRICE_CHANGED: the price now


@dataclass(frozen=True, slots=True)
class OrderActions:
    refill: bool
    cancel: bool


class ServiceGone(Exception):
    """The service is no longer on sale."""


class Repeated(Exception):
    """The same wholesale API order came in again within a minute: the first one is
    the answer (storage/orders.py ``api_repeat_in``)."""

    def __init__(self, order: StoredOrder) -> None:
        super().__init__(order.id)
        self.order = order


class DiscountGone(Exception):
    """The discount code a quote counted on can't be used any more (used up by
    another customer a moment ago, disabled, expired): the order was not opened."""


# Panel refusals that say the shop's own panel account is unusable (not the
# customer's order): customers see "temporarily unavailable", admins are told
# once per outage (until an order goes through on that panel again). Alerts are
# plain text (bot/shop/messaging/alerts.py escapes and redacts them).
ACCOUNT_TROUBLE = {
    RejectReason.NOT_ENOUGH_FUNDS: "⚠️ Your panel balance is too low on {panel}: it refused a"
                                   " customer's order (#{order}), {fate}. Top up the panel.",
    RejectReason.BAD_KEY: "⚠️ Panel {panel} refused the API key: it refused a customer's order"
                          " (#{order}), {fate}, and it will refuse every order until its key"
                          " is fixed.",
}


@dataclass(frozen=True, slots=True)
class AdminDetails:
    history: list[order_store.HistoryRow]
    charge: str | None  # what the panel says it charged, in its currency
    panel_cost: str | None  # what it was expected to charge
    refills: list[tuple[str, str]]


class OrderService:
    def __init__(self, db: Database, panels: Mapping[str, PanelClient], pricer: Pricer,
                 catalog: ShopCatalog | None = None, alert: Alert = no_alert,
                 on_panel_used: Callable[[str], None] = lambda _panel: None,
                 discounts: Discounts | None = None, router: Router | None = None) -> None:
        self.db = db
        # Which panels may take an order (the service's own, its backups), best first.
        self.router = router or Router(db, panels=panels, fx_rates=pricer.fx_rates,
                                       shop_currency=pricer.shop_currency)
        self.discounts = discounts
        self._on_panel_used = on_panel_used  # the panel watch's poke: balance checked later
        self.panels = panels
        self.pricer = pricer
        self.catalog = catalog or ShopCatalog(db)
        self._alert = alert
        self._account_trouble: set[tuple[str, RejectReason]] = set()  # alerted, not over
        self._no_panel: set[int] = set()  # services alerted as unsellable, until one sells

    async def on_sale(self, ref: int) -> StoredService:
        stored = await self.catalog.on_sale(ref)
        if (stored is None or not stored.active or stored.service.order_type is None
                or stored.panel not in self.panels):
            raise ServiceGone(ref)
        return stored

    async def quote(self, stored: StoredService, values: Mapping[str, str],
                    customer_id: int) -> Quote:
        """Validate a complete form against ``stored`` (as read now) and price it for
        ``customer_id``: the list price less their discount."""
        order_type = stored.service.order_type
        assert order_type is not None
        order_type.validate(values, stored.service.limits)
        quote = await self.pricer.quote(stored, values)
        if self.discounts is None:
            return quote
        discount, code_kept = await self.discounts.best(customer_id, quote.price_minor)
        # A discount never takes the price below the shop's margin on its own panel:
        # it is cut (and the confirmation says so) rather than the order refused.
        return quote.with_discount(discount, code_kept,
                                   self.router.lowest_price_minor(stored, quote.panel_cost))

    async def next_step(self, customer_id: int, draft: form.Draft | None,
                        answer: form.Answer = None) -> form.FormStep:
        """Take the customer's ``answer`` into ``draft`` and say what they see next.

        The one call the order conversation makes per update, so that which field
        comes next, what an answer means and what the confirmation shows are
        decided here, against the service as it is now, and not in the handler.
        ``draft`` is ``None`` when the stored form could not be read. The draft
        is changed in place; the caller stores it unless the step says otherwise
        (``AskField.wrong_answer``, ``NothingToAnswer``, ``FormExpired``).
        """
        if draft is None:
            return form.FormExpired()
        try:
            stored = await self.on_sale(draft.ref)
        except ServiceGone:
            return form.FormExpired()
        step = form.advance(stored, draft, answer)
        if not isinstance(step, form.FormComplete):
            return step
        quote = await self.quote(stored, draft.values, customer_id)
        draft.show_confirmation(quote.price_minor)
        balance = await ledger.balance_of(self.db, customer_id)  # what Confirm pays from
        return form.ConfirmOrder(stored, draft, quote, balance)

    async def progress(self, draft: form.Draft) -> form.Progress | None:
        """How far ``draft`` is, read from the catalog in memory (no database);
        ``None`` when its service is no longer sold."""
        try:
            return form.progress(await self.on_sale(draft.ref), draft)
        except ServiceGone:
            return None

    async def place(self, user_id: int, ref: int, values: Mapping[str, str], token: str,
                    shown_price_minor: int | None, *,
                    api_repeat_key: str | None = None,
                    guard: Callable[[sqlite3.Connection], None] | None = None) -> Placement:
        """Place the draft ``token`` once, for at most ``shown_price_minor``.

        The form is validated and priced again here, on the server, against the
        service as it is now: a ``FieldError`` when it no longer fits (the caller
        asks that field again); ``PRICE_CHANGED`` with nothing charged when it
        now costs more than the customer was shown (or nothing was shown); a
        lower price than shown is what is charged.

        ``api_repeat_key``: placed through the wholesale API; when the customer's
        API order with that key was opened in the last minute (and did not fail),
        that order is answered (``ALREADY``) and nothing else happens.

        ``guard``: called first in the transaction that opens the order; an exception
        it raises leaves nothing done and comes out of ``place`` (the wholesale API
        checks there that the request's key still works).
        """
        placement = await self._place(user_id, ref, values, token, shown_price_minor,
                                      api_repeat_key, guard)
        metrics.order_placed(placement.outcome, OUTCOMES)
        return placement

    async def _place(self, user_id: int, ref: int, values: Mapping[str, str], token: str,
                     shown_price_minor: int | None, api_repeat_key: str | None,
                     guard: Callable[[sqlite3.Connection], None] | None) -> Placement:
        try:
            stored = await self.on_sale(ref)
        except ServiceGone:
            existing = await order_store.by_token(self.db, token)
            return Placement(Outcome.ALREADY, existing) if existing else Placement(Outcome.GONE)
        quote = await self.quote(stored, values, user_id)
        if shown_price_minor is None or quote.price_minor > shown_price_minor:
            existing = await order_store.by_token(self.db, token)
            if existing is not None:  # a replay of a draft placed before the price moved
                return Placement(Outcome.ALREADY, existing)
            return Placement(Outcome.PRICE_CHANGED, price_minor=quote.price_minor)
        if quote.price_minor > MAX_AMOUNT_MINOR:  # more than any balance can hold
            return Placement(Outcome.INSUFFICIENT, missing_minor=quote.price_minor)
        order_type = stored.service.order_type
        assert order_type is not None
        plan = await self.router.plan(stored, values, quote.price_minor)
        if plan.skipped_for_margin:
            metrics.skipped_for_margin(plan.skipped_for_margin)
        if all(self.router.is_down(c.panel) for c in plan.candidates):  # (none at all too)
            existing = await order_store.by_token(self.db, token)
            if existing is not None:
                return Placement(Outcome.ALREADY, existing)
            for candidate in plan.candidates:
                self._on_panel_used(candidate.panel)  # asked again soon: it may be back
            await self._tell_no_panel(stored, plan)
            return Placement(Outcome.NO_PANEL)
        first = plan.candidates[0]
        try:
            order = await self.db.transact(
                _open_order, token=token, user_id=user_id, panel=first.panel,
                service_ref=stored.ref, service_id=first.stored.service.id,
                service_name=stored.service.name, order_type=order_type.name,
                fields=order_type.add_params(values), quantity=quote.quantity,
                price_minor=quote.price_minor, currency=self.pricer.shop_currency,
                panel_cost=first.cost, fx_rate=first.fx_rate, cost_minor=first.cost_minor,
                discount=quote.discount, discount_minor=quote.discount_minor, now=time.time(),
                api_repeat_key=api_repeat_key, guard=guard,
            )
        except Repeated as repeat:
            return Placement(Outcome.ALREADY, repeat.order)
        except DiscountGone:  # priced again without it: dearer than shown, nothing charged
            quote = await self.quote(stored, values, user_id)
            return Placement(Outcome.PRICE_CHANGED, price_minor=quote.price_minor)
        except ledger.InsufficientFunds as exc:
            return Placement(Outcome.INSUFFICIENT,
                             missing_minor=exc.needed_minor - exc.balance_minor)
        except sqlite3.IntegrityError:
            # This draft was confirmed before (a replay, or a concurrent tap that won).
            return Placement(Outcome.ALREADY, await order_store.by_token(self.db, token))
        placement = await self._submit(order, order_type, plan.candidates)
        if placement.outcome is Outcome.PLACED:
            self._no_panel.discard(stored.ref)
        return placement

    async def _tell_no_panel(self, stored: StoredService, plan: Plan) -> None:
        """Once per service until it sells again: admins learn why customers are told
        it is unavailable (folded with the same service's alerts besides)."""
        if stored.ref in self._no_panel:
            return
        self._no_panel.add(stored.ref)
        why = []
        if plan.skipped_for_margin:
            why.append(f"{plan.skipped_for_margin} panel(s) would sell it below"
                       f" MIN_MARGIN_PERCENT ({self.router.min_margin_percent}%)")
        if plan.candidates:
            why.append("its panels are marked down: " + ", ".join(c.panel for c in plan.candidates))
        await self._alert(
            f"🚫 {stored.service.name} ({stored.panel}:{stored.service.id}) can't be ordered"
            f" now: {'; '.join(why)}. Customers are told it is unavailable; nothing is"
            " charged. Check its price and backups.", key=f"no_panel:{stored.ref}")

    async def _submit(self, order: StoredOrder, order_type: OrderType,
                      candidates: Sequence[Candidate]) -> Placement:
        """Send a ``submitting`` order to the first candidate that takes it, moving it
        on only when the panel tried certainly did not, and record what happened."""
        failure: Placement | None = None  # why the last panel tried did not take it
        reason = ""
        out: set[str] = set()  # panels that can't take any order now (down, funds, key)
        refused: list[tuple[str, RejectReason]] = []  # account trouble, told at the end
        for candidate in candidates:
            if failure is not None:
                if candidate.panel in out:
                    continue
                moved = await order_store.switch_panel(
                    self.db, order.id, panel=candidate.panel,
                    service_id=candidate.stored.service.id, panel_cost=candidate.cost,
                    fx_rate=candidate.fx_rate, cost_minor=candidate.cost_minor, reason=reason)
                assert moved is not None  # only this call moves a submitting order
                log.warning("order %d: panel %s did not take it (%s); trying %s", order.id,
                            order.panel, reason, candidate.panel, extra={"order_id": order.id})
                metrics.failover(reason, FAILOVER_REASONS)
                order = moved
            if self.router.is_down(order.panel):
                self._on_panel_used(order.panel)  # asked again soon: it may be back
                out.add(order.panel)
                reason, failure = DOWN, Placement(
                    Outcome.UNAVAILABLE, message=f"panel {order.panel} is not answering")
                continue
            try:
                panel_order_id = await self.panels[order.panel].add(order.service_id, order_type,
                                                                    order.fields)
            except PanelRejected as exc:
                self._on_panel_used(order.panel)
                failure = Placement(Outcome.REJECTED, reason=exc.reason, message=exc.message)
                if exc.reason in ACCOUNT_TROUBLE:
                    refused.append((order.panel, exc.reason))
                    out.add(order.panel)
                if exc.reason not in FAILS_OVER:  # the customer's order is refused anywhere
                    break
                reason = exc.reason.value
                continue
            except PanelUnavailable as exc:
                out.add(order.panel)
                reason, failure = UNAVAILABLE, Placement(Outcome.UNAVAILABLE,
                                                         message=exc.message)
                continue
            except PanelAmbiguous as exc:
                log.error("order %d: outcome unknown at panel %s: %s", order.id, order.panel,
                          exc.message, extra={"order_id": order.id})
                placement = await self._hold_unknown(order, exc.message)
                await self._account_refused(order, refused, "which is being checked on"
                                            f" {order.panel}")
                return placement
            placement = await self._placed(order, panel_order_id)
            await self._account_refused(order, refused, f"which went to {order.panel} instead")
            return placement
        assert failure is not None
        failed = await self._refund_failed(order, failure.message, failure.reason)
        await self._account_refused(order, refused, "which was refunded")
        return replace(failure, order=failed)

    async def _placed(self, order: StoredOrder, panel_order_id: str) -> Placement:
        self._account_trouble = {t for t in self._account_trouble if t[0] != order.panel}
        try:
            placed = await order_store.set_outcome(self.db, order.id, state="pending",
                                                   panel_order_id=panel_order_id)
        except sqlite3.IntegrityError:
            # Another order already has this panel id: a new panel configured under an
            # old panel's name, or a panel bug. The panel did take *something*, so
            # the order is held for an admin with the id kept, never refunded on a guess.
            log.error("order %d: panel %s answered order id %s, which another order has",
                      order.id, order.panel, panel_order_id, extra={"order_id": order.id})
            return await self._hold_unknown(
                order, f"the panel answered order id {panel_order_id}, which another order"
                " already has")
        self._on_panel_used(order.panel)
        metrics.order_on_panel(order.panel)
        return Placement(Outcome.PLACED, placed)

    async def _hold_unknown(self, order: StoredOrder, why: str) -> Placement:
        """The panel may have the order: keep the money, tell the admins, never resubmit."""
        unknown = await order_store.set_outcome(self.db, order.id, state="unknown", error=why)
        await self._alert(
            f"❔ Order #{order.id} (user {order.user_id}, panel {order.panel}): {why[:300]}."
            " Check the panel's order list, then send /unresolved to attach its panel order id"
            " or refund it.", key=f"unknown:{order.panel}")  # an outage: one alert, then a count
        return Placement(Outcome.AMBIGUOUS, unknown, message=why)

    async def _account_refused(self, order: StoredOrder, refused: list[tuple[str, RejectReason]],
                               fate: str) -> None:
        """Tell the admins of panels that refused ``order`` for the shop's account there
        (funds, key), once per outage, with what became of the order."""
        for panel, reason in refused:
            if (panel, reason) in self._account_trouble:
                continue
            self._account_trouble.add((panel, reason))
            # Not folded with the last outage's alert: this is news, and it is one per outage.
            await self._alert(ACCOUNT_TROUBLE[reason].format(panel=panel, order=order.id,
                                                             fate=fate))

    async def _refund_failed(self, order: StoredOrder, message: str,
                             reason: RejectReason | None = None) -> StoredOrder:
        async with self.db.transaction() as conn:
            failed = await order_store.set_outcome(
                conn, order.id, state="failed", error=message,
                failure_reason=None if reason is None else reason.value)
            await _refund(conn, order, order.price_minor, "panel did not take the order",
                          whole=True)
        return failed

    # ------------------------------------------------------------ my orders

    async def page(self, user_id: int, offset: int, limit: int) -> tuple[list[StoredOrder], int]:
        return await order_store.for_user(self.db, user_id, offset, limit)

    async def owned(self, user_id: int, order_id: int) -> StoredOrder | None:
        """The order if it exists and is ``user_id``'s; ``None`` otherwise, alike."""
        order = await order_store.get(self.db, order_id)
        return order if order is not None and order.user_id == user_id else None

    async def refills_of(self, order_id: int) -> list[tuple[str, str]]:
        """(panel refill id, state) of the order's refills, oldest first: its card lists them."""
        return await order_store.refills_of(self.db, order_id)

    async def get(self, order_id: int) -> StoredOrder | None:
        """Any order by id, whoever's it is: for the notices sent about it."""
        return await order_store.get(self.db, order_id)

    async def refresh(self, order: StoredOrder, now: float | None = None) -> StoredOrder:
        """One status call, at most once per 30 s per order."""
        now = time.time() if now is None else now
        if order.refreshed_at and now - order.refreshed_at < REFRESH_EVERY_SECONDS:
            return order
        if (order.panel_order_id is None or order.state not in ("pending", "in_progress")
                or order.panel not in self.panels):  # a panel no longer configured
            return order
        await order_store.mark_refreshed(self.db, order.id, now)
        status = await self.panels[order.panel].status(order.panel_order_id)
        await apply_statuses(self.db, {order.id: status}, source="refresh", notify="refunds")
        refreshed = await order_store.get(self.db, order.id)
        assert refreshed is not None
        return refreshed

    async def actions(self, order: StoredOrder) -> OrderActions:
        """Which of refill and cancel the order's service and state allow now."""
        stored = await self.catalog.any_service(order.service_ref)
        if stored is not None and (stored.panel, stored.service.id) != (order.panel,
                                                                        order.service_id):
            # A backup panel holds it: that panel's service says what it allows.
            stored = await catalog_store.by_panel_id(self.db, order.panel, order.service_id)
        if stored is None or not order.panel_order_id or order.panel not in self.panels:
            return OrderActions(refill=False, cancel=False)
        return OrderActions(
            refill=stored.service.refill and order.state == "completed",
            cancel=(stored.service.cancel and order.state in ("pending", "in_progress")
                    and not order.cancel_requested),
        )

    async def request_refill(self, order: StoredOrder) -> int:
        """Ask the panel for a refill; returns the shop's number for it. Raises
        ``PanelError`` if refused."""
        if not (await self.actions(order)).refill:
            raise PanelRejected("this order can't be refilled",
                                reason=RejectReason.NOT_REFILLABLE)
        assert order.panel_order_id is not None
        refill_id = await self.panels[order.panel].refill(order.panel_order_id)
        return await order_store.add_refill(self.db, order.id, refill_id)

    async def request_cancel(self, order: StoredOrder) -> None:
        """Ask the panel to cancel; the refund follows when the status says canceled."""
        if not (await self.actions(order)).cancel:
            raise PanelRejected("this order can't be canceled", reason=RejectReason.NOT_CANCELABLE)
        assert order.panel_order_id is not None
        result = (await self.panels[order.panel].cancel([order.panel_order_id])).get(
            order.panel_order_id)
        if isinstance(result, ItemError):
            raise PanelRejected(result.message, reason=result.reason)
        if not isinstance(result, CancelAccepted):
            raise PanelError("the panel did not answer for this order")
        await order_store.mark_cancel_requested(self.db, order.id)


    # ------------------------------------------------------------ reconciliation

    async def recover_interrupted(self) -> int:
        """At start-up: orders a dead process left between debit and panel answer
        become ``unknown`` (never resubmitted, never refunded on a guess)."""
        ids = await order_store.interrupted_to_unknown(self.db)
        if ids:
            log.warning("orders %s were interrupted before the panel answered; they are"
                        " now 'unknown' for an admin to resolve", ids)
        return len(ids)

    async def unresolved(self, limit: int = 10) -> tuple[list[StoredOrder], int]:
        return await order_store.unresolved(self.db, limit)

    async def flagged(self, limit: int = 10) -> tuple[list[StoredOrder], int]:
        """Open orders the panel answered "Incorrect order ID" for, poll after poll."""
        return await order_store.flagged(self.db, limit)

    async def refused_for_funds(self, limit: int = 10) -> tuple[list[StoredOrder], int]:
        """Orders refused (and refunded) because the shop's panel balance ran out."""
        return await order_store.failed_for(self.db, RejectReason.NOT_ENOUGH_FUNDS.value, limit)

    async def admin_view(self, order_id: int) -> tuple[StoredOrder, AdminDetails] | None:
        """Any order, with what only admins see: history, panel charge and cost."""
        order = await order_store.get(self.db, order_id)
        if order is None:
            return None
        charge, cost = await order_store.panel_details(self.db, order_id)
        return order, AdminDetails(await order_store.history_of(self.db, order_id),
                                   charge, cost, await order_store.refills_of(self.db, order_id))

    async def unresolved_one(self, order_id: int) -> StoredOrder | None:
        """The order if it is ``unknown`` (waiting for an admin), else ``None``."""
        order = await order_store.get(self.db, order_id)
        return order if order is not None and order.state == "unknown" else None

    async def attach_panel_id(self, order_id: int, panel_order_id: str,
                              admin_id: int) -> StoredOrder:
        """An admin found the ``unknown`` order on the panel: track it from now on.

        Raises ``LookupError`` if the order is not unknown any more, ``ValueError``
        if another order already has that panel id.
        """
        try:
            async with self.db.transaction() as conn:
                order = await order_store.attach_panel_id(conn, order_id, panel_order_id)
                if order is None:
                    raise LookupError(order_id)
                await order_store.add_history(
                    conn, [(order_id, "pending", None, None, None, 0)], "admin")
                await outbox.queue_order_notices(
                    conn, [OrderNotice(order.user_id, order_id, "pending")])
                await audit.record(conn, admin_id=admin_id, action="attach", target_kind="order",
                                   target_id=order_id, before="unknown",
                                   after=f"pending, panel order {panel_order_id}")
        except sqlite3.IntegrityError:
            raise ValueError(panel_order_id) from None
        return order

    async def refund_unresolved(self, order_id: int, admin_id: int) -> StoredOrder:
        """An admin found that the panel never took the ``unknown`` order: refund it.
        Raises ``LookupError`` if the order is not unknown any more."""
        async with self.db.transaction() as conn:
            order = await order_store.fail_unknown(conn, order_id)
            if order is None:
                raise LookupError(order_id)
            refund, balance = await _refund(conn, order, order.price_minor,
                                            "not on the panel (admin)", whole=True)
            await order_store.add_history(conn, [(order_id, "failed", None, None, None, refund)],
                                          "admin")
            await outbox.queue_order_notices(conn, [OrderNotice(
                order.user_id, order_id, "failed", refund_minor=refund, balance_minor=balance)])
            await audit.record(conn, admin_id=admin_id, action="refund_order",
                               target_kind="order", target_id=order_id, before="unknown",
                               after=f"failed, {refund} refunded", note="not on the panel")
        return order


def _open_order(conn: sqlite3.Connection, *, discount: Discount | None, now: float,
                guard: Callable[[sqlite3.Connection], None] | None, **order: Any) -> StoredOrder:
    """Step 1 of placing, in the database's thread: the order, its debit and the
    discount code's use together; a wholesale API repeat finds its first order here,
    in the same transaction, so repeats sent at once still make one order."""
    if guard is not None:
        guard(conn)
    repeat_key = order.get("api_repeat_key")
    if repeat_key is not None:
        first = order_store.api_repeat_in(conn, order["user_id"], repeat_key)
        if first is not None:
            raise Repeated(first)
    opened = order_store.insert_in(conn, discount_source=discount and discount.source.value,
                                   **order)
    if (discount is not None and discount.use_id is not None
            and not promo_store.use_in(conn, use_id=discount.use_id, order_id=opened.id,
                                       now=now)):
        raise DiscountGone(discount.code)
    if opened.price_minor:
        ledger.post_in(conn, user_id=opened.user_id, amount_minor=-opened.price_minor,
                       kind="order", key=f"order:{opened.id}:debit", order_id=opened.id)
    return opened


async def _refund(conn: aiosqlite.Connection, order: StoredOrder, amount_minor: int,
                  note: str, *, whole: bool) -> tuple[int, int | None]:
    """Give ``amount_minor`` of ``order``'s price back, once per order (its refund key).
    ``whole``: the order failed, was canceled or was refunded in full, so the
    discount code it used (if any) is given back too.

    Returns (refunded now, balance after): (0, None) for nothing to refund or when
    the order was refunded before. One hop into the database thread (the tracker
    applies many in one transaction, which holds the database meanwhile).
    """
    return await in_thread(conn, _refund_in, order, amount_minor, note, whole)


def _refund_in(conn: sqlite3.Connection, order: StoredOrder, amount_minor: int, note: str,
               whole: bool) -> tuple[int, int | None]:
    if whole:
        promo_store.give_back_in(conn, order.id)
    if amount_minor <= 0:
        return 0, None
    entry = ledger.post_in(conn, user_id=order.user_id, amount_minor=amount_minor,
                           kind="refund", key=f"order:{order.id}:refund", order_id=order.id,
                           note=note)
    return (amount_minor, entry.balance_after) if entry.created else (0, None)


def refund_for(order: StoredOrder, state: str, remains: int | None) -> int:
    """Minor units to give back for a final state: all of it for canceled or failed,
    the undelivered share (rounded down) for partial."""
    if state in (OrderState.CANCELED.value, OrderState.FAILED.value):
        return order.price_minor
    if state == OrderState.PARTIAL.value and order.quantity and remains:
        share = Decimal(order.price_minor) * min(remains, order.quantity) / order.quantity
        return int(share.to_integral_value(ROUND_FLOOR))
    return 0


class _StatusFields(Protocol):
    state: str
    panel_status: str | None
    start_count: int | None
    remains: int | None


def status_change(order: _StatusFields, status: OrderStatus) -> tuple[str, int | None,
                                                                       int | None] | None:
    """The (state, start count, remains) ``status`` moves ``order`` to, or ``None``
    when it says nothing new (most polls: then nothing is written)."""
    state = status.status.value if status.recognised else order.state
    if state == "submitting":
        state = "pending"
    start_count = order.start_count if status.start_count is None else status.start_count
    remains = order.remains if status.remains is None else status.remains
    if (state, status.raw_status, start_count, remains) == (
            order.state, order.panel_status, order.start_count, order.remains):
        return None
    return state, start_count, remains


@dataclass(frozen=True, slots=True)
class AppliedStatus:
    order_id: int
    state: str
    refund_minor: int  # posted now; 0 when none (or posted before)


async def apply_statuses(db: Database, answers: Mapping[int, OrderStatus], *, source: str,
                         notify: Notify = "all") -> list[AppliedStatus]:
    """Write panel statuses and everything they cause in one transaction: the order's
    state, start count and remains, a history row, the refund, and the owner's notice.

    An answer that changes nothing writes nothing; an order that is final already
    keeps its state (a late or repeated answer changes nothing). ``notify`` is
    "refunds" where the user is looking at the order (Refresh) and only money
    needs telling.
    """
    if not answers:
        return []
    # The whole transaction in the database's thread, in one hop: the tracker applies
    # a cycle's changes a few orders at a time, and customers' statements go between.
    return await db.transact(_apply_statuses_in, answers, source, notify)


def _apply_statuses_in(conn: sqlite3.Connection, answers: Mapping[int, OrderStatus],
                       source: str, notify: Notify) -> list[AppliedStatus]:
    """``apply_statuses``'s transaction, in the database's thread."""
    applied: list[AppliedStatus] = []
    current = order_store.get_many_in(conn, list(answers))
    # The panel cost in shop money follows the charge, at the order's own fx rate.
    fx_rates = stats_store.fx_rates_in(
        conn, [i for i, status in answers.items() if status.charge is not None])
    changes: list[order_store.StatusChange] = []
    history: list[order_store.HistoryEntry] = []
    notices: list[OrderNotice] = []
    for order_id, status in answers.items():
        order = current.get(order_id)
        if order is None or order.state in _FINAL_STATES:
            continue
        change = status_change(order, status)
        if change is None:
            continue
        state, start_count, remains = change
        fx = fx_rates.get(order_id)
        cost = (None if status.charge is None or fx is None
                else cost_minor(status.charge, Decimal(fx), order.currency))
        changes.append(order_store.StatusChange(order_id, state, status.raw_status,
                                                status.start_count, status.remains,
                                                status.charge, cost))
        due = refund_for(order, state, status.remains) if status.recognised else 0
        refund, balance = _refund_in(
            conn, order, due, f"order {state}",
            state in _UNDONE_STATES or (due > 0 and due >= order.price_minor))
        history.append((order_id, state, status.raw_status, start_count, remains, refund))
        if (notify == "all" and state != order.state) or refund:
            notices.append(OrderNotice(order.user_id, order_id, state, start_count, remains,
                                       refund, balance))
        applied.append(AppliedStatus(order_id, state, refund))
    order_store.set_statuses_in(conn, changes)
    order_store.add_history_in(conn, history, source)
    outbox.queue_order_notices_in(conn, notices)
    return applied
