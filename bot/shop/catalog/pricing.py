"""The reseller's prices, computed exactly on the server.

price = panel cost (rate × quantity / 1000, × runs; flat for packages)
        × FX rate (panel currency → shop currency) × (1 + markup / 100),
rounded **up** to the shop currency's minor unit. The markup is the service's
override, else its category's, else the global one: an admin's (shop_settings
key ``markup_percent``), else ``MARKUP_PERCENT``.

A customer's discount (a loyalty tier or a promo code, bot/shop/growth/discounts.py)
lives in the ``Quote``: the price shown and charged is the exact list price less
the discount, rounded **up** once (the discount is what that takes off the rounded
list price), and Confirm re-prices with it like any price. Rounded once, an order
never costs more than its rate per 1000 (discounted the same way) says: rounding
the list price up and then the discount down could add a cent on a small order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from bot.shop.money.amounts import exponent, to_minor_up
from storage import catalog as catalog_store
from storage.catalog import StoredService
from storage.db import Database


class DiscountSource(StrEnum):
    TIER = "tier"  # LOYALTY_TIERS
    PROMO = "promo"  # a discount code attached to the customer's next order


@dataclass(frozen=True, slots=True)
class Discount:
    source: DiscountSource
    percent: Decimal  # as applied: at most DISCOUNT_MAX_PERCENT
    code: str = ""  # PROMO: the code, as the customer sees it
    use_id: int | None = None  # PROMO: the attached use the order consumes
    min_order_minor: int = 0  # PROMO: the smallest list price it applies to

    def off(self, list_price_minor: int, exact_list_minor: Decimal | None = None) -> int:
        """Minor units taken off ``list_price_minor``: down to the exact list price
        (before its rounding up) less the discount, rounded up; without the exact
        price, the discount of the rounded one, rounded down."""
        if exact_list_minor is None:
            return int((Decimal(list_price_minor) * self.percent / 100)
                       .to_integral_value(ROUND_FLOOR))
        kept = (exact_list_minor * (100 - self.percent) / 100).to_integral_value(ROUND_CEILING)
        return max(0, list_price_minor - int(kept))


@dataclass(frozen=True, slots=True)
class Quote:
    price_minor: int  # what the customer pays: the list price less the discount
    panel_cost: Decimal  # what the panel will charge, in its currency
    quantity: int | None  # units delivered in total (all runs, all posts); None for packages
    markup_percent: Decimal
    discount: Discount | None = None
    discount_minor: int = 0
    # The customer's attached code when it is not the discount applied (the tier's is
    # larger, or the order is below its minimum): it stays for a later order.
    code_kept: Discount | None = None
    # The discount was cut so the price keeps the shop's margin (MIN_MARGIN_PERCENT).
    discount_limited: bool = False
    # The list price before rounding up, in minor units: a discount is taken off it.
    exact_list_minor: Decimal | None = None

    @property
    def list_price_minor(self) -> int:
        return self.price_minor + self.discount_minor

    def with_discount(self, discount: Discount | None, code_kept: Discount | None = None,
                      lowest_price_minor: int | None = 0) -> Quote:
        """This quote at its list price less ``discount`` (none: the list price), never
        below ``lowest_price_minor`` (``None``: no discount at all) nor the list price."""
        listed = self.list_price_minor
        full = 0 if discount is None else discount.off(listed, self.exact_list_minor)
        room = 0 if lowest_price_minor is None else max(0, listed - lowest_price_minor)
        off = min(full, room)
        if not off:
            discount = None
        return replace(self, price_minor=listed - off, discount=discount, discount_minor=off,
                       code_kept=code_kept, discount_limited=off < full)


class Pricer:
    """Markup overrides are read once and kept for ``MARKUP_CACHE_SECONDS``: a
    catalog page prices eight services, and they change rarely. ``invalidate()``
    makes a change visible at once. One reader reloads them while the others
    wait for its result: when the copy expired under a burst of customers, each
    of them used to read the table (eight times per catalog page)."""

    MARKUP_CACHE_SECONDS = 10.0
    GLOBAL_KEY = "markup_percent"  # shop_settings: the admin's global markup

    def __init__(self, db: Database, shop_currency: str, markup_percent: Decimal,
                 fx_rates: Mapping[str, Decimal]) -> None:
        self.db = db
        self.shop_currency = shop_currency
        self.markup_percent = markup_percent
        self.fx_rates = fx_rates
        self._overrides: dict[tuple[str, str, str], Decimal] = {}
        self._loaded_at = -math.inf
        self._reloading = asyncio.Lock()
        self._version = 0
        self._global = markup_percent

    def invalidate(self) -> None:
        self._loaded_at = -math.inf

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self.MARKUP_CACHE_SECONDS

    async def _current(self) -> dict[tuple[str, str, str], Decimal]:
        if self._stale():
            async with self._reloading:
                if self._stale():  # else another caller reloaded while this one waited
                    overrides = await catalog_store.markups(self.db)
                    stored = await catalog_store.setting(self.db, self.GLOBAL_KEY)
                    global_markup = self.markup_percent if stored is None else Decimal(stored)
                    if overrides != self._overrides or global_markup != self._global:
                        self._version += 1
                    self._overrides, self._global = overrides, global_markup
                    self._loaded_at = time.monotonic()
        return self._overrides

    async def version(self) -> int:
        """Changes whenever a markup does, so prices shown from a copy can tell."""
        await self._current()
        return self._version

    async def global_markup(self) -> Decimal:
        """The admin's global markup, else ``MARKUP_PERCENT``."""
        await self._current()
        return self._global

    async def markup_source(self, stored: StoredService) -> tuple[Decimal, str]:
        """The markup and where it comes from: ``service``, ``category`` or ``shop``."""
        overrides = await self._current()
        for key in (("service", stored.panel, stored.service.id),
                    ("category", stored.panel, stored.service.category)):
            if key in overrides:
                return overrides[key], key[0]
        return self._global, "shop"

    async def markup_for(self, stored: StoredService) -> Decimal:
        return (await self.markup_source(stored))[0]

    def unit_price_with(self, stored: StoredService, markup: Decimal) -> int:
        """The price per 1000 ``stored`` would have with ``markup`` (an admin's preview)."""
        return self._to_shop(stored.panel, stored.service.rate, markup)

    def unit_cost(self, stored: StoredService) -> int:
        """What ``stored``'s panel charges per 1000 (a package: its price), in the shop's
        currency: its rate through the panel's FX rate, rounded up, no markup."""
        return self.unit_price_with(stored, Decimal(0))

    def _to_shop(self, panel: str, amount: Decimal, markup: Decimal) -> int:
        return to_minor_up(self._in_shop_money(panel, amount, markup), self.shop_currency)

    def _in_shop_money(self, panel: str, amount: Decimal, markup: Decimal) -> Decimal:
        """``amount`` of ``panel``'s money with ``markup``, exactly, in the shop's currency."""
        return amount * self.fx_rates.get(panel, Decimal(1)) * (1 + markup / 100)

    def _listed(self, stored: StoredService, cost: Decimal, quantity: int | None,
                markup: Decimal) -> Quote:
        exact = self._in_shop_money(stored.panel, cost, markup)
        return Quote(to_minor_up(exact, self.shop_currency), cost, quantity, markup,
                     exact_list_minor=exact * 10 ** exponent(self.shop_currency))

    async def unit_price(self, stored: StoredService) -> int:
        """Price per 1000 (per post for subscriptions; the package price for packages)."""
        markup = await self.markup_for(stored)
        return self._to_shop(stored.panel, stored.service.rate, markup)

    async def quote(self, stored: StoredService, values: Mapping[str, str]) -> Quote:
        order_type = stored.service.order_type
        if order_type is None:
            raise ValueError(f"service {stored.ref} has no known order type")
        markup = await self.markup_for(stored)
        cost = order_type.cost(stored.service.rate, values)
        return self._listed(stored, cost, order_type.total_quantity(values), markup)

    async def unit_quote(self, stored: StoredService) -> Quote:
        """The price of 1000 (per post for subscriptions; a package's price) as a quote,
        to take a discount off as an order's is (the wholesale API's listed rate)."""
        return self._listed(stored, stored.service.rate, 1000, await self.markup_for(stored))
