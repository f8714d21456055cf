"""What an adversarial pass over the Stars top-ups (issue 10) found: each test
failed on the code it was written against (its docstring says how, where it
isn't plain from the name)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.shop.money import reconcile
from bot.shop.money.reconcile import StarPage
from bot.shop.money.topups import STARS, Credit, Refund, StarsRefundRefused, StarsTopups
from storage import ledger, users
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import Shop, restart, running_shop
from tests.test_confirm_guarantees import change_service
from tests.test_stars import STARS as STARS_SETTINGS
from tests.test_storefront import CUSTOMER, _to_confirmation

pytestmark = pytest.mark.timeout(120)


async def _no_alert(text: str, *, details: str = "", key: str | None = None) -> None:
    return None


@pytest.fixture
async def topups(db: Database) -> StarsTopups:
    await users.upsert_user(db, CUSTOMER, first_name="Alex")
    return StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                       maximum_minor=100_000, alert=_no_alert)


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path):
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, **STARS_SETTINGS) as running:
        yield running


async def _spend_concurrently(db: Database, amount: int) -> None:
    """The customer's Confirm, landing while refundStarPayment is in flight."""
    try:
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=CUSTOMER, amount_minor=-amount, kind="order",
                              key="order:race")
    except ledger.InsufficientFunds:
        pass  # a fixed refund reserved the money first: the order is refused


async def refund_debits(db: Database, charge: str) -> int:
    """The refund debits posted for ``charge`` (an attempt Telegram refused is reversed)."""
    row = await db.fetchone("SELECT COALESCE(SUM(amount_minor), 0) FROM ledger"
                            " WHERE kind = 'topup_refund' AND idempotency_key LIKE ?",
                            (f"stars-refund%:{charge}:%",))
    assert row is not None
    return int(row[0])


async def test_a_refund_racing_an_order_never_returns_the_stars_and_keeps_the_credit(
        db: Database, topups: StarsTopups) -> None:
    """The refund's debit was posted after Telegram's answer, so an order confirmed
    meanwhile left the Stars refunded and the credit spent."""
    topup = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-race")
    stars_back: list[str] = []

    async def refund_call(user_id: int, charge: str) -> None:
        await _spend_concurrently(db, 300)  # while Telegram handles the refund
        stars_back.append(charge)

    result = await topups.refund("charge-race", refund_call)
    spent = await db.fetchone("SELECT COUNT(*) FROM ledger WHERE idempotency_key = 'order:race'")
    assert result.outcome is Refund.REFUNDED and stars_back == ["charge-race"]
    assert await refund_debits(db, "charge-race") == -500  # the credit came back first
    assert spent is not None and spent[0] == 0  # so the order found no money
    assert await ledger.balance_of(db, CUSTOMER) == 0 == await ledger.ledger_sum(db, CUSTOMER)


async def test_an_order_first_makes_the_refund_wait_for_nothing(
        db: Database, topups: StarsTopups) -> None:
    """The other order: the customer spends first; the refund is refused, Telegram is
    never asked, nothing changes (a later refund still works once they top up)."""
    topup = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-short")
    await _spend_concurrently(db, 300)
    asked: list[str] = []

    async def refund_call(user_id: int, charge: str) -> None:
        asked.append(charge)

    result = await topups.refund("charge-short", refund_call)
    assert result.outcome is Refund.SPENT and result.balance_minor == 200 and asked == []
    assert await refund_debits(db, "charge-short") == 0
    top_up_again = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, top_up_again.payload, 250, STARS, "charge-more")
    assert (await topups.refund("charge-short", refund_call)).outcome is Refund.REFUNDED
    assert asked == ["charge-short"] and await ledger.balance_of(db, CUSTOMER) == 200


