"""Every fault the sandbox can inject, and how the client classifies it.

Read-only actions retry and succeed when the fault passes; ``add`` is never
retried once its request may have reached the panel, and reports ambiguous.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from urllib.parse import parse_qs

import httpx
import pytest
from aiohttp import web

from bot.devtools.sandbox.server import RunningSandbox, SandboxPanel, start_sandbox
from bot.panel import (
    PanelAmbiguous,
    PanelClient,
    PanelRejected,
    PanelUnavailable,
    RetryPolicy,
)
from bot.panel.order_types import get_order_type
from tests.conftest import ClientFactory

ADD_VALUES = {"link": "https://instagram.com/p/fault", "quantity": "100"}


async def _add(client: PanelClient) -> str:
    service = next(s for s in await client.services() if s.id == "101")
    assert service.order_type is not None
    return await client.add(service.id, service.order_type, ADD_VALUES)


@pytest.mark.parametrize("kind", ["html403", "http500", "http502", "http429", "malformed",
                                  "empty"])
async def test_read_only_actions_retry_through_a_passing_fault(
    kind: str, sandbox: RunningSandbox, client: PanelClient,
) -> None:
    sandbox.panel.inject(kind, action="balance", times=2)
    balance = await client.balance()
    assert balance.currency == "USD"
    assert sandbox.panel.requests["balance"] == 3


@pytest.mark.parametrize(("kind", "message"), [
    ("html403", "Cloudflare"), ("http500", "HTTP 500"), ("http502", "HTTP 502"),
    ("http429", "429"), ("malformed", "not JSON"), ("empty", "empty"),
])
async def test_read_only_actions_report_a_lasting_fault_as_unavailable(
    kind: str, message: str, sandbox: RunningSandbox, client: PanelClient,
) -> None:
    sandbox.panel.inject(kind, action="status", times=10)
    with pytest.raises(PanelUnavailable) as info:
        await client.statuses(["1", "2"])
    assert message in str(info.value)
    assert sandbox.panel.requests["status"] == 3  # the policy's three attempts


async def test_a_php_notice_before_the_json_is_read(sandbox: RunningSandbox,
                                                   client: PanelClient) -> None:
    sandbox.panel.inject("notice", action="services")
    assert len(await client.services()) == len(sandbox.panel.catalog)


@pytest.mark.parametrize("kind", ["html403", "http429"])
async def test_add_is_unavailable_when_the_gateway_refused_it(
    kind: str, sandbox: RunningSandbox, client: PanelClient,
) -> None:
    service_list = await client.services()
    sandbox.panel.inject(kind, action="add")
    with pytest.raises(PanelUnavailable):
        await client.add("101", service_list[0].order_type, ADD_VALUES)  # type: ignore[arg-type]
    assert sandbox.panel.requests["add"] == 1  # not retried
    assert sandbox.panel.orders == {}


@pytest.mark.parametrize("kind", ["http500", "http502", "malformed", "empty", "drop_after"])
async def test_add_is_ambiguous_when_the_panel_may_have_processed_it(
    kind: str, sandbox: RunningSandbox, client: PanelClient,
) -> None:
    await client.services()
    sandbox.panel.inject(kind, action="add")
    with pytest.raises(PanelAmbiguous):
        await _add(client)
    assert sandbox.panel.requests["add"] == 1  # never retried blindly


async def test_add_timeout_after_processing_is_ambiguous_and_the_order_exists(
    sandbox: RunningSandbox, make_client: ClientFactory,
) -> None:
    client = make_client(sandbox, timeout=0.5)
    sandbox.panel.inject("hang_after", action="add", delay=3)
    with pytest.raises(PanelAmbiguous) as info:
        await _add(client)
    assert "may exist" in info.value.message
    assert sandbox.panel.requests["add"] == 1
    # The panel did take the order: exactly why it must be reconciled, not resubmitted.
    assert len(sandbox.panel.orders) == 1


async def test_slow_answers_within_the_timeout_succeed(sandbox: RunningSandbox,
                                                       make_client: ClientFactory) -> None:
    client = make_client(sandbox, timeout=3)
    sandbox.panel.inject("slow", action="add", delay=0.3)
    order_id = await _add(client)
    assert int(order_id) in sandbox.panel.orders


async def test_read_only_timeout_is_retried(sandbox: RunningSandbox,
                                            make_client: ClientFactory) -> None:
    client = make_client(sandbox, timeout=0.3)
    sandbox.panel.inject("hang", action="balance", delay=2)
    assert (await client.balance()).currency == "USD"
    assert sandbox.panel.requests["balance"] == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_unavailable_for_every_action(
    make_client: ClientFactory,
) -> None:
    with socket.socket() as held:  # bound, never listening: refused, and nobody else's
        held.bind(("127.0.0.1", 0))
        client = make_client(f"http://127.0.0.1:{held.getsockname()[1]}/api/v2")
        with pytest.raises(PanelUnavailable) as info:
            await client.services()
    assert info.value.never_sent


async def test_add_is_retried_when_the_connection_was_never_made(
    make_client: ClientFactory, make_sandbox,
) -> None:
    """Connection refused, then the panel comes up: the retried add places one order."""
    port = _closed_port()
    client = make_client(f"http://127.0.0.1:{port}/api/v2",
                         retry=RetryPolicy(attempts=6, base_delay=0.2, max_delay=0.2))
    async def start_late() -> RunningSandbox:
        await asyncio.sleep(0.3)
        return await start_sandbox(SandboxPanel(pace=60), port=port)

    late = asyncio.create_task(start_late())
    try:
        order_id = await client.add("101", get_order_type("Default"), ADD_VALUES)
        sandbox = await late
        assert list(sandbox.panel.orders) == [int(order_id)]
        assert sandbox.panel.requests["add"] == 1
    finally:
        await (await late).stop()


async def test_retry_after_is_honoured(sandbox: RunningSandbox, client: PanelClient) -> None:
    sandbox.panel.inject("http429", action="balance", delay=1)
    started = time.monotonic()
    await client.balance()
    assert time.monotonic() - started >= 0.9  # waited as the panel asked, not the 10 ms backoff


async def test_a_long_retry_after_is_reported_not_slept(sandbox: RunningSandbox,
                                                        client: PanelClient) -> None:
    sandbox.panel.inject("http429", action="balance", delay=120)
    with pytest.raises(PanelUnavailable) as info:
        await client.balance()
    assert info.value.retry_after == 120
    assert sandbox.panel.requests["balance"] == 1


async def test_rate_limit_spaces_requests(sandbox: RunningSandbox,
                                          make_client: ClientFactory) -> None:
    client = make_client(sandbox, rate_limit=20)
    started = time.monotonic()
    await asyncio.gather(*(client.balance() for _ in range(7)))
    # 7 requests at 20/s: the bucket's 2 at once, then 5 gaps of 50 ms.
    assert time.monotonic() - started >= 0.25


class RecordingTransport(httpx.AsyncHTTPTransport):
    """A real connection that notes each request's action in the order they are sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []
        self.first_sent = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(parse_qs(request.content.decode())["action"][0])
        self.first_sent.set()
        return await super().handle_async_request(request)


