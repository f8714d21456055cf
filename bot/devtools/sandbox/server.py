"""The sandbox panel: a real, stateful API v2 server on loopback.

It is the default panel when none is configured, what ``make demo`` runs, and
what the tests talk to. It validates ``add`` like a real panel (same error
strings), charges its own balance, and moves orders along over time:

    Pending --step--> In progress --2 steps--> Completed | Partial | Canceled

``pace`` is the length of one step in seconds; ``advance()`` moves its clock by
hand for tests. About 1 order in 10 ends Partial and 1 in 20 Canceled, decided
from the order id so every run is the same. Refill and cancel are honoured as
the service flags allow; refunds go back to the sandbox balance.

Faults are injected with ``inject()`` or ``POST /_sandbox/faults`` and apply to
the next matching requests: ``html403`` (Cloudflare page), ``http500``,
``http502``, ``http429`` (with ``Retry-After``), ``slow`` (answer after
``delay``), ``hang`` (wait ``delay`` before processing), ``hang_after`` (process,
then wait ``delay``: the ambiguous ``add``), ``drop_after`` (process, then close
the connection), ``malformed`` and ``empty`` bodies, ``notice`` (a PHP notice
before the JSON), ``raw`` (answer ``body`` with ``status`` and ``headers`` without
processing the request) and ``rewrite`` (process the request, then answer what
``rewrite(body)`` returns: a text, or a (status, text) pair; in-process only). The
last two let a test drive the unmodified client and tracker with any hostile
answer over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.devtools.loopback import serve
from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG, CatalogEntry
from bot.panel.dialects import DIALECTS, Dialect
from bot.panel.order_types import (
    SUBSCRIPTION_DELAYS,
    OrderType,
    QuantityRule,
    get_order_type,
    split_lines,
)

log = logging.getLogger(__name__)

DEFAULT_KEY = "sandbox-key"  # not "sandbox": that is the panel's name, and keys are masked in logs
API_PATH = "/api/v2"
FAULT_KINDS = frozenset({"html403", "http500", "http502", "http429", "slow", "hang",
                         "hang_after", "drop_after", "malformed", "empty", "notice", "raw",
                         "rewrite"})
_CLOUDFLARE_PAGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
                    "<body>Checking your browser before accessing the panel. "
                    "<div id=\"cf-chl-widget\"></div></body></html>")


class _Refusal(Exception):
    """A request the panel answers with ``{"error": message}``."""


@dataclass
class Fault:
    kind: str
    action: str | None = None  # None: any action
    times: int = 1
    delay: float = 0.0
    body: str = ""  # raw: the answer's text
    status: int = 200  # raw: the answer's HTTP status
    headers: dict[str, str] = field(default_factory=dict)  # raw
    rewrite: Callable[[Any], str | tuple[int, str]] | None = None  # rewrite

    def matches(self, action: str) -> bool:
        return self.times > 0 and (self.action is None or self.action == action)


@dataclass
class SandboxOrder:
    id: int
    entry: CatalogEntry
    link: str
    quantity: int  # units delivered in total (all runs)
    charge: Decimal
    created: float
    fate: str  # completed | partial | canceled
    start_count: int
    fields: dict[str, str] = field(default_factory=dict)
    status: str = "Pending"
    remains: int = 0
    cancel_at: float | None = None
    settled: bool = False  # a final status has been reached and refunded


@dataclass
class SandboxRefill:
    id: int
    order_id: int
    created: float
    fate: str  # Completed | Rejected


class SandboxPanel:
    """The panel's state and rules; ``app()`` serves it over HTTP."""

    def __init__(
        self,
        *,
        dialect: str | Dialect = "perfectpanel",
        key: str = DEFAULT_KEY,
        pace: float = 10.0,
        balance: Decimal = Decimal("1000"),
        catalog: Iterable[CatalogEntry] = DEFAULT_CATALOG,
        seed: int = 7,
    ) -> None:
        self.dialect = DIALECTS[dialect] if isinstance(dialect, str) else dialect
        self.key = key
        self.pace = pace
        self.balance = balance
        self.seed = seed
        self.catalog = {e.id: e for e in catalog
                        if self.dialect.types is None or e.type in self.dialect.types}
        self.orders: dict[int, SandboxOrder] = {}
        # The orders not yet settled, by (service id, link): what the duplicate check
        # and the balance's settling look at, so neither slows as orders pile up
        # (a soak places tens of thousands; a real panel indexes them too).
        self._unsettled: dict[tuple[int, str], dict[int, SandboxOrder]] = {}
        self.refills: dict[int, SandboxRefill] = {}
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self._clock_offset = 0.0
        self._next_order = 100_001
        self._next_refill = 5_001

    # ----------------------------------------------------------- control

    def now(self) -> float:
        return time.monotonic() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the panel's clock forward (orders progress as if time passed)."""
        self._clock_offset += seconds

    def inject(self, kind: str, action: str | None = None, times: int = 1,
               delay: float = 0.0, *, body: str = "", status: int = 200,
               headers: Mapping[str, str] | None = None,
               rewrite: Callable[[Any], str | tuple[int, str]] | None = None) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        if kind == "rewrite" and rewrite is None:
            raise ValueError("a rewrite fault needs rewrite=")
        self.faults.append(Fault(kind, action, times, delay, body, status, dict(headers or {}),
                                 rewrite))

    def clear_faults(self) -> None:
        self.faults.clear()

    def seed_orders(self, service_id: int, count: int, quantity: int = 1000) -> list[int]:
        """Create ``count`` orders directly, without HTTP (benchmarks, tests)."""
        entry = self.catalog[service_id]
        ids = []
        for _ in range(count):
            ids.append(self._create_order(entry, f"https://example.com/{self._next_order}",
                                          quantity, Decimal(0), {}).id)
        return ids

    # ----------------------------------------------------------- HTTP

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", API_PATH, self._handle_api)
        app.router.add_route("*", "/api/v2/", self._handle_api)
        app.router.add_post("/_sandbox/faults", self._handle_faults)
        app.router.add_post("/_sandbox/advance", self._handle_advance)
        app.router.add_get("/_sandbox/stats", self._handle_stats)
        return app

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        form: Mapping[str, str] = request.query
        if request.method == "POST":
            form = {**request.query, **(await request.post())}  # type: ignore[dict-item]
        action = str(form.get("action", ""))
        self.requests[action] += 1
        self.requests["total"] += 1
        fault = self._take_fault(action)
        if fault is not None:
            early = await self._early_fault(fault)
            if early is not None:
                return early
        try:
            body = self.dispatch(action, form)
        except _Refusal as refusal:
            body = {"error": str(refusal)}
        if fault is not None:
            late = await self._late_fault(fault, request, body)
            if late is not None:
                return late
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _take_fault(self, action: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(action):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _early_fault(self, fault: Fault) -> web.Response | None:
        match fault.kind:
            case "html403":
                return web.Response(status=403, text=_CLOUDFLARE_PAGE, content_type="text/html")
            case "http500":
                return web.Response(status=500, text="<h1>500 Internal Server Error</h1>",
                                    content_type="text/html")
            case "http502":
                return web.Response(status=502, text="Bad Gateway")
            case "http429":
                return web.Response(status=429, text='{"error":"Too many requests"}',
                                    headers={"Retry-After": str(int(fault.delay))},
                                    content_type="application/json")
            case "hang":
                await asyncio.sleep(fault.delay or 3600)
            case "malformed":
                return web.Response(text='{"status": "ok", "order": ', content_type="text/html")
            case "empty":
                return web.Response(text="", content_type="text/html")
            case "raw":
                headers = {"Content-Type": "application/json", **fault.headers}
                return web.Response(status=fault.status, text=fault.body, headers=headers)
        return None

    async def _late_fault(self, fault: Fault, request: web.Request,
                          body: Any) -> web.StreamResponse | None:
        match fault.kind:
            case "slow" | "hang_after":
                await asyncio.sleep(fault.delay or 3600)
            case "drop_after":
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError  # aiohttp drops the half-open response
            case "notice":
                notice = ("<br />\n<b>Notice</b>:  Undefined index: runs in <b>/var/www/api.php"
                          "</b> on line <b>42</b><br />\n")
                return web.Response(text=notice + json.dumps(body), content_type="text/html")
            case "rewrite":
                assert fault.rewrite is not None
                answer = fault.rewrite(body)
                status, text = answer if isinstance(answer, tuple) else (200, answer)
                return web.Response(status=status, text=text, content_type="application/json")
        return None

    async def _handle_faults(self, request: web.Request) -> web.Response:
        if not self._control_allowed(request):
            return web.json_response({"error": "Invalid API key"}, status=403)
        spec = await request.json()
        if spec.get("clear"):
            self.clear_faults()
        else:
            try:
                self.inject(str(spec["kind"]), spec.get("action"), int(spec.get("times", 1)),
                            float(spec.get("delay", 0)), body=str(spec.get("body", "")),
                            status=int(spec.get("status", 200)),
                            headers={str(k): str(v) for k, v in
                                     dict(spec.get("headers") or {}).items()})
            except (KeyError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": len(self.faults)})

    async def _handle_advance(self, request: web.Request) -> web.Response:
        if not self._control_allowed(request):
            return web.json_response({"error": "Invalid API key"}, status=403)
        spec = await request.json()
        self.advance(float(spec.get("seconds", self.pace)))
        return web.json_response({"ok": True})

    async def _handle_stats(self, request: web.Request) -> web.Response:
        if not self._control_allowed(request):
            return web.json_response({"error": "Invalid API key"}, status=403)
        return web.json_response({"requests": dict(self.requests), "orders": len(self.orders),
                                  "balance": str(self.balance)})

    def _control_allowed(self, request: web.Request) -> bool:
        return request.headers.get("X-Sandbox-Key") == self.key

    # ----------------------------------------------------------- the API

    def dispatch(self, action: str, form: Mapping[str, str]) -> Any:
        """Answer one API v2 request (raises ``_Refusal`` for error answers)."""
        if form.get("key") != self.key:
            raise _Refusal(self.dialect.message("bad_key", "Invalid API key"))
        handler = {
            "services": self._services, "add": self._add, "status": self._status,
            "refill": self._refill, "refill_status": self._refill_status,
            "cancel": self._cancel, "balance": self._balance,
        }.get(action)
        if handler is None:
            raise _Refusal(self.dialect.message("bad_action", "Incorrect request"))
        return handler(form)

    def _services(self, _form: Mapping[str, str]) -> Any:
        dialect = self.dialect
        if not self.catalog and dialect.success_status:
            return {"status": "success", "data": "Empty Data"}
        items = []
        for entry in self.catalog.values():
            item: dict[str, Any] = {
                "service": str(entry.id) if dialect.string_service_ids else entry.id,
                "name": entry.name,
                "type": entry.type.lower().replace(" ", "_") if dialect.type_style == "snake"
                else entry.type,
                "category": entry.category,
                "rate": _decimal_text(entry.rate),
                "min": str(entry.min),
                "max": str(entry.max),
            }
            if dialect.dripfeed_in_services:
                item["dripfeed"] = (int(entry.dripfeed) if dialect.dripfeed_in_services == "int"
                                    else entry.dripfeed)
            if dialect.flags_in_services:
                item["refill"] = entry.refill
                item["cancel"] = entry.cancel
            if dialect.description_key:
                item[dialect.description_key] = entry.description or "-"
            items.append(item)
        return items

    def _balance(self, _form: Mapping[str, str]) -> Any:
        self._settle_all()
        body: dict[str, Any] = {"balance": f"{self.balance:.5f}", "currency": self.dialect.currency}
        if self.dialect.success_status:
            body["status"] = "success"
        return body

    # add --------------------------------------------------------------

    def _add(self, form: Mapping[str, str]) -> Any:
        msg = self.dialect.message
        try:
            entry = self.catalog[int(form.get("service", ""))]
        except (KeyError, ValueError):
            raise _Refusal(msg("bad_service", "Incorrect service ID")) from None
        order_type = get_order_type(entry.type)
        values = {k: str(v).strip() for k, v in form.items() if k not in ("key", "action")}
        link = values.get("link", "")
        if any(f.name == "link" for f in order_type.fields) and not _looks_like_link(link):
            raise _Refusal(msg("bad_link", "Incorrect link"))
        self._check_fields(order_type, values)
        per_run = self._quantity(order_type, entry, values)
        runs = self._runs(entry, values)
        if self._active_duplicate(entry, link):
            raise _Refusal(msg("duplicate", "You have active order with this link. "
                                            "Please wait until order being completed."))
        charge = order_type.cost(entry.rate, {**values, "quantity": str(per_run or 0)})
        if charge > self.balance:
            raise _Refusal(msg("funds", "Not enough funds on balance"))
        self.balance -= charge
        order = self._create_order(entry, link, (per_run or 1) * runs, charge, values)
        body: dict[str, Any] = {"order": order.id}
        if self.dialect.success_status:
            body = {"status": "success", "order": order.id}
        return body

    def _check_fields(self, order_type: OrderType, values: dict[str, str]) -> None:
        for spec in order_type.fields:
            if spec.name in ("link", "quantity", "runs", "interval") or not spec.required:
                continue
            if spec.only_if and values.get(spec.only_if[0]) != spec.only_if[1]:
                continue
            if not values.get(spec.name):
                raise _Refusal(f"Incorrect {spec.name.replace('_', ' ')}")
        if order_type.name == "Poll" and not values.get("answer_number", "").isdigit():
            raise _Refusal("Incorrect answer number")
        if order_type.quantity is QuantityRule.PER_POST:
            if values.get("delay") not in SUBSCRIPTION_DELAYS:
                raise _Refusal("Incorrect delay")
            expiry = values.get("expiry")
            if expiry:
                try:
                    if datetime.strptime(expiry, "%d/%m/%Y").date() <= date.today():
                        raise _Refusal("Incorrect expiry date")
                except ValueError:
                    raise _Refusal("Incorrect expiry date") from None

    def _quantity(self, order_type: OrderType, entry: CatalogEntry,
                  values: dict[str, str]) -> int | None:
        msg = self.dialect.message
        if order_type.quantity is QuantityRule.NONE:
            return None
        if order_type.quantity is QuantityRule.LINES:
            quantity = len(split_lines(values.get(order_type.quantity_field or "", "")))
        elif order_type.quantity is QuantityRule.PER_POST:
            low, high = values.get("min", ""), values.get("max", "")
            if not (low.isdigit() and high.isdigit()) or int(low) > int(high):
                raise _Refusal("Incorrect min/max")
            quantity = int(high)
            if int(low) < entry.min:
                raise _Refusal(msg("min_quantity", "Quantity less than minimal {min}")
                               .format(min=entry.min, max=entry.max))
        else:
            raw = values.get("quantity", "")
            if not raw.isdigit():
                raise _Refusal("Incorrect quantity")
            quantity = int(raw)
        if quantity < entry.min:
            raise _Refusal(msg("min_quantity", "Quantity less than minimal {min}")
                           .format(min=entry.min, max=entry.max))
        if quantity > entry.max:
            raise _Refusal(msg("max_quantity", "Quantity more than maximum {max}")
                           .format(min=entry.min, max=entry.max))
        return quantity

    def _runs(self, entry: CatalogEntry, values: dict[str, str]) -> int:
        runs, interval = values.get("runs"), values.get("interval")
        if not runs and not interval:
            return 1
        if not entry.dripfeed:
            raise _Refusal("This services does not support Dripfeed feature!")
        if not (runs or "").isdigit() or int(runs or 0) < 2:
            raise _Refusal("Incorrect runs")
        if not (interval or "").isdigit() or int(interval or 0) < 1:
            raise _Refusal("Invalid Interval in minutes")
        return int(runs or 1)

    def _active_duplicate(self, entry: CatalogEntry, link: str) -> bool:
        if not link:
            return False
        for order in list(self._unsettled.get((entry.id, link), {}).values()):
            self._progress(order)
            if order.status in ("Pending", "In progress"):
                return True
        return False

    def _create_order(self, entry: CatalogEntry, link: str, quantity: int, charge: Decimal,
                      values: dict[str, str]) -> SandboxOrder:
        order_id = self._next_order
        self._next_order += 1
        roll = random.Random(self.seed * 1_000_003 + order_id).random()
        fate = "canceled" if roll < 0.05 else "partial" if roll < 0.15 else "completed"
        order = SandboxOrder(order_id, entry, link, quantity, charge, self.now(), fate,
                             start_count=order_id % 5_000, fields=values, remains=quantity)
        self.orders[order_id] = order
        self._unsettled.setdefault((entry.id, link), {})[order_id] = order
        return order

    # status -----------------------------------------------------------

    def _progress(self, order: SandboxOrder) -> None:
        """Bring ``order`` up to the panel clock, refunding when it ends short."""
        if order.settled:
            return
        now = self.now()
        elapsed = (now - order.created) / self.pace if self.pace > 0 else 1e9
        if order.cancel_at is not None and now >= order.cancel_at:
            delivered = order.quantity - order.remains
            self._settle(order, "Canceled" if delivered == 0 else "Partial", order.remains)
            return
        if elapsed < 1:
            order.status, order.remains = "Pending", order.quantity
        elif elapsed < 3:
            if order.fate == "canceled" and elapsed >= 2:
                self._settle(order, "Canceled", order.quantity)
                return
            order.status = "In progress"
            order.remains = max(1, int(order.quantity * (3 - elapsed) / 2))
        elif order.fate == "partial":
            self._settle(order, "Partial", max(1, order.quantity // 7))
        elif order.fate == "canceled":
            self._settle(order, "Canceled", order.quantity)
        else:
            self._settle(order, "Completed", 0)

    def _settle(self, order: SandboxOrder, status: str, remains: int) -> None:
        order.status, order.remains, order.settled = status, remains, True
        target = (order.entry.id, order.link)
        waiting = self._unsettled.get(target, {})
        waiting.pop(order.id, None)
        if not waiting:
            self._unsettled.pop(target, None)
        if remains and order.quantity:
            refund = order.charge * remains / order.quantity
            self.balance += refund
            order.charge -= refund

    def _settle_all(self) -> None:
        for waiting in list(self._unsettled.values()):
            for order in list(waiting.values()):
                self._progress(order)

    def _status_item(self, order: SandboxOrder, start_key: str = "start_count") -> dict[str, Any]:
        self._progress(order)
        places = self.dialect.charge_places
        item: dict[str, Any] = {
            "charge": f"{order.charge:.{places}f}",
            start_key: str(order.start_count),
            "status": order.status,
            "remains": str(order.remains),
            "currency": self.dialect.currency,
        }
        if self.dialect.order_in_status_items:
            item["order"] = order.id
        return item

    def _lookup(self, raw: str) -> SandboxOrder | None:
        order_id = _as_int(raw)
        return None if order_id is None else self.orders.get(order_id)

    def _status(self, form: Mapping[str, str]) -> Any:
        if "orders" in form:
            result: dict[str, Any] = {}
            for raw in _ids(form["orders"]):
                order = self._lookup(raw)
                result[raw] = (self._item_error("Incorrect order ID") if order is None
                               else self._status_item(order, self.dialect.multi_start_key))
            return result
        order = self._lookup(str(form.get("order", "")))
        if order is None:
            raise _Refusal("Incorrect order ID")
        return self._status_item(order)

    def _item_error(self, message: str) -> Any:
        return message if self.dialect.item_error_as_string else {"error": message}

    # refill -----------------------------------------------------------

    def _request_refill(self, raw: str) -> SandboxRefill | str:
        order = self._lookup(raw)
        if order is None:
            return "Incorrect order ID"
        self._progress(order)
        if not order.entry.refill or order.status != "Completed":
            return "Order cannot be refilled"
        for refill in self.refills.values():
            if refill.order_id == order.id and self._refill_state(refill) != refill.fate:
                return "You are not eligible to send refill request."
        refill_id = self._next_refill
        self._next_refill += 1
        roll = random.Random(self.seed * 7_919 + refill_id).random()
        refill = SandboxRefill(refill_id, order.id, self.now(),
                               "Rejected" if roll < 0.1 else "Completed")
        self.refills[refill_id] = refill
        return refill

    def _refill(self, form: Mapping[str, str]) -> Any:
        message = "Your refill request has been received, please wait."
        if "orders" in form:
            if not self.dialect.multi_refill:
                raise _Refusal(self.dialect.message("bad_action", "Incorrect request"))
            items = []
            for raw in _ids(form["orders"]):
                outcome = self._request_refill(raw)
                if isinstance(outcome, str):
                    item: dict[str, Any] = {"order": _int_or(raw), "refill": {"error": outcome}}
                    if self.dialect.refill_message:
                        item["message"] = outcome
                else:
                    item = {"order": _int_or(raw), "refill": outcome.id}
                    if self.dialect.refill_message:
                        item["message"] = message
                items.append(item)
            return items
        outcome = self._request_refill(str(form.get("order", "")))
        if isinstance(outcome, str):
            raise _Refusal(outcome)
        if self.dialect.refill_message:
            return {"order": str(outcome.order_id), "refill": str(outcome.id), "message": message}
        if self.dialect.success_status:
            return {"status": "success", "refill": outcome.id}
        return {"refill": str(outcome.id)}

    def _refill_state(self, refill: SandboxRefill) -> str:
        elapsed = (self.now() - refill.created) / self.pace if self.pace > 0 else 1e9
        if elapsed < 1:
            return "Pending"
        if elapsed < 2:
            return "In progress"
        return refill.fate

    def _refill_status(self, form: Mapping[str, str]) -> Any:
        if "refills" in form:
            if not self.dialect.multi_refill_status:
                raise _Refusal(self.dialect.message("bad_action", "Incorrect request"))
            items = []
            for raw in _ids(form["refills"]):
                refill = self.refills.get(_as_int(raw))
                status: Any = ({"error": "Refill not found"} if refill is None
                               else self._refill_state(refill))
                items.append({"refill": _int_or(raw), "status": status})
            return items
        refill = self.refills.get(_as_int(str(form.get("refill", ""))))
        if refill is None:
            raise _Refusal("Refill not found")
        if self.dialect.refill_status_with_id:
            return {"refill": refill.id, "status": self._refill_state(refill)}
        return {"status": self._refill_state(refill)}

    # cancel -----------------------------------------------------------

    def _cancel(self, form: Mapping[str, str]) -> Any:
        if not self.dialect.cancel_supported:
            raise _Refusal(self.dialect.message("bad_action", "Incorrect request"))
        raw_ids = _ids(form.get("orders", form.get("order", "")))
        items = []
        for raw in raw_ids:
            order = self._lookup(raw)
            error = None
            if order is None:
                error = "Incorrect order ID"
            else:
                self._progress(order)
                if not order.entry.cancel or order.status not in ("Pending", "In progress"):
                    error = "Cannot cancel"
                elif order.cancel_at is None:
                    order.cancel_at = self.now() + self.pace / 2
            if error is not None:
                items.append({"order": _int_or(raw), "cancel": {"error": error}})
            else:
                accepted: Any = ("Your cancellation request has been received."
                                 if self.dialect.cancel_message else 1)
                items.append({"order": _int_or(raw), "cancel": accepted})
        return items


def _ids(raw: str) -> list[str]:
    ids = [part.strip() for part in str(raw).split(",") if part.strip()]
    if len(ids) > 100:
        raise _Refusal("Too many IDs: up to 100 allowed")
    return ids


def _as_int(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def _int_or(raw: str) -> int | str:
    """Echo an id back as the panel would: an int when it is one."""
    value = _as_int(raw)
    return raw if value is None else value


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _looks_like_link(link: str) -> bool:
    return bool(link) and " " not in link and "." in link and len(link) <= 2_048


@dataclass
class RunningSandbox:
    panel: SandboxPanel
    runner: web.AppRunner
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + API_PATH

    @property
    def key(self) -> str:
        return self.panel.key

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_sandbox(panel: SandboxPanel | None = None, *, host: str = "127.0.0.1",
                        port: int = 0) -> RunningSandbox:
    """Serve ``panel`` on ``host:port`` (port 0 picks a free one)."""
    panel = panel or SandboxPanel()
    runner, bound_port = await serve(panel.app(), host, port)
    return RunningSandbox(panel, runner, host, bound_port)
