"""An API order's changes are read through the API: no chat message to its owner by
default (not its start, end, refund or refill), the usual notices once they ask for
them. End to end: the unmodified bot's tracker on the sandbox, its outbox and notifier
sending to the Bot API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.shop.wholesale.keys import ApiKeys
from tests.conftest import SandboxFactory
from tests.e2e import Shop, eventually, free_port, running_shop

pytestmark = pytest.mark.timeout(90)

RESELLER = 7001


@pytest.fixture
async def api_shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            track_interval=1, panel_timeout=2) as shop:
        yield shop


class Reseller:
    """A customer ordering through the API, whose chat with the shop is watched."""

    def __init__(self, shop: Shop, key: str, http: httpx.AsyncClient) -> None:
        self.shop, self.key, self.http = shop, key, http

    async def call(self, **fields: str) -> dict:
        return (await self.http.post(self.shop.api_url,
                                     data={"key": self.key, **fields})).json()

    async def order(self, link: str, fate: str) -> int:
        """1000 followers of sandbox service 101 (refill allowed), ending as ``fate``."""
        [(ref,)] = await self.shop.query("SELECT id FROM services WHERE service_id = '101'")
        order_id = (await self.call(action="add", service=str(ref), link=link,
                                    quantity="1000"))["order"]
        [(panel_order,)] = await self.shop.query(
            "SELECT panel_order_id FROM orders WHERE id = ?", (order_id,))
        self.shop.sandbox.panel.orders[int(panel_order)].fate = fate
        return int(order_id)

    async def state(self, order_id: int) -> str:
        [(state,)] = await self.shop.query("SELECT state FROM orders WHERE id = ?",
                                           (order_id,))
        return str(state)

    def messages(self) -> list[str]:
        """What the bot said in the reseller's chat."""
        return [str(params.get("text", "")) for method, params in self.shop.emulator.calls
                if method.lower() == "sendmessage" and str(params.get("chat_id")) == str(RESELLER)]


async def settle_orders(reseller: Reseller, done: str, partial: str) -> tuple[int, int]:
    """A completed order refilled to its end and a partial one refunded, through the API."""
    panel = reseller.shop.sandbox.panel
    done_id = await reseller.order(done, "completed")
    partial_id = await reseller.order(partial, "partial")
    panel.advance(panel.pace * 4)

    async def settled() -> bool:
        return (await reseller.state(done_id), await reseller.state(partial_id)) == (
            "completed", "partial")

    await eventually(settled)
    refill = await reseller.call(action="refill", order=str(done_id))
    [sandbox_refill] = panel.refills.values()
    sandbox_refill.fate = "Completed"
    panel.advance(panel.pace * 4)

    async def refilled() -> bool:
        return (await reseller.call(action="refill_status", refill=refill["refill"])) == {
            "status": "Completed"}

    await eventually(refilled)
    return done_id, partial_id


async def test_api_orders_send_no_chat_message_by_default(api_shop: Shop) -> None:
    await api_shop.credit(RESELLER, 10_000)
    async with httpx.AsyncClient(timeout=30) as http:
        reseller = Reseller(api_shop, await api_shop.api_key(RESELLER), http)
        done_id, partial_id = await settle_orders(reseller, "https://instagram.com/p/q1",
                                                  "https://instagram.com/p/q2")
    # Completed, refunded, refilled: each change was written with whatever it had to
    # say, in its transaction, and none of them queued a message.
    assert sorted(await api_shop.query("SELECT order_id, state FROM order_history")) == [
        (done_id, "completed"), (partial_id, "partial")]
    assert await api_shop.query("SELECT COUNT(*) FROM ledger WHERE kind = 'refund'"
                                " AND order_id = ?", (partial_id,)) == [(1,)]
    assert await api_shop.query("SELECT state FROM refills") == [("completed",)]
    assert await api_shop.query("SELECT kind, order_id FROM outbox WHERE chat_id = ?",
                                (RESELLER,)) == []
    assert reseller.messages() == []


async def test_api_orders_notify_in_the_chat_when_asked(api_shop: Shop) -> None:
    await api_shop.credit(RESELLER, 10_000)
    key = await api_shop.api_key(RESELLER)
    database = await api_shop.db()
    try:
        assert await ApiKeys(database, [], enabled=True, url=None).set_notify(RESELLER, True)
    finally:
        await database.close()
    chat = api_shop.user(RESELLER)
    async with httpx.AsyncClient(timeout=30) as http:
        reseller = Reseller(api_shop, key, http)
        done_id, partial_id = await settle_orders(reseller, "https://instagram.com/p/n1",
                                                  "https://instagram.com/p/n2")
    await chat.expect(f"Order #{done_id} is complete", timeout=20)
    partly = await chat.expect(f"Order #{partial_id} was partly delivered", timeout=20)
    assert "Refunded $" in partly.text
    await chat.expect(f"The refill of order #{done_id} is done", timeout=20)
