"""Which discount a customer's order gets: their loyalty tier's or the discount
code attached to their next order, whichever takes more off (never both; a tie
goes to the tier, so the code is kept for later), capped at
``DISCOUNT_MAX_PERCENT``. A code's minimum order is checked against the list
price. The pricing puts the result in the ``Quote`` (bot/shop/catalog/pricing.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from bot.shop.catalog.pricing import Discount, DiscountSource
from bot.shop.growth.loyalty import LoyaltyTiers, Standing
from storage import ledger
from storage import promo as promo_store
from storage.db import Database


class Discounts:
    def __init__(self, db: Database, tiers: LoyaltyTiers, max_percent: Decimal,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.tiers = tiers
        self.max_percent = max_percent
        self._clock = clock

    async def standing(self, user_id: int) -> Standing:
        """The customer's spend, tier and next tier (no tiers: spend only)."""
        return self.tiers.standing(await ledger.spend_of(self.db, user_id))

    async def waiting_code(self, user_id: int) -> Discount | None:
        """The usable discount code attached to ``user_id``'s next order, if any."""
        attached = await promo_store.attached_discount(self.db, user_id, self._clock())
        if attached is None or not attached.usable:
            return None
        return Discount(DiscountSource.PROMO, self._capped(attached.percent), attached.code,
                        attached.use_id, attached.min_order_minor)

    async def tier_discount(self, user_id: int) -> Discount | None:
        """What ``user_id``'s loyalty tier takes off every order (none: no tier)."""
        if not self.tiers:
            return None
        tier = (await self.standing(user_id)).tier
        return None if tier is None else Discount(DiscountSource.TIER, self._capped(tier.percent))

    async def best(self, user_id: int,
                   list_price_minor: int) -> tuple[Discount | None, Discount | None]:
        """The discount ``user_id`` gets on an order listed at ``list_price_minor``, and
        their attached code when it is not that one (it stays for a later order)."""
        tier_discount = await self.tier_discount(user_id)
        code = await self.waiting_code(user_id)
        if code is None or list_price_minor < code.min_order_minor:
            return tier_discount, code
        if tier_discount is not None and tier_discount.percent >= code.percent:
            return tier_discount, code
        return code, None

    def _capped(self, percent: Decimal) -> Decimal:
        return min(percent, self.max_percent)
