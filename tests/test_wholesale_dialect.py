"""The project's panel client against the shop's own API: the checks
tests/test_panel_client.py makes on the sandbox panel, made on shop A's endpoint.

One shop A (on the sandbox panel, its API on) serves the whole module; each test
uses its own links (A refuses a repeat within 60 s, and the sandbox an active
order on the same link) and reads balances relative to the ledger.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from bot.devtools.sandbox.server import RunningSandbox, SandboxPanel, start_sandbox
from bot.panel import (
    CancelAccepted,
    ItemError,
    OrderState,
    PanelClient,
    PanelRejected,
    RefillState,
    RejectReason,
    Service,
)
from bot.panel.order_types import ORDER_TYPES
from bot.shop.money.amounts import to_minor_up
from tests.conftest import FAST_RETRY
from tests.e2e import Shop, eventually, free_port, running_shop
from tests.test_panel_client import sample_values

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

RESELLER = 7001
CREDIT = 1_000_000  # $10,000: every test's orders fit

# A link on each platform's own domain (A checks links as its chat does).
PLATFORM_LINKS = {
    "instagram": "https://instagram.com/p/{n}", "tiktok": "https://www.tiktok.com/@a/video/{n}",
    "youtube": "https://youtube.com/watch?v={n}", "telegram": "https://t.me/channel{n}",
    "facebook": "https://facebook.com/post/{n}", "twitter": "https://x.com/a/status/{n}",
    "spotify": "https://open.spotify.com/track/{n}",
}


@dataclass
class ApiShop:
    shop: Shop
    client: PanelClient  # the reseller's
    platforms: dict[str, str]  # A's service number -> its platform
    links: int = 0

    @property
    def sandbox(self) -> RunningSandbox:
        return self.shop.sandbox

    def link(self, service: Service) -> str:
        """A link for ``service`` that no order has used yet."""
        self.links += 1
        template = PLATFORM_LINKS.get(self.platforms[service.id], "https://example.com/page/{n}")
        return template.format(n=self.links)

    def client_for(self, key: str) -> PanelClient:
        return PanelClient(self.shop.api_url, key, name="api", rate_limit=0, retry=FAST_RETRY,
                           timeout=5.0)

    async def a_order(self, api_order: str) -> tuple[int, str, int]:
        """(A's price, A's state, the sandbox's order id) of an order placed through the API."""
        [(price, state, panel_order)] = await self.shop.query(
            "SELECT price_minor, state, panel_order_id FROM orders WHERE id = ?",
            (int(api_order),))
        return price, state, int(panel_order)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiShop]:
    sandbox = await start_sandbox(SandboxPanel(pace=60.0))
    with tempfile.TemporaryDirectory() as folder:
        async with running_shop(sandbox, Path(folder), api_enabled=True, api_port=free_port(),
                                api_rate_limit=100_000, markup_percent=50, track_interval=1,
                                panel_timeout=2) as shop:
            key = await shop.api_key(RESELLER)
            await shop.credit(RESELLER, CREDIT)
            platforms = {str(ref): platform for ref, platform in await shop.query(
                "SELECT s.id, c.platform FROM services s JOIN categories c"
                " ON c.id = s.category_id")}
            client = PanelClient(shop.api_url, key, name="api", rate_limit=0, retry=FAST_RETRY,
                                 timeout=5.0)
            try:
                yield ApiShop(shop, client, platforms)
            finally:
                await client.aclose()
    await sandbox.stop()


async def a_states(api: ApiShop, order_ids: list[str]) -> set[str]:
    rows = await api.shop.query("SELECT state FROM orders WHERE id IN"
                                " (SELECT value FROM json_each(?))",
                                (json.dumps([int(i) for i in order_ids]),))
    return {state for (state,) in rows}


async def test_services_parse_with_types_limits_and_flags(api: ApiShop) -> None:
    services = await api.client.services()
    assert len(services) == len(api.sandbox.panel.catalog)
    assert {s.type for s in services} == {t.name for t in ORDER_TYPES}
    by_name = {e.name: e for e in api.sandbox.panel.catalog.values()}
    for service in services:
        entry = by_name[service.name]
        assert isinstance(service.id, str) and service.order_type is not None
        assert service.type == entry.type and service.category == entry.category
        assert (service.min, service.max) == (entry.min, entry.max)
        assert (service.refill, service.cancel, service.dripfeed) == (
            entry.refill, entry.cancel, entry.dripfeed)
        # A's price: the sandbox's rate with A's 50%, rounded up to the cent.
        assert service.rate == (entry.rate * Decimal("1.5")).quantize(Decimal("0.01"),
                                                                       "ROUND_CEILING")


