"""Hostile panel answers (issue 9), driven through the unmodified client, tracker
and order card over real HTTP: the sandbox's ``rewrite`` and ``raw`` faults put
any body on the wire.

The contract under test: the client returns typed results or raises one of
PanelRejected / PanelUnavailable / PanelAmbiguous, fast, whatever it is sent; one
unreadable item spoils nothing but its own order; an answer whose amounts can't
be known is never applied as final.
"""

from __future__ import annotations

import gzip
import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.devtools.sandbox.server import RunningSandbox
from bot.panel import (
    Balance,
    CancelAccepted,
    ItemError,
    OrderStatus,
    PanelAmbiguous,
    PanelClient,
    PanelRejected,
    PanelUnavailable,
    RefillStatus,
    RetryPolicy,
    Service,
)
from bot.panel import client as client_module
from bot.panel.order_types import get_order_type
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.messaging.alerts import render as render_alert
from bot.shop.orders.service import OrderService
from bot.shop.orders.tracking import MISSING_POLLS, Tracker
from storage import catalog as catalog_store
from storage import orders as order_store
from storage.db import Database
from tests.conftest import ClientFactory, SandboxFactory
from tests.test_tracker import order_on, shop_on

pytestmark = pytest.mark.timeout(120)

MAX_COUNT = 10**12  # the bounds: quantities and counts, money
MAX_MONEY = Decimal(10**12)
BAD = "@BAD@"  # placeholder for a raw JSON token json.dumps can't write


