"""Attacks on the wholesale API (issue 23) that found something: each test is a problem
seen as a hostile reseller, a thief of keys or a broken client would see it, fixed in
the product. What held is listed in the branch's report, not here.

The shop runs unmodified on the sandbox panel; requests are raw HTTP, as any client
sends them."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.devtools.sandbox.server import RunningSandbox
from bot.observability.logs import setup_logging
from bot.panel import PanelRejected, RejectReason
from bot.shop.catalog.pricing import Discount, DiscountSource, Pricer, Quote
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders.service import OrderService
from bot.shop.routing.failover import Router
from bot.shop.wholesale.api import WholesaleApi
from bot.shop.wholesale.keys import ApiKeys
from bot.shop.wholesale.limits import RequestLimit
from storage import ledger, users
from storage.api_keys import ApiAccess
from storage.db import Database
from tests.conftest import ClientFactory, SandboxFactory
from tests.e2e import Shop, free_port, running_shop

pytestmark = pytest.mark.timeout(120)

RESELLER = 7101
ADMIN = 1_000_001
LINK = "https://instagram.com/p/attack"


async def call(shop: Shop, key: str, **fields: str) -> Any:
    """One form-encoded API request; its JSON answer (always HTTP 200 here)."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(shop.api_url, data={"key": key, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def funded_key(shop: Shop, minor: int = 100_000) -> str:
    key = await shop.api_key(RESELLER)
    await shop.credit(RESELLER, minor)
    return key


async def service_of(shop: Shop, key: str, **wanted: Any) -> dict[str, Any]:
    """The first listed service with the ``wanted`` fields."""
    listed = await call(shop, key, action="services")
    return next(s for s in listed if all(s[k] == v for k, v in wanted.items()))


def settle_at_the_panel(shop: Shop) -> None:
    """The sandbox's orders reach their end, so a second order on a link is not refused
    there as a duplicate of an active one."""
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)


# --- money: a repeat is the same request, not only the same link and quantity ---------------

async def test_other_comments_on_the_same_link_are_a_new_order(api_shop: Shop) -> None:
    """Two custom-comment orders on one post with as many, but other, comments are two
    orders: the second was answered with the first's number and never placed."""
    key = await funded_key(api_shop)
    comments = await service_of(api_shop, key, type="Custom Comments")
    first = await call(api_shop, key, action="add", service=str(comments["service"]), link=LINK,
                       comments="\n".join(f"nice {n}" for n in range(5)))
    settle_at_the_panel(api_shop)
    second = await call(api_shop, key, action="add", service=str(comments["service"]), link=LINK,
                        comments="\n".join(f"great {n}" for n in range(5)))
    assert "order" in first and "order" in second and second["order"] != first["order"]
    sent = [o.fields["comments"] for o in api_shop.sandbox.panel.orders.values()]
    assert any(text.startswith("great") for text in sent)
    # The same request again is still a repeat: answered with its order, placed once.
    again = await call(api_shop, key, action="add", service=str(comments["service"]), link=LINK,
                       comments="\n".join(f"great {n}" for n in range(5)))
    assert again == second and len(api_shop.sandbox.panel.orders) == 2


async def test_a_drip_feed_of_the_same_total_is_a_new_order(api_shop: Shop) -> None:
    """1000 at once and 2 runs of 500 are different orders (the repeat key counted only
    the total)."""
    key = await funded_key(api_shop)
    drip = await service_of(api_shop, key, dripfeed=True, type="Default")
    whole = await call(api_shop, key, action="add", service=str(drip["service"]), link=LINK,
                       quantity="1000")
    settle_at_the_panel(api_shop)
    runs = await call(api_shop, key, action="add", service=str(drip["service"]), link=LINK,
                      quantity="500", runs="2", interval="5")
    assert "order" in runs and runs["order"] != whole["order"]
    assert [(o.quantity, o.fields.get("runs")) for o in api_shop.sandbox.panel.orders.values()] \
        == [(1000, None), (1000, "2")]