async def test_every_sold_type_can_be_ordered_and_tracked(api: ApiShop) -> None:
    services = await api.client.services()
    by_type = {s.type: s for s in services}
    placed: dict[str, Service] = {}
    for service in by_type.values():
        order_type = service.order_type
        assert order_type is not None
        values = sample_values(order_type, service, api.link(service))
        order_id = await api.client.add(service.id, order_type, values)
        placed[order_id] = service
        price, state, _ = await api.a_order(order_id)
        assert state == "pending"
        # Never above what `services` lists: the listed rate's cost, rounded up.
        assert 0 < price <= to_minor_up(order_type.cost(service.rate, values), "USD")

    statuses = await api.client.statuses(placed)
    assert set(statuses) == set(placed)
    for order_id, status in statuses.items():
        assert not isinstance(status, ItemError), status
        assert status.status is OrderState.PENDING and status.currency == "USD"
        assert status.charge == Decimal((await api.a_order(order_id))[0]) / 100

    api.sandbox.panel.advance(api.sandbox.panel.pace * 5)
    await eventually(lambda: _all_final(api, list(placed)))
    finals = await api.client.statuses(placed)
    for order_id, status in finals.items():
        assert not isinstance(status, ItemError)
        assert status.is_final, order_id
        assert status.start_count is not None and status.remains is not None


async def _all_final(api: ApiShop, order_ids: list[str]) -> bool:
    return not await a_states(api, order_ids) & {"pending", "in_progress"}


async def service_of(api: ApiShop, sandbox_id: int) -> Service:
    name = api.sandbox.panel.catalog[sandbox_id].name
    return next(s for s in await api.client.services() if s.name == name)


async def test_drip_feed_charges_every_run(api: ApiShop) -> None:
    service = await service_of(api, 103)  # drip-feed allowed
    assert service.dripfeed and service.order_type is not None
    values = {"link": api.link(service), "quantity": str(service.min), "runs": "4",
              "interval": "30"}
    order_id = await api.client.add(service.id, service.order_type, values)
    price, _, panel_order = await api.a_order(order_id)
    assert api.sandbox.panel.orders[panel_order].quantity == service.min * 4
    assert price == to_minor_up(service.rate * service.min * 4 / 1000, "USD")


async def test_drip_feed_refused_where_not_allowed(api: ApiShop) -> None:
    service = await service_of(api, 105)  # no drip-feed
    assert not service.dripfeed
    with pytest.raises(PanelRejected) as info:
        await api.client.add(service.id, service.order_type,  # type: ignore[arg-type]
                             {"link": api.link(service), "quantity": str(service.min),
                              "runs": "3", "interval": "10"})
    assert info.value.reason is RejectReason.DRIPFEED


@pytest.mark.parametrize(("values", "reason"), [
    ({"link": "not a link", "quantity": "100"}, RejectReason.BAD_LINK),
    ({"link": "https://x.com/a", "quantity": "100"}, RejectReason.BAD_LINK),  # not Instagram
    ({"link": "https://instagram.com/p/q1", "quantity": "1"}, RejectReason.QUANTITY),
    ({"link": "https://instagram.com/p/q2", "quantity": "100000000"}, RejectReason.QUANTITY),
    ({"link": "https://instagram.com/p/q3", "quantity": "-100"}, RejectReason.QUANTITY),
])
async def test_add_rejections(api: ApiShop, values: dict[str, str],
                              reason: RejectReason) -> None:
    service = await service_of(api, 101)
    before = len(api.sandbox.panel.orders)
    with pytest.raises(PanelRejected) as info:
        await api.client.add(service.id, service.order_type, values)  # type: ignore[arg-type]
    assert info.value.reason is reason, info.value.message
    assert len(api.sandbox.panel.orders) == before


