"""Typed results of panel calls, normalised across every API v2 dialect."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.panel.errors import RejectReason
from bot.panel.order_types import Limits, OrderType, order_type_for


class OrderState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    CANCELED = "canceled"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_ORDER_STATES


_FINAL_ORDER_STATES = frozenset(
    {OrderState.COMPLETED, OrderState.PARTIAL, OrderState.CANCELED, OrderState.FAILED}
)


class RefillState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in (RefillState.COMPLETED, RefillState.REJECTED)


def _fold_status(raw: str) -> str:
    return "".join(ch for ch in raw.lower() if not ch.isspace() and ch not in "-_")


_ORDER_STATUSES: dict[str, OrderState] = {
    "pending": OrderState.PENDING,
    "0": OrderState.PENDING,
    "inprogress": OrderState.IN_PROGRESS,
    "processing": OrderState.IN_PROGRESS,
    "active": OrderState.IN_PROGRESS,
    "1": OrderState.IN_PROGRESS,
    "completed": OrderState.COMPLETED,
    "complete": OrderState.COMPLETED,
    "2": OrderState.COMPLETED,
    "partial": OrderState.PARTIAL,
    "3": OrderState.PARTIAL,
    "canceled": OrderState.CANCELED,
    "cancelled": OrderState.CANCELED,
    "refunded": OrderState.CANCELED,
    "refunds": OrderState.CANCELED,
    "4": OrderState.CANCELED,
    "5": OrderState.CANCELED,
    "fail": OrderState.FAILED,
    "failed": OrderState.FAILED,
    "error": OrderState.FAILED,
}

_REFILL_STATUSES: dict[str, RefillState] = {
    "pending": RefillState.PENDING,
    "awaiting": RefillState.PENDING,
    "inprogress": RefillState.IN_PROGRESS,
    "processing": RefillState.IN_PROGRESS,
    "refilling": RefillState.IN_PROGRESS,
    "completed": RefillState.COMPLETED,
    "complete": RefillState.COMPLETED,
    "rejected": RefillState.REJECTED,
    "error": RefillState.REJECTED,
    "canceled": RefillState.REJECTED,
    "cancelled": RefillState.REJECTED,
}


def order_state_of(raw: str) -> OrderState | None:
    """The normalised state of a panel status string, ``None`` if unrecognised."""
    return _ORDER_STATUSES.get(_fold_status(raw))


def refill_state_of(raw: str) -> RefillState | None:
    return _REFILL_STATUSES.get(_fold_status(raw))


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    type: str  # canonical type name, or the panel's own text when it is unknown
    category: str
    rate: Decimal  # per 1000 in the panel currency; the flat price for packages
    min: int
    max: int
    refill: bool = False
    cancel: bool = False
    dripfeed: bool = False
    description: str = ""

    @property
    def order_type(self) -> OrderType | None:
        """The order-type row, or ``None`` when the type is unknown (not sellable)."""
        return order_type_for(self.type)

    @property
    def limits(self) -> Limits:
        return Limits(self.min, self.max, self.dripfeed)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "type": self.type, "category": self.category,
            "rate": str(self.rate), "min": self.min, "max": self.max, "refill": self.refill,
            "cancel": self.cancel, "dripfeed": self.dripfeed, "description": self.description,
        }


class ServiceList(list[Service]):
    """A panel's services, and how many of its items were skipped as unusable."""

    def __init__(self, services: Iterable[Service] = (), skipped: int = 0) -> None:
        super().__init__(services)
        self.skipped = skipped


@dataclass(frozen=True, slots=True)
class ItemError:
    """One id in a multi-id answer that the panel refused (``Incorrect order ID``...),
    or whose answer could not be read (reason ``UNREADABLE``)."""

    message: str
    reason: RejectReason
    # The panel's item as it came (redacted, cut short), for the admins; not compared.
    raw: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message}


@dataclass(frozen=True, slots=True)
class OrderStatus:
    status: OrderState
    raw_status: str
    charge: Decimal | None = None
    start_count: int | None = None
    remains: int | None = None
    currency: str | None = None
    recognised: bool = True  # False: the panel's word is new to us; treated as not final

    def __post_init__(self) -> None:
        # The one rule for final statuses whose amounts are unknown: a Partial
        # refunds the undelivered share, so without the remains of this very answer
        # it is not a usable status (remains on record from an earlier poll may be
        # stale). The parser turns this into an unreadable item for that order.
        if self.recognised and self.status is OrderState.PARTIAL and self.remains is None:
            raise ValueError("a Partial status without remains: the refund can't be known")

    @property
    def is_final(self) -> bool:
        return self.recognised and self.status.is_final

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value, "raw_status": self.raw_status,
            "charge": None if self.charge is None else str(self.charge),
            "start_count": self.start_count, "remains": self.remains, "currency": self.currency,
        }


@dataclass(frozen=True, slots=True)
class RefillStatus:
    status: RefillState
    raw_status: str
    recognised: bool = True

    @property
    def is_final(self) -> bool:
        return self.recognised and self.status.is_final

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "raw_status": self.raw_status}


@dataclass(frozen=True, slots=True)
class CancelAccepted:
    """The panel took the cancel request; the order's status tells the outcome later."""

    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"cancel": "accepted", "message": self.message}


@dataclass(frozen=True, slots=True)
class Balance:
    amount: Decimal
    currency: str

    def to_json(self) -> dict[str, Any]:
        return {"balance": str(self.amount), "currency": self.currency}
