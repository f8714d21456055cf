"""Referrals (issue 21): the unmodified bot, the Bot API emulator's payments and
refunds, the sandbox panel and a real SQLite file; then the service alone, where
that is cheaper, and the commission's arithmetic over every amount and percent."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import ConfigError, load_settings, startup_warnings
from bot.devtools.emulator import ScriptedUser
from bot.shop.growth.referrals import Referrals, commission, is_code, new_code
from bot.shop.money import reconcile
from bot.shop.money.reconcile import StarPage
from bot.shop.money.topups import STARS, Refund, StarsRefundRefused, StarsTopups
from storage import ledger, users
from storage import referrals as referral_store
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import Shop, running_shop
from tests.test_reconcile import Alerts
from tests.test_stars import STARS as STARS_SETTINGS
from tests.test_stars import bought_stars

pytestmark = pytest.mark.timeout(120)

REFERRALS = {**STARS_SETTINGS, "referral_percent": "10"}
ALICE, BOB, CAROL, DAN = 101, 102, 103, 104
LINK = re.compile(r"https://t\.me/storefront_bot\?start=(r[A-Za-z0-9_-]{10})")


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, **REFERRALS) as running:
        yield running


async def code_of(user: ScriptedUser) -> str:
    """The user's referral code, as /invite shows their link."""
    reply = await user.send("/invite")
    found = LINK.search(reply.text)
    assert found is not None, reply.text
    return found.group(1)


async def referred_by(shop: Shop, user_id: int) -> int | None:
    [(referrer,)] = await shop.query("SELECT referred_by FROM users WHERE id = ?", (user_id,))
    return referrer


async def payouts(shop: Shop) -> list[tuple]:
    return await shop.query(
        "SELECT level, referrer_id, referred_id, topup_minor, amount_minor, state,"
        " taken_back_minor, written_off_minor FROM referral_payouts ORDER BY created_at, level")


async def invited(shop: Shop, referrer: ScriptedUser, first_name: str, user_id: int,
                  language: str = "en") -> ScriptedUser:
    """A new customer whose first /start is ``referrer``'s link."""
    code = await code_of(referrer)
    friend = shop.user(user_id, first_name, language_code=language)
    reply = await friend.send(f"/start {code}")
    assert f"{first_name}!" in reply.text
    assert await referred_by(shop, user_id) == referrer.id
    return friend


# ------------------------------------------------------------------ paying


async def test_a_referred_customers_top_up_pays_the_referrer_once_with_a_notice(
        shop: Shop) -> None:
    alice = shop.user(ALICE, "Alice")
    await alice.send("/start")
    assert "Invite friends" in str(alice.last().buttons)
    screen = await alice.send("/invite")
    assert "you get 10% of the top-up" in screen.text
    assert "Invited: 0 · topped up: 0 · earned: $0.00" in screen.text
    share = screen.button("Share the link")
    assert share is not None and share["url"].startswith("https://t.me/share/url?url=https%3A")
    code = LINK.search(screen.text).group(1)  # type: ignore[union-attr]
    assert await code_of(alice) == code  # made once, kept

    bob = await invited(shop, alice, "Bob", BOB)
    charge = await bought_stars(bob, "$10.00 · 500 ⭐")
    notice = await alice.expect("You earned $1.00")
    assert "a friend you invited topped up" in notice.text and "Your balance: $1.00" in notice.text
    payload = bob.invoices()[-1].invoice_payload
    await bob.deliver_payment(payload, 500, charge)  # Telegram delivers it again
    assert await shop.balance(ALICE) == (100, 100)
    assert await shop.balance(BOB) == (1_000, 1_000)  # Bob's credit is his whole top-up
    assert await payouts(shop) == [(1, ALICE, BOB, 1_000, 100, "paid", 0, 0)]
    assert await shop.query("SELECT COUNT(*) FROM ledger WHERE kind = 'referral'") == [(1,)]
    assert await shop.query("SELECT admin_id, target_id FROM audit_log"
                            " WHERE action = 'referral_payout'") == [(0, str(ALICE))]
    assert len(alice.saying("You earned")) == 1

    screen = await alice.send("/invite")
    assert "Invited: 1 · topped up: 1 · earned: $1.00" in screen.text
    await alice.send("/balance")
    assert "+$1.00 · 🎁 Reward for inviting a friend" in alice.text
    screens = len(alice.saying("Your link:"))
    await alice.tap("Invite friends")  # the notice's button: the screen in its place
    assert len(alice.saying("Your link:")) == screens + 1 and not alice.saying("You earned")


