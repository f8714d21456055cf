"""Placing orders safely, and the customer's view of them afterwards.

``place`` runs three steps, never more than once per draft token:

1. one transaction debits the balance (never below zero) and inserts the order
   in state ``submitting`` with the draft's unique token;
2. the panel's ``add``;
3. one transaction records the outcome: ``pending`` with the panel's id;
   ``failed`` with a refund when the panel refused or provably never saw it;
   ``unknown`` (no refund) when the request may have reached the panel.

A second confirm of the same draft finds the token and returns the first order.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from bot.order_types import OrderType
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
from bot.pricing import Pricer, Quote
from storage import catalog as catalog_store
from storage import ledger
from storage import orders as order_store
from storage.catalog import StoredService
from storage.db import Database
from storage.orders import StoredOrder

log = logging.getLogger(__name__)

REFRESH_EVERY_SECONDS = 30
_REFUND_STATES = {OrderState.CANCELED.value, OrderState.FAILED.value, OrderState.PARTIAL.value}


class Outcome(StrEnum):
    PLACED = "placed"
    REJECTED = "rejected"  # the panel refused; refunded
    UNAVAILABLE = "unavailable"  # the panel never saw it; refunded
    AMBIGUOUS = "ambiguous"  # may exist on the panel; being checked, not refunded
    INSUFFICIENT = "insufficient"  # not enough balance; nothing happened
    ALREADY = "already"  # this draft was confirmed before
    GONE = "gone"  # the service is no longer sold


@dataclass(frozen=True, slots=True)
class Placement:
    outcome: Outcome
    order: StoredOrder | None = None
    reason: RejectReason | None = None
    message: str = ""
    missing_minor: int = 0


@dataclass(frozen=True, slots=True)
class OrderActions:
    refill: bool
    cancel: bool


class ServiceGone(Exception):
    """The service is no longer on sale."""


class OrderService:
    def __init__(self, db: Database, panels: Mapping[str, PanelClient], pricer: Pricer) -> None:
        self.db = db
        self.panels = panels
        self.pricer = pricer

    async def on_sale(self, ref: int) -> StoredService:
        stored = await catalog_store.get(self.db, ref)
        if (stored is None or not stored.active or stored.service.order_type is None
                or stored.panel not in self.panels):
            raise ServiceGone(ref)
        return stored

    async def quote(self, stored: StoredService, values: Mapping[str, str]) -> Quote:
        """Validate a complete form against ``stored`` (as read now) and price it."""
        order_type = stored.service.order_type
        assert order_type is not None
        order_type.validate(values, stored.service.limits)
        return await self.pricer.quote(stored, values)

    async def place(self, user_id: int, ref: int, values: Mapping[str, str],
                    token: str) -> Placement:
        existing = await order_store.by_token(self.db, token)
        if existing is not None:
            return Placement(Outcome.ALREADY, existing)
        try:
            stored = await self.on_sale(ref)
        except ServiceGone:
            return Placement(Outcome.GONE)
        quote = await self.quote(stored, values)
        order_type = stored.service.order_type
        assert order_type is not None
        params = order_type.add_params(values)
        try:
            async with self.db.transaction() as conn:
                order_id = await order_store.insert(
                    conn, token=token, user_id=user_id, panel=stored.panel,
                    service_ref=stored.ref, service_id=stored.service.id,
                    service_name=stored.service.name, order_type=order_type.name, fields=params,
                    quantity=quote.quantity, price_minor=quote.price_minor,
                    currency=self.pricer.shop_currency, panel_cost=quote.panel_cost,
                )
                if quote.price_minor:
                    await ledger.post(conn, user_id=user_id, amount_minor=-quote.price_minor,
                                      kind="order", key=f"order:{order_id}:debit",
                                      order_id=order_id)
        except ledger.InsufficientFunds as exc:
            return Placement(Outcome.INSUFFICIENT,
                             missing_minor=exc.needed_minor - exc.balance_minor)
        except sqlite3.IntegrityError:
            # A concurrent confirm of the same draft won the race for the token.
            return Placement(Outcome.ALREADY, await order_store.by_token(self.db, token))
        return await self._submit(order_id, order_type)

    async def _submit(self, order_id: int, order_type: OrderType) -> Placement:
        """Send a ``submitting`` order to its panel once and record what happened."""
        order = await order_store.get(self.db, order_id)
        assert order is not None and order.state == "submitting"
        try:
            panel_order_id = await self.panels[order.panel].add(order.service_id, order_type,
                                                                order.fields)
        except PanelRejected as exc:
            await self._refund_failed(order, exc.message)
            return Placement(Outcome.REJECTED, await order_store.get(self.db, order_id),
                             exc.reason, exc.message)
        except PanelUnavailable as exc:
            await self._refund_failed(order, exc.message)
            return Placement(Outcome.UNAVAILABLE, await order_store.get(self.db, order_id),
                             message=exc.message)
        except PanelAmbiguous as exc:
            async with self.db.transaction() as conn:
                await order_store.set_outcome(conn, order_id, state="unknown", error=exc.message)
            log.error("order %d: outcome unknown at panel %s: %s", order_id, order.panel,
                      exc.message)
            return Placement(Outcome.AMBIGUOUS, await order_store.get(self.db, order_id),
                             message=exc.message)
        async with self.db.transaction() as conn:
            await order_store.set_outcome(conn, order_id, state="pending",
                                          panel_order_id=panel_order_id)
        return Placement(Outcome.PLACED, await order_store.get(self.db, order_id))

    async def _refund_failed(self, order: StoredOrder, message: str) -> None:
        async with self.db.transaction() as conn:
            await order_store.set_outcome(conn, order.id, state="failed", error=message)
            if order.price_minor:
                await ledger.post(conn, user_id=order.user_id, amount_minor=order.price_minor,
                                  kind="refund", key=f"order:{order.id}:refund",
                                  order_id=order.id, note="panel did not take the order")

    # ------------------------------------------------------------ my orders

    async def page(self, user_id: int, offset: int, limit: int) -> tuple[list[StoredOrder], int]:
        return await order_store.for_user(self.db, user_id, offset, limit)

    async def owned(self, user_id: int, order_id: int) -> StoredOrder | None:
        """The order if it exists and is ``user_id``'s; ``None`` otherwise, alike."""
        order = await order_store.get(self.db, order_id)
        return order if order is not None and order.user_id == user_id else None

    async def refresh(self, order: StoredOrder, now: float | None = None) -> StoredOrder:
        """One status call, at most once per 30 s per order."""
        now = time.time() if now is None else now
        if order.refreshed_at and now - order.refreshed_at < REFRESH_EVERY_SECONDS:
            return order
        if order.panel_order_id is None or order.state not in ("pending", "in_progress"):
            return order
        await order_store.mark_refreshed(self.db, order.id, now)
        status = await self.panels[order.panel].status(order.panel_order_id)
        await apply_status(self.db, order.id, status)
        refreshed = await order_store.get(self.db, order.id)
        assert refreshed is not None
        return refreshed

    async def actions(self, order: StoredOrder) -> OrderActions:
        """Which of refill and cancel the order's service and state allow now."""
        stored = await catalog_store.get(self.db, order.service_ref)
        if stored is None or not order.panel_order_id:
            return OrderActions(refill=False, cancel=False)
        return OrderActions(
            refill=stored.service.refill and order.state == "completed",
            cancel=(stored.service.cancel and order.state in ("pending", "in_progress")
                    and not order.cancel_requested),
        )

    async def request_refill(self, order: StoredOrder) -> str:
        """Ask the panel for a refill; returns its id. Raises ``PanelError`` if refused."""
        if not (await self.actions(order)).refill:
            raise PanelRejected("this order can't be refilled",
                                reason=RejectReason.NOT_REFILLABLE)
        assert order.panel_order_id is not None
        refill_id = await self.panels[order.panel].refill(order.panel_order_id)
        await order_store.add_refill(self.db, order.id, refill_id)
        return refill_id

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


