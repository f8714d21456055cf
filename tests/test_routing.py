"""Routing across panels: an order goes to a backup panel only when the panel tried
certainly did not take it, never at a loss, never to two panels.

Service-level tests run two real sandbox panels ("main" and "backup") with the
shop's service 101 on main linked to the same service on backup; the end-to-end
ones run the unmodified bot with ``PANELS`` against the Bot API emulator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox
from bot.observability import metrics
from bot.panel import PanelClient
from bot.shop.backoffice.panel_watch import PanelWatch
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders.service import OrderService, Outcome, Placement
from bot.shop.routing.failover import Router, Routing, leaves_margin
from storage import catalog as catalog_store
from storage import ledger, routes, users
from storage.db import Database
from tests.conftest import FAST_RETRY, SandboxFactory
from tests.e2e import Shop, restart, running_shop
from tests.test_storefront import CUSTOMER, _to_confirmation, entry

pytestmark = pytest.mark.timeout(120)

VALUES = {"link": "https://instagram.com/p/route", "quantity": "1000"}
PRICE = 156  # service 101: 1.20 per 1000, markup 30 %


def reprice(sandbox: RunningSandbox, service_id: int, rate: str) -> None:
    catalog = sandbox.panel.catalog
    catalog[service_id] = dataclasses.replace(catalog[service_id], rate=Decimal(rate))


@dataclasses.dataclass
class Two:
    """The shop with a main and a backup panel, service 101 linked from one to the other."""

    db: Database
    main: RunningSandbox
    backup: RunningSandbox
    panels: dict[str, PanelClient]
    pricer: Pricer
    watch: PanelWatch
    alerts: list[str]
    ref: int

    def orders(self, routing: Routing = Routing.PRIORITY,
               min_margin: Decimal = Decimal(5)) -> OrderService:
        router = Router(self.db, panels=self.panels, fx_rates=self.pricer.fx_rates,
                        shop_currency="USD", routing=routing, min_margin_percent=min_margin,
                        is_down=self.watch.is_down)

        async def alert(text: str, **_: Any) -> bool:
            self.alerts.append(text)
            return True

        return OrderService(self.db, self.panels, self.pricer, alert=alert, router=router)

    async def place(self, service: OrderService, values: dict[str, str] = VALUES,
                    token: str | None = None) -> Placement:
        quote = await service.quote(await service.on_sale(self.ref), values, CUSTOMER)
        return await service.place(CUSTOMER, self.ref, values, token or uuid.uuid4().hex,
                                   quote.price_minor)


@pytest.fixture
async def two(db: Database, make_sandbox: SandboxFactory) -> AsyncIterator[Two]:
    main, backup = await make_sandbox(), await make_sandbox()
    panels = {name: PanelClient(sandbox.url, DEFAULT_KEY, name=name, rate_limit=0, timeout=1,
                                retry=FAST_RETRY)
              for name, sandbox in (("main", main), ("backup", backup))}
    for client in panels.values():
        await refresh_catalog(db, client, "USD")
    own = await catalog_store.by_panel_id(db, "main", "101")
    other = await catalog_store.by_panel_id(db, "backup", "101")
    assert own is not None and other is not None
    assert await routes.link(db, own.ref, other.ref)
    await users.upsert_user(db, CUSTOMER, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=CUSTOMER, amount_minor=10_000, kind="credit", key="seed")
    fx = {"main": Decimal(1), "backup": Decimal(1)}
    watch = PanelWatch(db, panels, [], fx_rates=fx, shop_currency="USD", balance_alert=None)
    yield Two(db, main, backup, panels, Pricer(db, "USD", Decimal(30), fx), watch, [], own.ref)
    await watch.aclose()
    for client in panels.values():
        await client.aclose()


async def row(db: Database, order_id: int) -> tuple:
    found = await db.fetchone(
        "SELECT panel, service_id, state, first_panel, failover_reason, panel_cost, cost_minor"
        " FROM orders WHERE id = ?", (order_id,))
    assert found is not None
    return tuple(found)


def counted(metric: Any, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(metric, labels) or 0.0


# ------------------------------------------------------------ as a service


async def test_a_main_panel_refusing_connections_sends_the_order_to_its_backup(two: Two) -> None:
    await two.main.stop()
    before = counted("storefront_failovers_total", reason="unavailable")
    on_backup = counted("storefront_orders_by_panel_total", panel="backup")
    service = two.orders()
    placed = await two.place(service)
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    assert placed.order.panel == "backup" and placed.order.first_panel == "main"
    assert await row(two.db, placed.order.id) == ("backup", "101", "pending", "main",
                                                  "unavailable", "1.2", 120)
    assert two.backup.panel.requests["add"] == 1
    assert await ledger.balance_of(two.db, CUSTOMER) == 10_000 - PRICE  # one debit
    assert counted("storefront_failovers_total", reason="unavailable") == before + 1
    assert counted("storefront_orders_by_panel_total", panel="backup") == on_backup + 1
    # Tracked where it is: the backup's status comes back.
    two.backup.panel.advance(two.backup.panel.pace * 4)
    refreshed = await service.refresh(placed.order)
    assert refreshed.state in ("completed", "partial", "canceled")


async def test_a_panel_the_watch_marks_down_is_skipped_without_a_request(two: Two) -> None:
    two.main.panel.inject("http500", action="balance", times=10)
    await two.watch.check("main")
    assert two.watch.is_down("main")
    placed = await two.place(two.orders())
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    assert two.main.panel.requests["add"] == 0  # up for orders, but never asked
    assert (await row(two.db, placed.order.id))[:5] == ("backup", "101", "pending", "main",
                                                        "down")


async def test_a_main_panel_out_of_funds_sends_it_to_the_backup_and_tells_the_admins(
        two: Two) -> None:
    two.main.panel.balance = Decimal("0.01")
    service = two.orders()
    placed = await two.place(service)
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    assert (await row(two.db, placed.order.id))[:5] == ("backup", "101", "pending", "main",
                                                        "not_enough_funds")
    [alert] = two.alerts
    assert "balance is too low on main" in alert and "went to backup instead" in alert
    await two.place(service, {**VALUES, "link": "https://instagram.com/p/route2"})
    assert len(two.alerts) == 1  # once per outage
    assert two.main.panel.orders == {} and len(two.backup.panel.orders) == 2


async def test_every_panel_refusing_refunds_with_the_last_reason(two: Two) -> None:
    two.main.panel.balance = Decimal("0.01")
    two.backup.panel.key = "revoked"
    placed = await two.place(two.orders())
    assert placed.outcome is Outcome.REJECTED and placed.order is not None
    assert placed.reason is not None and placed.reason.value == "bad_key"
    assert (await row(two.db, placed.order.id))[:5] == ("backup", "101", "failed", "main",
                                                        "not_enough_funds")
    assert await ledger.balance_of(two.db, CUSTOMER) == 10_000
    assert len(two.alerts) == 2 and all("which was refunded" in a for a in two.alerts)


async def test_a_timeout_after_the_add_was_sent_is_never_sent_elsewhere(two: Two) -> None:
    two.main.panel.inject("hang_after", action="add", delay=3)
    placed = await two.place(two.orders())
    assert placed.outcome is Outcome.AMBIGUOUS and placed.order is not None
    assert (await row(two.db, placed.order.id))[:5] == ("main", "101", "unknown", None, None)
    assert two.backup.panel.requests["add"] == 0
    assert await ledger.balance_of(two.db, CUSTOMER) == 10_000 - PRICE  # held, not refunded


async def test_a_refusal_of_the_customers_order_is_not_failed_over(two: Two) -> None:
    service = two.orders()
    bad = await two.place(service, {**VALUES, "link": "https://instagram.com/p/x y"})
    assert bad.outcome is Outcome.REJECTED and bad.reason is not None
    assert bad.reason.value == "bad_link"
    assert two.backup.panel.requests["add"] == 0
    assert (await row(two.db, bad.order.id))[:5] == ("main", "101", "failed", None, None)  # type: ignore[union-attr]


async def test_a_backup_dearer_than_the_margin_allows_charges_nothing(two: Two) -> None:
    reprice(two.backup, 101, "1.50")  # $1.50 of $1.56: 3.8 % left, under 5 %
    await refresh_catalog(two.db, two.panels["backup"], "USD")
    two.main.panel.inject("http500", action="balance", times=10)
    await two.watch.check("main")
    skipped = counted("storefront_margin_skips_total")
    service = two.orders()
    for n in range(2):
        placed = await two.place(service, {**VALUES, "link": f"https://instagram.com/p/m{n}"})
        assert placed.outcome is Outcome.NO_PANEL and placed.order is None
    assert await two.db.fetchall("SELECT id FROM orders") == []
    assert await ledger.balance_of(two.db, CUSTOMER) == 10_000
    assert two.backup.panel.requests["add"] == two.main.panel.requests["add"] == 0
    assert counted("storefront_margin_skips_total") == skipped + 2
    [alert] = two.alerts  # once per service until it sells again
    assert "MIN_MARGIN_PERCENT" in alert and "main" in alert
    # With no floor the same backup may take it (its cost is still under the price).
    placed = await two.place(two.orders(min_margin=Decimal(0)))
    assert placed.outcome is Outcome.PLACED and placed.order is not None
    assert placed.order.panel == "backup"


async def test_cheapest_routing_tries_the_cheaper_panel_first(two: Two) -> None:
    reprice(two.backup, 101, "1.00")
    await refresh_catalog(two.db, two.panels["backup"], "USD")
    cheapest = await two.place(two.orders(Routing.CHEAPEST))
    assert cheapest.order is not None and cheapest.outcome is Outcome.PLACED
    assert (await row(two.db, cheapest.order.id))[:7] == ("backup", "101", "pending", None, None,
                                                          "1", 100)
    by_priority = await two.place(two.orders(), {**VALUES, "link": "https://instagram.com/p/p"})
    assert by_priority.order is not None and by_priority.order.panel == "main"


async def test_a_backup_that_cannot_take_the_order_is_not_a_candidate(two: Two) -> None:
    """Its limits, a hidden service, or a panel no longer configured: refunded on main."""
    reprice(two.backup, 101, "1.20")
    catalog = two.backup.panel.catalog
    catalog[101] = dataclasses.replace(catalog[101], max=500)
    await refresh_catalog(two.db, two.panels["backup"], "USD")
    await two.main.stop()
    placed = await two.place(two.orders())
    assert placed.outcome is Outcome.UNAVAILABLE and placed.order is not None
    assert placed.order.state == "failed" and placed.order.first_panel is None
    assert two.backup.panel.requests["add"] == 0
    assert await ledger.balance_of(two.db, CUSTOMER) == 10_000


async def test_a_double_tap_while_main_is_down_makes_one_order(two: Two) -> None:
    await two.main.stop()
    service = two.orders()
    token = uuid.uuid4().hex
    results = await asyncio.gather(*(two.place(service, token=token) for _ in range(3)))
    assert sorted(r.outcome for r in results) == [Outcome.ALREADY, Outcome.ALREADY,
                                                  Outcome.PLACED]
    assert len(await two.db.fetchall("SELECT id FROM orders")) == 1
    assert two.backup.panel.requests["add"] == 1
    assert await ledger.balance_of(two.db, CUSTOMER) == 10_000 - PRICE


@given(price=st.integers(0, 10**12),
       cost=st.decimals(0, 10**13, places=6, allow_nan=False, allow_infinity=False),
       margin=st.decimals(0, 100, places=2))
def test_the_margin_floor_is_exact(price: int, cost: Decimal, margin: Decimal) -> None:
    """A cost passes exactly when it leaves ``margin`` percent of the price: never a
    loss, never a rounding that lets one through."""
    exact = Fraction(price) - Fraction(cost) >= Fraction(price) * Fraction(margin) / 100
    assert leaves_margin(price, cost, margin) is exact
    if leaves_margin(price, cost, margin):
        assert cost <= price  # whatever the floor, never below cost


@given(price=st.integers(1, 10**9), margin=st.decimals(0, 100, places=2))
def test_the_floor_itself_passes_and_a_hair_above_fails(price: int, margin: Decimal) -> None:
    floor = Decimal(price) * (100 - margin) / 100  # the most a panel may cost
    assert leaves_margin(price, floor, margin)
    assert not leaves_margin(price, floor + Decimal("0.000001"), margin)


# ------------------------------------------------------------ end to end

# The backup sells service 101 as its own 9101, in a category of its own, so the
# customer's path to main's 101 stays the one tests/test_storefront.py takes.
BACKUP_CATALOG = [dataclasses.replace(entry(101), id=9101, category="Reserve pool")]


async def link_101(shop: Shop) -> None:
    database = await shop.db()
    try:
        own = await catalog_store.by_panel_id(database, "main", "101")
        other = await catalog_store.by_panel_id(database, "backup", "9101")
        assert own is not None and other is not None
        assert await routes.link(database, own.ref, other.ref)
    finally:
        await database.close()

@pytest.fixture
async def pair(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    """The bot with its main panel and a backup (PANELS), service 101 linked."""
    main, backup = await make_sandbox(), await make_sandbox(catalog=BACKUP_CATALOG)
    panels = json.dumps([{"name": "backup", "url": backup.url, "key": DEFAULT_KEY,
                          "rate_limit": 0, "timeout": 1}])
    async with running_shop(main, tmp_path, panels=panels, panel_timeout=1,
                            track_interval=1) as shop:
        shop.backup = backup  # type: ignore[attr-defined]
        await link_101(shop)
        await shop.credit(CUSTOMER, 10_000)
        yield shop


async def test_e2e_main_down_places_on_the_backup_and_tracks_it_there(pair: Shop) -> None:
    backup: RunningSandbox = pair.backup  # type: ignore[attr-defined]
    await pair.admin.send("/start")
    customer = pair.user(CUSTOMER)
    await _to_confirmation(customer, pair, "https://instagram.com/p/e2e-down")
    await pair.sandbox.stop()  # main refuses connections
    await customer.tap("Confirm")
    assert "placed" in customer.text
    [(order_id, panel, first, why)] = await pair.query(
        "SELECT id, panel, first_panel, failover_reason FROM orders")
    assert (panel, first, why) == ("backup", "main", "unavailable")
    assert backup.panel.requests["add"] == 1
    assert await pair.balance(CUSTOMER) == (10_000 - PRICE,) * 2
    backup.panel.advance(backup.panel.pace * 1.5)
    await customer.expect(f"Order #{order_id} has started")  # from the backup's status
    await pair.admin.send("/admin")
    await pair.admin.tap("Orders")
    await pair.admin.tap("Open order by number")
    await pair.admin.send(str(order_id))
    assert "Placed on backup (first tried main: not reachable, nothing sent)" in pair.admin.text


async def test_e2e_main_out_of_funds_goes_to_the_backup(pair: Shop) -> None:
    await pair.admin.send("/start")
    pair.sandbox.panel.balance = Decimal("0.01")
    customer = pair.user(CUSTOMER)
    await _to_confirmation(customer, pair, "https://instagram.com/p/e2e-funds")
    await customer.tap("Confirm")
    assert "placed" in customer.text
    assert await pair.query("SELECT panel, failover_reason FROM orders") == [
        ("backup", "not_enough_funds")]
    alert = await pair.admin.expect("panel balance is too low on main")
    assert "went to backup instead" in alert.text


async def test_e2e_a_timeout_after_sending_stays_unknown_on_main(pair: Shop) -> None:
    backup: RunningSandbox = pair.backup  # type: ignore[attr-defined]
    customer = pair.user(CUSTOMER)
    await _to_confirmation(customer, pair, "https://instagram.com/p/e2e-hang")
    pair.sandbox.panel.inject("hang_after", action="add", delay=3)
    await customer.tap("Confirm", timeout=15)
    assert "did not confirm it yet" in customer.text
    assert await pair.query("SELECT panel, state, first_panel FROM orders") == [
        ("main", "unknown", None)]
    assert backup.panel.requests["add"] == 0


async def test_e2e_a_backup_at_a_loss_with_main_marked_down_charges_nothing(
        pair: Shop) -> None:
    backup: RunningSandbox = pair.backup  # type: ignore[attr-defined]
    reprice(backup, 9101, "1.50")
    await pair.sandbox.stop()
    await restart(pair, pair.emulator_url)  # refreshes the backup's catalog; main found down
    await wait_until_down(pair, "main")
    customer = pair.user(CUSTOMER)
    await _to_confirmation(customer, pair, "https://instagram.com/p/e2e-loss")
    await customer.tap("Confirm")
    assert "unavailable right now" in customer.text and "Nothing was charged" in customer.text
    assert await pair.query("SELECT COUNT(*) FROM orders") == [(0,)]
    assert await pair.balance(CUSTOMER) == (10_000, 10_000)
    assert backup.panel.requests["add"] == 0


async def wait_until_down(shop: Shop, panel: str) -> None:
    """Until the panel watch has recorded its first failed check of ``panel``."""
    for _ in range(200):
        rows = await shop.query("SELECT down_since FROM panel_watch WHERE panel = ?", (panel,))
        if rows and rows[0][0] is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the watch never marked {panel} down")


async def test_e2e_cheapest_routing_orders_from_the_cheaper_panel(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    main, backup = await make_sandbox(), await make_sandbox(catalog=BACKUP_CATALOG)
    reprice(backup, 9101, "1.00")
    panels = json.dumps([{"name": "backup", "url": backup.url, "key": DEFAULT_KEY,
                          "rate_limit": 0}])
    async with running_shop(main, tmp_path, panels=panels, routing="cheapest") as shop:
        await link_101(shop)
        await shop.credit(CUSTOMER, 10_000)
        customer = shop.user(CUSTOMER)
        await _to_confirmation(customer, shop, "https://instagram.com/p/e2e-cheap")
        await customer.tap("Confirm")
        assert "placed" in customer.text
        assert await shop.query("SELECT panel, first_panel, cost_minor FROM orders") == [
            ("backup", None, 100)]
        assert main.panel.requests["add"] == 0


async def test_e2e_a_double_tap_with_main_down_makes_one_order(pair: Shop) -> None:
    backup: RunningSandbox = pair.backup  # type: ignore[attr-defined]
    customer = pair.user(CUSTOMER)
    await _to_confirmation(customer, pair, "https://instagram.com/p/e2e-twice")
    await pair.sandbox.stop()
    confirm = customer.last()
    data = confirm.button("Confirm")["callback_data"]  # type: ignore[index]
    await asyncio.gather(customer.tap_data(data, confirm), customer.tap_data(data, confirm))
    assert await pair.query("SELECT COUNT(*), panel FROM orders") == [(1, "backup")]
    assert backup.panel.requests["add"] == 1
    assert await pair.balance(CUSTOMER) == (10_000 - PRICE,) * 2
