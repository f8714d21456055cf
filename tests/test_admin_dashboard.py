"""The dashboard end to end: the admin opens it and sees the orders placed in the test,
gets the 30-day chart as a picture; a customer can't open it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.shop.backoffice.stats import cost_minor
from handlers.callbacks import AdminCb, DashboardCb
from tests.e2e import Shop
from tests.test_storefront import CUSTOMER, entry, fill_form, link_for, open_service

pytestmark = pytest.mark.timeout(120)


def usd(minor: int) -> str:
    return f"${Decimal(minor) / 100:.2f}"


async def place(shop: Shop, service_id: int) -> None:
    customer = shop.user(CUSTOMER)
    item = entry(service_id)
    await open_service(customer, shop, service_id)
    await customer.tap("🛒 Order")
    await fill_form(customer, item, link_for(item))
    await customer.tap("Confirm")
    assert "placed" in customer.text, customer.text


async def test_dashboard_shows_todays_orders_and_sends_the_chart(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100_000)
    await place(shop, 101)
    await place(shop, 101)
    rows = await shop.query("SELECT state, cost_minor, panel_cost, fx_rate FROM orders")
    assert len(rows) == 2
    # The sandbox refuses a second order for a link it is still working on: one
    # pending, one failed and refunded; the failed one costs nothing.
    assert sorted(state for state, *_ in rows) == ["failed", "pending"]
    assert all(c == cost_minor(Decimal(p), Decimal(f), "USD") for _, c, p, f in rows)
    cost = sum(c for state, c, _, _ in rows if state != "failed")
    [(paid,)] = await shop.query("SELECT -SUM(amount_minor) FROM ledger WHERE kind = 'order'")
    [(refunded,)] = await shop.query("SELECT SUM(amount_minor) FROM ledger WHERE kind = 'refund'")
    assert paid > 0 and refunded > 0 and cost > 0

    admin = shop.admin
    await admin.send("/start")  # (/admin in the skeleton passes its keyboard positionally)
    await admin.tap("🛠 Admin")
    await admin.tap("Dashboard")
    text = admin.text
    assert "Dashboard" in text
    today = text.split("Today", 1)[1].split("7 days", 1)[0]
    assert "2 orders (pending 1, failed 1)" in today
    assert f"turnover {usd(paid)} · refunds {usd(refunded)} · panel cost {usd(cost)}" in today
    assert f"profit {usd(paid - refunded - cost)}" in today
    assert "Customers: 2" in text and "new today: 2" in text  # the customer and the admin
    assert "Panel balances\nmain: " in text and "unreachable" not in text

    await admin.tap("30-day chart")
    photo = admin.last()
    assert photo.photo is not None and photo.photo_bytes > 0
    assert "last 30 days" in photo.text


async def test_a_customer_gets_no_dashboard(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 100_000)
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    for data in (AdminCb(area="dashboard").pack(), DashboardCb(action="chart").pack()):
        answer = await customer.tap_data(data)
        assert "no longer valid" in str(answer)
    assert "Dashboard" not in customer.text
    assert all(m.photo is None for m in customer.bot_messages)


async def test_a_new_customer_counts_as_active_from_their_first_start(shop: Shop) -> None:
    """Activity is written at most once per five minutes per customer, and the first
    /start's must not be lost to the account not existing yet when it is noted."""
    newcomer = shop.user(7001, first_name="Nora")
    await newcomer.send("/start")
    await newcomer.expect("Hi, Nora")
    await shop.admin.send("/start")
    await shop.admin.tap("🛠 Admin")
    await shop.admin.tap("Dashboard")
    assert "Customers: 2 · active 24 h: 2 · 7 d: 2 · new today: 2" in shop.admin.text


async def test_a_returning_customer_counts_as_active_again(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 1_000)
    await shop.query("UPDATE users SET last_seen_at = '2000-01-01T00:00:00.000Z'")
    customer = shop.user(CUSTOMER)
    await customer.send("/help")  # no registration: only the activity mark writes it
    await customer.expect("How it works")
    await shop.admin.send("/start")
    await shop.admin.tap("🛠 Admin")
    await shop.admin.tap("Dashboard")
    # The customer (their mark is written behind the answer, long before the admin
    # has opened the dashboard) and the admin (registered by the /start).
    assert "active 24 h: 2 · 7 d: 2" in shop.admin.text, shop.admin.text
