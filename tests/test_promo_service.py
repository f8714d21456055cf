"""Promo codes as a service, without aiogram: an admin's /promo_new arguments and
every refusal, a customer's redemption and every refusal, per-customer and total
uses, expiry (an injected clock), case, and 50 customers taking the last use at
once against a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.panel import PanelClient
from bot.panel.order_types import N_
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.growth.promo_codes import (
    DAY,
    NewCode,
    Outcome,
    PromoCodes,
    PromoRefused,
    normalise,
)
from storage import ledger, users
from storage import orders as order_store
from storage import promo as promo_store
from storage.db import Database

ADMIN = 1_000_001
ANN, BOB = 42, 43


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def codes(db: Database, clock: Clock) -> PromoCodes:
    for user_id in (ANN, BOB):
        await users.upsert_user(db, user_id, first_name="Customer")
    return PromoCodes(db, currency="USD", max_percent=Decimal(50), clock=clock)


def refusal(codes: PromoCodes, text: str, lang: str = "en") -> PromoRefused:
    with pytest.raises(PromoRefused) as caught:
        codes.parse(text, lang)
    return caught.value


# ------------------------------------------------------------------ /promo_new

def test_the_two_kinds_with_their_defaults_and_options(codes: PromoCodes) -> None:
    assert codes.parse("welcome5 balance 5") == NewCode("WELCOME5", "balance", amount_minor=500)
    assert codes.parse("Spring-10 DISCOUNT 10%") == NewCode("SPRING-10", "discount",
                                                             percent=Decimal(10))
    assert codes.parse("BIG_1 balance 7,50 uses=100 per_user=2 days=30") == NewCode(
        "BIG_1", "balance", amount_minor=750, max_uses=100, per_user=2, days=30)
    assert codes.parse("s12 discount 12.5 MIN=5 uses=3") == NewCode(
        "S12", "discount", percent=Decimal("12.5"), max_uses=3, min_order_minor=500)
    # The amount by the admin's locale: 7,50 is 7.50 in ru, 1.000 a thousand in tr.
    assert codes.parse("abc balance 1.000", "tr").amount_minor == 100_000
    assert codes.parse("abc discount 50").percent == Decimal(50)  # up to DISCOUNT_MAX_PERCENT
    assert codes.parse("abc discount %10", "tr").percent == Decimal(10)  # as Turkish writes it


@pytest.mark.parametrize(("text", "message"), [
    ("", N_("A new code is at least three words: the code, balance or discount, and the amount "
            "or percent, like {example}.")),
    ("SPRING10 discount", N_("A new code is at least three words: the code, balance or "
                             "discount, and the amount or percent, like {example}.")),
    ("AB balance 5", N_("“{code}” can't be a code: use 3 to 32 of the letters A-Z, the digits "
                        "0-9, _ and -, like {example}.")),
    ("A" * 33 + " balance 5", N_("“{code}” can't be a code: use 3 to 32 of the letters A-Z, the "
                                 "digits 0-9, _ and -, like {example}.")),
    ("SPRİNG balance 5", N_("“{code}” can't be a code: use 3 to 32 of the letters A-Z, the "
                            "digits 0-9, _ and -, like {example}.")),
    ("SPRING10 gift 5", N_("“{kind}” is not a kind of code: write balance (an amount added at "
                           "once) or discount (a percent off the next order), like {example}.")),
    ("SPRING10 balance abc", N_("“{amount}” is not an amount in {currency}.")),
    ("SPRING10 balance 0", N_("“{amount}” is not an amount in {currency}.")),
    ("SPRING10 balance 1e3", N_("“{amount}” is not an amount in {currency}.")),
    ("SPRING10 balance 1 000", N_("Write the amount as one number without spaces, like "
                                  "{example}.")),
    ("SPRING10 discount 10 min=1 000", N_("Write the amount as one number without spaces, like "
                                          "{example}.")),
    ("SPRING10 discount 10 min=x", N_("“{amount}” is not an amount in {currency}.")),
    ("SPRING10 discount 0", N_("“{percent}” is not a percent: send a number above 0 and at most "
                               "100, with at most two decimals, like {example}.")),
    ("SPRING10 discount 101", N_("“{percent}” is not a percent: send a number above 0 and at "
                                 "most 100, with at most two decimals, like {example}.")),
    ("SPRING10 discount 10.123", N_("“{percent}” is not a percent: send a number above 0 and at "
                                    "most 100, with at most two decimals, like {example}.")),
    ("SPRING10 discount -5", N_("“{percent}” is not a percent: send a number above 0 and at most "
                                "100, with at most two decimals, like {example}.")),
    ("SPRING10 discount ١٠", N_("“{percent}” is not a percent: send a number above 0 and at most "
                               "100, with at most two decimals, like {example}.")),
    ("SPRING10 discount 60", N_("A discount can be at most {maximum}% (the DISCOUNT_MAX_PERCENT "
                                "setting): send a smaller percent, like {example}.")),
    ("SPRING10 balance 5 forever", N_("“{option}” is not an option: write uses=N, per_user=N, "
                                      "days=N (and min=AMOUNT for a discount code), like "
                                      "{example}.")),
    ("SPRING10 balance 5 max=3", N_("“{option}” is not an option: write uses=N, per_user=N, "
                                    "days=N (and min=AMOUNT for a discount code), like "
                                    "{example}.")),
    ("SPRING10 balance 5 uses=0", N_("{option} takes a whole number from 1 to {maximum}, like "
                                     "{example}.")),
    ("SPRING10 balance 5 uses=1.5", N_("{option} takes a whole number from 1 to {maximum}, like "
                                       "{example}.")),
    ("SPRING10 balance 5 days=99999", N_("{option} takes a whole number from 1 to {maximum}, "
                                         "like {example}.")),
    ("SPRING10 balance 5 per_user=", N_("{option} takes a whole number from 1 to {maximum}, "
                                        "like {example}.")),
    ("SPRING10 balance 5 uses=1 uses=2", N_("{option} is given twice: write it once, like "
                                            "{example}.")),
    ("SPRING10 balance 5 min=5", N_("min= is for discount codes only (the smallest order the "
                                    "discount applies to), like {example}.")),
    ("SPRING10 balance 5 " + "x" * 300, N_("That is too long: at most {limit} characters, like "
                                           "{example}.")),
])
def test_each_mistake_is_named_with_an_example(codes: PromoCodes, text: str, message: str) -> None:
    refused = refusal(codes, text)
    assert refused.message == message
    shown = refused.render()
    assert "{" not in shown and ("example" not in message or "like" in shown)


def test_a_refusal_quotes_what_was_typed_cut_short(codes: PromoCodes) -> None:
    assert refusal(codes, "SPRING10 balance 5,5,5").params["amount"] == "5,5,5"
    too_precise = refusal(codes, "SPRING10 balance 1,000", "ru")  # "," is ru's decimal sign
    assert too_precise.cause is not None and "digits after" in too_precise.cause.render()
    long_word = refusal(codes, "SPRING10 balance 5 " + "y" * 200 + "=1")
    assert len(str(long_word.params["option"])) <= 40
    assert refusal(codes, "SPRING10 balance 5 000").params["example"] == "5000"
    assert refusal(codes, "XYZ discount 10 min=2 500").params["example"] == "min=2500"


ARGUMENT_WORDS = st.sampled_from(["SPRING10", "spring10", "balance", "discount", "5", "7,50",
                                  "1 000", "10%", "0", "100", "uses=3", "per_user=2", "days=1",
                                  "min=5", "min=", "=", "uses=", "uses=x", "١٠", "²", "1e9",
                                  "NaN", "-1", "🙂", "ß", "<b>", "{x}", "%", "\x00"])


@settings(max_examples=300)
@given(text=st.one_of(st.text(max_size=400),
                      st.lists(st.one_of(ARGUMENT_WORDS, st.text(max_size=12)), max_size=8)
                      .map(" ".join)))
def test_any_arguments_parse_or_are_refused_cleanly(text: str) -> None:
    codes = PromoCodes(None, currency="USD", max_percent=Decimal(50))  # type: ignore[arg-type]
    for lang in ("en", "ru", "tr"):
        try:
            new = codes.parse(text, lang)
        except PromoRefused as exc:
            rendered = exc.render() + (exc.cause.render() if exc.cause else "")
            assert rendered and len(rendered) < 500
            continue
        assert normalise(new.code) == new.code
        assert (new.amount_minor is None) == (new.kind == "discount")
        assert new.amount_minor is None or new.amount_minor > 0
        assert new.percent is None or Decimal(0) < new.percent <= 50
        assert new.per_user >= 1 and (new.max_uses is None or new.max_uses >= 1)


@given(text=st.text(max_size=60))
def test_a_code_is_3_to_32_ascii_letters_digits_underscores_or_dashes(text: str) -> None:
    code = normalise(text)
    if code is not None:
        assert 3 <= len(code) <= 32 and code == code.upper() and code.isascii()
        assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        assert normalise(code.lower()) == code


async def test_codes_are_stored_upper_case_once_and_audited(codes: PromoCodes,
                                                            db: Database) -> None:
    made = await codes.create(ADMIN, "spring10 discount 10 uses=5 days=7 min=5")
    assert (made.code, made.kind, made.percent, made.max_uses, made.min_order_minor) == (
        "SPRING10", "discount", Decimal(10), 5, 500)
    assert made.expires_at == 1_800_000_000 + 7 * DAY and made.per_user == 1
    with pytest.raises(PromoRefused) as taken:
        await codes.create(ADMIN, "Spring10 balance 5")
    assert taken.value.message == N_("The code {code} exists already: choose another, like "
                                     "{example}.")
    assert taken.value.params["example"] != "SPRING10"
    rows = await db.fetchall("SELECT admin_id, action, target_kind, target_id, after"
                             " FROM audit_log")
    assert [tuple(r) for r in rows] == [
        (ADMIN, "promo_new", "promo", "SPRING10",
         "discount 10%, orders from $5.00, 5 uses, 1 per customer, expires 2027-01-22 08:00 UTC")]
    listing, total = await codes.listing(10)
    assert total == 1 and [c.code for c in listing] == ["SPRING10"]


async def test_turning_a_code_off_is_audited_once(codes: PromoCodes, db: Database) -> None:
    await codes.create(ADMIN, "WELCOME5 balance 5")
    code, changed = await codes.disable(ADMIN, " welcome5 ")
    assert changed and code is not None and code.disabled_at is not None
    assert (await codes.disable(ADMIN, "WELCOME5"))[1] is False
    assert await codes.disable(ADMIN, "NOPE123") == (None, False)
    assert await codes.disable(ADMIN, "🙂") == (None, False)
    actions = await db.fetchall("SELECT action, before, after FROM audit_log ORDER BY id")
    assert [tuple(r) for r in actions] == [("promo_new", "", actions[0][2]),
                                           ("promo_off", "on", "off")]
    assert (await codes.redeem(ANN, "WELCOME5")).outcome is Outcome.DISABLED


# ------------------------------------------------------------------ balance codes

async def test_a_balance_code_credits_once_per_customer(codes: PromoCodes, db: Database) -> None:
    made = await codes.create(ADMIN, "WELCOME5 balance 5")
    first = await codes.redeem(ANN, "welcome5")  # any case
    assert first.outcome is Outcome.CREDITED and first.accepted
    assert (first.code, first.amount_minor, first.balance_minor) == ("WELCOME5", 500, 500)
    again = await codes.redeem(ANN, "WELCOME5")
    assert again.outcome is Outcome.ALREADY_USED and not again.accepted
    assert await ledger.balance_of(db, ANN) == await ledger.ledger_sum(db, ANN) == 500
    rows = await db.fetchall("SELECT kind, amount_minor, idempotency_key, note FROM ledger")
    [(kind, amount, key, note)] = [tuple(r) for r in rows]
    assert (kind, amount, note) == ("promo", 500, "WELCOME5")
    assert key.startswith(f"promo:{made.id}:{ANN}:")
    uses = await db.fetchall("SELECT user_id, state FROM promo_uses")
    assert [tuple(r) for r in uses] == [(ANN, "used")]
    assert (await codes.get(made.id)).uses == 1  # type: ignore[union-attr]
    assert (await codes.redeem(BOB, "WELCOME5")).balance_minor == 500  # another customer


async def test_per_user_and_total_uses(codes: PromoCodes, db: Database) -> None:
    await codes.create(ADMIN, "TWICE balance 1 per_user=2 uses=3")
    assert [(await codes.redeem(ANN, "TWICE")).outcome for _ in range(3)] == [
        Outcome.CREDITED, Outcome.CREDITED, Outcome.ALREADY_USED]
    already = await codes.redeem(ANN, "TWICE")
    assert already.per_user == 2
    assert (await codes.redeem(BOB, "TWICE")).outcome is Outcome.CREDITED  # the 3rd use
    assert (await codes.redeem(BOB, "TWICE")).outcome is Outcome.USED_UP
    assert await ledger.balance_of(db, ANN) == 200 and await ledger.balance_of(db, BOB) == 100


async def test_a_code_expires_on_its_day(codes: PromoCodes, clock: Clock) -> None:
    await codes.create(ADMIN, "SOON balance 1 days=1")
    await codes.create(ADMIN, "SOON10 discount 10 days=1")
    clock.now += DAY - 1
    assert (await codes.redeem(ANN, "SOON")).outcome is Outcome.CREDITED
    clock.now += 1
    assert (await codes.redeem(BOB, "SOON")).outcome is Outcome.EXPIRED
    assert (await codes.redeem(BOB, "SOON10")).outcome is Outcome.EXPIRED


@pytest.mark.parametrize("typed", ["", "  ", "AB", "x" * 33, "🙂", "SPRING 10", "ß" * 5, "<b>x</b>",
                                   "x" * 5000])
async def test_what_is_no_code_is_invalid(codes: PromoCodes, typed: str) -> None:
    redemption = await codes.redeem(ANN, typed)
    assert redemption.outcome is Outcome.INVALID and len(redemption.code) <= 40


async def test_an_unknown_code(codes: PromoCodes) -> None:
    redemption = await codes.redeem(ANN, "nosuchcode")
    assert (redemption.outcome, redemption.code) == (Outcome.UNKNOWN, "NOSUCHCODE")


async def test_guessing_codes_is_slowed_per_customer(codes: PromoCodes, clock: Clock) -> None:
    await codes.create(ADMIN, "WELCOME5 balance 5")
    start = clock.now
    for guess in ("AAA", "BBB", "🙂", "CCC", "DDD"):  # five that are no code, a minute apart
        assert (await codes.redeem(ANN, guess)).outcome in (Outcome.UNKNOWN, Outcome.INVALID)
        clock.now += 60
    refused = await codes.redeem(ANN, "WELCOME5")  # even the right one waits
    assert (refused.outcome, refused.wait_minutes) == (Outcome.TOO_MANY_TRIES, 10)
    assert (await codes.redeem(BOB, "WELCOME5")).outcome is Outcome.CREDITED  # others can
    clock.now = start + 15 * 60  # the first guess is 15 minutes old: one more try
    assert (await codes.redeem(ANN, "WELCOME5")).outcome is Outcome.CREDITED
    assert (await codes.redeem(ANN, "EEE")).outcome is Outcome.UNKNOWN
    assert (await codes.redeem(ANN, "FFF")).outcome is Outcome.TOO_MANY_TRIES


def test_any_typed_text_is_redeemed_or_refused_cleanly(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(Database(tmp_path / "shop.sqlite3").open())
    hours = itertools.count(1_800_000_000, 3600)  # an hour between tries: none is too many
    codes = PromoCodes(db, currency="USD", max_percent=Decimal(50), clock=lambda: next(hours))
    loop.run_until_complete(users.upsert_user(db, ANN, first_name="Ann"))
    loop.run_until_complete(codes.create(ADMIN, "ANYONE balance 1 per_user=1000"))

    @settings(max_examples=150)
    @given(text=st.one_of(st.text(max_size=50), st.sampled_from(["anyone", " ANYONE ", "any-one"])))
    def redeem(text: str) -> None:
        redemption = loop.run_until_complete(codes.redeem(ANN, text))
        expected = normalise(text)
        if expected is None:
            assert redemption.outcome is Outcome.INVALID
        else:
            assert redemption.code == expected
            assert redemption.outcome is (Outcome.CREDITED if expected == "ANYONE"
                                          else Outcome.UNKNOWN)

    try:
        redeem()
        balance = loop.run_until_complete(ledger.balance_of(db, ANN))
        assert balance == loop.run_until_complete(ledger.ledger_sum(db, ANN))
    finally:
        loop.run_until_complete(db.close())
        loop.close()


async def test_50_customers_redeeming_the_last_use_at_once_one_wins(tmp_path: Path) -> None:
    db = await Database(tmp_path / "race.sqlite3").open()
    try:
        codes = PromoCodes(db, currency="USD", max_percent=Decimal(50))
        customers = range(5_000, 5_050)
        for user_id in customers:
            await users.upsert_user(db, user_id, first_name="Racer")
        made = await codes.create(ADMIN, "LAST1 balance 10 uses=1")
        results = await asyncio.gather(*(codes.redeem(u, "LAST1") for u in customers))
        outcomes = [r.outcome for r in results]
        assert outcomes.count(Outcome.CREDITED) == 1
        assert outcomes.count(Outcome.USED_UP) == 49
        winner = customers[outcomes.index(Outcome.CREDITED)]
        rows = await db.fetchall("SELECT user_id, amount_minor FROM ledger")
        assert [tuple(r) for r in rows] == [(winner, 1000)]
        assert (await codes.get(made.id)).uses == 1  # type: ignore[union-attr]
        assert len(await db.fetchall("SELECT id FROM promo_uses")) == 1
        # The same through a second connection to the file: another process's view.
        other = await Database(tmp_path / "race.sqlite3").open()
        try:
            assert [tuple(r) for r in await other.fetchall(
                "SELECT SUM(amount_minor) FROM ledger")] == [(1000,)]
        finally:
            await other.close()
    finally:
        await db.close()


# ------------------------------------------------------------------ discount codes

async def test_a_discount_code_is_attached_to_the_next_order(codes: PromoCodes,
                                                             db: Database, clock: Clock) -> None:
    await codes.create(ADMIN, "SPRING10 discount 10 min=5")
    attached = await codes.redeem(ANN, "spring10")
    assert attached.outcome is Outcome.ATTACHED and attached.accepted
    assert (attached.percent, attached.min_order_minor, attached.replaced) == (Decimal(10), 500,
                                                                               None)
    # What the order's pricing reads (the lead's storage.promo.attached_discount).
    discount = await promo_store.attached_discount(db, ANN, clock())
    assert discount is not None and discount.usable
    assert (discount.code, discount.percent, discount.min_order_minor) == ("SPRING10",
                                                                           Decimal(10), 500)
    # The same code again changes nothing; nothing is credited, no use is counted.
    assert (await codes.redeem(ANN, "SPRING10")).outcome is Outcome.ATTACHED
    assert len(await db.fetchall("SELECT id FROM promo_uses")) == 1
    assert await ledger.balance_of(db, ANN) == 0
    [(uses,)] = await db.fetchall("SELECT uses FROM promo_codes")
    assert uses == 0


async def test_a_new_discount_code_replaces_the_attached_one(codes: PromoCodes,
                                                             db: Database, clock: Clock) -> None:
    await codes.create(ADMIN, "SPRING10 discount 10")
    await codes.create(ADMIN, "SUMMER20 discount 20")
    await codes.redeem(ANN, "SPRING10")
    replaced = await codes.redeem(ANN, "SUMMER20")
    assert (replaced.outcome, replaced.replaced, replaced.accepted) == (Outcome.REPLACED,
                                                                        "SPRING10", True)
    rows = await db.fetchall("SELECT c.code, u.state FROM promo_uses u JOIN promo_codes c"
                             " ON c.id = u.code_id ORDER BY u.id")
    assert [tuple(r) for r in rows] == [("SPRING10", "detached"), ("SUMMER20", "attached")]
    assert (await promo_store.attached_discount(db, ANN, clock())).code == "SUMMER20"  # type: ignore[union-attr]


async def _order_using(db: Database, user_id: int, clock: Clock, service: tuple) -> int:
    """An order consuming ``user_id``'s attached code in its own transaction, as the
    orders do (storage.promo.use_in, the lead's)."""
    discount = await promo_store.attached_discount(db, user_id, clock())
    assert discount is not None and discount.usable
    ref, panel, service_id = service

    def place_in(conn: sqlite3.Connection) -> int:
        order = order_store.insert_in(
            conn, token=f"t{user_id}", user_id=user_id, panel=panel, service_ref=ref,
            service_id=service_id, service_name="x", order_type="Default", fields={},
            quantity=100, price_minor=90, currency="USD", panel_cost=Decimal(1))
        assert promo_store.use_in(conn, use_id=discount.use_id, order_id=order.id, now=clock())
        return order.id

    return await db.transact(place_in)


async def test_a_discount_code_used_by_orders_is_refused_up_front(
        codes: PromoCodes, db: Database, clock: Clock, service: tuple) -> None:
    await codes.create(ADMIN, "ONCE10 discount 10 uses=1")
    assert (await codes.redeem(ANN, "ONCE10")).outcome is Outcome.ATTACHED
    assert (await codes.redeem(BOB, "ONCE10")).outcome is Outcome.ATTACHED  # none used yet
    await _order_using(db, ANN, clock, service)  # Ann's order takes the one use
    assert (await codes.redeem(ANN, "ONCE10")).outcome is Outcome.ALREADY_USED
    assert (await codes.redeem(BOB, "ONCE10")).outcome is Outcome.USED_UP
    await codes.disable(ADMIN, "ONCE10")
    assert (await codes.redeem(BOB, "ONCE10")).outcome is Outcome.DISABLED


@pytest.fixture
async def service(db: Database, client: PanelClient) -> tuple:
    """A service of the sandbox panel, for an order row to name."""
    await refresh_catalog(db, client, "USD")
    row = await db.fetchone("SELECT id, panel, service_id FROM services LIMIT 1")
    assert row is not None
    return tuple(row)