# --- add: a drip-feed asked of a service without it ----------------------------------------

async def test_a_drip_feed_on_a_service_without_it_is_refused_not_placed_once(
        api_shop: Shop, make_client: ClientFactory) -> None:
    """``runs`` on a service without drip-feed was dropped: one run placed and charged while
    the client counted on ten. Panels refuse it; so does the shop, charging nothing."""
    key = await funded_key(api_shop)
    single = await service_of(api_shop, key, dripfeed=False, type="Default")
    answer = await call(api_shop, key, action="add", service=str(single["service"]), link=LINK,
                        quantity=single["min"], runs="10", interval="5")
    assert answer == {"error": "Incorrect runs: This service does not support drip-feed."}
    assert await api_shop.balance(RESELLER) == (100_000, 100_000)
    assert api_shop.sandbox.panel.requests["add"] == 0
    # The project's own panel client reads it as the drip-feed refusal it is.
    client = make_client(api_shop.api_url, key)
    [listed] = [s for s in await client.services() if s.id == str(single["service"])]
    assert listed.order_type is not None
    with pytest.raises(PanelRejected) as refused:
        await client.add(listed.id, listed.order_type,
                         {"link": LINK, "quantity": single["min"], "runs": "10", "interval": "5"})
    assert refused.value.reason is RejectReason.DRIPFEED


# --- money: never above the listed rate, a loyalty tier's rounding included -----------------

def listed_bound(rate: str, units: int) -> int:
    """The most an order of ``units`` may cost at a listed ``rate`` per 1000, in cents:
    rate × units / 1000, up to the next cent (a shop charges whole cents)."""
    return int((Decimal(rate) * 100 * units / 1000).to_integral_value(ROUND_CEILING))


async def test_a_tier_customer_is_never_charged_above_the_listed_rate(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    """With a 5 % tier the list price and its discount were each rounded: 101 followers
    listed at 1.71 per 1000 (0.1727, so 0.18 at most) were charged 0.19."""
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            markup_percent=50, loyalty_tiers="0.01:5") as shop:
        key = await funded_key(shop)
        # A first order at the list price puts the customer in the tier.
        await call(shop, key, action="add", service="1", link=f"{LINK}first", quantity="100")
        followers = await service_of(shop, key, service=1)
        assert followers["rate"] == "1.71"  # 1.20 × 1.5 = 1.80, less 5 %
        for units in (101, 133, 1001):
            await call(shop, key, action="add", service="1", link=f"{LINK}{units}",
                       quantity=str(units))
        charged = [row[0] for row in await shop.query(
            "SELECT price_minor FROM orders WHERE id > 1 ORDER BY id")]
        assert charged == [listed_bound("1.71", units) for units in (101, 133, 1001)]


@given(rate=st.decimals(Decimal("0.0001"), Decimal(500), places=4),
       fx=st.sampled_from([Decimal(1), Decimal("0.0271"), Decimal("38.7"), Decimal("1.0833")]),
       markup=st.integers(0, 200), percent=st.integers(0, 50), margin=st.integers(0, 30),
       units=st.integers(1, 1_000_000), runs=st.integers(1, 20))
def test_no_order_costs_more_than_its_listed_rate(rate: Decimal, fx: Decimal, markup: int,
                                                  percent: int, margin: int, units: int,
                                                  runs: int) -> None:
    """The listing and an order priced as the shop prices them (markup, panel currency,
    tier, margin floor): units × runs never cost more than the listed rate says."""
    router = Router(None, panels=["p"], fx_rates={"p": fx},  # type: ignore[arg-type]
                    shop_currency="USD", min_margin_percent=Decimal(margin))
    stored = SimpleNamespace(panel="p")
    tier = Discount(DiscountSource.TIER, Decimal(percent)) if percent else None

    def priced(cost: Decimal, quantity: int | None) -> int:
        exact = cost * fx * (1 + Decimal(markup) / 100) * 100
        listed = Quote(int(exact.to_integral_value(ROUND_CEILING)), cost, quantity,
                       Decimal(markup), exact_list_minor=exact)
        floor = router.lowest_price_minor(stored, cost)  # type: ignore[arg-type]
        return listed.with_discount(tier, None, floor).price_minor

    listed_rate = Decimal(priced(rate, 1000)) / 100
    charged = priced(rate * units * runs / 1000, units * runs)
    assert charged <= listed_bound(str(listed_rate), units * runs)


