"""The wholesale API under concurrent requests, over real HTTP against the unmodified bot:
a burst of adds never spends more than the balance, retries sent at once make one
order, and the per-key rate limit holds one key back and no other."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SandboxFactory
from tests.e2e import Shop, free_port, running_shop

pytestmark = pytest.mark.timeout(90)

BURST, AFFORDABLE = 50, 10
PRICE = 59  # 1000 of sandbox service 102 ($0.45 per 1000) with the default 30%, rounded up


@pytest.fixture
async def api_shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            panel_timeout=5) as shop:
        yield shop


async def add_form(shop: Shop, key: str, link: str) -> dict[str, str]:
    [(ref,)] = await shop.query("SELECT id FROM services WHERE service_id = '102'")
    return {"key": key, "action": "add", "service": str(ref), "link": link, "quantity": "1000"}


async def test_a_burst_of_adds_spends_the_balance_exactly_once(api_shop: Shop) -> None:
    key = await api_shop.api_key(7001)
    await api_shop.credit(7001, AFFORDABLE * PRICE)
    forms = [await add_form(api_shop, key, f"https://instagram.com/p/burst{n}")
             for n in range(BURST)]
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(http.post(api_shop.api_url, data=form)
                                         for form in forms))
    assert {a.status_code for a in answers} == {200}
    bodies = [a.json() for a in answers]
    orders = [b["order"] for b in bodies if "order" in b]
    assert len(orders) == len(set(orders)) == AFFORDABLE
    assert Counter(b.get("error") for b in bodies if "order" not in b) == {
        "Not enough funds on balance": BURST - AFFORDABLE}
    assert await api_shop.balance(7001) == (0, 0)
    rows = await api_shop.query(
        "SELECT o.id, o.state, o.price_minor, (SELECT SUM(amount_minor) FROM ledger l"
        " WHERE l.order_id = o.id) FROM orders o ORDER BY o.id")
    assert sorted(orders) == [row[0] for row in rows]  # no order beyond those answered
    assert all(state == "pending" and price == PRICE and -debit == PRICE
               for _, state, price, debit in rows)
    assert len(api_shop.sandbox.panel.orders) == AFFORDABLE


async def test_identical_adds_at_once_make_one_order(api_shop: Shop) -> None:
    key = await api_shop.api_key(7002)
    await api_shop.credit(7002, 10_000)
    form = await add_form(api_shop, key, "https://instagram.com/p/retried")
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(http.post(api_shop.api_url, data=form)
                                         for _ in range(20)))
        [(order_id,)] = await api_shop.query("SELECT id FROM orders WHERE user_id = 7002")
        assert [a.json() for a in answers] == [{"order": order_id}] * 20
        # A retry a moment later is answered the same. Another quantity is no repeat:
        # it goes to the panel, whose own rule refuses a second active order on a link.
        assert (await http.post(api_shop.api_url, data=form)).json() == {"order": order_id}
        other = (await http.post(api_shop.api_url, data={**form, "quantity": "1001"})).json()
        assert other["error"].startswith("You have active order with this link")
    assert await api_shop.query("SELECT state FROM orders WHERE user_id = 7002 ORDER BY id") == [
        ("pending",), ("failed",)]
    assert await api_shop.balance(7002) == (10_000 - PRICE,) * 2  # the refused one refunded
    assert len(api_shop.sandbox.panel.orders) == 1


async def test_the_rate_limit_holds_back_one_key_and_no_other(make_sandbox: SandboxFactory,
                                                              tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            api_rate_limit=5) as shop:
        busy, calm = await shop.api_key(7003), await shop.api_key(7004)
        async with httpx.AsyncClient(timeout=30) as http:
            for n in range(5):  # every action counts, an error's as well
                answer = await http.post(shop.api_url, data={
                    "key": busy, "action": ("balance", "services", "dance")[n % 3]})
                assert answer.status_code == 200
            limited = await http.post(shop.api_url, data={"key": busy, "action": "balance"})
            assert limited.status_code == 429
            assert limited.headers["Content-Type"].startswith("application/json")
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            assert limited.json()["error"].startswith("Too many requests: at most 5 a minute")
            # GET counts against the same key, and a burst of the rest is refused alike.
            late = await asyncio.gather(*(http.get(shop.api_url, params={
                "key": busy, "action": "balance"}) for _ in range(5)))
            assert {a.status_code for a in late} == {429}
            calm_answer = await http.post(shop.api_url, data={"key": calm, "action": "balance"})
            assert calm_answer.status_code == 200
            assert calm_answer.json() == {"balance": "0.00", "currency": "USD"}
