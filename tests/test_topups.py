"""Stars top-ups as a service (bot/shop/money/topups.py): what a pre-checkout accepts, and a
payment credited exactly once, against a real SQLite file."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.shop.money.amounts import AmountError, from_minor
from bot.shop.money.topups import (
    STARS,
    Credit,
    Refund,
    Refusal,
    StarsRefundRefused,
    StarsTopups,
    TooManyUnpaid,
    stars_for,
)
from storage import ledger, users
from storage.db import Database

CUSTOMER, OTHER = 42, 43


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Alerts:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str, *, details: str = "", key: str | None = None) -> None:
        self.texts.append(text)


@pytest.fixture
async def topups(db: Database) -> StarsTopups:
    for user_id in (CUSTOMER, OTHER):
        await users.upsert_user(db, user_id, first_name="Alex")
    return StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                       maximum_minor=100_000, alert=Alerts(), clock=Clock())


async def test_a_top_up_is_credited_once_per_charge(db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)
    assert (topup.stars, topup.amount_minor, topup.state) == (250, 500, "pending")
    assert await topups.check(CUSTOMER, topup.payload, 250, STARS) is None
    paid = await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-1")
    assert paid.credit is Credit.CREDITED and paid.balance_minor == 500
    again = await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-1")
    assert again.credit is Credit.ALREADY  # the same update delivered twice
    assert await ledger.balance_of(db, CUSTOMER) == 500 == await ledger.ledger_sum(db, CUSTOMER)
    assert await topups.check(CUSTOMER, topup.payload, 250, STARS) is Refusal.PAID


async def test_concurrent_deliveries_credit_once(db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 1_000)
    results = await asyncio.gather(*(topups.record_payment(
        CUSTOMER, topup.payload, topup.stars, STARS, "charge-2") for _ in range(5)))
    assert [r.credit for r in results].count(Credit.CREDITED) == 1
    assert await ledger.balance_of(db, CUSTOMER) == 1_000


@pytest.mark.parametrize(("payer", "payload", "total", "currency", "why"), [
    (OTHER, None, 250, STARS, Refusal.UNKNOWN),  # another user's invoice
    (CUSTOMER, "garbage", 250, STARS, Refusal.UNKNOWN),
    (CUSTOMER, "x" * 300, 250, STARS, Refusal.UNKNOWN),
    (CUSTOMER, "", 250, STARS, Refusal.UNKNOWN),
    (CUSTOMER, None, 249, STARS, Refusal.MISMATCH),  # a wrong total
    (CUSTOMER, None, 250, "USD", Refusal.MISMATCH),  # a wrong currency
])
async def test_pre_checkouts_that_are_refused(topups: StarsTopups, payer: int,
                                             payload: str | None, total: int, currency: str,
                                             why: Refusal) -> None:
    topup = await topups.create(CUSTOMER, 500)
    assert await topups.check(payer, payload if payload is not None else topup.payload, total,
                              currency) is why


async def test_an_expired_top_up_is_refused_but_a_payment_made_in_time_counts(
        db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)
    clock = topups._clock
    assert isinstance(clock, Clock)
    clock.now += 24 * 3600 + 1
    assert await topups.check(CUSTOMER, topup.payload, 250, STARS) is Refusal.EXPIRED
    # A payment Telegram completed (its pre-checkout was accepted in time) is credited.
    paid = await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-3")
    assert paid.credit is Credit.CREDITED


async def test_a_payment_naming_no_pending_top_up_credits_nothing_and_alerts(
        db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)
    for payer, payload, total in ((OTHER, topup.payload, 250), (CUSTOMER, "forged", 250),
                                  (CUSTOMER, topup.payload, 1)):
        stray = await topups.record_payment(payer, payload, total, STARS, f"stray-{payer}-{total}")
        assert stray.credit is Credit.STRAY
    again = await topups.record_payment(OTHER, topup.payload, 250, STARS, "stray-43-250")
    assert again.credit is Credit.STRAY
    assert await ledger.balance_of(db, CUSTOMER) == 0 == await ledger.balance_of(db, OTHER)
    kept = await db.fetchall("SELECT charge_id FROM stray_payments ORDER BY charge_id")
    assert [r[0] for r in kept] == ["stray-42-1", "stray-42-250", "stray-43-250"]
    alerts = topups._alert
    assert isinstance(alerts, Alerts)
    assert len(alerts.texts) == 3 and all("credited nothing" in t for t in alerts.texts)
    assert (await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "ok")).credit \
        is Credit.CREDITED  # the real payment still works


async def test_the_credit_is_the_amount_of_the_invoice_not_of_todays_rate(
        db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)
    topups.stars_per_unit = Decimal(100)  # the owner changed the rate meanwhile
    paid = await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-4")
    assert paid.credit is Credit.CREDITED and paid.balance_minor == 500


async def test_amounts_outside_the_range_are_refused(topups: StarsTopups) -> None:
    for amount in (99, 100_001):
        with pytest.raises(AmountError):
            await topups.create(CUSTOMER, amount)


@given(rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000), places=2),
       amount=st.integers(min_value=1, max_value=10**8))
def test_stars_charged_cover_the_amount_at_the_rate(rate: Decimal, amount: int) -> None:
    stars = stars_for(amount, "USD", rate)
    exact = from_minor(amount, "USD") * rate
    assert stars >= exact  # rounded up, never down
    assert stars - exact < 1 or stars == 1  # by less than a Star (at least one is charged)


class Telegram:
    """refundStarPayment as Telegram answers it: once, then CHARGE_ALREADY_REFUNDED."""

    def __init__(self, *, fail: str = "") -> None:
        self.refunded: list[str] = []
        self.fail = fail

    async def __call__(self, user_id: int, charge_id: str) -> None:
        if self.fail:
            raise StarsRefundRefused(self.fail)
        if charge_id in self.refunded:
            raise StarsRefundRefused("Bad Request: CHARGE_ALREADY_REFUNDED")
        self.refunded.append(charge_id)


async def paid_topup(topups: StarsTopups, amount: int, charge: str) -> None:
    topup = await topups.create(CUSTOMER, amount)
    assert (await topups.record_payment(CUSTOMER, topup.payload, topup.stars, STARS,
                                        charge)).credit is Credit.CREDITED


async def test_a_refund_debits_what_was_credited_once(db: Database, topups: StarsTopups) -> None:
    await paid_topup(topups, 500, "charge-r")
    telegram = Telegram()
    done = await topups.refund("charge-r", telegram)
    assert done.outcome is Refund.REFUNDED and done.balance_minor == 0
    assert telegram.refunded == ["charge-r"]
    again = await topups.refund("charge-r", telegram)
    assert again.outcome is Refund.ALREADY and telegram.refunded == ["charge-r"]
    assert await ledger.balance_of(db, CUSTOMER) == 0 == await ledger.ledger_sum(db, CUSTOMER)
    assert (await topups.refund("no-such-charge", telegram)).outcome is Refund.UNKNOWN


async def test_a_refund_after_spending_is_refused_with_the_spendable_balance(
        db: Database, topups: StarsTopups) -> None:
    await paid_topup(topups, 500, "charge-s")
    async with db.transaction() as conn:  # the customer bought something for $1.56
        await ledger.post(conn, user_id=CUSTOMER, amount_minor=-156, kind="order", key="o1")
    telegram = Telegram()
    refused = await topups.refund("charge-s", telegram)
    assert refused.outcome is Refund.SPENT and refused.balance_minor == 344
    assert telegram.refunded == [] and await ledger.balance_of(db, CUSTOMER) == 344


async def test_telegram_refusing_a_refund_changes_nothing(db: Database,
                                                          topups: StarsTopups) -> None:
    await paid_topup(topups, 500, "charge-t")
    refused = await topups.refund("charge-t", Telegram(fail="Bad Request: CHARGE_NOT_FOUND"))
    assert refused.outcome is Refund.REFUSED and "CHARGE_NOT_FOUND" in refused.telegram
    assert await ledger.balance_of(db, CUSTOMER) == 500
    assert (await topups.refund("charge-t", Telegram())).outcome is Refund.REFUNDED


async def test_a_refund_telegram_made_already_is_reconciled_once(db: Database,
                                                                 topups: StarsTopups) -> None:
    await paid_topup(topups, 500, "charge-u")
    telegram = Telegram()
    telegram.refunded.append("charge-u")  # refunded outside the bot (or a crash after it)
    done = await topups.refund("charge-u", telegram)
    assert done.outcome is Refund.RECONCILED and done.balance_minor == 0
    assert (await topups.refund("charge-u", telegram)).outcome is Refund.ALREADY
    assert await ledger.ledger_sum(db, CUSTOMER) == 0


@settings(max_examples=40)
@given(rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1_000), places=2),
       amount=st.integers(min_value=100, max_value=100_000))
def test_what_is_credited_is_the_chosen_amount_to_the_minor_unit(
        tmp_path_factory: pytest.TempPathFactory, rate: Decimal, amount: int) -> None:
    async def scenario() -> None:
        async with Database(tmp_path_factory.mktemp("credit") / "shop.sqlite3") as db:
            await users.upsert_user(db, CUSTOMER, first_name="Alex")
            topups = StarsTopups(db, stars_per_unit=rate, currency="USD", minimum_minor=100,
                                 maximum_minor=100_000)
            topup = await topups.create(CUSTOMER, amount)
            assert topup.stars >= from_minor(amount, "USD") * rate  # never fewer Stars
            paid = await topups.record_payment(CUSTOMER, topup.payload, topup.stars, STARS, "c")
            assert paid.balance_minor == amount == await ledger.ledger_sum(db, CUSTOMER)

    asyncio.run(scenario())


async def test_unpaid_invoices_are_capped_per_customer_until_one_is_paid_or_expires(
        db: Database) -> None:
    clock = Clock()
    for user_id in (CUSTOMER, OTHER):
        await users.upsert_user(db, user_id, first_name="Alex")
    capped = StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                         maximum_minor=100_000, clock=clock, pending_max=3)
    made = [await capped.create(CUSTOMER, 500) for _ in range(3)]
    with pytest.raises(TooManyUnpaid) as refused:
        await capped.create(CUSTOMER, 500)
    assert refused.value.limit == 3
    assert (await capped.create(OTHER, 500)).user_id == OTHER  # a cap per customer
    pending = "SELECT COUNT(*) FROM topups WHERE user_id = ? AND state = 'pending'"
    assert (await db.fetchone(pending, (CUSTOMER,)))[0] == 3  # nothing made on refusal
    await capped.record_payment(CUSTOMER, made[0].payload, made[0].stars, STARS, "charge-cap")
    await capped.create(CUSTOMER, 500)  # a paid one frees its slot
    with pytest.raises(TooManyUnpaid):
        await capped.create(CUSTOMER, 500)
    clock.now += 24 * 3600 + 1  # expired invoices no longer count
    assert len([await capped.create(CUSTOMER, 500) for _ in range(3)]) == 3


async def test_a_burst_of_taps_cannot_pass_the_unpaid_cap(db: Database) -> None:
    await users.upsert_user(db, CUSTOMER, first_name="Alex")
    capped = StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                         maximum_minor=100_000, clock=Clock(), pending_max=5)
    results = await asyncio.gather(*(capped.create(CUSTOMER, 500) for _ in range(300)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, TooManyUnpaid) for r in results if isinstance(r, BaseException))
    assert (await db.fetchone("SELECT COUNT(*) FROM topups"))[0] == 5