# --- HTTP: HEAD reads nothing and does nothing ----------------------------------------------

async def test_head_places_no_order(api_shop: Shop) -> None:
    """HEAD was routed with GET, so a HEAD (link checkers and previews send them) with
    the fields in the query string placed an order whose answer nobody could read."""
    key = await funded_key(api_shop)
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.head(api_shop.api_url, params={
            "key": key, "action": "add", "service": "1", "link": LINK, "quantity": "100"})
    assert answer.status_code == 405
    assert await api_shop.query("SELECT id FROM orders") == []
    assert await api_shop.balance(RESELLER) == (100_000, 100_000)


# --- ownership: one order named twice is one order -----------------------------------------

async def test_one_order_named_twice_in_a_list_is_asked_of_the_panel_once(api_shop: Shop) -> None:
    """``orders=N,0N`` named one order twice past the de-duplication (which compared the
    text): the panel was asked to cancel it, and to refill it, twice."""
    key = await funded_key(api_shop)
    refillable = await service_of(api_shop, key, refill=True, cancel=True)
    placed = await call(api_shop, key, action="add", service=str(refillable["service"]),
                        link=LINK, quantity=refillable["min"])
    number = placed["order"]
    answer = await call(api_shop, key, action="cancel", orders=f"{number},0{number}, {number}")
    assert answer == [{"order": number, "cancel": 1}]
    assert api_shop.sandbox.panel.requests["cancel"] == 1
    answer = await call(api_shop, key, action="status", orders=f"{number},0{number}")
    assert list(answer) == [str(number)]


# --- errors: the shop's own trouble at its panel is not the customer's fault ---------------

async def test_the_shops_empty_panel_balance_answers_unavailable(api_shop: Shop) -> None:
    """The panel refusing for the shop's own funds was answered "The order was refused;
    check its fields", sending the reseller to look for a mistake they did not make."""
    key = await funded_key(api_shop)
    api_shop.sandbox.panel.balance = Decimal(0)
    answer = await call(api_shop, key, action="add", service="1", link=LINK, quantity="100")
    assert answer == {"error": "The service is temporarily unavailable, try again later"}
    assert await api_shop.balance(RESELLER) == (100_000, 100_000)  # refunded


# --- keys: never in the shop's logs ---------------------------------------------------------

@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The root logger set up as the bot sets it up (its redaction filter included), at
    DEBUG, into a string."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


