"""Telegram Stars top-ups, as plain logic (the conversation is handlers' business).

The invoice a customer pays names a pending ``topups`` row by an opaque payload;
the row fixes what is credited (the shop amount chosen when the invoice was
made) and how many Stars it costs (that amount × ``STARS_PER_UNIT``, rounded up
to a whole Star, so the shop never takes less than the rate). Nothing the
client or the invoice says is trusted:

- ``create`` makes one, unless the customer has ``TOPUP_PENDING_MAX`` unpaid,
  unexpired ones already (``TooManyUnpaid``: nothing is made).
- ``check`` answers a pre-checkout query: ok only for a pending top-up of the
  payer, not expired (24 h), whose Stars and currency are the query's.
- ``record_payment`` credits a successful payment exactly once per
  ``telegram_payment_charge_id``: the top-up is marked paid and the ledger
  credit (key ``stars:<charge id>``) is posted in one transaction, so a second
  delivery of the update, or one after a restart, finds it paid and credits
  nothing. A payment that names no pending top-up of its payer (or another
  total) credits nothing: it is kept in ``stray_payments`` and the admins are
  alerted with its charge id, to credit or refund by hand.
- ``refund`` gives the Stars back and takes the credit back, once; a refund
  Telegram did not answer stays ``refund_uncertain`` until Telegram's answer or its
  list of transactions settles it (``settle_refunded``, ``settle_not_refunded``:
  shared with the reconciliation, bot/shop/money/reconcile.py).

What else moves with a top-up's money moves in the same transactions, through a
``TopupHook`` the composition root gives in (the referral commissions,
bot/shop/growth/referrals.py): paid with the credit, taken back with a refund's
debit, given back with that debit when the refund did not happen.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Protocol

import aiosqlite

from bot.observability import metrics
from bot.panel.order_types import N_
from bot.shop.messaging.alerts import Alert, no_alert
from bot.shop.money.amounts import AmountError, Money, from_minor
from storage import audit, ledger
from storage import topups as topup_store
from storage.db import Database
from storage.topups import Topup

log = logging.getLogger(__name__)

STARS = "XTR"
EXPIRY_SECONDS = 24 * 60 * 60
PENDING_MAX = 5  # unpaid, unexpired top-ups a customer may have (TOPUP_PENDING_MAX)
MAX_PAYLOAD = 128  # bytes Telegram allows in an invoice payload


def stars_for(amount_minor: int, currency: str, stars_per_unit: Decimal) -> int:
    """Whole Stars for ``amount_minor`` of ``currency``: amount × rate, rounded up."""
    stars = (from_minor(amount_minor, currency) * stars_per_unit).to_integral_value(ROUND_CEILING)
    return max(1, int(stars))


class TopupHook(Protocol):
    """What else a top-up's money moves, inside the transaction that moves it."""

    async def credited(self, conn: aiosqlite.Connection, topup: Topup) -> bool:
        """The top-up was just credited (once per charge); whether a message was queued."""
        ...

    async def refunded(self, conn: aiosqlite.Connection, topup: Topup, attempt: int,
                       admin_id: int) -> None:
        """Refund ``attempt`` of the top-up just took its credit back."""
        ...

    async def refund_undone(self, conn: aiosqlite.Connection, topup: Topup, attempt: int,
                            admin_id: int) -> None:
        """Refund ``attempt`` did not happen: its debit was just given back."""
        ...


class NoHook:
    """A ``TopupHook`` that moves nothing else (no referral program wired in)."""

    async def credited(self, conn: aiosqlite.Connection, topup: Topup) -> bool:
        return False

    async def refunded(self, conn: aiosqlite.Connection, topup: Topup, attempt: int,
                       admin_id: int) -> None:
        return None

    async def refund_undone(self, conn: aiosqlite.Connection, topup: Topup, attempt: int,
                            admin_id: int) -> None:
        return None


NO_HOOK = NoHook()


class Refusal(StrEnum):
    """Why a pre-checkout is refused: a message id the customer sees, translated."""

    UNKNOWN = N_("This invoice is not valid. Please start the top-up again.")
    PAID = N_("This invoice was already paid.")
    EXPIRED = N_("This invoice has expired. Please start the top-up again.")
    MISMATCH = N_("This invoice's amount has changed. Please start the top-up again.")


