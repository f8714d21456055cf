"""Async API v2 client for one SMM panel, on httpx.

Every request is a form POST with ``key`` and ``action``. Failures are sorted into
``PanelRejected`` / ``PanelUnavailable`` / ``PanelAmbiguous`` (see ``errors``).
Read-only actions are retried with exponential backoff, honouring ``Retry-After``;
``add`` is retried only when the connection was never made, because the API has
no idempotency key and a retried ``add`` can place a second order.

The contract: every action returns typed results or raises exactly one of the
three ``PanelError`` kinds, whatever the panel sends. An answer that cannot be
read is "unavailable" for a read-only action and "ambiguous" for ``add``; a
body larger than ``MAX_BODY_BYTES`` is not read at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import functools
import heapq
import itertools
import logging
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from bot.observability import metrics, redaction
from bot.panel import parsing
from bot.panel.errors import (
    PanelAmbiguous,
    PanelRejected,
    PanelUnavailable,
    RejectReason,
    classify,
)
from bot.panel.models import (
    Balance,
    CancelAccepted,
    ItemError,
    OrderStatus,
    RefillStatus,
    ServiceList,
)
from bot.panel.order_types import OrderType
from bot.panel.transport import PanelTransport

log = logging.getLogger(__name__)

MAX_IDS_PER_REQUEST = 100
# Some WAFs block non-browser agents (SPEC §1).
USER_AGENT = "Mozilla/5.0 (compatible; smm-storefront/0.1; +https://github.com/)"
# httpx's client sent these (Accept-Encoding too: a service list compresses tenfold).
HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json",
           "Accept-Encoding": "gzip, deflate", "Content-Type": "application/x-www-form-urlencoded"}
# The largest answer the client reads. A 10,000-service list with descriptions is
# about 5 MB; 32 MB leaves room for the biggest panels while bounding memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
# Statuses that provably come before the panel's code runs: auth at the web server
# or gateway, rate limiting. With no error in the body they mean "nothing happened".
REFUSED_BEFORE_PROCESSING = frozenset({401, 403, 407, 429})
MAX_RETRY_AFTER_HEADER = 3600.0  # a larger header value is read as an hour

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4  # total tries of a read-only action
    base_delay: float = 0.5  # seconds; doubles each try
    max_delay: float = 8.0
    max_retry_after: float = 30.0  # a longer Retry-After is reported, not slept through


# A token bucket this deep lets the start-up's two calls (balance, services) go
# together, and keeps one request in reserve for a customer while the tracker polls.
BURST = 2


class RateLimiter:
    """At most ``rate`` requests a second on average; ``rate <= 0`` means no limit.

    A token bucket of ``BURST`` requests, refilled at ``rate``. Foreground requests
    (``add``, ``cancel``, ``refill``: someone is waiting) take any token and are
    granted before every queued background one. Background requests (the
    tracker's status batches) take a token only while another stays in the bucket,
    so a Confirm in the middle of a 100-batch status cycle waits for no batch: the
    cycle goes on at ``rate`` and the order goes out with the request in flight.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._tokens = float(BURST)
        self._counted_at = time.monotonic()  # when ``_tokens`` was true (may be ahead: ``defer``)
        # (background?, arrival, waiter): foreground first, then first come first served.
        self._queue: list[tuple[bool, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._arrived = asyncio.Event()
        self._granting: asyncio.Task[None] | None = None

    def _available(self, now: float) -> float:
        return min(float(BURST), self._tokens + (now - self._counted_at) / self._interval)

    def _take(self, now: float) -> None:
        self._tokens = self._available(now) - 1
        self._counted_at = now

    @staticmethod
    def _needs(background: bool) -> float:
        return 2.0 if background else 1.0

    async def wait(self, *, background: bool = False) -> None:
        """Until this request may be sent."""
        if not self._interval:
            return
        now = time.monotonic()
        ahead = bool(self._queue) and self._queue[0][0] <= background
        if not ahead and self._available(now) >= self._needs(background):
            self._take(now)
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (background, next(self._arrivals), waiter))
        self._arrived.set()
        if self._granting is None or self._granting.done():
            self._granting = asyncio.create_task(self._grant())
        await waiter

    async def _grant(self) -> None:
        """Hand out tokens to the queue, best first, as the bucket refills."""
        while self._queue:
            background, _, waiter = self._queue[0]
            if waiter.done():  # its request was cancelled while it waited
                heapq.heappop(self._queue)
                continue
            now = time.monotonic()
            short = self._needs(background) - self._available(now)
            if short <= 0:
                heapq.heappop(self._queue)
                self._take(now)
                waiter.set_result(None)
                continue
            # Until the head's token, or sooner if a more urgent request arrives.
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(short * self._interval):
                    await self._arrived.wait()

    def defer(self, seconds: float) -> None:
        """Push every caller back after the panel asked us to slow down."""
        if not self._interval:
            return
        ready = time.monotonic() + seconds
        if self._available(ready) < 1:  # already held back longer than that
            return
        self._tokens = 0.0  # so the bucket holds its first token again at ``ready``
        self._counted_at = ready - self._interval


def chunked(ids: Sequence[str], size: int = MAX_IDS_PER_REQUEST) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


MAX_CONNECTIONS = 8


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (the system's CAs, as httpx makes it) for every panel client:
    making one reads the CA bundle, ~25-50 ms per client otherwise."""
    return httpx.create_ssl_context()


class PanelClient:
    """One configured panel. The key lives in a ``SecretStr`` and never reaches a log."""

    def __init__(
        self,
        url: str,
        key: SecretStr | str,
        *,
        name: str = "panel",
        rate_limit: float = 1.0,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        redaction.register(self._key)  # a panel echoing its key must not carry it anywhere
        self._retry = retry or RetryPolicy()
        self._limiter = RateLimiter(rate_limit)
        # Batches in flight at once, apart for the tracker's polling and for the rest,
        # so a cancel never queues behind a status cycle's batches.
        self._in_flight = asyncio.Semaphore(max(1, max_in_flight))
        self._background_in_flight = asyncio.Semaphore(max(1, max_in_flight))
        # A few warm connections that every request waits its turn for: a burst of
        # orders opening (and then dropping) a connection each was slower than
        # queueing, and hard on the panel. The turn is taken here, not in httpx's
        # pool, whose bookkeeping rescans every queued request and connection on
        # each step (~0.5 ms CPU a request under a burst of 200 Confirms). Waiting
        # longer than the connect timeout is a never_sent failure.
        self._connections = asyncio.Semaphore(MAX_CONNECTIONS)
        self._queue_timeout = min(timeout, 10.0)
        # httpx's timeout bounds each read, not the whole answer: a panel trickling a
        # byte at a time would hold a request (and a connection) for ever.
        self._deadline = timeout + min(timeout, 10.0)  # connecting, then the answer
        self._endpoint = httpx.URL(url)
        # Requests go straight to the transport: httpx's client around it (its cookie
        # jar, auth and redirect steps, request building) cost ~0.12 ms of CPU per
        # request (bench/README.md) for nothing an API keyed by its form needs. Never
        # following a redirect is part of it: the key is in the body, never resent elsewhere.
        self._timeouts = httpx.Timeout(timeout, connect=min(timeout, 10.0)).as_dict()
        self._transport = transport or _transport_for(url)

    def __repr__(self) -> str:
        return f"PanelClient(name={self.name!r}, url={self.url!r})"

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> PanelClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ actions

    async def services(self) -> ServiceList:
        """The panel's services (a ``ServiceList``: ``skipped`` counts unusable items)."""
        return self._read("services", parsing.parse_services, await self._call("services", {}))

    async def balance(self) -> Balance:
        return self._read("balance", parsing.parse_balance, await self._call("balance", {}))

    async def add(self, service_id: str, order_type: OrderType, values: Mapping[str, str]) -> str:
        """Place an order; returns the panel's order id.

        Raises ``PanelAmbiguous`` when the request may have been processed.
        """
        params = {"service": service_id, **order_type.add_params(values)}
        body = await self._call("add", params, read_only=False)
        return self._read("add", parsing.parse_add, body, read_only=False)

    async def status(self, order_id: str) -> OrderStatus:
        body = await self._call("status", {"order": order_id})
        return self._unwrap(self._read("status", parsing.parse_order_status, body), "status")

    async def statuses(self, order_ids: Iterable[str]) -> dict[str, OrderStatus | ItemError]:
        """Statuses of any number of orders, 100 ids a request, behind every other request
        (the tracker's polling: see ``RateLimiter``)."""
        return await self._multi("status", "orders", order_ids, parsing.parse_multi_status,
                                 background=True)

    async def refill(self, order_id: str) -> str:
        """Ask for a refill; returns the refill id.

        Like ``add`` it creates something on the panel, so once the request may have
        been sent it is not retried (an unclear answer is ``PanelAmbiguous``).
        """
        body = await self._call("refill", {"order": order_id}, read_only=False)
        return self._unwrap(self._read("refill", parsing.parse_refill, body, read_only=False),
                            "refill")

    async def refills(self, order_ids: Iterable[str]) -> dict[str, str | ItemError]:
        return await self._multi("refill", "orders", order_ids, parsing.parse_multi_refill)

    async def refill_status(self, refill_id: str) -> RefillStatus:
        """One refill's state: the tracker's polling, so in the background."""
        body = await self._call("refill_status", {"refill": refill_id}, background=True)
        result = self._read("refill_status", parsing.parse_refill_status, body)
        return self._unwrap(result, "refill_status")

    async def refill_statuses(self, refill_ids: Iterable[str]) -> dict[str, RefillStatus | ItemError]:
        return await self._multi("refill_status", "refills", refill_ids,
                                 parsing.parse_multi_refill_status, background=True)

    async def cancel(self, order_ids: Iterable[str]) -> dict[str, CancelAccepted | ItemError]:
        """Request cancellation; acceptance is not a refund: poll ``status`` for that."""
        return await self._multi("cancel", "orders", order_ids, parsing.parse_cancel)

    # ------------------------------------------------------------ plumbing

    def _unwrap(self, result: T | ItemError, action: str) -> T:
        if isinstance(result, ItemError):
            if result.reason is RejectReason.UNREADABLE:  # the panel said nothing usable
                raise PanelUnavailable(result.message, panel=self.name, action=action)
            raise PanelRejected(result.message, reason=result.reason, panel=self.name, action=action)
        return result

    def _read(self, action: str, parse: Callable[[Any], T], body: Any, *,
              read_only: bool = True) -> T:
        """``parse(body)``, with any failure turned into one of the three kinds.

        The parsers raise only ``MalformedResponse`` by design; anything else from
        them is a bug that hostile input found, and it must still not escape as a
        non-``PanelError`` (the order card and the tracker branch on the kinds).
        """
        try:
            return parse(body)
        except Exception as exc:
            if isinstance(exc, parsing.MalformedResponse):
                why = str(exc)
            else:
                log.exception("panel %s %s: the parser failed on the answer", self.name, action)
                why = f"the answer could not be read ({type(exc).__name__})"
            if read_only:
                raise PanelUnavailable(why, panel=self.name, action=action) from None
            raise PanelAmbiguous(f"{why}; the order may exist", panel=self.name,
                                 action=action) from None

    async def _multi(
        self,
        action: str,
        field: str,
        ids: Iterable[str],
        parse: Callable[[Any], dict[str, T]],
        *,
        background: bool = False,
    ) -> dict[str, T]:
        unique = list(dict.fromkeys(str(i) for i in ids))
        if not unique:
            return {}
        in_flight = self._background_in_flight if background else self._in_flight

        async def one(chunk: list[str]) -> dict[str, T]:
            async with in_flight:
                body = await self._call(action, {field: ",".join(chunk)}, background=background)
                return self._read(action, parse, body)

        results: dict[str, T] = {}
        for part in await asyncio.gather(*(one(chunk) for chunk in chunked(unique))):
            results.update(part)
        return results

    async def _call(self, action: str, params: Mapping[str, str], *, read_only: bool = True,
                    background: bool = False) -> Any:
        """POST one action and return its decoded body, or raise a ``PanelError``.

        ``background`` requests wait behind every other in the rate limiter."""
        policy = self._retry
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(action, params, read_only=read_only,
                                           background=background)
            except PanelUnavailable as exc:
                retryable = read_only or exc.never_sent
                if not retryable or attempt >= policy.attempts:
                    raise
                if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
                    raise
                backoff = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
                delay = max(backoff, exc.retry_after or 0.0)
                log.info("panel %s %s unavailable (%s); retry %d in %.1fs",
                         self.name, action, exc.message, attempt, delay)
                await asyncio.sleep(delay)

    async def _attempt(self, action: str, params: Mapping[str, str], *, read_only: bool,
                       background: bool) -> Any:
        form = urlencode({"key": self._key.get_secret_value(), "action": action, **params})
        await self._limiter.wait(background=background)
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._connections.acquire()
        except TimeoutError:
            raise PanelUnavailable("every connection to the panel is busy", never_sent=True,
                                   panel=self.name, action=action) from None
        # Counted and timed from here: the limiter's and the queue's waits are ours, not the panel's.
        with metrics.panel_request(self.name, action, _result_of):
            return await self._exchange(action, form, read_only=read_only)

    async def _exchange(self, action: str, form: str, *, read_only: bool) -> Any:
        """One request on the connection turn ``_attempt`` took (released here)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._deadline):
                request = httpx.Request("POST", self._endpoint, headers=HEADERS,
                                        content=form.encode(),
                                        extensions={"timeout": self._timeouts})
                response = await self._transport.handle_async_request(request)
                response.request = request
                try:
                    content = await self._read_body(action, response, read_only=read_only)
                finally:
                    await response.aclose()
        except TimeoutError:
            why = f"no complete answer within {self._deadline:g} s"
            if not read_only:
                raise PanelAmbiguous(f"{why} after sending; the order may exist",
                                     panel=self.name, action=action) from None
            raise PanelUnavailable(why, panel=self.name, action=action) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The connection was never made, so the panel cannot have seen the request.
            raise PanelUnavailable(f"cannot connect to {_host_port(self._endpoint)}"
                                   f" ({_connect_cause(exc)})", never_sent=True,
                                   panel=self.name, action=action) from None
        except httpx.HTTPError as exc:
            if not read_only:
                raise PanelAmbiguous(
                    f"no answer after sending ({type(exc).__name__}); the order may exist",
                    panel=self.name, action=action,
                ) from None
            raise PanelUnavailable(f"no answer: {type(exc).__name__}",
                                   panel=self.name, action=action) from None
        finally:
            self._connections.release()
        log.debug("panel %s %s -> HTTP %d in %.0f ms", self.name, action,
                  response.status_code, (time.monotonic() - started) * 1000)
        return self._interpret(action, response, _text_of(response, content),
                               read_only=read_only)

    async def _read_body(self, action: str, response: httpx.Response, *,
                         read_only: bool) -> bytes:
        """The body, up to ``MAX_BODY_BYTES``; a bigger one is not read."""
        declared = response.headers.get("content-length", "")
        length = int(declared) if declared.isdigit() and len(declared) < 20 else None
        chunks: list[bytes] = []
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if length is not None and not encoded:
            if length <= MAX_BODY_BYTES:
                # HTTP/1.1 framing stops the body at its declared length: one read.
                return await response.aread()
            too_big = True
        else:  # chunked, or compressed (gzip unpacks far past its length): counted as read
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    break
                chunks.append(chunk)
            too_big = size > MAX_BODY_BYTES
        if too_big:
            why = f"the answer is larger than {MAX_BODY_BYTES // 2**20} MB"
            if read_only:
                raise PanelUnavailable(why, panel=self.name, action=action)
            raise PanelAmbiguous(f"{why}; the order may exist", panel=self.name, action=action)
        return b"".join(chunks)

    def _interpret(self, action: str, response: httpx.Response, text: str, *,
                   read_only: bool) -> Any:
        """The decoded body, or the failure kind its HTTP status and content mean.

        For ``add`` the request was sent, so only an explicit error in the body or
        a refusal that provably came before processing (401/403/407 auth, 429, a
        WAF challenge page) says nothing happened. A redirect, a 5xx or an
        unreadable page after sending is ambiguous: the panel may have created the
        order (PHP panels redirect after handling a POST).
        """
        code = response.status_code
        if not read_only and not 200 <= code < 300:
            created = _naming_what_it_created(action, text)
            if created is not None:
                # The panel says it created it (an order id): a proxy or a WAF can
                # rewrite a status, not invent an id. Refunding it would be giving
                # away an order the panel delivers.
                return created
        refused_early = code in REFUSED_BEFORE_PROCESSING
        if code == 429:
            retry_after = _retry_after(response.headers)
            if retry_after:
                self._limiter.defer(retry_after)
            raise PanelUnavailable("rate limited (HTTP 429)", retry_after=retry_after,
                                   panel=self.name, action=action)
        if 300 <= code < 400:
            where = parsing.clip(response.headers.get("location", "?"), 200)
            if read_only:
                raise PanelUnavailable(
                    f"the panel redirects to {where}; use that address as its URL",
                    panel=self.name, action=action)
            raise PanelAmbiguous(f"the panel redirected (HTTP {code}) to {where} after the"
                                 " order was sent; the order may exist",
                                 panel=self.name, action=action)
        try:
            body = parsing.decode_body(text)
        except parsing.MalformedResponse as exc:
            if read_only or exc.challenge or refused_early:
                raise PanelUnavailable(f"{exc} (HTTP {code})", retry_after=_retry_after(
                    response.headers), panel=self.name, action=action) from None
            raise PanelAmbiguous(f"{exc} (HTTP {code}); the order may exist",
                                 panel=self.name, action=action) from None
        message = parsing.top_level_error(body)
        if message is not None:
            reason = classify(message)
            if code >= 500 and reason is RejectReason.OTHER:
                if read_only:
                    raise PanelUnavailable(f"server error (HTTP {code}): {message}",
                                           panel=self.name, action=action)
                raise PanelAmbiguous(f"server error (HTTP {code}): {message}",
                                     panel=self.name, action=action)
            raise PanelRejected(message, reason=reason, panel=self.name, action=action)
        if code >= 500:  # (an add answered with its order id was taken above)
            if read_only:
                raise PanelUnavailable(f"server error (HTTP {code})", panel=self.name, action=action)
            raise PanelAmbiguous(f"server error (HTTP {code}); the order may exist",
                                 panel=self.name, action=action)
        elif refused_early:
            raise PanelUnavailable(f"the panel refused the request (HTTP {code})",
                                   panel=self.name, action=action)
        return body


_CREATED_FIELD = {"add": "order", "refill": "refill"}


def _naming_what_it_created(action: str, text: str) -> Any | None:
    """The decoded body if it names what ``action`` created (``{"order": 123}``)."""
    field = _CREATED_FIELD.get(action)
    if field is None:
        return None
    try:
        body = parsing.decode_body(text)
    except parsing.MalformedResponse:
        return None
    if isinstance(body, dict) and body.get(field) not in (None, "") \
            and not isinstance(body[field], dict | list) and "error" not in body:
        return body
    return None


def _transport_for(url: str) -> httpx.AsyncBaseTransport:
    """bot/panel/transport.py, or httpx's own transport through the proxy the
    environment names for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    unless ``NO_PROXY`` covers its host)."""
    parsed = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parsed.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parsed.host):
        return PanelTransport(_tls(), max_idle=MAX_CONNECTIONS)
    return httpx.AsyncHTTPTransport(
        verify=_tls(), proxy=proxy,
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS,
                            max_keepalive_connections=MAX_CONNECTIONS))


def _host_port(url: httpx.URL) -> str:
    """``panel.example:443``: the address a connection was tried to (brackets for IPv6)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{host}:{port}"


# The errno words a reseller can act on; anything else is shown as the OS says it.
_CONNECT_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _connect_cause(exc: httpx.HTTPError) -> str:
    """Why a connection failed, in a few words (``connection refused``, ``unknown host``).

    httpx wraps the cause two or three levels deep (``All connection attempts
    failed`` around the ``ConnectionRefusedError`` of each address): the innermost
    error is the one that says what happened.
    """
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection"
    innermost: BaseException = exc
    seen: set[int] = set()
    while id(innermost) not in seen:
        seen.add(id(innermost))
        nested = innermost.__cause__ or innermost.__context__
        if nested is None:
            break
        innermost = nested
    if isinstance(innermost, socket.gaierror):
        return "unknown host" if innermost.errno == socket.EAI_NONAME else "host name lookup failed"
    if isinstance(innermost, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {innermost.verify_message}"
    if isinstance(innermost, ssl.SSLError):
        return f"TLS handshake failed: {innermost.reason or innermost}"
    if isinstance(innermost, TimeoutError):
        return "timed out"
    if isinstance(innermost, OSError) and innermost.errno in _CONNECT_ERRNO:
        return _CONNECT_ERRNO[innermost.errno]
    why = getattr(innermost, "strerror", None) or str(innermost) or type(innermost).__name__
    return parsing.clip(str(why), 120)


def _text_of(response: httpx.Response, content: bytes) -> str:
    try:
        return content.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python doesn't know
        return content.decode("utf-8", errors="replace")


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or a date) or ``X-RateLimit-Reset``."""
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return _bounded_wait(float(value[:12]))
        try:
            when = email.utils.parsedate_to_datetime(value)
            return _bounded_wait(when.timestamp() - time.time())
        except (TypeError, ValueError, OverflowError):
            pass
    reset = headers.get("x-ratelimit-reset", "").strip()
    if reset.isdigit():
        number = float(reset[:12])
        # Panels send either seconds-until-reset or an epoch timestamp.
        return _bounded_wait(number - time.time() if number > 1_000_000_000 else number)
    return None


def _bounded_wait(seconds: float) -> float:
    # The limiter defers every request by this: a header of 10^300 seconds must
    # not stop the panel's client for good.
    return min(MAX_RETRY_AFTER_HEADER, max(0.0, seconds))


def _result_of(exc_type: type[BaseException] | None) -> str:
    """A request's result as the metrics count it: the ``PanelError`` kind it raised."""
    if exc_type is None:
        return "ok"
    if issubclass(exc_type, PanelRejected):
        return "rejected"
    if issubclass(exc_type, PanelUnavailable):
        return "unavailable"
    if issubclass(exc_type, PanelAmbiguous):
        return "ambiguous"
    return "error"