async def raw_request(url: str, request_line: str) -> bytes:
    """Send one raw HTTP request; the whole answer (the server has logged by then)."""
    parts = httpx.URL(url)
    reader, writer = await asyncio.open_connection(parts.host, parts.port)
    try:
        writer.write(f"{request_line}\r\nHost: shop\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


async def test_a_key_in_a_request_line_the_server_cant_read_is_not_logged(
        api_shop: Shop, log_stream: io.StringIO) -> None:
    """A GET whose query string is too long (a long comment list sent as a client sends
    everything, key first) or whose method is garbled was logged by the web server with
    the request line, the customer's key in it, at ERROR (too long) or DEBUG."""
    key = await funded_key(api_shop)
    query = f"/api/v2?key={key}&action=add&service=6&comments={'nice%0A' * 2000}"
    answer = await raw_request(api_shop.api_url, f"GET {query} HTTP/1.1")
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400")
    answer = await raw_request(api_shop.api_url, f"G\x01T /api/v2?key={key}&action=balance"
                                                 " HTTP/1.1")
    assert b" 400 " in answer.split(b"\r\n")[0]
    logged = log_stream.getvalue()
    assert "Error handling request" in logged  # the lines were written, without the key
    assert key not in logged and key[:20] not in logged


# --- keys: a key that stops working stops the orders it was placing ------------------------

async def revoke(keys: ApiKeys, db: Database, user_id: int) -> None:
    await keys.revoke(user_id)


async def rotate(keys: ApiKeys, db: Database, user_id: int) -> None:
    await keys.new_key(user_id)


async def turn_off(keys: ApiKeys, db: Database, user_id: int) -> None:
    await keys.set_allowed(ADMIN, user_id, allowed=False)


async def ban(keys: ApiKeys, db: Database, user_id: int) -> None:
    async with db.transaction() as conn:
        await users.set_banned(conn, user_id, True)


@pytest.mark.parametrize("change", [revoke, rotate, turn_off, ban])
async def test_a_key_that_stops_working_after_its_check_places_nothing(
        db: Database, sandbox: RunningSandbox, make_client: ClientFactory,
        change: Callable[[ApiKeys, Database, int], Awaitable[None]]) -> None:
    """The key was checked once, when the request came in: an ``add`` queued behind others
    (a thief's burst) still debited after the owner revoked or replaced the key, turned
    API access off or blocked the customer. The order's own transaction checks it now."""
    client = make_client(sandbox, timeout=1)
    await refresh_catalog(db, client, "USD")
    orders = OrderService(db, {"test": client}, Pricer(db, "USD", Decimal(30), {}))

    class ChangedRightAfterTheCheck(ApiKeys):
        async def find(self, key: str) -> ApiAccess | None:
            access = await super().find(key)
            assert access is not None
            await change(self, db, access.user_id)  # lands while the add is under way
            return access

    keys = ChangedRightAfterTheCheck(db, [ADMIN], enabled=True, url=None)
    await users.upsert_user(db, RESELLER, first_name="Reseller")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=RESELLER, amount_minor=10_000, kind="credit", key="seed")
    key = (await keys.new_key(RESELLER)).key
    api = WholesaleApi(db, keys, orders, rate_limit=RequestLimit(60))
    ref = (await orders.catalog.everything())[0].ref
    answer = await api.answer({"key": key, "action": "add", "service": str(ref), "link": LINK,
                               "quantity": "100"})
    assert answer.body in ({"error": "Invalid API key"},
                           {"error": "Invalid API key: API access is turned off for this account"})
    assert await db.fetchall("SELECT id FROM orders") == []
    assert await ledger.balance_of(db, RESELLER) == 10_000
    assert sandbox.panel.requests["add"] == 0


# --- the rate limiter: a refusal costs nothing, and forgets who stopped asking -------------

async def test_requests_past_the_limit_write_nothing(make_sandbox: SandboxFactory,
                                                     tmp_path: Path) -> None:
    """Each request refused with 429 still wrote the key's use to the database: a runaway
    client past its limit kept the writer busy (and the orders of everyone else waiting
    on it), the very thing the limit is there to prevent."""
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            api_rate_limit=2) as shop:
        key = await funded_key(shop)
        async with httpx.AsyncClient(timeout=30) as http:
            codes = [(await http.post(shop.api_url, data={"key": key, "action": "balance"}))
                     .status_code for _ in range(12)]
        assert codes == [200, 200] + [429] * 10
        assert await shop.query("SELECT requests FROM api_access WHERE user_id = ?",
                                (RESELLER,)) == [(2,)]


def test_the_limit_forgets_customers_who_stopped_asking() -> None:
    """Every customer who ever made a request kept an entry for the life of the process."""
    now = [0.0]
    limit = RequestLimit(60, clock=lambda: now[0])
    for customer in range(10_000):
        assert limit.take(customer) is None
    now[0] += 61
    assert limit.take(1) is None
    assert limit.tracked == 1
