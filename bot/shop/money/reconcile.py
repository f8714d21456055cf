"""Stars reconciliation: Telegram's list of the bot's Star transactions against the ledger.

``reconcile`` pages through ``getStarTransactions`` (injected: this module knows
nothing of aiogram) and compares it with the top-ups the bot recorded.

It settles each uncertain refund (a top-up ``refund_uncertain``: Telegram did not
answer ``refundStarPayment``, and the refund's debit was taken), once:

- Telegram lists the refund → ``refunded``; the debit stays;
- Telegram lists no refund, the list was read completely (every page, no
  transaction skipped that could be it) and the refund was last asked for more
  than ``IN_FLIGHT`` (10 minutes) before this run began reading it → ``paid``
  again, and the debit is given back (a ledger credit keyed by the debit it
  reverses, in the same transaction; bot/shop/money/topups.py ``settle_not_refunded``);
- otherwise it stays uncertain for the next run (or /refund_stars, asked again).

Each settlement is told to the admins. Every other difference is reported to
them once (``reconcile_reports``) and changed by no one but a person, since only
a person can tell which side is right:

- ``uncredited``: Telegram took a payment the ledger has no credit for (a stray
  payment the bot kept, or one it never saw);
- ``unknown_credit``: the ledger credited a charge Telegram does not list;
- ``amount``: the Stars Telegram took differ from the top-up's (a payment through
  an affiliate program lists the bot's share: the affiliate's counts too);
- ``unbooked_refund``: Telegram refunded a charge the ledger still shows as paid;
- ``refund_not_made``: the books show a refund Telegram lists no refund for;
- ``refund_uncertain``: an uncertain refund this run could not settle because
  Telegram's list could not be read completely.

A transaction the reader cannot read is skipped and counted (``StarPage``), and
the count is logged and told to the admins: the rest is reconciled.

It runs daily in the bot (a run that fails is told to the admins) and on demand
with ``python -m bot stars reconcile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.shop.messaging.alerts import Alert
from bot.shop.money.formatting import money
from bot.shop.money.topups import NO_HOOK, TopupHook, settle_not_refunded, settle_refunded
from storage import topups as topup_store
from storage.db import Database
from storage.topups import Topup

log = logging.getLogger(__name__)

PAGE = 100  # the most getStarTransactions returns at once
IN_FLIGHT = 600.0  # seconds: a payment or a refund request this young may be on its way
MAX_PAGES = 1_000  # 100,000 transactions: a bound on one run
RECONCILER = 0  # the audit log's admin id for what the reconciliation changes


@dataclass(frozen=True, slots=True)
class StarTransaction:
    """What reconciliation needs of Telegram's StarTransaction."""

    id: str  # the telegram_payment_charge_id (a refund has its payment's id)
    amount: int  # Stars, as Telegram lists them (the bot's share)
    user_id: int | None  # the payer (``source``) or, for a refund, the ``receiver``
    refund: bool
    date: float = 0.0  # unix time
    # A payment through an affiliate program: the payer's whole Stars, the
    # affiliate's commission included (``AffiliateInfo``); None without one.
    with_affiliate: int | None = None


@dataclass(frozen=True, slots=True)
class StarPage:
    """One page of ``getStarTransactions`` as the reader could read it."""

    transactions: list[StarTransaction]
    size: int  # the items Telegram listed, read or not: a page under PAGE is the last
    # The items that could not be read: each one's id when even that was unreadable, None.
    unreadable_ids: tuple[str | None, ...] = ()


Fetch = Callable[[int, int], Awaitable[StarPage]]  # (offset, limit) -> a page


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str
    charge_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class Settlement:
    """An uncertain refund settled by this run."""

    charge_id: str
    refunded: bool  # True: Telegram made it; False: it did not, and the debit was given back
    topup: Topup
    balance_minor: int | None = None  # the customer's balance after the debit came back


@dataclass(frozen=True, slots=True)
class Report:
    differences: list[Difference]
    settled: list[Settlement] = field(default_factory=list)
    unreadable: int = 0  # transactions Telegram listed that could not be read (skipped)


@dataclass
class Listing:
    """Telegram's transactions, as far as they could be read."""

    payments: dict[str, StarTransaction] = field(default_factory=dict)
    refunds: set[str] = field(default_factory=set)
    complete: bool = False  # every page was read (else old credits can't be checked)
    unreadable_ids: list[str | None] = field(default_factory=list)

    def may_hold(self, charge_id: str) -> bool:
        """Whether a transaction that could not be read may be this charge's."""
        return charge_id in self.unreadable_ids or None in self.unreadable_ids