async def test_invite_works_in_any_state_and_the_form_carries_on(shop: Shop) -> None:
    alice = shop.user(ALICE, "Alice")
    await alice.send("/balance")
    await alice.tap("Top up")
    await alice.tap("Other amount")
    assert "How much" in alice.text
    assert "Your link:" in (await alice.send("/invite")).text
    await alice.send("7")  # still the amount's step: the invoice comes
    assert alice.invoices()[-1].invoice["total_amount"] == 350  # type: ignore[index]
    await alice.send("/start")
    await alice.tap("Invite friends")
    assert "Your link:" in alice.text
    commands = {c["command"] for c in shop.emulator.commands}
    assert "invite" in commands


async def test_only_the_first_start_counts_and_no_own_link_or_loop_earns(shop: Shop) -> None:
    alice = shop.user(ALICE, "Alice")
    await alice.send("/start")
    code = await code_of(alice)

    late = shop.user(CAROL, "Carol")  # a customer already, then Alice's link
    await late.send("/start")
    await late.send(f"/start {code}")
    assert await referred_by(shop, CAROL) is None
    await bought_stars(late)
    assert await shop.balance(ALICE) == (0, 0)

    own = shop.user(DAN, "Dan")  # asks for his link before any /start, then uses it
    own_code = await code_of(own)
    assert "Hi, Dan!" in (await own.send(f"/start {own_code}")).text
    assert await referred_by(shop, DAN) is None

    # A loop: Eve has a link before her first /start; Fay comes by it; Eve's first
    # /start is then Fay's link (A→B→A), and Gus, by Fay's, brings Eve round at level 2.
    eve, eve_id = shop.user(201, "Eve"), 201
    await code_of(eve)
    fay = await invited(shop, eve, "Fay", 202)
    fay_code = await code_of(fay)
    assert "Hi, Eve!" in (await eve.send(f"/start {fay_code}")).text
    assert await referred_by(shop, eve_id) is None
    hal = shop.user(203, "Hal")
    await code_of(hal)
    ivy = await invited(shop, hal, "Ivy", 204)
    jay = await invited(shop, ivy, "Jay", 205)
    await hal.send(f"/start {await code_of(jay)}")
    assert await referred_by(shop, 203) is None
    await bought_stars(eve)  # referred by nobody: nobody earns
    assert await shop.balance(202) == (0, 0)
    await bought_stars(fay)  # Fay was brought by Eve: Eve earns
    await eve.expect("You earned $0.50")

    for number, junk in enumerate(("r0000000000", "rAAAAAAAAAA", "r12", "garbage<b>",
                                   "r" + "x" * 300)):
        stranger = shop.user(300 + number, "Kim")
        assert "Hi, Kim!" in (await stranger.send(f"/start {junk}")).text
        assert await referred_by(shop, stranger.id) is None
    assert await shop.query("SELECT COUNT(*) FROM referral_payouts") == [(1,)]


# ------------------------------------------------------------------ refunds


async def test_a_refund_takes_the_commission_back_even_what_was_spent(shop: Shop) -> None:
    admin = shop.admin
    await admin.send("/start")
    alice = shop.user(ALICE, "Alice")
    await alice.send("/start")
    bob = await invited(shop, alice, "Bob", BOB)
    whole = await bought_stars(bob, "$10.00 · 500 ⭐")
    await alice.expect("You earned $1.00")
    await admin.send(f"/refund_stars {whole}")
    assert "Refunded 500 ⭐ to user 102" in admin.text
    assert await shop.balance(ALICE) == (0, 0)

    spent = await bought_stars(bob, "$10.00 · 500 ⭐")
    await shop.emulator.wait_for(lambda: len(alice.saying("You earned $1.00")) == 2)
    await admin.send(f"/debit {ALICE} 0.60 spent on an order")  # Alice spends most of it
    await admin.send(f"/refund_stars {spent}")
    assert "Refunded 500 ⭐" in admin.text
    assert await shop.balance(ALICE) == (0, 0)  # 0.40 taken back, never below zero
    assert await payouts(shop) == [(1, ALICE, BOB, 1_000, 100, "taken_back", 100, 0),
                                   (1, ALICE, BOB, 1_000, 100, "taken_back", 40, 60)]
    assert await shop.query("SELECT amount_minor FROM ledger WHERE kind = 'referral_clawback'"
                            " ORDER BY id") == [(-100,), (-40,)]
    clawbacks = await shop.query("SELECT admin_id, note FROM audit_log"
                                 " WHERE action = 'referral_clawback' ORDER BY id")
    assert [admin_id for admin_id, _ in clawbacks] == [admin.id, admin.id]
    assert "$0.40 taken back, $0.60 written off" in clawbacks[1][1]

    await admin.send("/admin")
    await admin.tap("Referrals")
    board = admin.text
    assert "Earned: $2.00 · taken back: $1.40 · written off: $0.60" in board
    assert "Alice (101): invited 1 · earned $2.00 · taken back $1.40 · written off $0.60" \
        in board
    await admin.tap("All time")
    assert "written off: $0.60" in admin.text
    await admin.tap("1. Alice")
    assert "Referrals: invited 1 · earned $2.00 · taken back $1.40 · written off $0.60" \
        in admin.text
    screen = await alice.send("/invite")
    assert "Invited: 1 · topped up: 0 · earned: $0.60" in screen.text  # what she kept


