"""Prometheus metrics: what the bot did, counted where it happens, served by ``render``.

Every metric lives in this module's own ``REGISTRY``, not prometheus_client's
global one: the tests build several bots in one process, and a second
registration of a name in the global registry is an error. The metrics are
module-level, so every bot in a process adds to the same series (one bot per
process in production).

Label values are bounded: each comes from a fixed set (the panel client's
actions, or the set of values the caller names: an enum of the domain) and
anything else is counted as ``other``, so a panel or a user sending odd data can
never create a new series. No user id and no free text is ever a label. This
module imports nothing of the bot's: the domain calls it with plain strings.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Iterable
from enum import Enum
from types import TracebackType
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

OTHER = "other"

REGISTRY = CollectorRegistry(auto_describe=True)
# Memory, CPU and open files of the process: the first things asked of a slow bot.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

UPDATE_OUTCOMES = ("handled", "unhandled", "error")
UPDATES = Counter("storefront_updates", "Telegram updates processed, by type and outcome",
                  ["type", "outcome"], registry=REGISTRY)
UPDATE_SECONDS = Histogram("storefront_update_seconds",
                           "Time to process one Telegram update (all middlewares and the handler)",
                           ["type"], registry=REGISTRY)

ORDERS = Counter("storefront_orders", "Order placements, by outcome (bot/shop/orders/service.py"
                 " Outcome)", ["outcome"], registry=REGISTRY)

# Routing across panels (bot/shop/routing/failover.py).
ORDERS_BY_PANEL = Counter("storefront_orders_by_panel", "Orders placed, by the panel that took"
                          " them", ["panel"], registry=REGISTRY)
FAILOVERS = Counter("storefront_failovers", "Orders moved on to the next panel, by why the panel"
                    " tried certainly did not take them", ["reason"], registry=REGISTRY)
MARGIN_SKIPS = Counter("storefront_margin_skips", "Panels passed over for an order because their"
                       " cost would leave less than MIN_MARGIN_PERCENT", registry=REGISTRY)

PANEL_ACTIONS = ("services", "balance", "add", "status", "refill", "refill_status", "cancel")
PANEL_RESULTS = ("ok", "rejected", "unavailable", "ambiguous", "error")
PANEL_REQUESTS = Counter("storefront_panel_requests",
                         "HTTP requests to SMM panels (each retry is one), by panel, action and"
                         " result", ["panel", "action", "result"], registry=REGISTRY)
# A panel answers in tens of milliseconds to tens of seconds (the client's deadline is 40 s).
PANEL_REQUEST_SECONDS = Histogram(
    "storefront_panel_request_seconds", "Panel request time, from sending to the interpreted answer",
    ["panel", "action"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0))
# More panels than this in one process is a misconfiguration (or a test run): the rest
# share one series instead of growing the registry.
MAX_PANELS = 32
_panels: set[str] = set()

TRACKER_CYCLE_SECONDS = Histogram(
    "storefront_tracker_cycle_seconds", "One tracking cycle of one panel (statuses and refills)",
    ["panel"], registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))

SERVICES_AT_LOSS = Gauge("storefront_services_hidden_at_loss",
                         "Services hidden because they would sell below their cost"
                         " (bot/shop/routing/changes.py)", registry=REGISTRY)

OUTBOX_BACKLOG = Gauge("storefront_outbox_backlog", "Outbox messages waiting to be sent",
                       registry=REGISTRY)
OUTBOX_RESULTS = ("sent", "retry", "gone", "failed")
OUTBOX_SENDS = Counter("storefront_outbox_sends",
                       "Outbox send attempts, by result as the notifier classifies them",
                       ["result"], registry=REGISTRY)
API_ACTIONS = ("services", "add", "status", "refill", "refill_status", "cancel", "balance")
API_RESULTS = ("ok", "error", "bad_key", "rate_limited", "malformed")
API_REQUESTS = Counter("storefront_api_requests", "Wholesale API requests, by action and result"
                       " (bot/shop/wholesale/api.py)", ["action", "result"], registry=REGISTRY)
TELEGRAM_429 = Counter("storefront_telegram_429", "Telegram's 429 Too Many Requests answers to"
                       " the notifier's sends", registry=REGISTRY)

STARS_TOPUPS = Counter("storefront_stars_topups",
                       "Successful Stars payments, by what they did (bot/shop/money/topups.py Credit)",
                       ["result"], registry=REGISTRY)
STARS_REFUNDS = Counter("storefront_stars_refunds",
                        "Stars refunds asked for, by outcome (bot/shop/money/topups.py Refund)",
                        ["outcome"], registry=REGISTRY)

# The series whose label values are all known start at zero, so a rate() over them
# works from the first scrape rather than from the first event.
for _result in OUTBOX_RESULTS:
    OUTBOX_SENDS.labels(result=_result)


def render() -> tuple[bytes, str]:
    """The exposition of every metric, and its content type (for ``GET /metrics``)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def bounded(value: object, allowed: Collection[str]) -> str:
    """``value`` as a label if it is one of ``allowed``, else ``other``."""
    text = value.value if isinstance(value, Enum) else value
    return text if isinstance(text, str) and text in allowed else OTHER


