"""Stars reconciliation: Telegram's list of the bot's Star transactions against the ledger.

``reconcile`` pages through ``getStarTransactions`` (injected: this module knows
nothing of aiogram) and compares it with the top-ups the bot recorded. Each
difference is reported to the admins once (``reconcile_reports``); nothing is
changed automatically, since only a person can tell which side is right:

- ``uncredited``: Telegram took a payment the ledger has no credit for (a stray
  payment the bot kept, or one it never saw);
- ``unknown_credit``: the ledger credited a charge Telegram does not list;
- ``amount``: the Stars Telegram took differ from the top-up's;
- ``unbooked_refund``: Telegram refunded a charge the ledger still shows as paid;
- ``refund_not_made``: the ledger took a refund back (Telegram did not answer the
  refund request) but Telegram lists no refund.

It runs daily in the bot and on demand with ``python -m bot stars reconcile``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.alerts import Alert
from storage import topups as topup_store
from storage.db import Database

log = logging.getLogger(__name__)

PAGE = 100  # the most getStarTransactions returns at once
IN_FLIGHT = 600.0  # seconds: a payment this young may not have reached the bot yet
MAX_PAGES = 1_000  # 100,000 transactions: a bound on one run


@dataclass(frozen=True, slots=True)
class StarTransaction:
    """What reconciliation needs of Telegram's StarTransaction."""

    id: str  # the telegram_payment_charge_id (a refund has its payment's id)
    amount: int  # Stars
    user_id: int | None  # the payer (``source``) or, for a refund, the ``receiver``
    refund: bool
    date: float = 0.0  # unix time


Fetch = Callable[[int, int], Awaitable[list[StarTransaction]]]  # (offset, limit) -> a page


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str
    charge_id: str
    detail: str


async def differences(db: Database, fetch: Fetch, *,
                      now: Callable[[], float] = time.time) -> list[Difference]:
    """Every difference between Telegram's transactions and the recorded top-ups.

    The bot's records are read before Telegram's pages (a credit recorded then must
    be in them) and again after (a payment listed must have been credited by then,
    unless it is younger than ``IN_FLIGHT``: its update may still be on the way).
    """
    before = {t.charge_id: t for t in await topup_store.charged(db) if t.charge_id}
    payments: dict[str, StarTransaction] = {}
    refunds: set[str] = set()
    complete = False  # every transaction was read (else old credits can't be checked)
    for page in range(MAX_PAGES):
        batch = await fetch(page * PAGE, PAGE)
        for transaction in batch:
            if transaction.refund:
                refunds.add(transaction.id)
            elif transaction.user_id is not None:  # a user's payment (not a payout, an ad...)
                payments[transaction.id] = transaction
        if len(batch) < PAGE:
            complete = True
            break
    after = {t.charge_id: t for t in await topup_store.charged(db) if t.charge_id}
    found: list[Difference] = []
    for charge_id, payment in payments.items():
        topup = after.get(charge_id)
        if topup is None:
            if charge_id in refunds or payment.date > now() - IN_FLIGHT:
                continue  # given back (a stray payment refunded), or not delivered yet
            found.append(Difference("uncredited", charge_id, f"user {payment.user_id} paid"
                                    f" {payment.amount} Stars; no top-up was credited"))
        elif topup.stars != payment.amount:
            found.append(Difference("amount", charge_id, f"Telegram took {payment.amount}"
                                    f" Stars; the top-up was for {topup.stars}"))
    for charge_id, recorded in before.items():
        topup = after.get(charge_id, recorded)
        if charge_id not in payments:
            if complete:
                found.append(Difference("unknown_credit", charge_id, f"user {topup.user_id}"
                                        " was credited, but Telegram lists no such payment"))
        elif charge_id in refunds and topup.state != "refunded":
            found.append(Difference("unbooked_refund", charge_id, f"Telegram refunded user"
                                    f" {topup.user_id}; the balance still has the credit"
                                    " (/refund_stars posts the debit)"))
        elif complete and charge_id not in refunds and topup.state == "refunded":
            found.append(Difference("refund_not_made", charge_id, f"the books took back user"
                                    f" {topup.user_id}'s credit, but Telegram made no refund"
                                    " (/refund_stars asks again; /credit gives it back)"))
    return found


async def reconcile(db: Database, fetch: Fetch, alert: Alert) -> list[Difference]:
    """Report each new difference once; returns every difference found now."""
    found = await differences(db, fetch)
    for difference in found:
        if await topup_store.first_report(db, difference.kind, difference.charge_id):
            await alert(f"⭐ Stars reconciliation: {difference.kind} for charge"
                        f" {difference.charge_id}: {difference.detail}. Nothing was changed.",
                        key=f"reconcile:{difference.kind}:{difference.charge_id}")
    if found:
        log.warning("Stars reconciliation: %d difference(s)", len(found))
    return found


async def every_day(db: Database, fetch: Fetch, alert: Alert, *,
                    first_delay: float = 600.0, period: float = 86_400.0) -> None:
    """Reconcile once a day (first ten minutes after start-up) until cancelled."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            await reconcile(db, fetch, alert)
        except Exception:  # Telegram down, a bug: try again tomorrow, never stop the bot
            log.exception("Stars reconciliation failed")
        await asyncio.sleep(period)