def refund_for(order: StoredOrder, state: str, remains: int | None) -> int:
    """Minor units to give back for a final state: all of it for canceled or failed,
    the undelivered share (rounded down) for partial."""
    if state in (OrderState.CANCELED.value, OrderState.FAILED.value):
        return order.price_minor
    if state == OrderState.PARTIAL.value and order.quantity and remains:
        share = Decimal(order.price_minor) * min(remains, order.quantity) / order.quantity
        return int(share.to_integral_value(ROUND_FLOOR))
    return 0


async def apply_status(db: Database, order_id: int, status: OrderStatus) -> int:
    """Write a panel status and everything it causes in one transaction.

    Returns the refund posted now (0 when none, or when it was posted before).
    """
    async with db.transaction() as conn:
        order = await order_store.get_in(conn, order_id)
        if order is None or order.state in _REFUND_STATES or order.state == "completed":
            return 0  # final already: a late or repeated answer changes nothing
        state = status.status.value if status.recognised else order.state
        if state == "submitting":
            state = "pending"
        await order_store.set_status(conn, order_id, state=state, panel_status=status.raw_status,
                                     start_count=status.start_count, remains=status.remains,
                                     charge=status.charge)
        refund = refund_for(order, state, status.remains) if status.recognised else 0
        if refund > 0:
            entry = await ledger.post(conn, user_id=order.user_id, amount_minor=refund,
                                      kind="refund", key=f"order:{order_id}:refund",
                                      order_id=order_id, note=f"order {state}")
            return refund if entry.created else 0
        return 0