class Alerts:
    """Collects alerts as the admin would receive them (rendered to Telegram HTML)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str, *, details: str = "", key: str | None = None) -> None:
        self.texts.append(render_alert({"title": text, "details": details}))


async def _two_orders(db: Database, sandbox: RunningSandbox,
                      client: PanelClient) -> tuple[OrderService, int, int, str, str]:
    client.name = "p"
    service = await shop_on(db, {"p": client})
    first = await order_on(db, service, "p", "https://instagram.com/p/hostile1")
    second = await order_on(db, service, "p", "https://instagram.com/p/hostile2")
    ids = []
    for order_id in (first, second):
        order = await order_store.get(db, order_id)
        assert order is not None and order.panel_order_id is not None
        ids.append(order.panel_order_id)
    return service, first, second, ids[0], ids[1]


async def _refunds(db: Database) -> dict[int, int]:
    rows = await db.fetchall("SELECT order_id, amount_minor FROM ledger WHERE kind = 'refund'")
    return {int(r[0]): int(r[1]) for r in rows}


# ------------------------------------------------------------ item 1


@pytest.mark.parametrize("bad_item", [
    {"status": "In progress", "remains": BAD, "raw": "1" + "0" * 30},  # 10^30, a JSON int
    {"status": "In progress", "remains": "1e500000"},
    {"status": "In progress", "remains": BAD, "raw": "1e500000"},  # a JSON number
    {"charge": "1.2", "remains": "5"},  # no status key
    {"status": None, "remains": "5"},
    {"status": ["Completed"]},
], ids=["remains-10^30", "remains-text-1e500000", "remains-number-1e500000", "no-status",
        "status-null", "status-list"])
async def test_one_unreadable_item_spoils_nothing_else(
        bad_item: dict[str, Any], db: Database, sandbox: RunningSandbox,
        make_client: ClientFactory) -> None:
    client = make_client(sandbox)
    _service, broken, canceled, broken_pid, canceled_pid = await _two_orders(db, sandbox, client)
    raw_token = bad_item.pop("raw", None)

    def rewrite(body: dict[str, Any]) -> str:
        body[broken_pid] = bad_item
        body[canceled_pid] = {"status": "Canceled", "remains": "1000", "charge": "0"}
        text = json.dumps(body)
        return text.replace(f'"{BAD}"', raw_token) if raw_token else text

    sandbox.panel.inject("rewrite", action="status", times=MISSING_POLLS, rewrite=rewrite)
    alerts = Alerts()
    tracker = Tracker(db, {"p": client}, interval=1, alert=alerts)
    started = time.thread_time()  # this thread's CPU: a runaway parse, not a busy machine
    report = await tracker.poll("p")
    assert time.thread_time() - started < 5  # no 8 s of CPU on "1e500000"
    assert report.changed == 1
    canceled_order = await order_store.get(db, canceled)
    broken_order = await order_store.get(db, broken)
    assert canceled_order is not None and canceled_order.state == "canceled"
    assert (await _refunds(db)) == {canceled: canceled_order.price_minor}
    assert broken_order is not None and broken_order.state == "pending"
    assert not alerts.texts  # not on the first poll
    for _ in range(MISSING_POLLS - 1):
        await tracker.poll("p")
    [alert] = alerts.texts  # flagged once, after MISSING_POLLS polls
    assert f"Order #{broken}" in alert and "can't use" in alert
    [(polls, kept)] = await db.fetchall(
        "SELECT unusable_polls, unusable_answer FROM orders WHERE id = ?", (broken,))
    assert polls == MISSING_POLLS and kept  # the raw answer is kept for the admins
    assert (await _refunds(db)) == {canceled: canceled_order.price_minor}
    # The fault is over: the order's real status is read and applied as usual.
    sandbox.panel.advance(sandbox.panel.pace * 1.5)
    await tracker.poll("p")
    again = await order_store.get(db, broken)
    assert again is not None and again.state == "in_progress"
    [(polls,)] = await db.fetchall("SELECT unusable_polls FROM orders WHERE id = ?", (broken,))
    assert polls == 0


async def test_panel_texts_in_alerts_are_html_escaped(db: Database, sandbox: RunningSandbox,
                                                     make_client: ClientFactory) -> None:
    client = make_client(sandbox)
    _service, lost, odd, _lost_pid, odd_pid = await _two_orders(db, sandbox, client)
    await db.write("UPDATE orders SET panel_order_id = '<b>777' WHERE id = ?", (lost,))
    sandbox.panel.inject("rewrite", action="status", times=MISSING_POLLS, rewrite=lambda body: (
        json.dumps({**body, odd_pid: {"status": "<i>Weird</i>", "remains": "1e9999"}})))
    alerts = Alerts()
    tracker = Tracker(db, {"p": client}, interval=1, alert=alerts)
    for _ in range(MISSING_POLLS):
        await tracker.poll("p")
    assert len(alerts.texts) == 2
    missing = next(t for t in alerts.texts if "Incorrect order ID" in t)
    unusable = next(t for t in alerts.texts if "can't use" in t)
    assert "&lt;b&gt;777" in missing and "<b>" not in missing
    assert "&lt;i&gt;Weird&lt;/i&gt;" in unusable and "<i>" not in unusable
    assert f"Order #{odd}" in unusable


# ------------------------------------------------------------ item 5


async def test_partial_without_remains_is_not_applied_as_final(
        db: Database, sandbox: RunningSandbox, make_client: ClientFactory) -> None:
    client = make_client(sandbox)
    service, order_id, _other, panel_id, _other_pid = await _two_orders(db, sandbox, client)
    tracker = Tracker(db, {"p": client}, interval=1, alert=(alerts := Alerts()))
    sandbox.panel.orders[int(panel_id)].fate = "partial"
    sandbox.panel.advance(sandbox.panel.pace * 1.5)
    await tracker.poll("p")  # in progress, with remains on record
    before = await order_store.get(db, order_id)
    assert before is not None and before.state == "in_progress" and before.remains

    def no_remains(body: dict[str, Any]) -> str:
        item = {"status": "Partial", "charge": "0.1", "start_count": "5"}
        if "status" in body:  # the single form, from Refresh
            return json.dumps(item)
        return json.dumps({**body, panel_id: item})

    sandbox.panel.inject("rewrite", action="status", times=MISSING_POLLS + 1, rewrite=no_remains)
    for _ in range(MISSING_POLLS):
        await tracker.poll("p")
    held = await order_store.get(db, order_id)
    assert held is not None and held.state == "in_progress"  # remains on record don't count
    assert order_id not in await _refunds(db)
    assert len([t for t in alerts.texts if f"Order #{order_id}" in t]) == 1
    # Refresh on the order card follows the same rule.
    with pytest.raises(PanelUnavailable):
        await service.refresh(held, now=time.time() + 3600)
    held = await order_store.get(db, order_id)
    assert held is not None and held.state == "in_progress"
    # A later readable answer is applied normally, with the refund it implies.
    sandbox.panel.advance(sandbox.panel.pace * 4)
    await tracker.poll("p")
    done = await order_store.get(db, order_id)
    assert done is not None and done.state == "partial" and done.remains
    assert done.quantity
    assert (await _refunds(db))[order_id] == done.price_minor * done.remains // done.quantity


# ------------------------------------------------------------ item 3


ACTIONS: dict[str, Any] = {
    "services": (lambda c: c.services(), lambda r: all(isinstance(s, Service) for s in r)),
    "balance": (lambda c: c.balance(), lambda r: isinstance(r, Balance)),
    "add": (lambda c: c.add("1", get_order_type("Default"),
                            {"link": "https://a.b/c", "quantity": "10"}),
            lambda r: isinstance(r, str)),
    "status": (lambda c: c.status("1"), lambda r: isinstance(r, OrderStatus)),
    "statuses": (lambda c: c.statuses(["1", "2"]),
                 lambda r: all(isinstance(v, OrderStatus | ItemError) for v in r.values())),
    "refill": (lambda c: c.refill("1"), lambda r: isinstance(r, str)),
    "refills": (lambda c: c.refills(["1", "2"]),
                lambda r: all(isinstance(v, str | ItemError) for v in r.values())),
    "refill_status": (lambda c: c.refill_status("1"), lambda r: isinstance(r, RefillStatus)),
    "refill_statuses": (lambda c: c.refill_statuses(["1", "2"]),
                        lambda r: all(isinstance(v, RefillStatus | ItemError)
                                      for v in r.values())),
    "cancel": (lambda c: c.cancel(["1", "2"]),
               lambda r: all(isinstance(v, CancelAccepted | ItemError) for v in r.values())),
}
FIELDS = ["status", "remains", "charge", "start_count", "statt_count", "currency", "order",
          "refill", "cancel", "error", "balance", "service", "rate", "min", "max", "name",
          "type", "category", "description", "data", "message", "1", "2"]
WORDS = ["1e500000", "-1e999999", "NaN", "Infinity", "", " ", "<b>777", "Partial", "Canceled",
         "Completed", "In progress", "Incorrect order ID", "9" * 5000, "1,000.5", "0,5",
         "0.123456789", "Refill not found", "<html>", "null", "-5"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**15, 10**15),
    st.integers(10**20, 10**60), st.sampled_from(WORDS), st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False, places=10).map(str),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6),
                      max_leaves=25)
FIXED_BODIES = [
    "", "   ", "null", "[]", "{}", '"just a string"', "42", "true", "NaN",
    '{"status": null}', '{"refill": null}', '{"order": null}', '{"order": {"a": 1}}',
    '{"order": ' + "9" * 10_000 + "}", '{"balance": ' + "9" * 5_000 + "}",
    '{"balance": 1e500000}', '{"balance": NaN}', '{"balance": Infinity}',
    '{"1": {"status": "Partial"}, "2": {"status": "Canceled", "remains": 1e30}}',
    '{"1": {"status": "In progress", "remains": 1e500000}}',
    '[{"service": 1, "rate": 1e400000, "min": 1, "max": 100000000000000000000}]',
    "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
    "[" * 30 + "]" * 30,
    '{"1": {"status": "' + "A" * 1_000_000 + '"}}',  # 1 MB
    "<!DOCTYPE html><title>Just a moment...</title>", "<h1>502 Bad Gateway</h1>",
    "<br />\n<b>Notice</b>: x<br />\n" + "{" * 5_000, "error=Invalid+API+key",
    '{"error": {"message": ' * 40 + '"x"' + "}" * 40,
]
BODIES = st.one_of(VALUES.map(lambda v: json.dumps(v, default=str)), st.sampled_from(FIXED_BODIES),
                   st.text(max_size=200))
STATUSES = st.sampled_from([200, 200, 200, 201, 301, 302, 400, 401, 403, 404, 429, 500, 502, 503])
# Seconds of this thread's CPU per body (not wall time, which a loaded machine
# stretches: the suite's six workers share two cores): far above any sane parse,
# far below the seconds a runaway one ("1e500000" as an exact number) takes. The
# real figure is in bench/parser.py.
PARSE_BOUND = 1.0
NO_RETRY = RetryPolicy(attempts=1, base_delay=0, max_delay=0, max_retry_after=0)


def _check_bounds(result: Any) -> None:
    """Numbers that reach the bot are inside the parser's bounds."""
    items = result.values() if isinstance(result, dict) else (
        result if isinstance(result, list) else [result])
    for item in items:
        if isinstance(item, OrderStatus):
            for number in (item.remains, item.start_count):
                assert number is None or abs(number) <= MAX_COUNT
            assert item.charge is None or abs(item.charge) <= MAX_MONEY
        elif isinstance(item, Service):
            assert 0 <= item.rate <= MAX_MONEY and 1 <= item.min <= item.max <= MAX_COUNT
            assert len(item.name) <= 1_000 and len(item.description) <= 5_000
        elif isinstance(item, Balance):
            assert abs(item.amount) <= MAX_MONEY


