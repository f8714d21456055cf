"""Loyalty tiers (``LOYALTY_TIERS``): a customer whose spend has reached a
threshold gets that tier's percent off every order quote.

Spend is what the customer paid for orders less what was refunded to them for
orders (the ledger's ``order`` and ``refund`` rows): top-ups, promo credits,
referral earnings and admin credits are no spend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from bot.shop.money.amounts import to_minor_up


@dataclass(frozen=True, slots=True)
class Tier:
    threshold_minor: int  # spend that reaches it, in shop minor units
    percent: Decimal


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a customer stands: their spend, their tier and the next one."""

    spend_minor: int
    tier: Tier | None
    next_tier: Tier | None

    @property
    def missing_minor(self) -> int:
        """Spend still needed for the next tier (0 at the top)."""
        return 0 if self.next_tier is None else self.next_tier.threshold_minor - self.spend_minor


class LoyaltyTiers:
    """The tiers, lowest first; empty when the program is off."""

    def __init__(self, tiers: Iterable[tuple[Decimal, Decimal]], currency: str) -> None:
        self.tiers = sorted((Tier(to_minor_up(spend, currency), percent)
                             for spend, percent in tiers), key=lambda t: t.threshold_minor)

    def __bool__(self) -> bool:
        return bool(self.tiers)

    def standing(self, spend_minor: int) -> Standing:
        reached = [t for t in self.tiers if spend_minor >= t.threshold_minor]
        above = [t for t in self.tiers if spend_minor < t.threshold_minor]
        return Standing(spend_minor, reached[-1] if reached else None,
                        above[0] if above else None)