async def read(fetch: Fetch) -> Listing:
    """Page through Telegram's transactions (newest first) to the last page."""
    listing = Listing()
    for page_number in range(MAX_PAGES):
        page = await fetch(page_number * PAGE, PAGE)
        listing.unreadable_ids += page.unreadable_ids
        for transaction in page.transactions:
            if transaction.refund:
                listing.refunds.add(transaction.id)
            elif transaction.user_id is not None:  # a user's payment (not a payout, an ad...)
                listing.payments[transaction.id] = transaction
        if page.size < PAGE:
            listing.complete = True
            break
    return listing


async def differences(db: Database, fetch: Fetch, *,
                      now: Callable[[], float] = time.time) -> list[Difference]:
    """Every difference between Telegram's transactions and the recorded top-ups;
    nothing is changed (``reconcile`` settles uncertain refunds too).

    The bot's records are read before Telegram's pages (a credit recorded then must
    be in them) and again after (a payment listed must have been credited by then,
    unless it is younger than ``IN_FLIGHT``: its update may still be on the way).
    """
    before = await _charged(db)
    listing = await read(fetch)
    return await _compare(db, before, listing, now())


async def _charged(db: Database) -> dict[str, Topup]:
    return {t.charge_id: t for t in await topup_store.charged(db) if t.charge_id}


async def _compare(db: Database, before: dict[str, Topup], listing: Listing,
                   now: float) -> list[Difference]:
    after = await _charged(db)
    found: list[Difference] = []
    for charge_id, payment in listing.payments.items():
        topup = after.get(charge_id)
        if topup is None:
            if charge_id in listing.refunds or payment.date > now - IN_FLIGHT:
                continue  # given back (a stray payment refunded), or not delivered yet
            found.append(Difference("uncredited", charge_id, f"user {payment.user_id} paid"
                                    f" {payment.amount} Stars; no top-up was credited"))
        elif topup.stars not in (payment.amount, payment.with_affiliate):
            paid = (f"{payment.with_affiliate} Stars, {payment.amount} of them the bot's"
                    " (the rest an affiliate's commission)" if payment.with_affiliate
                    else f"{payment.amount} Stars")
            found.append(Difference("amount", charge_id, f"Telegram took {paid}; the top-up"
                                    f" was for {topup.stars}"))
    for charge_id, recorded in before.items():
        topup = after.get(charge_id, recorded)
        if charge_id not in listing.payments:
            if listing.complete and not listing.may_hold(charge_id):
                found.append(Difference("unknown_credit", charge_id, f"user {topup.user_id}"
                                        " was credited, but Telegram lists no such payment"))
        elif charge_id in listing.refunds and topup.state == "paid":
            found.append(Difference("unbooked_refund", charge_id, f"Telegram refunded user"
                                    f" {topup.user_id}; the balance still has the credit"
                                    " (/refund_stars posts the debit)"))
        elif (topup.state == "refunded" and charge_id not in listing.refunds
              and listing.complete and not listing.may_hold(charge_id)):
            found.append(Difference("refund_not_made", charge_id, f"the books took back user"
                                    f" {topup.user_id}'s credit, but Telegram lists no refund"
                                    " (/credit gives it back)"))
        elif (topup.state == "refund_uncertain" and charge_id not in listing.refunds
              and (not listing.complete or listing.may_hold(charge_id))):
            found.append(Difference("refund_uncertain", charge_id, f"Telegram did not answer"
                                    f" the refund of user {topup.user_id}'s {topup.stars} Stars"
                                    " and its list could not be read completely to tell"
                                    " (/refund_stars asks Telegram again)"))
    return found


async def _settle(db: Database, listing: Listing, asked_before: float,
                  hook: TopupHook) -> list[Settlement]:
    """Settle the uncertain refunds Telegram's list decides (see the module doc);
    ``hook`` gives back what it took with a refund that did not happen."""
    settled: list[Settlement] = []
    for topup in await topup_store.refunds_uncertain(db):
        charge_id = topup.charge_id
        assert charge_id is not None  # a refund is of a charged top-up
        if charge_id in listing.refunds:
            made = await settle_refunded(db, charge_id, admin_id=RECONCILER,
                                         note="reconciliation: Telegram lists the refund")
            if made is not None:
                settled.append(Settlement(charge_id, True, made))
        elif (listing.complete and not listing.may_hold(charge_id)
              and topup.refund_requested_at is not None
              and topup.refund_requested_at < asked_before):
            back = await settle_not_refunded(
                db, charge_id, admin_id=RECONCILER, requested_before=asked_before,
                note="reconciliation: Telegram lists no refund", hook=hook)
            if back is not None:
                settled.append(Settlement(charge_id, False, back[0], back[1].balance_after))
    return settled


