"""The panel client against the sandbox panel over real HTTP, in every dialect."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.devtools.sandbox.server import RunningSandbox
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
from bot.panel.dialects import DIALECTS
from bot.panel.order_types import ORDER_TYPES, OrderType
from tests.conftest import ClientFactory, SandboxFactory


def sample_values(order_type: OrderType, service: Service, link: str) -> dict[str, str]:
    """A valid form for ``service``: what a customer would have entered."""
    values: dict[str, str] = {}
    lines = "\n".join(f"item {n}" for n in range(max(service.min, 1)))
    for spec in order_type.fields:
        if spec.only_if and values.get(spec.only_if[0]) != spec.only_if[1]:
            continue
        if spec.dripfeed or (not spec.required and spec.name != "posts"):
            continue
        match spec.name:
            case "link" | "media" | "referring_url":
                values[spec.name] = link
            case "quantity" | "min":
                values[spec.name] = str(service.min)
            case "max":
                values[spec.name] = str(service.min)
            case "posts":
                values[spec.name] = "3"
            case "answer_number":
                values[spec.name] = "2"
            case "delay":
                values[spec.name] = "30"
            case "device" | "type_of_traffic":
                values[spec.name] = "1"
            case "country":
                values[spec.name] = "US"
            case _:
                values[spec.name] = lines if spec.kind == "lines" else "alice"
    return values


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_services_in_every_dialect(dialect: str, make_sandbox: SandboxFactory,
                                         make_client: ClientFactory) -> None:
    sandbox = await make_sandbox(dialect)
    services = await make_client(sandbox).services()
    assert len(services) == len(sandbox.panel.catalog)
    for service in services:
        entry = sandbox.panel.catalog[int(service.id)]
        assert service.type == entry.type  # canonical, whatever the dialect's spelling
        assert service.rate == entry.rate and (service.min, service.max) == (entry.min, entry.max)
        assert isinstance(service.id, str)
        if DIALECTS[dialect].flags_in_services:
            assert (service.refill, service.cancel) == (entry.refill, entry.cancel)
        else:
            assert not service.refill and not service.cancel
        if DIALECTS[dialect].dripfeed_in_services:
            assert service.dripfeed == entry.dripfeed


async def test_default_catalog_covers_every_order_type(client: PanelClient) -> None:
    services = await client.services()
    assert len(services) >= 40
    assert {s.type for s in services} == {t.name for t in ORDER_TYPES}
    platforms = " ".join(s.name for s in services)
    for platform in ("Instagram", "TikTok", "YouTube", "Telegram", "Facebook", "Twitter",
                     "Spotify", "Website"):
        assert platform in platforms


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_every_sold_type_can_be_ordered_and_tracked(
    dialect: str, make_sandbox: SandboxFactory, make_client: ClientFactory,
) -> None:
    sandbox = await make_sandbox(dialect)
    client = make_client(sandbox)
    services = await client.services()
    by_type = {s.type: s for s in services}
    placed: dict[str, Service] = {}
    for index, service in enumerate(by_type.values()):
        order_type = service.order_type
        assert order_type is not None
        values = sample_values(order_type, service, f"https://example.com/post/{index}")
        order_id = await client.add(service.id, order_type, values)
        placed[order_id] = service
        stored = sandbox.panel.orders[int(order_id)]
        assert stored.charge == order_type.cost(service.rate, values)

    statuses = await client.statuses(placed)
    assert set(statuses) == set(placed)
    for status in statuses.values():
        assert not isinstance(status, ItemError)
        assert status.status is OrderState.PENDING
        assert status.currency == DIALECTS[dialect].currency

    sandbox.panel.advance(sandbox.panel.pace * 5)
    finals = await client.statuses(placed)
    for order_id, status in finals.items():
        assert not isinstance(status, ItemError)
        assert status.is_final, order_id
        assert status.start_count is not None and status.remains is not None


async def test_drip_feed_charges_every_run(sandbox: RunningSandbox, client: PanelClient) -> None:
    service = next(s for s in await client.services() if s.dripfeed)
    order_type = service.order_type
    assert order_type is not None
    values = {"link": "https://instagram.com/p/drip", "quantity": str(service.min), "runs": "4",
              "interval": "30"}
    order_id = await client.add(service.id, order_type, values)
    order = sandbox.panel.orders[int(order_id)]
    assert order.quantity == service.min * 4
    assert order.charge == service.rate * service.min * 4 / 1000


async def test_drip_feed_refused_where_not_allowed(client: PanelClient) -> None:
    service = next(s for s in await client.services() if not s.dripfeed and s.type == "Default")
    with pytest.raises(PanelRejected) as info:
        await client.add(service.id, service.order_type,  # type: ignore[arg-type]
                         {"link": "https://x.com/a", "quantity": str(service.min), "runs": "3",
                          "interval": "10"})
    assert info.value.reason is RejectReason.DRIPFEED


@pytest.mark.parametrize(("values", "reason"), [
    ({"link": "not a link", "quantity": "100"}, RejectReason.BAD_LINK),
    ({"link": "https://x.com/a", "quantity": "1"}, RejectReason.QUANTITY),
    ({"link": "https://x.com/a", "quantity": "100000000"}, RejectReason.QUANTITY),
])
async def test_add_rejections(client: PanelClient, values: dict[str, str],
                              reason: RejectReason) -> None:
    service = next(s for s in await client.services() if s.id == "101")
    with pytest.raises(PanelRejected) as info:
        await client.add(service.id, service.order_type, values)  # type: ignore[arg-type]
    assert info.value.reason is reason


async def test_rejections_bad_service_funds_duplicate_key(
    sandbox: RunningSandbox, client: PanelClient, make_client: ClientFactory,
) -> None:
    service = next(s for s in await client.services() if s.id == "101")
    order_type = service.order_type
    assert order_type is not None
    with pytest.raises(PanelRejected) as info:
        await client.add("999999", order_type, {"link": "https://x.com/a", "quantity": "100"})
    assert info.value.reason is RejectReason.BAD_SERVICE

    await client.add(service.id, order_type, {"link": "https://x.com/dup", "quantity": "100"})
    with pytest.raises(PanelRejected) as info:
        await client.add(service.id, order_type, {"link": "https://x.com/dup", "quantity": "100"})
    assert info.value.reason is RejectReason.DUPLICATE

    sandbox.panel.balance = Decimal("0.01")
    with pytest.raises(PanelRejected) as info:
        await client.add(service.id, order_type, {"link": "https://x.com/b", "quantity": "1000"})
    assert info.value.reason is RejectReason.NOT_ENOUGH_FUNDS
    assert len(sandbox.panel.orders) == 1  # nothing placed by a rejected add

    with pytest.raises(PanelRejected) as info:
        await make_client(sandbox, key="wrong").balance()
    assert info.value.reason is RejectReason.BAD_KEY


async def test_smartpanel_error_wording_is_classified(make_sandbox: SandboxFactory,
                                                      make_client: ClientFactory) -> None:
    sandbox = await make_sandbox("smartpanel")
    client = make_client(sandbox)
    service = next(s for s in await client.services() if s.id == "101")
    order_type = service.order_type
    assert order_type is not None
    cases = [
        ("999", {"link": "https://x.com/a", "quantity": "100"}, RejectReason.BAD_SERVICE),
        ("101", {"link": "nolink", "quantity": "100"}, RejectReason.BAD_LINK),
        ("101", {"link": "https://x.com/a", "quantity": "1"}, RejectReason.QUANTITY),
    ]
    for service_id, values, reason in cases:
        with pytest.raises(PanelRejected) as info:
            await client.add(service_id, order_type, values)
        assert info.value.reason is reason, info.value.message
    with pytest.raises(PanelRejected) as info:
        await make_client(sandbox, key="wrong").services()
    assert info.value.reason is RejectReason.BAD_KEY


async def test_single_and_multi_status_with_bad_ids(sandbox: RunningSandbox,
                                                    client: PanelClient) -> None:
    [order_id] = sandbox.panel.seed_orders(101, 1)
    single = await client.status(str(order_id))
    assert single.status is OrderState.PENDING and single.raw_status == "Pending"
    with pytest.raises(PanelRejected) as info:
        await client.status("1")
    assert info.value.reason is RejectReason.BAD_ORDER
    multi = await client.statuses([str(order_id), "1", "abc"])
    assert isinstance(multi["1"], ItemError) and isinstance(multi["abc"], ItemError)
    assert not isinstance(multi[str(order_id)], ItemError)


async def test_partial_and_canceled_are_reported_with_remains(sandbox: RunningSandbox,
                                                              client: PanelClient) -> None:
    ids = [str(i) for i in sandbox.panel.seed_orders(103, 60, quantity=700)]
    sandbox.panel.advance(sandbox.panel.pace * 5)
    statuses = await client.statuses(ids)
    seen = {s.status for s in statuses.values() if not isinstance(s, ItemError)}
    assert {OrderState.COMPLETED, OrderState.PARTIAL, OrderState.CANCELED} <= seen
    for status in statuses.values():
        assert not isinstance(status, ItemError)
        if status.status is OrderState.PARTIAL:
            assert 0 < (status.remains or 0) < 700
        if status.status is OrderState.CANCELED:
            assert status.remains == 700


async def test_more_than_100_ids_are_split(sandbox: RunningSandbox, client: PanelClient) -> None:
    ids = [str(i) for i in sandbox.panel.seed_orders(103, 250)]
    before = sandbox.panel.requests["status"]
    statuses = await client.statuses(ids + ids[:10])  # duplicates are asked once
    assert len(statuses) == 250
    assert sandbox.panel.requests["status"] - before == 3


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_refill_in_every_dialect(dialect: str, make_sandbox: SandboxFactory,
                                       make_client: ClientFactory) -> None:
    sandbox = await make_sandbox(dialect)
    client = make_client(sandbox)
    refillable = next(e for e in sandbox.panel.catalog.values() if e.refill)
    ids = [str(i) for i in sandbox.panel.seed_orders(refillable.id, 40)]
    sandbox.panel.advance(sandbox.panel.pace * 5)
    statuses = await client.statuses(ids)
    completed = [i for i, s in statuses.items()
                 if not isinstance(s, ItemError) and s.status is OrderState.COMPLETED]
    refill_id = await client.refill(completed[0])
    assert refill_id
    status = await client.refill_status(refill_id)
    assert status.status is RefillState.PENDING
    with pytest.raises(PanelRejected) as info:
        await client.refill_status("424242")
    assert info.value.reason is RejectReason.REFILL_NOT_FOUND
    with pytest.raises(PanelRejected) as info:
        await client.refill("1")
    assert info.value.reason is RejectReason.BAD_ORDER

    if DIALECTS[dialect].multi_refill:
        results = await client.refills([completed[1], completed[2], "1"])
        assert isinstance(results["1"], ItemError)
        refill_ids = [r for r in results.values() if isinstance(r, str)]
        assert len(refill_ids) == 2
        sandbox.panel.advance(sandbox.panel.pace * 3)
        finals = await client.refill_statuses([*refill_ids, "424242"])
        assert isinstance(finals["424242"], ItemError)
        for refill_id in refill_ids:
            final = finals[refill_id]
            assert not isinstance(final, ItemError) and final.is_final
    else:
        with pytest.raises(PanelRejected) as info:
            await client.refills([completed[1]])
        assert info.value.reason is RejectReason.BAD_REQUEST


async def test_refill_refused_for_an_order_that_is_not_completed(sandbox: RunningSandbox,
                                                                 client: PanelClient) -> None:
    [order_id] = sandbox.panel.seed_orders(101, 1)
    with pytest.raises(PanelRejected) as info:
        await client.refill(str(order_id))
    assert info.value.reason is RejectReason.NOT_REFILLABLE


@pytest.mark.parametrize("dialect", ["generic", "softaapp", "smartpanel"])
async def test_cancel_honoured_only_where_allowed(dialect: str, make_sandbox: SandboxFactory,
                                                  make_client: ClientFactory) -> None:
    sandbox = await make_sandbox(dialect)
    client = make_client(sandbox)
    cancelable = next(e for e in sandbox.panel.catalog.values() if e.cancel)
    fixed = next(e for e in sandbox.panel.catalog.values() if not e.cancel)
    [open_order] = sandbox.panel.seed_orders(cancelable.id, 1)
    [fixed_order] = sandbox.panel.seed_orders(fixed.id, 1)
    results = await client.cancel([str(open_order), str(fixed_order), "1"])
    assert isinstance(results[str(open_order)], CancelAccepted)
    assert results[str(fixed_order)] == ItemError("Cannot cancel", RejectReason.NOT_CANCELABLE)
    assert isinstance(results["1"], ItemError)
    sandbox.panel.advance(sandbox.panel.pace)
    status = await client.status(str(open_order))
    assert status.status is OrderState.CANCELED and status.remains == 1000


async def test_cancel_unsupported_by_the_2020_panel(make_sandbox: SandboxFactory,
                                                    make_client: ClientFactory) -> None:
    sandbox = await make_sandbox("sosyalbayiniz")
    with pytest.raises(PanelRejected) as info:
        await make_client(sandbox).cancel(["1"])
    assert info.value.reason is RejectReason.BAD_REQUEST


async def test_balance_follows_orders_and_refunds(sandbox: RunningSandbox,
                                                  client: PanelClient) -> None:
    start = await client.balance()
    assert start == type(start)(Decimal("1000"), "USD")
    service = next(s for s in await client.services() if s.id == "103")
    await client.add(service.id, service.order_type,  # type: ignore[arg-type]
                     {"link": "https://instagram.com/p/1", "quantity": "4000"})
    after = await client.balance()
    assert after.amount == Decimal("1000") - Decimal("0.25") * 4