async def test_rejections_bad_service_funds_and_key(api: ApiShop) -> None:
    service = await service_of(api, 101)
    order_type = service.order_type
    assert order_type is not None
    for bad in ("999999", "0", "abc", "-1", "1.5"):
        with pytest.raises(PanelRejected) as info:
            await api.client.add(bad, order_type, {"link": api.link(service), "quantity": "100"})
        assert info.value.reason is RejectReason.BAD_SERVICE, bad

    poor = api.client_for(await api.shop.api_key(7002))
    await api.shop.credit(7002, 1)
    before = len(api.sandbox.panel.orders)
    try:
        with pytest.raises(PanelRejected) as info:
            await poor.add(service.id, order_type, {"link": api.link(service), "quantity": "1000"})
        assert info.value.reason is RejectReason.NOT_ENOUGH_FUNDS
        assert len(api.sandbox.panel.orders) == before  # nothing placed by a refused add
        assert await api.shop.balance(7002) == (1, 1)
    finally:
        await poor.aclose()

    for key in ("wrong", ""):
        stranger = api.client_for(key)
        try:
            for call in (stranger.balance, stranger.services):
                with pytest.raises(PanelRejected) as info:
                    await call()
                assert info.value.reason is RejectReason.BAD_KEY
        finally:
            await stranger.aclose()


async def test_single_and_multi_status_with_bad_and_foreign_ids(api: ApiShop) -> None:
    service = await service_of(api, 102)
    order_id = await api.client.add(service.id, service.order_type,  # type: ignore[arg-type]
                                    {"link": api.link(service), "quantity": str(service.min)})
    single = await api.client.status(order_id)
    assert single.status is OrderState.PENDING and single.raw_status == "Pending"
    # Another customer's order is as unknown to this key as a number never used.
    other = api.client_for(await api.shop.api_key(7003))
    await api.shop.credit(7003, 10_000)
    try:
        foreign = await other.add(service.id, service.order_type,  # type: ignore[arg-type]
                                  {"link": api.link(service), "quantity": str(service.min)})
    finally:
        await other.aclose()
    for unknown in ("999999", foreign):
        with pytest.raises(PanelRejected) as info:
            await api.client.status(unknown)
        assert info.value.reason is RejectReason.BAD_ORDER
    multi = await api.client.statuses([order_id, "999999", "abc", foreign])
    for bad in ("999999", "abc", foreign):
        assert isinstance(multi[bad], ItemError) and multi[bad].reason is RejectReason.BAD_ORDER
    assert not isinstance(multi[order_id], ItemError)
    # More than 100 ids: the client splits them, A answers each.
    many = [order_id, *(str(900_000 + n) for n in range(149))]
    answers = await api.client.statuses(many)
    assert len(answers) == 150 and not isinstance(answers[order_id], ItemError)
    assert sum(isinstance(a, ItemError) for a in answers.values()) == 149


async def completed_orders(api: ApiShop, sandbox_id: int, count: int) -> list[str]:
    """``count`` orders of the sandbox's service ``sandbox_id`` that A knows are completed."""
    service = await service_of(api, sandbox_id)
    ids = []
    for _ in range(count):
        order_id = await api.client.add(service.id, service.order_type,  # type: ignore[arg-type]
                                        {"link": api.link(service), "quantity": str(service.min)})
        api.sandbox.panel.orders[(await api.a_order(order_id))[2]].fate = "completed"
        ids.append(order_id)
    api.sandbox.panel.advance(api.sandbox.panel.pace * 5)
    await eventually(lambda: _completed(api, ids))
    return ids


async def _completed(api: ApiShop, order_ids: list[str]) -> bool:
    return await a_states(api, order_ids) == {"completed"}