async def test_a_refund_telegram_refuses_gives_the_commission_back(shop: Shop) -> None:
    admin = shop.admin
    await admin.send("/start")
    alice = shop.user(ALICE, "Alice")
    await alice.send("/start")
    bob = await invited(shop, alice, "Bob", BOB)
    charge = await bought_stars(bob)
    await alice.expect("You earned $0.50")
    shop.emulator.inject("refundStarPayment", 400)
    await admin.send(f"/refund_stars {charge}")
    assert "Telegram refused the refund" in admin.text
    assert await shop.balance(ALICE) == (50, 50) and await shop.balance(BOB) == (500, 500)
    assert await payouts(shop) == [(1, ALICE, BOB, 500, 50, "paid", 0, 0)]
    assert await shop.query("SELECT amount_minor FROM ledger WHERE kind = 'referral_clawback'"
                            " ORDER BY id") == [(-50,), (50,)]
    assert await shop.query("SELECT COUNT(*) FROM audit_log"
                            " WHERE action = 'referral_given_back'") == [(1,)]
    await admin.send(f"/refund_stars {charge}")  # asked again, Telegram refunds: taken once
    assert "Refunded 250 ⭐" in admin.text
    assert await shop.balance(ALICE) == (0, 0)
    assert await payouts(shop) == [(1, ALICE, BOB, 500, 50, "taken_back", 50, 0)]


# ------------------------------------------------------------------ settings


async def test_a_second_level_and_a_smallest_top_up(make_sandbox: SandboxFactory,
                                                    tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **REFERRALS, referral_percent_2="5",
                            referral_min_topup="10") as shop:
        alice = shop.user(ALICE, "Alice")
        await alice.send("/start")
        screen = await alice.send("/invite")
        assert "you get 5% of that too" in screen.text and "$10.00 or more" in screen.text
        bob = await invited(shop, alice, "Bob", BOB, language="ru")
        carol = await invited(shop, bob, "Carol", CAROL)
        await bought_stars(carol)  # $5: under REFERRAL_MIN_TOPUP
        await bought_stars(carol, "$10.00 · 500 ⭐")
        notice = await bob.expect("Вы заработали")  # in the referrer's language
        assert "1,00" in notice.text and "приглашённый вами друг" in notice.text
        await alice.expect("You earned $0.50: a friend of a friend")
        assert await shop.balance(BOB) == (100, 100) and await shop.balance(ALICE) == (50, 50)
        assert [(level, referrer, amount) for level, referrer, _, _, amount, *_ in
                await payouts(shop)] == [(1, BOB, 100), (2, ALICE, 50)]
        await bob.send("/balance")  # Bob's own top-up (his chat is in Russian): Alice's level 1
        await bob.tap("Пополнить")
        await bob.tap("500 ⭐")
        assert (await bob.pay()).ok
        await shop.emulator.wait_for(lambda: len(alice.saying("You earned")) == 2)
        assert await shop.balance(ALICE) == (150, 150)
        assert "Invited: 1 · topped up: 1 · earned: $1.50" in (await alice.send("/invite")).text


async def test_with_no_percent_there_is_no_program(make_sandbox: SandboxFactory,
                                                   tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **STARS_SETTINGS) as shop:
        alice = shop.user(ALICE, "Alice")
        await alice.send("/start")
        assert "Invite friends" not in str(alice.last().buttons)
        assert "not running" in (await alice.send("/invite")).text
        assert "invite" not in {c["command"] for c in shop.emulator.commands}
        await alice.tap_data("rf:show", await alice.send("/start"))  # an old button
        assert "not running" in alice.text
        assert await shop.query("SELECT referral_code FROM users WHERE id = ?",
                                (ALICE,)) == [(None,)]


