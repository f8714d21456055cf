"""The one reader of typed amounts, and the admins' commands that use it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.panel.order_types import get_order_type
from bot.shop.money import amounts
from bot.shop.money.amounts import MAX_AMOUNT_MINOR, AmountError, parse_amount
from bot.shop.money.formatting import money
from tests.conftest import SandboxFactory
from tests.e2e import running_shop


@pytest.mark.parametrize(("text", "minor"), [
    ("7", 700), ("7.5", 750), ("7,50", 750), (" 12.5 ", 1250), ("1 000", 100_000),
    ("1 000,50", 100_050), ("0.01", 1), ("100000000", MAX_AMOUNT_MINOR),
    ("1,000", 100_000), ("1,234.50", 123_450), ("1,000,000", 100_000_000), ("7,505", 750_500),
    ("1,00", 100),  # not groups of three: a decimal comma
])
def test_amounts_as_people_type_them(text: str, minor: int) -> None:
    assert parse_amount(text, "USD") == minor


@pytest.mark.parametrize(("lang", "text", "minor"), [
    # ru: "," is the decimal sign, spaces group; "." is a decimal point unless three digits follow
    ("ru", "7,50", 750), ("ru", "1 000", 100_000), ("ru", "1\u00a0234,5", 123_450),
    ("ru", "7.5", 750),
    # tr: "," is the decimal sign, "." groups thousands
    ("tr", "7,50", 750), ("tr", "1.000", 100_000), ("tr", "1.234,50", 123_450),
    ("tr", "7.5", 750), ("tr", "1.000.000", 100_000_000),
])
def test_each_locale_reads_its_own_separators(lang: str, text: str, minor: int) -> None:
    assert parse_amount(text, "USD", lang) == minor


@pytest.mark.parametrize(("lang", "text", "problem"), [
    ("ru", "1.000", "without thousands separators"),  # a thousand, or one? not guessed
    ("ru", "1,000", "At most 2 digits"),  # "," is the decimal sign in ru
    ("tr", "1,000", "At most 2 digits"), ("tr", "1,234.50", "without thousands separators"),
    ("en", "1.234,50", "without thousands separators"),
    # A leading zero never starts a group of thousands (it was read as $500).
    ("en", "0,500", "without thousands separators"), ("tr", "0.500", "without thousands"),
    ("en", "00,001", "without thousands separators"), ("en", "0,500.00", "thousands"),
])
def test_what_a_locale_would_misread_is_refused(lang: str, text: str, problem: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_amount(text, "USD", lang)
    assert problem in info.value.render()


def test_the_example_uses_the_locales_decimal_sign() -> None:
    with pytest.raises(AmountError) as info:
        parse_amount("abc", "USD", "ru")
    assert "1000,50" in info.value.render()


@pytest.mark.parametrize(("text", "problem"), [
    ("1.000,50", "without thousands separators"), ("1e30", "as a number"), ("²", "as a number"),
    ("١٢", "as a number"), ("-5", "as a number"), ("NaN", "as a number"), ("", "as a number"),
    ("0", "more than zero"), ("0.00", "more than zero"), ("1.234", "At most 2 digits"),
    ("1.5.5", "without thousands separators"), ("1,00,000", "without thousands separators"),
    ("7.5055", "At most 2 digits"),
    ("92233720368547758.07", "largest amount"), ("100000000.01", "largest amount"),
    ("9" * 40, "as a number"),
])
def test_amounts_that_are_refused_say_why(text: str, problem: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_amount(text, "USD")
    assert problem in info.value.render()


def test_the_currency_decides_the_decimals() -> None:
    assert parse_amount("1.500", "KWD") == 1500  # three decimals: not a thousands separator
    assert parse_amount("0,500", "KWD") == 500  # half a dinar, not five hundred
    assert parse_amount("150", "JPY") == 150
    with pytest.raises(AmountError):
        parse_amount("1.5", "JPY")


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR))
def test_every_amount_reads_back_from_how_it_is_written(minor: int) -> None:
    units, cents = divmod(minor, 100)
    assert parse_amount(f"{units}.{cents:02d}", "USD") == minor
    assert parse_amount(f"{units},{cents:02d}", "USD") == minor
    for lang in ("en", "ru", "tr"):  # as the bot writes it, currency sign aside
        written = money(minor, "USD", lang).replace("$", "").strip()
        assert parse_amount(written, "USD", lang) == minor


@given(st.text(max_size=40))
def test_any_text_is_an_amount_or_a_clear_refusal(text: str) -> None:
    try:
        minor = parse_amount(text, "USD")
    except AmountError as exc:
        refusal = exc.render()
        minor = None
    if minor is None:
        assert refusal
    else:
        assert 0 < minor <= MAX_AMOUNT_MINOR


def test_the_country_field_takes_iso_codes_only() -> None:
    country = get_order_type("Web Traffic").field_named("country")
    assert country.parse("us") == "US" and country.parse(" TR ") == "TR"
    for wrong in ("XX", "USA", "U", "🇺🇸", "12", "EU"):
        with pytest.raises(ValueError, match="two-letter country code"):
            country.parse(wrong)


async def test_admin_amounts_are_read_strictly(make_sandbox: SandboxFactory,
                                               tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        await shop.credit(42, 500)
        admin = shop.admin
        await admin.send("/start")
        for command, answer in (
            ("/credit 42 1.000,50", "without thousands separators"),
            ("/credit 42 1e30", "as a number"),
            ("/credit 42 ²", "as a number"),
            ("/credit 42 92233720368547758.07", "largest amount"),
            ("/credit ² 5", "Usage"),
            ("/credit 12345678901234567890123 5", "Usage"),
            ("/debit 42 -5", "as a number"),
        ):
            await admin.send(command)
            assert answer in admin.text, (command, admin.text)
            assert "went wrong" not in admin.text
        assert await shop.balance(42) == (500, 500)  # nothing moved
        await admin.send("/credit 42 1000 promo")
        assert "New balance: $1,005.00" in admin.text
        await admin.send("/debit 42 7,50")
        assert "New balance: $997.50" in admin.text


# --- an admin's amount is one word: "1 000 bonus" is not 1 with the reason "000 bonus" -----

async def test_an_amount_split_by_a_space_is_refused_in_every_admin_input(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        await shop.credit(42, 500)
        admin = shop.admin
        await admin.send("/start")
        for command in ("/credit 42 1 000 bonus", "/debit 42 1 000", "/credit 42 12 500 promo",
                        "/credit 42 1 000 000 big", "/credit 42 1 000,50 x",
                        "/credit 42 1\u00a0000 nbsp"):
            await admin.send(command)
            assert "as one number without spaces" in admin.text, (command, admin.text)
            assert "Credited" not in admin.text and "Debited" not in admin.text
        await admin.send("/credit 42 1 000 bonus")
        assert admin.text == ("“1 000” is not an amount in USD. Write the amount as one number"
                              " without spaces, like 1000, then the reason.")
        # The customer card's Credit / Debit input reads the same way.
        await admin.send("/admin")
        await admin.tap("Customers")
        await admin.send("42")
        await admin.tap("42")
        await admin.tap("➕ Credit")
        await admin.send("1 000 welcome bonus")
        assert "like 1000, then the reason" in admin.text
        assert await shop.balance(42) == (500, 500)  # nothing moved
        await admin.send("1000 welcome bonus")
        assert admin.saying("New balance: $1,005.00")  # then the card again
        await admin.send("/credit 42 5 100 followers refund")  # 5100 or 5? not guessed
        assert "like 5100, then the reason" in admin.text
        await admin.send("/credit 42 5 for 100 followers")
        assert "New balance: $1,010.00" in admin.text


@given(st.integers(min_value=1, max_value=999_999), st.integers(min_value=0, max_value=999),
       st.text(max_size=30))
def test_a_number_then_a_group_of_three_digits_is_never_read_as_the_number(
        whole: int, group: int, tail: str) -> None:
    reason = f"{group:03d} {tail}"
    with pytest.raises(AmountError) as info:
        amounts.refuse_spaced_amount(str(whole), reason, "USD", "ru")
    assert f"{whole}{group:03d}" in info.value.render() or "1000,50" in info.value.render()


@given(st.integers(min_value=1, max_value=10**6), st.text(max_size=30))
def test_an_amount_and_a_reason_not_starting_with_three_digits_pass(amount: int,
                                                                    reason: str) -> None:
    words = reason.split()
    if words and len(words[0]) >= 3 and words[0][:3].isascii() and words[0][:3].isdigit():
        return  # "100 followers", "500,5": the case refused above
    amounts.refuse_spaced_amount(str(amount), reason, "USD")