class TooManyUnpaid(Exception):
    """The customer has ``limit`` unpaid, unexpired invoices already: no new one is made."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} unpaid top-ups already")
        self.limit = limit


class StarsRefundRefused(Exception):
    """Telegram refused ``refundStarPayment``; the text is Telegram's (CHARGE_NOT_FOUND...)."""


RefundCall = Callable[[int, str], Awaitable[None]]  # (user id, charge id): refundStarPayment


class Refund(StrEnum):
    REFUNDED = "refunded"  # Stars back, balance debited
    UNKNOWN = "unknown"  # no payment with this charge id here
    ALREADY = "already"  # refunded before (our books say so)
    SPENT = "spent"  # the customer spent part of it: refused, nothing changed
    REFUSED = "refused"  # Telegram refused; nothing changed (the debit was reversed)
    RECONCILED = "reconciled"  # Telegram had refunded it already: the debit is posted now
    UNCERTAIN = "uncertain"  # Telegram did not answer: debited, refund_uncertain
    SETTLED = "settled"  # an uncertain refund asked again: Telegram refunded it (no new debit)
    GIVEN_BACK = "given_back"  # an uncertain refund asked again: refused, so the debit is back
    STRAY_REFUNDED = "stray_refunded"  # a payment that credited nothing: Stars back


REFUND_OUTCOMES = frozenset(Refund)  # the labels the metrics may count


def already_refunded(refusal: StarsRefundRefused) -> bool:
    """Whether Telegram refused because the charge was refunded before."""
    return "CHARGE_ALREADY_REFUNDED" in str(refusal).upper()


async def settle_refunded(db: Database, charge_id: str, *, admin_id: int,
                          note: str) -> Topup | None:
    """An uncertain refund Telegram made: refund_uncertain → refunded, the debit
    stays. ``None`` when it was not uncertain (settled before, by someone else)."""
    async with db.transaction() as conn:
        topup = await topup_store.settle_refunded(conn, charge_id)
        if topup is not None:
            await audit.record(conn, admin_id=admin_id, action="refund_stars",
                               target_kind="payment", target_id=charge_id,
                               before="refund_uncertain", after="refunded", note=note)
    return topup


async def settle_not_refunded(db: Database, charge_id: str, *, admin_id: int, note: str,
                              requested_before: float | None = None,
                              hook: TopupHook = NO_HOOK
                              ) -> tuple[Topup, ledger.LedgerEntry] | None:
    """An uncertain refund Telegram did not make: refund_uncertain → paid, and the
    refund's debit given back, in one transaction (with what ``hook`` took back with
    it). The credit's key names the debit it reverses
    (``stars-refund-undone:<charge id>:<attempt>``), so a debit is given back at most
    once whoever settles it. With ``requested_before``, only a refund last asked for
    before then. ``None`` when nothing was settled."""
    async with db.transaction() as conn:
        topup = await topup_store.settle_not_refunded(conn, charge_id, requested_before)
        if topup is None:
            return None
        # The debit being reversed is the latest refund attempt's (the earlier ones
        # were reversed or settled before this top-up could be asked again).
        attempt = await ledger.count_keys(conn, f"stars-refund:{charge_id}:") - 1
        entry = await ledger.post(
            conn, user_id=topup.user_id, amount_minor=topup.amount_minor, kind="topup_refund",
            key=f"stars-refund-undone:{charge_id}:{attempt}", note=note[:200])
        await hook.refund_undone(conn, topup, attempt, admin_id)
        await audit.record(conn, admin_id=admin_id, action="refund_stars",
                           target_kind="payment", target_id=charge_id,
                           before="refund_uncertain", after="paid", note=note)
    return topup, entry


@dataclass(frozen=True, slots=True)
class RefundResult:
    outcome: Refund
    topup: Topup | None = None
    balance_minor: int = 0  # the customer's balance after (or, SPENT, now)
    telegram: str = ""  # Telegram's words when it refused
    stray_user: int = 0  # STRAY_REFUNDED: the payer
    stray_stars: int = 0