async def test_an_admin_turns_a_referrer_off_and_on(shop: Shop) -> None:
    admin = shop.admin
    await admin.send("/start")
    alice = shop.user(ALICE, "Alice")
    await alice.send("/start")
    bob = await invited(shop, alice, "Bob", BOB)
    await admin.send("/admin")
    await admin.tap("Referrals")
    assert "invited 1 · earned $0.00" in admin.text
    await admin.tap("1. Alice")
    await admin.tap("Referral commissions off")
    assert "commissions are turned off" in admin.text
    await bought_stars(bob)
    assert await shop.balance(ALICE) == (0, 0)
    await admin.tap("Referral commissions on")
    await bought_stars(bob)
    await alice.expect("You earned $0.50")
    assert await shop.query("SELECT action, admin_id, target_id FROM audit_log"
                            " WHERE action LIKE 'referrals_o%' ORDER BY id") == [
        ("referrals_off", admin.id, str(ALICE)), ("referrals_on", admin.id, str(ALICE))]
    # Nobody else opens the screen or turns anyone off.
    for forged in ("aref:all", f"ak:referrals_off:{ALICE}", "a:referrals:0"):
        answer = await bob.tap_data(forged, await bob.send("/start"))
        assert "no longer valid" in (answer.get("text") or "")
    assert await shop.query("SELECT referrals_off_at FROM users WHERE id = ?", (ALICE,)) == [
        (None,)]


# ------------------------------------------------------------------ the service alone


@pytest.fixture
async def program(db: Database) -> Referrals:
    for user_id, name in ((ALICE, "Alice"), (BOB, "Bob")):
        await users.upsert_user(db, user_id, first_name=name)
    referrals = Referrals(db, percent=Decimal(10))
    code = await referrals.code_for(ALICE)
    assert await referrals.started(BOB, code) == ALICE
    return referrals


def topups_of(db: Database, referrals: Referrals) -> StarsTopups:
    return StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                       maximum_minor=100_000, hook=referrals)


async def no_answer(user_id: int, charge: str) -> None:
    raise ConnectionError("timeout")


async def not_found(user_id: int, charge: str) -> None:
    raise StarsRefundRefused("Bad Request: CHARGE_NOT_FOUND")


async def paid(topups: StarsTopups, charge: str, amount_minor: int = 1_000) -> None:
    topup = await topups.create(BOB, amount_minor)
    await topups.record_payment(BOB, topup.payload, topup.stars, STARS, charge)


async def test_an_uncertain_refund_the_reconciliation_gives_back_gives_the_commission_back(
        db: Database, program: Referrals) -> None:
    topups = topups_of(db, program)
    await paid(topups, "charge-r")
    assert await ledger.balance_of(db, ALICE) == 100
    async with db.transaction() as conn:  # Alice spends 0.30 of it
        await ledger.post(conn, user_id=ALICE, amount_minor=-30, kind="debit", key="spent")
    assert (await topups.refund("charge-r", no_answer)).outcome is Refund.UNCERTAIN
    assert await ledger.balance_of(db, ALICE) == 0  # 0.70 taken, 0.30 written off
    taken = await referral_store.figures(db, ALICE)
    assert taken is not None and (taken.taken_back_minor, taken.written_off_minor) == (70, 30)

    async def nothing_refunded(offset: int, limit: int) -> StarPage:
        return StarPage([], 0)

    report = await reconcile.reconcile(db, nothing_refunded, Alerts(),
                                       now=lambda: time.time() + 3_600, hook=topups.hook)
    assert [s.refunded for s in report.settled] == [False]
    assert await ledger.balance_of(db, ALICE) == 70 == await ledger.ledger_sum(db, ALICE)
    back = await referral_store.figures(db, ALICE)
    assert back is not None and (back.taken_back_minor, back.written_off_minor) == (0, 0)
    # Refunded again later, and Telegram answers: taken back once more, from 0.70.
    assert (await topups.refund("charge-r", no_answer)).outcome is Refund.UNCERTAIN
    assert (await topups.refund("charge-r", not_found)).outcome is Refund.GIVEN_BACK
    assert await ledger.balance_of(db, ALICE) == 70 == await ledger.ledger_sum(db, ALICE)
    rows = await db.fetchall("SELECT amount_minor FROM ledger WHERE user_id = ?"
                             " AND kind LIKE 'referral%' ORDER BY id", (ALICE,))
    assert [r[0] for r in rows] == [100, -70, 70, -70, 70]