CREATING = {"add", "refill"}  # not retried once sent: an unclear answer is ambiguous


async def _exercise(client: PanelClient, action: str, status: int) -> None:
    call, typed = ACTIONS[action]
    started = time.thread_time()
    try:
        result = await call(client)
    except PanelAmbiguous:
        assert action in CREATING  # only what creates something can be ambiguous
    except PanelUnavailable:
        if action in CREATING:
            assert not (300 <= status < 400)  # a redirect after sending is ambiguous
    except PanelRejected:
        assert not (300 <= status < 400)
    else:
        assert typed(result), result
        _check_bounds(result)
    assert time.thread_time() - started < PARSE_BOUND


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(action=st.sampled_from(sorted(ACTIONS)), body=BODIES, status=STATUSES)
async def test_every_action_answers_with_a_result_or_one_of_three_failures(
        action: str, body: str, status: int) -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=body, headers={"Content-Type": "application/json"})

    async with PanelClient("http://panel.test/api/v2", "k3y-hostile", name="h", rate_limit=0,
                           retry=NO_RETRY, transport=httpx.MockTransport(answer)) as client:
        await _exercise(client, action, status)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(sorted(ACTIONS)), body=BODIES, status=STATUSES)
async def test_the_contract_holds_over_real_http(action: str, body: str, status: int,
                                                 serve_app, make_client: ClientFactory) -> None:
    app = web.Application()

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type="application/json")

    app.router.add_post("/api/v2", answer)
    client = make_client(await serve_app(app) + "/api/v2", retry=NO_RETRY)
    await _exercise(client, action, status)