def panel_label(panel: str) -> str:
    """A panel's name (from the configuration), while there are few of them."""
    if panel not in _panels:
        if len(_panels) >= MAX_PANELS or len(panel) > 64:
            return OTHER
        _panels.add(panel)
    return panel


# ------------------------------------------------------------ counting


def update_handled(kind: str, outcome: str, seconds: float, known_kinds: Iterable[str]) -> None:
    """One update processed; ``known_kinds`` are the update types the caller knows."""
    kind = kind if kind in known_kinds else OTHER
    counter, timer = _update_series(kind, bounded(outcome, UPDATE_OUTCOMES))
    counter.inc()
    timer.observe(seconds)


@functools.cache
def _update_series(kind: str, outcome: str) -> tuple[Any, Any]:
    """The labelled series of one (type, outcome): ``labels()`` takes a lock and checks
    the names on each call, a few per cent of a browsing tap's CPU. The pairs are a
    bounded set (the update types aiogram knows, three outcomes)."""
    return UPDATES.labels(type=kind, outcome=outcome), UPDATE_SECONDS.labels(type=kind)


def order_placed(outcome: str, known: Collection[str]) -> None:
    """One order placement; ``known`` are the outcomes the caller has."""
    ORDERS.labels(outcome=bounded(outcome, known)).inc()


def order_on_panel(panel: str) -> None:
    """An order placed; ``panel`` took it."""
    ORDERS_BY_PANEL.labels(panel=panel_label(panel)).inc()


def failover(reason: str, known: Collection[str]) -> None:
    """An order moved on from a panel; ``known`` are the reasons the caller has."""
    FAILOVERS.labels(reason=bounded(reason, known)).inc()


def skipped_for_margin(count: int = 1) -> None:
    MARGIN_SKIPS.inc(count)


# What a request's exception says of the panel: "ok" (None), "rejected", ... (PANEL_RESULTS).
ResultOf = Callable[[type[BaseException] | None], str]


def panel_request(panel: str, action: str, result_of: ResultOf) -> PanelRequest:
    """``with panel_request(name, action, result_of):`` around one request to a panel;
    ``result_of`` names the request's result from the exception it raised."""
    return PanelRequest(panel, action, result_of)


class PanelRequest:
    """Counts and times one panel request; its result is what ``result_of`` makes of
    the exception it raised. A cancelled request says nothing about the panel."""

    __slots__ = ("_action", "_panel", "_result_of", "_started")

    def __init__(self, panel: str, action: str, result_of: ResultOf) -> None:
        self._panel = panel
        self._action = action
        self._result_of = result_of
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            return
        panel, action = panel_label(self._panel), bounded(self._action, PANEL_ACTIONS)
        result = bounded(self._result_of(exc_type), PANEL_RESULTS)
        PANEL_REQUESTS.labels(panel=panel, action=action, result=result).inc()
        PANEL_REQUEST_SECONDS.labels(panel=panel, action=action).observe(
            time.perf_counter() - self._started)


def tracker_cycle(panel: str, seconds: float) -> None:
    TRACKER_CYCLE_SECONDS.labels(panel=panel_label(panel)).observe(seconds)


def set_outbox_backlog(n: int) -> None:
    """Set by whoever counts the waiting messages (the health check does)."""
    OUTBOX_BACKLOG.set(n)


def outbox_send(result: str) -> None:
    OUTBOX_SENDS.labels(result=bounded(result, OUTBOX_RESULTS)).inc()


def api_request(action: str, result: str) -> None:
    API_REQUESTS.labels(action=bounded(action, API_ACTIONS),
                        result=bounded(result, API_RESULTS)).inc()


def telegram_throttled() -> None:
    TELEGRAM_429.inc()


def stars_topup(credit: str, known: Collection[str]) -> None:
    STARS_TOPUPS.labels(result=bounded(credit, known)).inc()


def stars_refund(outcome: str, known: Collection[str]) -> None:
    STARS_REFUNDS.labels(outcome=bounded(outcome, known)).inc()