async def test_asked_again_a_refund_takes_the_commission_once(
        db: Database, program: Referrals) -> None:
    topups = topups_of(db, program)
    await paid(topups, "charge-a")
    assert (await topups.refund("charge-a", no_answer)).outcome is Refund.UNCERTAIN

    async def refunds(user_id: int, charge: str) -> None:
        return None

    assert (await topups.refund("charge-a", refunds)).outcome is Refund.SETTLED
    assert (await topups.refund("charge-a", refunds)).outcome is Refund.ALREADY
    assert await ledger.balance_of(db, ALICE) == 0 == await ledger.ledger_sum(db, ALICE)
    rows = await db.fetchall("SELECT amount_minor FROM ledger WHERE user_id = ? ORDER BY id",
                             (ALICE,))
    assert [r[0] for r in rows] == [100, -100]


async def test_admin_credits_and_commissions_earn_nothing(db: Database,
                                                          program: Referrals) -> None:
    """Only a Stars top-up's credit pays: an admin's credit to Bob pays Alice nothing,
    and Bob's own commission (Carol, his friend, topped up) is no top-up of his either."""
    from bot.shop.money.accounts import Accounts

    await Accounts(db).adjust_balance(user_id=BOB, amount_minor=5_000, admin_id=1,
                                      reason="bonus", currency="USD")
    assert await ledger.balance_of(db, ALICE) == 0
    await users.upsert_user(db, CAROL, first_name="Carol")
    assert await program.started(CAROL, await program.code_for(BOB)) == BOB
    topups = topups_of(db, program)
    topup = await topups.create(CAROL, 1_000)
    await topups.record_payment(CAROL, topup.payload, topup.stars, STARS, "charge-c")
    assert await ledger.balance_of(db, BOB) == 5_100
    assert await ledger.balance_of(db, ALICE) == 0  # no second level here, and no top-up


def test_codes_are_opaque_and_never_a_service_link() -> None:
    """Codes: opaque, of their own shape, never a service's ``s<digits>`` link."""
    for _ in range(200):
        code = new_code()
        assert is_code(code) and code.startswith("r") and len(code) == 11
        assert not is_code("s" + code[1:]) and not is_code(code + "x")
    assert not is_code(str(ALICE)) and not is_code("s123") and not is_code("")


@pytest.mark.parametrize(("settings", "error"), [
    ({"referral_percent": "100.5"}, "REFERRAL_PERCENT: Input should be less than or equal to 100"),
    ({"referral_percent": "-1"}, "REFERRAL_PERCENT: Input should be greater than or equal to 0"),
    ({"referral_percent": "2.555"}, "REFERRAL_PERCENT: 2.555 has more than 2 decimals"),
    ({"referral_percent": "ten"}, "REFERRAL_PERCENT: Input should be a valid decimal"),
    ({"referral_percent_2": "5"}, "REFERRAL_PERCENT_2 pays the referrer's referrer"),
    ({"referral_percent": "60", "referral_percent_2": "41"}, "together are more than 100"),
    ({"referral_min_topup": "0.001"}, "REFERRAL_MIN_TOPUP: 0.001 has more decimals than USD"),
])
def test_referral_settings_are_checked_at_start_up(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, settings: dict[str, str],
                                                  error: str) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    with pytest.raises(ConfigError) as raised:
        load_settings(**settings)
    assert str(raised.value).startswith("configuration error: ") and error in str(raised.value)
    assert "\n" not in str(raised.value)
    fine = load_settings(referral_percent="", referral_percent_2="", referral_min_topup="")
    assert not fine.referrals_enabled and fine.referral_min_topup == 0
    warned = startup_warnings(load_settings(referral_percent="5", admin_ids="1"))
    assert any("STARS_PER_UNIT is empty" in line for line in warned)


@given(amount=st.integers(min_value=1, max_value=10**12),
       percent=st.decimals(min_value=0, max_value=100, places=2))
def test_a_commission_is_the_percent_rounded_down_never_above_the_top_up(
        amount: int, percent: Decimal) -> None:
    paid_minor = commission(amount, percent)
    exact = Fraction(amount) * Fraction(percent) / 100
    assert 0 <= paid_minor <= amount
    assert paid_minor <= exact < paid_minor + 1