async def test_orders_go_before_the_trackers_queued_status_batches(
        sandbox: RunningSandbox, make_client: ClientFactory) -> None:
    """The tracker's 5 status batches are queued at the rate limit when a customer
    confirms, cancels and asks a refill: those three go next, the batches after."""
    order_id = await _add(make_client(sandbox))  # an order to cancel and refill
    transport = RecordingTransport()
    client = make_client(sandbox, rate_limit=5, transport=transport)
    ids = [str(i) for i in range(1, 501)]
    polling = asyncio.create_task(client.statuses(ids))
    await transport.first_sent.wait()  # the first batch is out, the rest wait their turn
    service = next(s for s in await client.services() if s.id == "101")
    assert service.order_type is not None
    _placed, _canceled, refill = await asyncio.gather(
        client.add(service.id, service.order_type, ADD_VALUES), client.cancel([order_id]),
        client.refill(order_id), return_exceptions=True)
    assert isinstance(refill, PanelRejected)  # not completed: refused, after the request
    assert len(await polling) == len(ids)
    assert transport.sent[0] == "status"
    assert sorted(transport.sent[1:5]) == ["add", "cancel", "refill", "services"]
    assert transport.sent[5:] == ["status"] * 4


async def test_rejections_are_never_retried(sandbox: RunningSandbox,
                                            make_client: ClientFactory) -> None:
    with pytest.raises(PanelRejected):
        await make_client(sandbox, key="nope").balance()
    assert sandbox.panel.requests["balance"] == 1


async def test_a_json_error_with_a_4xx_status_is_a_rejection(make_client: ClientFactory,
                                                             serve_app) -> None:
    async def funds(_request: web.Request) -> web.Response:
        return web.json_response({"error": "Not enough funds"}, status=402)

    app = web.Application()
    app.router.add_post("/api/v2", funds)
    client = make_client(await serve_app(app) + "/api/v2")
    with pytest.raises(PanelRejected) as info:
        await client.add("1", get_order_type("Default"), ADD_VALUES)
    assert info.value.reason.value == "not_enough_funds"