async def test_refill_and_refill_status_one_and_many(api: ApiShop) -> None:
    completed = await completed_orders(api, 101, 3)  # refill allowed
    refill_id = await api.client.refill(completed[0])
    status = await api.client.refill_status(refill_id)
    assert status.status is RefillState.PENDING
    with pytest.raises(PanelRejected) as info:
        await api.client.refill_status("424242")
    assert info.value.reason is RejectReason.REFILL_NOT_FOUND
    with pytest.raises(PanelRejected) as info:
        await api.client.refill("999999")
    assert info.value.reason is RejectReason.BAD_ORDER

    results = await api.client.refills([completed[1], completed[2], "999999"])
    assert isinstance(results["999999"], ItemError)
    refill_ids = [r for r in results.values() if isinstance(r, str)]
    assert len(refill_ids) == 2
    sandbox_refills = {r.order_id: r for r in api.sandbox.panel.refills.values()}
    assert len(sandbox_refills) >= 3  # each reached A's panel
    api.sandbox.panel.advance(api.sandbox.panel.pace * 3)
    everything = [refill_id, *refill_ids]

    async def finished() -> bool:
        rows = await api.shop.query("SELECT state FROM refills WHERE id IN"
                                    " (SELECT value FROM json_each(?))",
                                    (json.dumps([int(r) for r in everything]),))
        return all(state in ("completed", "rejected") for (state,) in rows)

    await eventually(finished)
    finals = await api.client.refill_statuses([*everything, "424242"])
    assert isinstance(finals["424242"], ItemError)
    for number in everything:
        final = finals[number]
        assert not isinstance(final, ItemError) and final.is_final


async def test_refill_refused_for_an_order_that_is_not_completed(api: ApiShop) -> None:
    service = await service_of(api, 101)
    order_id = await api.client.add(service.id, service.order_type,  # type: ignore[arg-type]
                                    {"link": api.link(service), "quantity": str(service.min)})
    with pytest.raises(PanelRejected) as info:
        await api.client.refill(order_id)
    assert info.value.reason is RejectReason.NOT_REFILLABLE
    no_refill = await completed_orders(api, 102, 1)  # completed, but its service has no refill
    with pytest.raises(PanelRejected) as info:
        await api.client.refill(no_refill[0])
    assert info.value.reason is RejectReason.NOT_REFILLABLE


async def test_cancel_honoured_only_where_allowed(api: ApiShop) -> None:
    cancelable, fixed = await service_of(api, 103), await service_of(api, 105)
    assert cancelable.cancel and not fixed.cancel
    ids = [await api.client.add(s.id, s.order_type,  # type: ignore[arg-type]
                                {"link": api.link(s), "quantity": "1000"})
           for s in (cancelable, fixed)]
    open_order, fixed_order = ids
    _, _, panel_order = await api.a_order(open_order)
    api.sandbox.panel.orders[panel_order].fate = "completed"  # only the cancel stops it
    results = await api.client.cancel([open_order, fixed_order, "999999"])
    assert isinstance(results[open_order], CancelAccepted)
    assert isinstance(results[fixed_order], ItemError)
    assert results[fixed_order].reason is RejectReason.NOT_CANCELABLE
    assert isinstance(results["999999"], ItemError)
    assert api.sandbox.panel.orders[panel_order].cancel_at is not None  # reached A's panel
    api.sandbox.panel.advance(api.sandbox.panel.pace)
    await eventually(lambda: _canceled(api, open_order))
    status = await api.client.status(open_order)
    assert status.status is OrderState.CANCELED and status.remains == 1000
    assert status.charge == 0  # refunded in full


async def _canceled(api: ApiShop, order_id: str) -> bool:
    return await a_states(api, [order_id]) == {"canceled"}


async def test_balance_follows_orders_and_refunds(api: ApiShop) -> None:
    # A reseller of its own: the shared shop's tracker settles other tests' orders
    # (refunds) on the first reseller's balance at any moment.
    own = RESELLER + 50
    await api.shop.credit(own, CREDIT)
    client = api.client_for(await api.shop.api_key(own))

    async def ledger_balance() -> Decimal:
        minor, books = await api.shop.balance(own)
        assert minor == books
        return Decimal(minor) / 100

    start = await client.balance()
    assert start.currency == "USD" and start.amount == await ledger_balance()
    service = await service_of(api, 103)
    order_id = await client.add(service.id, service.order_type,  # type: ignore[arg-type]
                            {"link": api.link(service), "quantity": "4000"})
    price, _, panel_order = await api.a_order(order_id)
    assert price == 150  # 4 × $0.375 ($0.25 with 50%), rounded up
    after = await client.balance()
    assert after.amount == start.amount - Decimal("1.50") == await ledger_balance()
    api.sandbox.panel.orders[panel_order].fate = "canceled"
    api.sandbox.panel.advance(api.sandbox.panel.pace * 5)
    await eventually(lambda: _canceled(api, order_id))
    assert (await client.balance()).amount == start.amount == await ledger_balance()
