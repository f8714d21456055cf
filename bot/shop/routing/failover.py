"""Which panels may take an order, in which order: the failover's plan.

A shop service is sold from its own panel; it may have backups on other panels
(storage/routes.py). An order goes to a backup only when the panel tried
certainly did not take it (``FAILS_OVER``, ``PanelUnavailable``, a panel the
watch marks down), never when the outcome is unknown; bot/shop/orders/service.py
walks the plan. The plan is made before anything is charged:

* candidates: the service itself, then its backups that are active, of a known
  and the same order type, not hidden by an admin, on a configured panel, and
  whose limits admit the order's form (quantity, drip-feed);
* none at a loss: a candidate whose cost for this order leaves less than
  ``min_margin_percent`` of the price the customer confirmed is dropped;
* ``ROUTING=priority`` keeps the service first, then its backups as linked;
  ``cheapest`` puts the lowest cost for this order first (ties: priority).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from bot.panel import RejectReason
from bot.panel.order_types import FieldError, OrderType
from bot.shop.backoffice.stats import cost_minor
from bot.shop.money.amounts import exponent
from storage import routes
from storage.catalog import StoredService
from storage.db import Database


class Routing(StrEnum):
    PRIORITY = "priority"  # the service's own panel, then its backups as linked
    CHEAPEST = "cheapest"  # the lowest cost for this order first


# Refusals that mean "not placed, and another panel may place it": the shop's
# account there (funds, key) or that panel's service (unknown or disabled, other
# limits). A refusal of the customer's input (link, duplicate) would be the same
# anywhere, so it is never failed over.
FAILS_OVER = frozenset({RejectReason.NOT_ENOUGH_FUNDS, RejectReason.BAD_SERVICE,
                        RejectReason.BAD_KEY, RejectReason.QUANTITY})
UNAVAILABLE = "unavailable"  # PanelUnavailable: the panel provably did nothing
DOWN = "down"  # the panel watch marks the panel down: nothing was sent
# Why an order moved on (orders.failover_reason, the metric's label).
FAILOVER_REASONS = frozenset({*(r.value for r in FAILS_OVER), UNAVAILABLE, DOWN})


@dataclass(frozen=True, slots=True)
class Candidate:
    """One panel's service that may take the order, and what it costs there."""

    stored: StoredService
    cost: Decimal  # what this panel charges for the order, in its currency
    fx_rate: Decimal  # panel currency -> shop currency
    cost_minor: int  # the cost in shop minor units (rounded half up, as the dashboard's)

    @property
    def panel(self) -> str:
        return self.stored.panel


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: list[Candidate]  # in the order they are tried; empty: nobody may take it
    skipped_for_margin: int  # candidates dropped because they would sell at a loss


def leaves_margin(price_minor: int, cost_in_minor: Decimal, min_margin_percent: Decimal) -> bool:
    """Whether a cost (exact, in shop minor units) leaves at least ``min_margin_percent``
    of ``price_minor``: (price - cost) / price >= margin, without dividing."""
    return (price_minor - cost_in_minor) * 100 >= price_minor * min_margin_percent


class Router:
    def __init__(self, db: Database, *, panels: Collection[str], fx_rates: Mapping[str, Decimal],
                 shop_currency: str, routing: Routing = Routing.PRIORITY,
                 min_margin_percent: Decimal = Decimal(5),
                 is_down: Callable[[str], bool] = lambda _panel: False) -> None:
        self.db = db
        self.panels = panels
        self.fx_rates = fx_rates
        self.shop_currency = shop_currency
        self.routing = routing
        self.min_margin_percent = min_margin_percent
        self.is_down = is_down  # the panel watch's view (bot/shop/backoffice/panel_watch.py)

    def fx(self, panel: str) -> Decimal:
        return self.fx_rates.get(panel, Decimal(1))

    async def plan(self, stored: StoredService, values: Mapping[str, str],
                   price_minor: int) -> Plan:
        """The panels that may take an order of ``stored`` with ``values`` for
        ``price_minor`` (what the customer confirmed, after discounts), best first."""
        order_type = stored.service.order_type
        assert order_type is not None
        offered = [stored, *[b for b in await routes.backups_of(self.db, stored.ref)
                             if self._may_stand_in(b, order_type, values)]]
        priced = [self._priced(s, order_type, values) for s in offered]
        scale = Decimal(10) ** exponent(self.shop_currency)
        fit = [c for c in priced if leaves_margin(price_minor, c.cost * c.fx_rate * scale,
                                                  self.min_margin_percent)]
        if self.routing is Routing.CHEAPEST:
            fit.sort(key=lambda c: c.cost * c.fx_rate)  # stable: ties keep the priority
        return Plan(fit, len(priced) - len(fit))

    def lowest_price_minor(self, stored: StoredService, cost: Decimal) -> int | None:
        """The lowest price (shop minor units) at which ``stored``'s own panel still leaves
        ``min_margin_percent`` on an order costing ``cost`` (its currency): a discount
        never takes a price below it. ``None`` when no price does (a 100 % margin)."""
        if self.min_margin_percent >= 100:
            return None
        scale = Decimal(10) ** exponent(self.shop_currency)
        exact = cost * self.fx(stored.panel) * scale * 100 / (100 - self.min_margin_percent)
        return int(exact.to_integral_value(ROUND_CEILING))

    def _may_stand_in(self, backup: StoredService, order_type: OrderType,
                      values: Mapping[str, str]) -> bool:
        kind = backup.service.order_type
        if (not backup.active or backup.hidden_by_admin or backup.panel not in self.panels
                or kind is None or kind.name != order_type.name):
            return False
        try:
            kind.validate(values, backup.service.limits)
        except FieldError:  # its min/max (or drip-feed) do not admit this order
            return False
        return True

    def _priced(self, stored: StoredService, order_type: OrderType,
                values: Mapping[str, str]) -> Candidate:
        cost = order_type.cost(stored.service.rate, values)
        fx = self.fx(stored.panel)
        return Candidate(stored, cost, fx, cost_minor(cost, fx, self.shop_currency))