# ------------------------------------------------------------ body cap


@pytest.mark.parametrize("mode", ["declared", "chunked", "gzip"])
async def test_an_answer_larger_than_the_cap_is_not_read(
        mode: str, serve_app, make_client: ClientFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_BODY_BYTES", 10_000)
    big = json.dumps({"balance": "1", "currency": "USD", "pad": "x" * 20_000})

    async def answer(request: web.Request) -> web.StreamResponse:
        if mode == "gzip":  # a small compressed body that unpacks past the cap
            return web.Response(body=gzip.compress(big.encode()), content_type="application/json",
                                headers={"Content-Encoding": "gzip"})
        if mode == "declared":
            return web.Response(text=big, content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(big), 1_000):
            await response.write(big[start:start + 1_000].encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/api/v2", answer)
    client = make_client(await serve_app(app) + "/api/v2", retry=NO_RETRY)
    with pytest.raises(PanelUnavailable, match="larger than"):
        await client.balance()
    with pytest.raises(PanelAmbiguous, match="larger than"):
        await client.add("1", get_order_type("Default"), {"link": "https://a.b/c",
                                                          "quantity": "10"})
    monkeypatch.setattr(client_module, "MAX_BODY_BYTES", 100_000)
    assert (await client.balance()).amount == Decimal(1)


# ------------------------------------------------------------ redaction


async def test_a_panel_echoing_its_key_never_carries_it(make_sandbox: SandboxFactory,
                                                       make_client: ClientFactory) -> None:
    key = "k3y-Echoed-0123456789abcdef"
    sandbox = await make_sandbox(key=key)
    client = make_client(sandbox, key=key)
    # The key straddles the 500-character cut of an error message.
    sandbox.panel.inject("raw", action="balance", body=json.dumps(
        {"error": "Invalid key " + "x" * 480 + key}), status=200)
    with pytest.raises(PanelRejected) as info:
        await client.balance()
    shown = str(info.value)
    assert not any(key[i:i + 8] in shown for i in range(len(key) - 8))
    sandbox.panel.inject("raw", action="status", body=json.dumps(
        {"1": {"status": key, "remains": "1"}, "2": {"error": "no " + key}}))
    results = await client.statuses(["1", "2"])
    assert key not in repr(results)


# ------------------------------------------------------------ item 4


async def test_one_odd_service_never_breaks_the_catalog(db: Database, sandbox: RunningSandbox,
                                                       make_client: ClientFactory) -> None:
    odd = [{"service": 901, "name": "Huge max", "type": "Default", "category": "X", "rate": "1",
            "min": "10", "max": BAD},
           {"service": 902, "name": "Huge rate", "type": "Default", "category": "X",
            "rate": "1e400000", "min": "10", "max": "100"},
           {"service": 903, "name": "Rate number", "type": "Default", "category": "X",
            "rate": BAD + "r", "min": "10", "max": "100"},
           {"service": 904, "name": "L" * 50_000, "type": "Default", "category": "X",
            "rate": "2", "min": "10", "max": "100", "description": "D" * 50_000}]

    def rewrite(body: list[dict[str, Any]]) -> str:
        text = json.dumps(body + odd)
        return (text.replace(f'"{BAD}r"', "1e400000")
                .replace(f'"{BAD}"', "100000000000000000000"))

    sandbox.panel.inject("rewrite", action="services", rewrite=rewrite)
    result = await refresh_catalog(db, make_client(sandbox), "USD")
    assert result.skipped == 3
    assert result.services == len(sandbox.panel.catalog) + 1
    stored = await catalog_store.by_panel_id(db, "test", "904")
    assert stored is not None and len(stored.service.name) == 1_000
    assert len(stored.service.description) == 5_000
    assert await catalog_store.by_panel_id(db, "test", "901") is None
