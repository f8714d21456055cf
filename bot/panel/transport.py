"""HTTP/1.1 to a panel on plain asyncio, under httpx: the panel client's transport.

httpx's default transport (httpcore on anyio) cost ~0.9 ms of CPU per panel
request in a burst of orders, most of it bookkeeping: on every request its pool
asks each idle connection whether the peer closed it, through anyio's socket
attributes (``getpeername`` and a ``poll`` per connection, twice a request),
and every read and write passes anyio's cancel scopes. This transport keeps
httpx's request and response (URLs, headers, timeouts, decompression, the
errors the panel client sorts; the panel client hands it each request without
httpx's client around it) and does the wire itself: an ``asyncio.Protocol`` per connection,
h11 for the HTTP/1.1 framing (the same parser httpcore uses, with its bounded
header size), and a list of idle connections whose check is a few attribute
reads. ``bench/conversation.py`` and bench/README.md have the figures.

What it does, and what it leaves to httpx or to the panel client:

- One request at a time per connection; connections idle longer than
  ``KEEPALIVE`` seconds, closed by the panel, or holding bytes nobody asked for
  are dropped, never reused. The number of connections is the panel client's
  to bound (it takes a turn before each request).
- ``connect``, ``read`` and ``write`` timeouts from httpx's ``Timeout``; the
  whole answer's deadline is the panel client's.
- Errors are httpx's (``ConnectError`` with the OS error as its cause,
  ``ConnectTimeout``, ``ReadTimeout``, ``ReadError``, ``WriteError``,
  ``RemoteProtocolError``), so the panel client's sorting into "never sent",
  "unavailable" and "ambiguous" is unchanged.
- A panel the environment proxies (``HTTPS_PROXY``...) is reached through
  httpx's own transport with that proxy instead (bot/panel/client.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator

import h11
import httpx

# Idle connections older than this are closed rather than reused: below the 5 s
# that Apache and many proxies keep an idle connection open, so a request is not
# written into a connection the panel is closing at that moment.
KEEPALIVE = 4.0
# Received bytes buffered before the socket stops being read (resumed as they are used).
HIGH_WATER = 256 * 1024


class _Wire(asyncio.Protocol):
    """One connection's bytes: what arrived, and whether the peer has gone."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received: list[bytes] = []
        self.buffered = 0
        self.at_eof = False
        self.lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.at_eof = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.at_eof = True
        self.lost = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """The bytes received so far, waiting for some; ``b""`` once the peer closed."""
        while not self.received:
            if self.at_eof:
                if self.lost is not None:
                    raise self.lost
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = b"".join(self.received) if len(self.received) > 1 else self.received[0]
        self.received.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def quiet(self) -> bool:
        """Open, and nothing received since the last answer ended."""
        return not self.received and not self.at_eof


class _Connection:
    __slots__ = ("http", "idle_since", "origin", "wire")

    def __init__(self, origin: tuple[str, str, int], wire: _Wire) -> None:
        self.origin = origin
        self.wire = wire
        self.http = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        if self.wire.transport is not None:
            self.wire.transport.abort()

    async def next_event(self, timeout: float | None) -> object:
        """The next piece of the answer (an h11 event), reading as much as it needs."""
        try:
            while True:
                event = self.http.next_event()
                if event is not h11.NEED_DATA:
                    return event
                try:
                    async with asyncio.timeout(timeout):
                        data = await self.wire.read()
                except TimeoutError:
                    raise httpx.ReadTimeout("the panel sent nothing in time") from None
                except OSError as exc:
                    raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
                if not data and self.http.their_state is h11.SEND_RESPONSE:
                    raise httpx.RemoteProtocolError(
                        "the panel closed the connection without answering")
                self.http.receive_data(data)
        except h11.RemoteProtocolError as exc:  # a malformed or oversized head, a short body
            raise httpx.RemoteProtocolError(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; its connection goes back for reuse when read to the end."""

    def __init__(self, pool: PanelTransport, connection: _Connection,
                 timeout: float | None) -> None:
        self._pool, self._connection, self._timeout = pool, connection, timeout
        self._complete = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._connection.next_event(self._timeout)
            if type(event) is h11.Data:
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                self._complete = True
                return
            else:
                raise httpx.RemoteProtocolError("the answer ended early")

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._connection, complete=self._complete)


class PanelTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections to the panel (see the module's docstring)."""

    def __init__(self, tls: ssl.SSLContext, *, max_idle: int) -> None:
        self._tls = tls
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        connection = self._reuse(_origin(url)) or await self._connect(url, timeouts.get("connect"))
        http = connection.http
        try:
            try:
                data = http.send(h11.Request(method=request.method, target=url.raw_path,
                                             headers=request.headers.raw))
                data += http.send(h11.Data(data=request.content)) + http.send(h11.EndOfMessage())
            except h11.LocalProtocolError as exc:
                raise httpx.LocalProtocolError(str(exc)) from exc
            assert connection.wire.transport is not None
            if connection.wire.transport.is_closing():
                raise httpx.WriteError("the connection closed before the request was written")
            # A form of a few kilobytes: it fits the socket's buffer, no waiting to write.
            connection.wire.transport.write(data)
            while True:
                event = await connection.next_event(timeouts.get("read"))
                if type(event) is h11.Response:
                    break
                if type(event) is not h11.InformationalResponse:
                    raise httpx.RemoteProtocolError("the panel answered out of turn")
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            event.status_code, headers=event.headers.raw_items(),
            stream=_Body(self, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(event.reason)})

    def _reuse(self, origin: tuple[str, str, int]) -> _Connection | None:
        """The most recently used idle connection still fit to carry a request."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if (connection.origin == origin and connection.wire.quiet
                    and now - connection.idle_since < KEEPALIVE):
                return connection
            self._discard(connection)
        return None

    async def _connect(self, url: httpx.URL, timeout: float | None) -> _Connection:
        origin = _origin(url)
        scheme, host, port = origin
        tls = scheme == "https"
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                sock = await _connected_socket(host, port)
                try:
                    _, wire = await loop.create_connection(
                        _Wire, sock=sock, ssl=self._tls if tls else None,
                        server_hostname=host if tls else None)
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        connection = _Connection(origin, wire)
        self._open.add(connection)
        return connection

    def release(self, connection: _Connection, *, complete: bool) -> None:
        """Back to the idle list after a complete answer both sides may follow, with
        nothing received behind it (else the next request would read those bytes as
        its answer); else closed."""
        http = connection.http
        if (complete and http.our_state is h11.DONE and http.their_state is h11.DONE
                and not http.trailing_data[0] and connection.wire.quiet
                and len(self._idle) < self._max_idle):
            http.start_next_cycle()
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


async def _connected_socket(host: str, port: int) -> socket.socket:
    """A TCP socket connected to the first of the host's addresses that answers.

    Resolved and tried here rather than by ``loop.create_connection`` so that a
    failure keeps the OS error of the first address (``connection refused``),
    where asyncio folds several into one ``Multiple exceptions`` string.
    """
    loop = asyncio.get_running_loop()
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    first_error: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            first_error = first_error or exc
        except BaseException:
            sock.close()
            raise
    raise first_error or OSError(f"no address for {host}")
