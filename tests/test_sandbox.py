"""The sandbox panel behaves like a real one: it validates, charges, progresses, refunds."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox
from bot.panel import ItemError, OrderState, PanelClient, PanelRejected, RejectReason
from bot.panel.order_types import get_order_type


async def test_orders_move_along_over_time(sandbox: RunningSandbox, client: PanelClient) -> None:
    order_id = await client.add("103", get_order_type("Default"),
                                {"link": "https://instagram.com/p/a", "quantity": "1000"})
    pace = sandbox.panel.pace
    assert (await client.status(order_id)).status is OrderState.PENDING
    sandbox.panel.advance(pace * 1.5)
    status = await client.status(order_id)
    assert status.status is OrderState.IN_PROGRESS and 0 < (status.remains or 0) < 1000
    sandbox.panel.advance(pace * 2)
    assert (await client.status(order_id)).is_final


async def test_partial_and_canceled_orders_refund_the_panel_balance(
    sandbox: RunningSandbox, client: PanelClient,
) -> None:
    service = "103"  # 0.25 per 1000
    ids = []
    for n in range(40):
        ids.append(await client.add(service, get_order_type("Default"),
                                    {"link": f"https://instagram.com/p/{n}", "quantity": "1000"}))
    spent = Decimal("0.25") * 40
    assert (await client.balance()).amount == Decimal(1000) - spent
    sandbox.panel.advance(sandbox.panel.pace * 5)
    statuses = await client.statuses(ids)
    refunded = Decimal(0)
    for status in statuses.values():
        assert not isinstance(status, ItemError)
        assert status.charge is not None
        refunded += Decimal("0.25") - status.charge
        if status.status is OrderState.COMPLETED:
            assert status.charge == Decimal("0.25")
    assert refunded > 0
    assert (await client.balance()).amount == Decimal(1000) - spent + refunded


async def test_a_canceled_request_on_an_in_progress_order_ends_partial(
    sandbox: RunningSandbox, client: PanelClient,
) -> None:
    [order_id] = sandbox.panel.seed_orders(101, 1)
    sandbox.panel.advance(sandbox.panel.pace * 1.5)
    await client.cancel([str(order_id)])
    sandbox.panel.advance(sandbox.panel.pace)
    status = await client.status(str(order_id))
    assert status.status is OrderState.PARTIAL and 0 < (status.remains or 0) < 1000


async def test_a_link_with_an_active_order_is_refused_until_that_order_ends(
    sandbox: RunningSandbox, client: PanelClient,
) -> None:
    fields = {"link": "https://instagram.com/p/same", "quantity": "1000"}
    first = await client.add("103", get_order_type("Default"), fields)
    with pytest.raises(PanelRejected) as info:
        await client.add("103", get_order_type("Default"), fields)
    assert info.value.reason is RejectReason.DUPLICATE
    # Another service may take the same link; the first order's end frees it.
    await client.add("101", get_order_type("Default"), fields)
    sandbox.panel.advance(sandbox.panel.pace * 5)
    assert (await client.status(first)).is_final
    assert await client.add("103", get_order_type("Default"), fields) != first


@pytest.mark.parametrize(("type_name", "service", "values", "message"), [
    ("Poll", "403", {"link": "https://t.me/c/1", "quantity": "100"}, "answer number"),
    ("Subscriptions", "116", {"username": "a", "min": "50", "max": "60", "posts": "2",
                              "delay": "7"}, "delay"),
    ("Subscriptions", "116", {"username": "a", "min": "50", "max": "60", "posts": "2",
                              "delay": "0", "expiry": "01/01/2001"}, "expiry"),
    ("Custom Comments", "106", {"link": "https://x.com/p", "comments": "one\ntwo"}, "minimal 5"),
    ("Mentions Custom List", "111", {"link": "https://x.com/p"}, "usernames"),
])
async def test_add_validation_uses_panel_wording(client: PanelClient, type_name: str,
                                                 service: str, values: dict[str, str],
                                                 message: str) -> None:
    with pytest.raises(PanelRejected) as info:
        await client.add(service, get_order_type(type_name), values)
    assert message in info.value.message


async def test_faults_and_clock_over_the_control_endpoint(sandbox: RunningSandbox,
                                                          client: PanelClient) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        refused = await http.post("/_sandbox/faults", json={"kind": "http500"})
        assert refused.status_code == 403
        headers = {"X-Sandbox-Key": DEFAULT_KEY}
        added = await http.post("/_sandbox/faults", headers=headers,
                                json={"kind": "html403", "action": "add", "times": 2})
        assert added.json() == {"faults": 1}
        bad = await http.post("/_sandbox/faults", headers=headers, json={"kind": "meteor"})
        assert bad.status_code == 400
        [order_id] = sandbox.panel.seed_orders(103, 1)
        await http.post("/_sandbox/advance", headers=headers, json={"seconds": 10_000})
        assert (await client.status(str(order_id))).is_final
        stats = (await http.get("/_sandbox/stats", headers=headers)).json()
        assert stats["requests"]["status"] == 1 and stats["orders"] == 1
        await http.post("/_sandbox/faults", headers=headers, json={"clear": True})
    assert sandbox.panel.faults == []


async def test_more_than_100_ids_in_one_request_is_refused(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(sandbox.url, data={
            "key": DEFAULT_KEY, "action": "status", "orders": ",".join(map(str, range(101)))})
    assert response.json() == {"error": "Too many IDs: up to 100 allowed"}


async def test_get_requests_work_like_post(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(sandbox.url, params={"key": DEFAULT_KEY, "action": "balance"})
    assert response.json()["currency"] == "USD"


async def test_unknown_action(client: PanelClient, sandbox: RunningSandbox) -> None:
    with pytest.raises(PanelRejected) as info:
        await client._call("add-order", {})
    assert info.value.reason is RejectReason.BAD_REQUEST
