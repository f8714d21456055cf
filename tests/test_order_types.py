"""The order-type table: field parsing, quantities, validation and exact costs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.panel.order_types import (
    ORDER_TYPES,
    FieldError,
    Limits,
    get_order_type,
    order_type_for,
    parse_integer,
)


@pytest.mark.parametrize(("text", "value"), [
    ("1000", 1000), ("1 000", 1000), ("1,000", 1000), ("1k", 1000), ("1K", 1000),
    ("2.5k", 2500), ("10 000 000", 10_000_000), ("1m", 1_000_000), (" 42 ", 42),
])
def test_integers_as_people_type_them(text: str, value: int) -> None:
    assert parse_integer(text) == value


@pytest.mark.parametrize("text", ["", "-5", "1.5", "ten", "1,00", "1.0001k", "👍", "١٢٣",
                                  "9" * 40, "1e3"])
def test_not_integers(text: str) -> None:
    with pytest.raises(ValueError):
        parse_integer(text)


def test_type_names_in_any_spelling() -> None:
    for spelling in ("Custom Comments", "custom_comments", "CUSTOM-COMMENTS", " custom  comments "):
        assert order_type_for(spelling) is get_order_type("Custom Comments")
    assert order_type_for(None) is get_order_type("Default")
    assert order_type_for("") is get_order_type("Default")
    assert order_type_for("Mentions Users Followers") is get_order_type("Mentions User Followers")
    assert order_type_for("Invites From Groups") is get_order_type("Invites from Groups")
    assert order_type_for("SEO2") is get_order_type("SEO")
    assert order_type_for("Something else") is None


def test_every_spec_type_is_in_the_table() -> None:
    assert {t.name for t in ORDER_TYPES} == {
        "Default", "Package", "Custom Comments", "Custom Comments Package", "Mentions",
        "Mentions with Hashtags", "Mentions Custom List", "Mentions Hashtag",
        "Mentions User Followers", "Mentions Media Likers", "Comment Likes", "Poll",
        "Comment Replies", "Invites from Groups", "Subscriptions", "SEO", "Web Traffic",
    }


def test_field_parsing_normalises_and_explains() -> None:
    default = get_order_type("Default")
    link = default.field_named("link")
    assert link.parse("instagram.com/p/abc") == "https://instagram.com/p/abc"
    assert link.parse(" https://x.com/a ") == "https://x.com/a"
    for bad in ("hello", "ftp://x.com/a", "https://", "two words.com", "x" * 3000):
        with pytest.raises(FieldError):
            link.parse(bad)
    assert default.field_named("quantity").parse("1 000") == "1000"
    with pytest.raises(FieldError, match="whole number"):
        default.field_named("quantity").parse("lots")
    with pytest.raises(FieldError, match="smallest"):
        default.field_named("runs").parse("1")

    comments = get_order_type("Custom Comments").field_named("comments")
    assert comments.parse("  first\n\n second \r\nthird\n") == "first\nsecond\nthird"
    with pytest.raises(FieldError, match="too long"):
        comments.parse("x" * 25_000)

    expiry = get_order_type("Subscriptions").field_named("expiry")
    assert expiry.parse("1/2/2031", today=date(2030, 1, 1)) == "01/02/2031"
    with pytest.raises(FieldError, match="passed"):
        expiry.parse("01/01/2020", today=date(2030, 1, 1))
    with pytest.raises(FieldError, match="day/month/year"):
        expiry.parse("2031-02-01", today=date(2030, 1, 1))
    delay = get_order_type("Subscriptions").field_named("delay")
    assert delay.parse("30") == "30"
    with pytest.raises(FieldError):
        delay.parse("7")
    with pytest.raises(FieldError, match="single line"):
        get_order_type("Comment Likes").field_named("username").parse("a\nb")


def test_the_form_follows_drip_feed_and_conditions() -> None:
    default = get_order_type("Default")
    assert [f.name for f in default.form({}, Limits(1, 10))] == ["link", "quantity"]
    drip = Limits(1, 10, dripfeed=True)
    assert [f.name for f in default.form({}, drip)] == ["link", "quantity", "runs"]
    assert [f.name for f in default.form({"runs": "3"}, drip)] == [
        "link", "quantity", "runs", "interval"]  # the interval only follows runs
    with pytest.raises(FieldError, match="required"):
        default.validate({"link": "https://a.com", "quantity": "2", "runs": "3"}, drip)
    traffic = get_order_type("Web Traffic")
    keyword_form = [f.name for f in traffic.form({"type_of_traffic": "1"}, Limits(1, 10))]
    assert "google_keyword" in keyword_form and "referring_url" not in keyword_form
    referrer_form = [f.name for f in traffic.form({"type_of_traffic": "2"}, Limits(1, 10))]
    assert "referring_url" in referrer_form and "google_keyword" not in referrer_form
    params = traffic.add_params({"link": "https://a.com", "quantity": "10", "type_of_traffic": "2",
                                 "google_keyword": "stale", "referring_url": "https://r.com",
                                 "unknown": "dropped"})
    assert params == {"link": "https://a.com", "quantity": "10", "type_of_traffic": "2",
                      "referring_url": "https://r.com"}


def test_quantity_rules() -> None:
    assert get_order_type("Default").quantity_of({"quantity": "500"}) == 500
    assert get_order_type("Custom Comments").quantity_of({"comments": "a\nb\n\nc\n"}) == 3
    assert get_order_type("Mentions Custom List").quantity_of({"usernames": "a\nb"}) == 2
    assert get_order_type("Package").quantity_of({"link": "x"}) is None
    assert get_order_type("Subscriptions").quantity_of({"min": "10", "max": "20"}) == 20


def test_lines_types_do_not_send_a_quantity() -> None:
    params = get_order_type("Custom Comments").add_params(
        {"link": "https://a.com", "comments": "a\nb", "quantity": "99"})
    assert "quantity" not in params


def test_validation_against_the_service() -> None:
    comments = get_order_type("Custom Comments")
    comments.validate({"link": "https://a.com", "comments": "a\nb\nc"}, Limits(2, 5))
    with pytest.raises(FieldError, match="at least 2"):
        comments.validate({"link": "https://a.com", "comments": "a"}, Limits(2, 5))
    default = get_order_type("Default")
    with pytest.raises(FieldError, match="required"):
        default.validate({"link": "https://a.com"}, Limits(1, 5))
    with pytest.raises(FieldError, match="drip-feed"):
        default.validate({"link": "https://a.com", "quantity": "2", "runs": "3"}, Limits(1, 5))
    subscriptions = get_order_type("Subscriptions")
    base = {"username": "a", "min": "50", "max": "40", "posts": "2", "delay": "0"}
    with pytest.raises(FieldError, match="smaller than the minimum"):
        subscriptions.validate(base, Limits(10, 100))


def test_costs_are_exact_for_every_pricing_rule() -> None:
    rate = Decimal("0.90")
    assert get_order_type("Default").cost(rate, {"quantity": "1500"}) == Decimal("1.35")
    assert get_order_type("Default").cost(rate, {"quantity": "1000", "runs": "5"}) == Decimal("4.5")
    assert get_order_type("Package").cost(Decimal("4.90"), {"link": "x"}) == Decimal("4.90")
    assert get_order_type("Custom Comments").cost(Decimal("8"), {"comments": "a\nb\nc"}) == \
        Decimal("0.024")
    assert get_order_type("Subscriptions").cost(
        Decimal("0.30"), {"min": "50", "max": "200", "posts": "10", "old_posts": "2"}
    ) == Decimal("0.72")


@given(rate=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000"), places=4),
       quantity=st.integers(min_value=1, max_value=10_000_000),
       runs=st.integers(min_value=1, max_value=100))
def test_default_cost_is_rate_times_units_exactly(rate: Decimal, quantity: int, runs: int) -> None:
    values = {"quantity": str(quantity), "runs": str(runs) if runs > 1 else ""}
    cost = get_order_type("Default").cost(rate, values)
    assert cost * 1000 == rate * quantity * runs