async def test_a_refund_telegram_refuses_is_reversed_and_can_be_asked_again(
        db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-again")

    async def refuse(user_id: int, charge: str) -> None:
        raise StarsRefundRefused("Bad Request: CHARGE_NOT_FOUND")

    async def accept(user_id: int, charge: str) -> None:
        return None

    async def no_answer(user_id: int, charge: str) -> None:
        raise ConnectionError("timeout")

    assert (await topups.refund("charge-again", refuse)).outcome is Refund.REFUSED
    assert await ledger.balance_of(db, CUSTOMER) == 500 == await ledger.ledger_sum(db, CUSTOMER)
    uncertain = await topups.refund("charge-again", no_answer)
    assert uncertain.outcome is Refund.UNCERTAIN and uncertain.balance_minor == 0
    # Asked again, Telegram refunds: settled, with no second debit.
    assert (await topups.refund("charge-again", accept)).outcome is Refund.SETTLED
    assert (await topups.refund("charge-again", accept)).outcome is Refund.ALREADY
    assert await refund_debits(db, "charge-again") == -500  # once, in the end


async def test_a_payment_credited_while_reconciliation_pages_is_not_an_unknown_credit(
        db: Database, topups: StarsTopups) -> None:
    topup = await topups.create(CUSTOMER, 500)

    async def fetch(offset: int, limit: int) -> StarPage:
        page = StarPage([], 0)  # Telegram's list as read now: not paid yet
        # ...and the customer pays before the ledger side is read
        await topups.record_payment(CUSTOMER, topup.payload, 250, STARS, "charge-late")
        return page

    found = await reconcile.differences(db, fetch)
    assert found == [], "a false 'credited, but Telegram lists no such payment' alarm"


async def test_the_same_charge_id_for_a_second_payload_does_not_crash(
        db: Database, topups: StarsTopups) -> None:
    first = await topups.create(CUSTOMER, 500)
    second = await topups.create(CUSTOMER, 500)
    await topups.record_payment(CUSTOMER, first.payload, 250, STARS, "charge-dup")
    result = await topups.record_payment(CUSTOMER, second.payload, 250, STARS, "charge-dup")
    assert result.credit is not Credit.CREDITED
    assert await ledger.balance_of(db, CUSTOMER) == 500


async def test_a_stray_payment_can_be_refunded_by_the_admin(shop: Shop) -> None:
    """One invoice paid twice (two devices: both pre-checkouts find it pending): the
    second payment is stray, and the alert says "refund the charge"."""
    await shop.admin.send("/start")
    customer = shop.user(CUSTOMER)
    await customer.send("/balance")
    await customer.tap("Top up")
    await customer.tap("$5.00 · 250 ⭐")
    payload = customer.invoices()[-1].invoice_payload
    assert payload is not None
    assert (await customer.pre_checkout(payload, 250)).ok
    assert (await customer.pre_checkout(payload, 250)).ok  # the second device
    for _ in range(2):
        charge = shop.emulator.complete_payment(customer.sender, 250, payload)
        await customer.deliver_payment(payload, 250, charge)
    assert "could not match it" in customer.text
    await shop.admin.expect("credited nothing")
    await shop.admin.send(f"/refund_stars {charge}")
    assert [t["id"] for t in shop.emulator.refunds] == [charge], shop.admin.text
    assert await shop.balance(CUSTOMER) == (500, 500)


async def test_the_shortfall_button_after_the_service_changed_does_not_crash(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/limits")  # quantity 1000
    await customer.tap("Confirm")
    assert "short by $0.56" in customer.text
    short = customer.last()
    change_service(shop, 101, max=500)
    await restart(shop, shop.emulator_url)
    await customer.tap_data(short.button("Pay the missing $1.00")["callback_data"], short)  # type: ignore[index]
    await shop.emulator.settle()
    assert all("went wrong" not in m.text for m in customer.bot_messages), customer.text


async def test_other_amount_from_a_short_confirmation_keeps_the_order(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/other")
    await customer.tap("Confirm")
    short = customer.last()
    await customer.tap("Other amount")
    await customer.send("5")
    assert (await customer.pay()).ok
    await customer.expect("$5.00 added to your balance")
    confirm = short.button("Confirm")
    assert confirm is not None
    answer = await customer.tap_data(confirm["callback_data"], short)
    assert "already handled" not in (answer.get("text") or ""), answer  # nothing was placed
    assert await shop.query("SELECT COUNT(*) FROM orders") == [(0,)]
