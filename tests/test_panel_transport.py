"""The panel client's own HTTP/1.1 transport (bot/panel/transport.py), on the wire.

A loopback server that answers each request with bytes the test scripts: kept-alive
connections are reused, and a connection that cannot be trusted (closed by the
panel, told to close, holding bytes nobody asked for, idle too long, cut in the
middle of an answer) is never used again. Whatever bytes arrive, each action
ends in a result or one of the three panel failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.panel import (
    PanelAmbiguous,
    PanelClient,
    PanelRejected,
    PanelUnavailable,
    RetryPolicy,
)
from bot.panel import transport as panel_transport
from bot.panel.models import Balance
from bot.panel.order_types import get_order_type
from bot.panel.transport import PanelTransport

NO_RETRY = RetryPolicy(attempts=1, base_delay=0, max_delay=0, max_retry_after=0)
BALANCE = b'{"balance": "12.50", "currency": "USD"}'
AMOUNT = Decimal("12.50")


def answer(body: bytes = BALANCE, *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


@dataclass
class RawPanel:
    """Answers the n-th request with ``script(n)``: the bytes to send, and whether
    to close the connection after them."""

    script: Callable[[int], tuple[bytes, bool]]  # request number -> (bytes, close after)
    url: str = ""
    connections: int = 0
    requests: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                data, close = self.script(self.requests)
                writer.write(data)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


Script = Callable[[int], tuple[bytes, bool]]


@pytest.fixture
async def raw_panel() -> AsyncIterator[Callable[[Script], Awaitable[RawPanel]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> RawPanel:
        panel = RawPanel(script)
        server = await asyncio.start_server(panel.serve, "127.0.0.1", 0)
        servers.append(server)
        panel.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/v2"
        return panel

    yield start
    for server in servers:
        server.close()


async def _client(url: str, timeout: float = 2.0,
                  transport: PanelTransport | None = None) -> PanelClient:
    return PanelClient(url, "k3y-transport", name="raw", rate_limit=0, retry=NO_RETRY,
                       timeout=timeout, transport=transport)


async def test_a_kept_alive_connection_carries_every_request(raw_panel) -> None:
    panel = await raw_panel(lambda n: (answer(), False))
    async with await _client(panel.url) as client:
        for _ in range(5):
            assert (await client.balance()).amount == AMOUNT
    assert (panel.connections, panel.requests) == (1, 5)


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept(raw_panel) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\n{\"bal\r\n" + hex(len(BALANCE) - 5)[2:].encode() + b"\r\n" + BALANCE[5:]
               + b"\r\n0\r\n\r\n")
    panel = await raw_panel(lambda n: (chunked, False))
    async with await _client(panel.url) as client:
        assert (await client.balance()).amount == AMOUNT
        assert (await client.balance()).amount == AMOUNT
    assert panel.connections == 1


async def test_connection_close_is_honoured(raw_panel) -> None:
    panel = await raw_panel(lambda n: (answer(extra=b"Connection: close\r\n"), True))
    async with await _client(panel.url) as client:
        for _ in range(3):
            assert isinstance(await client.balance(), Balance)
    assert (panel.connections, panel.requests) == (3, 3)


async def test_bytes_nobody_asked_for_make_a_connection_unfit(raw_panel) -> None:
    # A second answer glued behind the first: the next request must not read it as its own.
    stale = answer(b'{"balance": "999", "currency": "USD"}')
    panel = await raw_panel(lambda n: (answer() + stale if n == 1 else answer(), False))
    async with await _client(panel.url) as client:
        assert (await client.balance()).amount == AMOUNT
        assert (await client.balance()).amount == AMOUNT
    assert panel.connections == 2


async def test_a_connection_the_panel_closed_is_not_reused(raw_panel) -> None:
    panel = await raw_panel(lambda n: (answer(), n == 1))  # closes after the first answer
    transport = PanelTransport(ssl.create_default_context(), max_idle=8)
    async with await _client(panel.url, transport=transport) as client:
        assert isinstance(await client.balance(), Balance)
        await panel.writers[0].wait_closed()
        # Turns of the event loop until the client has read the panel's close (nothing
        # signals it: an idle connection's close is only looked at when it is next taken).
        while transport._idle[0].wire.quiet:  # noqa: ASYNC110
            await asyncio.sleep(0)
        assert isinstance(await client.balance(), Balance)
    assert panel.connections == 2


async def test_an_idle_connection_older_than_the_keepalive_is_dropped(
        raw_panel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(panel_transport, "KEEPALIVE", 0.0)
    panel = await raw_panel(lambda n: (answer(), False))
    async with await _client(panel.url) as client:
        await client.balance()
        await client.balance()
    assert panel.connections == 2


async def test_an_answer_cut_short_is_ambiguous_for_an_order(raw_panel) -> None:
    cut = answer(b'{"order": 12345}')[:-4]
    panel = await raw_panel(lambda n: (cut, True))
    async with await _client(panel.url) as client:
        with pytest.raises(PanelAmbiguous):
            await client.add("1", get_order_type("default"),
                             {"link": "https://instagram.com/p/x", "quantity": "100"})
        with pytest.raises(PanelUnavailable):
            await client.balance()


async def test_no_answer_at_all_is_ambiguous_for_an_order(raw_panel) -> None:
    panel = await raw_panel(lambda n: (b"", True))
    async with await _client(panel.url) as client:
        with pytest.raises(PanelAmbiguous):
            await client.add("1", get_order_type("default"),
                             {"link": "https://instagram.com/p/x", "quantity": "100"})


async def test_an_endless_head_is_refused_without_reading_it_all(raw_panel) -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 1_000_000 + b"\r\n\r\n"
    panel = await raw_panel(lambda n: (endless, True))
    async with await _client(panel.url) as client:
        with pytest.raises(PanelUnavailable):
            await client.balance()


async def test_a_large_answer_arrives_whole(raw_panel) -> None:
    # Larger than the transport's read buffer: reading pauses and resumes on the way.
    padding = b" " * (3 * panel_transport.HIGH_WATER)
    panel = await raw_panel(lambda n: (answer(padding + BALANCE), False))
    async with await _client(panel.url) as client:
        assert (await client.balance()).amount == AMOUNT
        assert (await client.balance()).amount == AMOUNT
    assert panel.connections == 1


async def test_closing_the_client_closes_its_connections(raw_panel) -> None:
    panel = await raw_panel(lambda n: (answer(), False))
    client = await _client(panel.url)
    await client.balance()
    await client.aclose()
    await asyncio.wait_for(panel.writers[0].wait_closed(), 5)


RAW_ANSWERS = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda status, headers, body: b"HTTP/1.1 " + status + b"\r\n" + headers
              + b"\r\n\r\n" + body,
              st.sampled_from([b"200 OK", b"500 Oops", b"299", b"999 X", b"20", b"", b"200"]),
              st.sampled_from([b"", b"Content-Length: 5", b"Content-Length: -1",
                               b"Content-Length: 99999", b"Transfer-Encoding: chunked",
                               b"Transfer-Encoding: gzip", b"Content-Encoding: gzip",
                               b"Content-Length: 2\r\nContent-Length: 3", b"X: \x00\xff"]),
              st.binary(max_size=200)),
)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=RAW_ANSWERS, close=st.booleans())
async def test_any_bytes_end_in_a_result_or_a_panel_failure(raw_panel, raw: bytes,
                                                             close: bool) -> None:
    panel = await raw_panel(lambda n: (raw, close))
    async with await _client(panel.url, timeout=0.05) as client:
        with contextlib.suppress(PanelUnavailable, PanelRejected):
            assert isinstance(await client.balance(), Balance)
        with contextlib.suppress(PanelAmbiguous, PanelUnavailable, PanelRejected):
            await client.add("1", get_order_type("default"),
                             {"link": "https://instagram.com/p/x", "quantity": "100"})


async def test_a_proxy_from_the_environment_is_used(raw_panel,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A panel the environment proxies (HTTP(S)_PROXY, ALL_PROXY) is reached through
    httpx's own transport with that proxy; NO_PROXY's hosts are not."""
    proxy = await raw_panel(lambda n: (answer(), False))
    monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/api/v2"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with await _client("http://panel.invalid/api/v2") as client:
        assert (await client.balance()).amount == AMOUNT
    assert proxy.requests == 1
    panel = await raw_panel(lambda n: (answer(), False))
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with await _client(panel.url) as client:
        assert (await client.balance()).amount == AMOUNT
    assert (proxy.requests, panel.requests) == (1, 1)