def _settlement_text(settlement: Settlement) -> str:
    topup = settlement.topup
    amount = money(topup.amount_minor, topup.currency)
    if settlement.refunded:
        return (f"⭐ Stars reconciliation: Telegram refunded user {topup.user_id}'s"
                f" {topup.stars} Stars (charge {settlement.charge_id}), a refund it had not"
                f" answered; the {amount} taken from their balance stays taken. Settled.")
    balance = money(settlement.balance_minor or 0, topup.currency)
    return (f"⭐ Stars reconciliation: Telegram made no refund of charge"
            f" {settlement.charge_id} (asked for over {int(IN_FLIGHT // 60)} minutes before,"
            f" not in its list), so the bot gave back the {amount} it had taken from user"
            f" {topup.user_id}'s balance (now {balance}); their {topup.stars} Stars were not"
            f" refunded (/refund_stars {settlement.charge_id} asks again).")


async def reconcile(db: Database, fetch: Fetch, alert: Alert, *,
                    now: Callable[[], float] = time.time, hook: TopupHook = NO_HOOK) -> Report:
    """Settle what Telegram's list decides, report each new difference once, and
    say how many transactions could not be read; returns all of it. ``hook`` is the
    top-ups' own (StarsTopups.hook): a refund given back gives back what it took."""
    started = now()
    before = await _charged(db)
    listing = await read(fetch)
    settled = await _settle(db, listing, started - IN_FLIGHT, hook)
    for settlement in settled:
        await alert(_settlement_text(settlement),
                    key=f"reconcile:settled:{settlement.charge_id}")
    found = await _compare(db, before, listing, started)
    for difference in found:
        if await topup_store.first_report(db, difference.kind, difference.charge_id):
            await alert(f"⭐ Stars reconciliation: {difference.kind} for charge"
                        f" {difference.charge_id}: {difference.detail}. Nothing was changed.",
                        key=f"reconcile:{difference.kind}:{difference.charge_id}")
    unreadable = len(listing.unreadable_ids)
    if unreadable:
        await _tell_unreadable(db, listing.unreadable_ids, alert)
    if found or settled or unreadable:
        log.warning("Stars reconciliation: %d difference(s), %d uncertain refund(s) settled,"
                    " %d transaction(s) could not be read", len(found), len(settled),
                    unreadable)
    return Report(found, settled, unreadable)


async def _tell_unreadable(db: Database, ids: list[str | None], alert: Alert) -> None:
    """Alert when a transaction not told about before could not be read (one with no
    id can't be told apart from the last run's: every run tells it)."""
    new = [i for i in ids if i is None or await topup_store.first_report(db, "unreadable", i)]
    if not new:
        return
    named = [i for i in ids if i is not None]
    await alert(f"⭐ Stars reconciliation: {len(ids)} of Telegram's Star transactions could"
                " not be read (a shape this version of aiogram does not know) and were"
                " skipped; the rest was reconciled. An uncertain refund they could be is left"
                " uncertain.", details="ids: " + (", ".join(named[:50]) or "none readable"),
                key="reconcile:unreadable")


async def every_day(db: Database, fetch: Fetch, alert: Alert, *, hook: TopupHook = NO_HOOK,
                    first_delay: float = 600.0, period: float = 86_400.0) -> None:
    """Reconcile once a day (first ten minutes after start-up) until cancelled."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            await reconcile(db, fetch, alert, hook=hook)
        except Exception as exc:  # Telegram down, a bug: try again tomorrow, never stop the bot
            log.exception("Stars reconciliation failed")
            with contextlib.suppress(Exception):  # telling must not stop the next day's run
                await alert("⭐ Stars reconciliation failed; it runs again tomorrow (or now:"
                            " python -m bot stars reconcile).",
                            details=f"{type(exc).__name__}: {exc}"[:1000],
                            key="reconcile:failed")
        await asyncio.sleep(period)