async def test_redirects_are_not_followed_so_the_key_never_travels(
    make_client: ClientFactory, serve_app,
) -> None:
    received: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.json_response({"balance": "1", "currency": "USD"})

    other = web.Application()
    other.router.add_route("*", "/api/v2", elsewhere)
    other_url = (await serve_app(other)).replace("127.0.0.1", "localhost")

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{other_url}/api/v2")

    first = web.Application()
    first.router.add_route("*", "/api/v2", redirect)
    client = make_client(await serve_app(first) + "/api/v2", key="top-secret-key")
    with pytest.raises(PanelUnavailable) as info:
        await client.balance()
    assert "redirects" in info.value.message
    assert received == []


async def test_the_key_is_never_logged_or_shown(make_sandbox, make_client: ClientFactory,
                                               caplog: pytest.LogCaptureFixture) -> None:
    secret = "k3y-Very-Secret-0123456789"
    sandbox = await make_sandbox(key=secret)
    client = make_client(sandbox, key=secret)
    caplog.set_level(logging.DEBUG)
    sandbox.panel.inject("http500", action="balance")
    await client.balance()
    await client.services()
    with pytest.raises(PanelRejected) as info:
        await make_client(sandbox, key=secret + "-wrong").balance()
    assert caplog.records, "the client logs its requests at DEBUG"
    shown = [repr(client), str(info.value), repr(info.value)]
    shown += [record.getMessage() for record in caplog.records]
    assert not any(secret in text for text in shown)


# ------------------------------------------------------------ add after sending (issue 9)


@pytest.mark.parametrize(("status", "text"), [
    (301, ""), (302, "<a href='/login'>Found</a>"), (303, ""), (307, ""),
    (500, "<h1>500 Internal Server Error</h1>"), (502, "Bad Gateway"),
    (200, "<html><body>Welcome</body></html>"), (404, "<h1>Not Found</h1>"),
    (400, "<h1>Bad Request</h1>"), (200, '{"order": null}'), (200, '{"order": ' + "9" * 100 + "}"),
])
async def test_add_answered_oddly_after_processing_is_ambiguous(
    status: int, text: str, sandbox: RunningSandbox, client: PanelClient,
) -> None:
    """The sandbox created the order, then answered with a redirect or a page: the
    order exists, so anything but "ambiguous" would refund an order being delivered."""
    sandbox.panel.inject("rewrite", action="add", rewrite=lambda _body: (status, text))
    with pytest.raises(PanelAmbiguous, match="may exist"):
        await client.add("101", get_order_type("Default"), ADD_VALUES)
    assert len(sandbox.panel.orders) == 1 and sandbox.panel.requests["add"] == 1


@pytest.mark.parametrize(("status", "text"), [
    (401, "<h1>401 Authorization Required</h1>"), (403, "<h1>Forbidden</h1>"),
    (401, '{"message": "Unauthenticated."}'), (429, "<h1>Too Many Requests</h1>"),
])
async def test_add_refused_before_processing_is_unavailable(
    status: int, text: str, sandbox: RunningSandbox, client: PanelClient,
) -> None:
    sandbox.panel.inject("raw", action="add", status=status, body=text)
    with pytest.raises(PanelUnavailable):
        await client.add("101", get_order_type("Default"), ADD_VALUES)
    assert sandbox.panel.orders == {}


async def test_an_explicit_error_with_an_auth_status_is_a_rejection(
    sandbox: RunningSandbox, client: PanelClient,
) -> None:
    sandbox.panel.inject("raw", action="add", status=403, body='{"error": "Invalid API key"}')
    with pytest.raises(PanelRejected) as info:
        await client.add("101", get_order_type("Default"), ADD_VALUES)
    assert info.value.reason.value == "bad_key"


async def test_a_huge_retry_after_does_not_stop_the_client(
    sandbox: RunningSandbox, client: PanelClient,
) -> None:
    sandbox.panel.inject("raw", action="balance", status=429, body="{}",
                         headers={"Retry-After": "9" * 400})
    with pytest.raises(PanelUnavailable) as info:
        await client.balance()
    assert info.value.retry_after is not None and info.value.retry_after <= 3600


async def test_a_refill_is_not_retried_once_it_may_have_been_sent(
    sandbox: RunningSandbox, client: PanelClient,
) -> None:
    """A refill creates something on the panel, like add: a 502 after sending is
    ambiguous and the request is not sent again (a retry could ask twice)."""
    order_id = await _add(client)
    sandbox.panel.inject("http502", action="refill", times=5)
    with pytest.raises(PanelAmbiguous):
        await client.refill(order_id)
    assert sandbox.panel.requests["refill"] == 1
