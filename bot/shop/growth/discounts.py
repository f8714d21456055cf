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

    async def best(self, user_id: int, list_price_minor: int) -> Discount | None:
        """The discount ``user_id`` gets on an order listed at ``list_price_minor``."""
        found: list[Discount] = []
        if self.tiers:
            tier = (await self.standing(user_id)).tier
            if tier is not None:
                found.append(Discount(DiscountSource.TIER, tier.percent))
        attached = await promo_store.attached_discount(self.db, user_id, self._clock())
        if (attached is not None and attached.usable
                and list_price_minor >= attached.min_order_minor):
            found.append(Discount(DiscountSource.PROMO, attached.percent, attached.code,
                                  attached.use_id))
        if not found:
            return None
        best = max(found, key=lambda d: (d.percent, d.source is DiscountSource.TIER))
        if best.percent > self.max_percent:
            best = Discount(best.source, self.max_percent, best.code, best.use_id)
        return best