class Credit(StrEnum):
    CREDITED = "credited"  # the balance went up now
    ALREADY = "already"  # this charge was credited before (a repeated update)
    STRAY = "stray"  # no pending top-up of the payer for it: kept, admins alerted


CREDIT_RESULTS = frozenset(Credit)  # the labels the metrics may count


@dataclass(frozen=True, slots=True)
class Payment:
    credit: Credit
    topup: Topup | None = None
    balance_minor: int | None = None  # after the credit (CREDITED only)


class StarsTopups:
    def __init__(self, db: Database, *, stars_per_unit: Decimal, currency: str,
                 minimum_minor: int, maximum_minor: int, alert: Alert = no_alert,
                 clock: Callable[[], float] = time.time,
                 pending_max: int = PENDING_MAX, hook: TopupHook = NO_HOOK,
                 on_notice: Callable[[], None] = lambda: None) -> None:
        """``hook`` moves what else goes with a top-up's money (see the module doc);
        ``on_notice`` is called after a transaction in which it queued a message."""
        self.db = db
        self.hook = hook
        self._on_notice = on_notice
        self.pending_max = pending_max
        self.stars_per_unit = stars_per_unit
        self.currency = currency
        self.minimum_minor = minimum_minor
        self.maximum_minor = maximum_minor
        self._alert = alert
        self._clock = clock

    def stars_for(self, amount_minor: int) -> int:
        return stars_for(amount_minor, self.currency, self.stars_per_unit)

    def check_amount(self, amount_minor: int) -> None:
        """Raise ``AmountError`` unless the amount is within ``TOPUP_MIN``..``TOPUP_MAX``."""
        if amount_minor < self.minimum_minor:
            raise AmountError(N_("The smallest top-up is {minimum}."),
                              minimum=Money(self.minimum_minor, self.currency))
        if amount_minor > self.maximum_minor:
            raise AmountError(N_("The largest top-up is {maximum}."),
                              maximum=Money(self.maximum_minor, self.currency))

    async def create(self, user_id: int, amount_minor: int) -> Topup:
        """A pending top-up of ``amount_minor`` for ``user_id``, to put in an invoice.

        Raises ``TooManyUnpaid`` (nothing made) when the customer has
        ``pending_max`` unpaid, unexpired ones: a tap repeated 300 times makes at
        most that many invoices. Paying one, or its expiry, frees its place.
        """
        self.check_amount(amount_minor)
        now = self._clock()
        topup = await topup_store.create(
            self.db, payload=secrets.token_urlsafe(24), user_id=user_id,
            amount_minor=amount_minor, currency=self.currency,
            stars=self.stars_for(amount_minor), expires_at=now + EXPIRY_SECONDS, now=now,
            pending_max=self.pending_max)
        if topup is None:
            raise TooManyUnpaid(self.pending_max)
        return topup

    async def discard(self, topup: Topup) -> None:
        """Forget a pending top-up no invoice names (Telegram refused to make it)."""
        await topup_store.discard_pending(self.db, topup.id)

    async def check(self, payer_id: int, payload: str, total: int,
                    currency: str) -> Refusal | None:
        """``None`` when the pre-checkout may be accepted, else why not."""
        if not payload or len(payload.encode()) > MAX_PAYLOAD:
            return Refusal.UNKNOWN
        topup = await topup_store.by_payload(self.db, payload)
        if topup is None or topup.user_id != payer_id:
            return Refusal.UNKNOWN  # another user's looks the same as none
        if topup.state != "pending":
            return Refusal.PAID
        if self._clock() > topup.expires_at:
            return Refusal.EXPIRED
        if currency != STARS or total != topup.stars:
            return Refusal.MISMATCH
        return None

    async def refund(self, charge_id: str, refund_call: RefundCall,
                     admin_id: int = 0) -> RefundResult:
        """Give a top-up's Stars back (``refund_call`` is Telegram's refundStarPayment)
        and take back what it credited, once.

        The money is taken back first, in one transaction that marks the top-up
        ``refund_uncertain`` (never below zero: refused, with the spendable balance,
        when the customer has spent part of it, even by an order confirmed a moment
        ago); then Telegram is asked. Its answer settles the refund: made (or
        CHARGE_ALREADY_REFUNDED: the books catch up) → ``refunded``; refused → the
        debit is given back and the top-up is ``paid`` again. With no answer the
        debit stays and the top-up stays ``refund_uncertain``: asking again (this
        method on the same charge) asks Telegram once more, with no second debit,
        and settles it by that answer; else the reconciliation settles it from
        Telegram's list of transactions (bot/shop/money/reconcile.py).
        A stray payment (no top-up credited) is refunded with no debit.
        Each step that changes the books writes an audit row for ``admin_id``.
        """
        result = await self._refund(charge_id, refund_call, admin_id)
        metrics.stars_refund(result.outcome, REFUND_OUTCOMES)
        return result

    async def _refund(self, charge_id: str, refund_call: RefundCall,
                      admin_id: int) -> RefundResult:
        topup = await topup_store.by_charge(self.db, charge_id)
        if topup is None:
            return await self._refund_stray(charge_id, refund_call, admin_id)
        if topup.state == "refund_uncertain":
            again = await self._ask_again(charge_id, refund_call, admin_id)
            if again is not None:
                return again
            # The reconciliation settled it a moment ago: on as for any top-up.
        try:
            async with self.db.transaction() as conn:
                asked = await topup_store.request_refund(conn, charge_id, self._clock())
                if asked is None:
                    return RefundResult(Refund.ALREADY, topup)
                attempt = await ledger.count_keys(conn, f"stars-refund:{charge_id}:")
                entry = await ledger.post(
                    conn, user_id=asked.user_id, amount_minor=-asked.amount_minor,
                    kind="topup_refund", key=f"stars-refund:{charge_id}:{attempt}",
                    note=f"{asked.stars} Stars refunded")
                await self.hook.refunded(conn, asked, attempt, admin_id)
                await audit.record(conn, admin_id=admin_id, action="refund_stars",
                                   target_kind="payment", target_id=charge_id, before="paid",
                                   after="refund_uncertain",
                                   note=f"user {asked.user_id}, {asked.stars} Stars; Telegram"
                                   " asked")
        except ledger.InsufficientFunds as exc:  # rolled back: still paid, nothing taken
            return RefundResult(Refund.SPENT, topup, exc.balance_minor)
        try:
            await refund_call(asked.user_id, charge_id)
        except StarsRefundRefused as exc:
            if already_refunded(exc):
                settled = await settle_refunded(self.db, charge_id, admin_id=admin_id,
                                                note="Telegram had refunded it already")
                return RefundResult(Refund.RECONCILED, settled or asked, entry.balance_after)
            undone = await settle_not_refunded(self.db, charge_id, admin_id=admin_id,
                                               note="Telegram refused the refund", hook=self.hook)
            balance = (undone[1].balance_after if undone is not None
                       else await ledger.balance_of(self.db, asked.user_id))
            return RefundResult(Refund.REFUSED, asked, balance, str(exc)[:200])
        except Exception:  # no answer: Telegram may or may not have refunded
            log.exception("refundStarPayment for %s: no answer", charge_id)
            return RefundResult(Refund.UNCERTAIN, asked, entry.balance_after)
        settled = await settle_refunded(self.db, charge_id, admin_id=admin_id,
                                        note="Telegram refunded")
        return RefundResult(Refund.REFUNDED, settled or asked, entry.balance_after)

    async def _ask_again(self, charge_id: str, refund_call: RefundCall,
                         admin_id: int) -> RefundResult | None:
        """Telegram asked once more about an uncertain refund (its debit was taken
        when first asked); ``None`` when the refund is no longer uncertain."""
        async with self.db.transaction() as conn:
            # From now: the reconciliation gives nothing back while this request may
            # still be on its way (settle_not_refunded's requested_before).
            asked = await topup_store.ask_again(conn, charge_id, self._clock())
        if asked is None:
            return None
        try:
            await refund_call(asked.user_id, charge_id)
        except StarsRefundRefused as exc:
            if not already_refunded(exc):
                back = await settle_not_refunded(
                    self.db, charge_id, admin_id=admin_id,
                    note=f"Telegram refused the refund asked again: {str(exc)[:100]}",
                    hook=self.hook)
                balance = (back[1].balance_after if back is not None
                           else await ledger.balance_of(self.db, asked.user_id))
                return RefundResult(Refund.GIVEN_BACK, asked, balance, str(exc)[:200])
        except Exception:  # no answer again: it stays uncertain
            log.exception("refundStarPayment for %s, asked again: no answer", charge_id)
            return RefundResult(Refund.UNCERTAIN, asked,
                                await ledger.balance_of(self.db, asked.user_id))
        settled = await settle_refunded(self.db, charge_id, admin_id=admin_id,
                                        note="Telegram refunded it, asked again")
        return RefundResult(Refund.SETTLED, settled or asked,
                            await ledger.balance_of(self.db, asked.user_id))

    async def _refund_stray(self, charge_id: str, refund_call: RefundCall,
                            admin_id: int) -> RefundResult:
        """A payment that credited nothing: its Stars go back, no balance moves."""
        stray = await topup_store.stray(self.db, charge_id)
        if stray is None:
            return RefundResult(Refund.UNKNOWN)
        if stray.refunded:
            return RefundResult(Refund.ALREADY)
        try:
            await refund_call(stray.user_id, charge_id)
        except StarsRefundRefused as exc:
            if not already_refunded(exc):
                return RefundResult(Refund.REFUSED, telegram=str(exc)[:200])
        async with self.db.transaction() as conn:
            await topup_store.mark_stray_refunded(conn, charge_id)
            await audit.record(conn, admin_id=admin_id, action="refund_stars",
                               target_kind="payment", target_id=charge_id, before="stray",
                               after="refunded", note=f"user {stray.user_id}, {stray.stars} Stars")
        return RefundResult(Refund.STRAY_REFUNDED, stray_user=stray.user_id,
                            stray_stars=stray.stars)

    async def latest(self, user_id: int, limit: int = 5) -> list[Topup]:
        return await topup_store.last_of(self.db, user_id, limit)

    async def record_payment(self, payer_id: int, payload: str, total: int, currency: str,
                             charge_id: str) -> Payment:
        """Credit a successful payment once per ``charge_id`` (see the module doc)."""
        payment = await self._record_payment(payer_id, payload, total, currency, charge_id)
        metrics.stars_topup(payment.credit, CREDIT_RESULTS)
        return payment

    async def _record_payment(self, payer_id: int, payload: str, total: int, currency: str,
                              charge_id: str) -> Payment:
        async with self.db.transaction() as conn:
            credited_before = await topup_store.by_charge(conn, charge_id)
            if credited_before is not None:  # this charge was credited (whatever its payload)
                return Payment(Credit.ALREADY, credited_before)
            topup = None
            if currency == STARS:
                topup = await topup_store.mark_paid(conn, payload=payload, user_id=payer_id,
                                                    stars=total, charge_id=charge_id)
            if topup is not None:
                entry = await ledger.post(
                    conn, user_id=payer_id, amount_minor=topup.amount_minor, kind="topup",
                    key=f"stars:{charge_id}", note=f"{total} Stars")
                queued = await self.hook.credited(conn, topup)
            else:
                new = await topup_store.record_stray(conn, charge_id=charge_id, user_id=payer_id,
                                                     payload=payload[:MAX_PAYLOAD], stars=total,
                                                     currency=currency[:10])
        if topup is not None:
            if queued:
                self._on_notice()
            return Payment(Credit.CREDITED, topup, entry.balance_after)
        if new:
            await self._alert(
                f"⭐ A Stars payment credited nothing: user {payer_id} paid {total}"
                f" {currency[:10]} (charge {charge_id}) for an invoice that names no pending"
                f" top-up of theirs. Credit them by hand (/credit) or give the Stars back"
                f" (/refund_stars {charge_id}).",
                key=f"stray:{charge_id}")
        return Payment(Credit.STRAY)
