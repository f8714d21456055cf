"""Lenient readers for every response variant in SPEC.md.

Each ``parse_*`` function takes the decoded JSON body of one action and returns
typed models. Numbers are never floats: bodies are decoded with ``Decimal`` for
every JSON number. A malformed body raises ``MalformedResponse``; the client turns
that into "unavailable" (or "ambiguous" for ``add``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from bot.order_types import order_type_for
from bot.panel.errors import classify
from bot.panel.models import (
    Balance,
    CancelAccepted,
    ItemError,
    OrderState,
    OrderStatus,
    RefillState,
    RefillStatus,
    Service,
    order_state_of,
    refill_state_of,
)

log = logging.getLogger(__name__)


class MalformedResponse(ValueError):
    """The body is not an API v2 answer (HTML, empty, garbage, unexpected shape)."""

    def __init__(self, message: str, *, challenge: bool = False) -> None:
        super().__init__(message)
        self.challenge = challenge  # a WAF / Cloudflare page: the panel never saw it


_CHALLENGE_MARKERS = ("just a moment", "cf-chl", "attention required", "cloudflare",
                      "ddos-guard", "checking your browser")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_FORM_ENCODED = re.compile(r"^[A-Za-z_]+=[^<>{}\[\]]*$")


def decode_body(text: str) -> Any:
    """Decode a panel's answer, forgiving what real panels get wrong."""
    body = text.strip().lstrip("\ufeff")
    if not body:
        raise MalformedResponse("the panel sent an empty answer")
    if body.startswith("<"):
        json_start = _json_start(body)
        if json_start is None:
            lowered = body[:4_000].lower()
            challenge = any(marker in lowered for marker in _CHALLENGE_MARKERS)
            kind = "a Cloudflare/WAF challenge page" if challenge else "an HTML page"
            raise MalformedResponse(f"the panel sent {kind} instead of JSON", challenge=challenge)
        body = body[json_start:]  # a PHP notice printed before the JSON
    try:
        return json.loads(body, parse_float=Decimal, parse_int=int)
    except ValueError:
        pass
    repaired = _TRAILING_COMMA.sub(r"\1", body)
    if repaired.startswith('"'):
        repaired = "{" + repaired + "}"  # an object whose braces were lost
    try:
        return json.loads(repaired, parse_float=Decimal, parse_int=int)
    except ValueError:
        pass
    if _FORM_ENCODED.match(body):
        return dict(parse_qsl(body))
    raise MalformedResponse(f"the panel sent something that is not JSON: {body[:80]!r}")


def _json_start(body: str) -> int | None:
    for index, char in enumerate(body):
        if char in "{[" and (index == 0 or body[index - 1] in "\n>"):
            return index
    return None


def top_level_error(body: Any) -> str | None:
    """The message of a whole-request error, or ``None`` for a normal answer.

    An ``error`` next to real data is item data, not a failure (SPEC §8): only an
    object whose other keys are bookkeeping (``status``, ``message``, ``code``) is one.
    """
    if not isinstance(body, dict):
        return None
    if "error" in body and set(body) <= {"error", "status", "message", "code", "error_code"}:
        error = body["error"]
        if isinstance(error, dict):
            error = error.get("message") or json.dumps(error, default=str)
        return str(error) or "unknown error"
    if str(body.get("status", "")).lower() == "error" and "message" in body:
        return str(body["message"])
    return None


def to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        result = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def to_int(value: Any) -> int | None:
    number = to_decimal(value)
    if number is None:
        return None
    return int(number)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return False


def to_id(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"not an id: {value!r}")
    text = str(int(value)) if isinstance(value, Decimal) and value == int(value) else str(value)
    text = text.strip()
    if not text:
        raise MalformedResponse("empty id")
    return text


def _item_error(value: Any) -> ItemError | None:
    """An item-level error: ``{"error": ...}`` or a bare message string."""
    if isinstance(value, dict) and "error" in value:
        message = str(value["error"])
        return ItemError(message, classify(message))
    if isinstance(value, str):
        return ItemError(value, classify(value))
    return None


# ---------------------------------------------------------------- services


def parse_services(body: Any) -> list[Service]:
    if isinstance(body, dict):
        data = body.get("data", body.get("services"))
        if isinstance(data, list):
            body = data
        elif isinstance(data, str) or body.get("status") == "success":
            return []  # SmartPanel's {"status":"success","data":"Empty Data"}
        else:
            raise MalformedResponse("the services answer is not a list")
    if not isinstance(body, list):
        raise MalformedResponse("the services answer is not a list")
    services: list[Service] = []
    skipped = 0
    for item in body:
        service = _parse_service(item)
        if service is None:
            skipped += 1
        else:
            services.append(service)
    if skipped:
        log.warning("skipped %d unreadable services in the panel's list", skipped)
    return services


def _parse_service(item: Any) -> Service | None:
    if not isinstance(item, dict):
        return None
    try:
        service_id = to_id(item.get("service", item.get("id")))
    except MalformedResponse:
        return None
    rate = to_decimal(item.get("rate"))
    low, high = to_int(item.get("min")), to_int(item.get("max"))
    if rate is None or rate < 0:
        return None
    raw_type = item.get("type")
    order_type = order_type_for(raw_type if isinstance(raw_type, str) else None)
    type_name = order_type.name if order_type else str(raw_type).strip()
    description = item.get("description", item.get("desc"))
    description = str(description).strip() if description is not None else ""
    return Service(
        id=service_id,
        name=str(item.get("name") or f"Service {service_id}").strip(),
        type=type_name,
        category=str(item.get("category") or "Other").strip(),
        rate=rate,
        min=low if low is not None and low > 0 else 1,
        max=high if high is not None and high > 0 else (low or 1),
        refill=to_bool(item.get("refill")),
        cancel=to_bool(item.get("cancel")),
        dripfeed=to_bool(item.get("dripfeed")),
        description="" if description in {"-", "null", "None"} else description,
    )


# ---------------------------------------------------------------- add


def parse_add(body: Any) -> str:
    if isinstance(body, dict) and body.get("order") not in (None, ""):
        return to_id(body["order"])
    raise MalformedResponse("the add answer has no order id")


# ---------------------------------------------------------------- status


def parse_order_status(item: Any) -> OrderStatus | ItemError:
    error = _item_error(item)
    if error is not None and not (isinstance(item, dict) and "status" in item):
        return error
    if not isinstance(item, dict):
        raise MalformedResponse("a status item is not an object")
    raw = item.get("status")
    if raw is None:
        raise MalformedResponse("a status item has no status")
    raw_text = str(raw).strip()
    state = order_state_of(raw_text)
    start = item.get("start_count", item.get("statt_count"))
    currency = item.get("currency")
    return OrderStatus(
        status=state or OrderState.IN_PROGRESS,
        raw_status=raw_text,
        charge=to_decimal(item.get("charge")),
        start_count=to_int(start),
        remains=to_int(item.get("remains")),
        currency=str(currency).upper() if currency else None,
        recognised=state is not None,
    )


def parse_multi_status(body: Any) -> dict[str, OrderStatus | ItemError]:
    """``{"1": {...}, "10": {"error": ...}}``, bare-string errors, or a list of items."""
    results: dict[str, OrderStatus | ItemError] = {}
    for key, item in _keyed_items(body, id_field="order"):
        results[key] = parse_order_status(item)
    return results


def _keyed_items(body: Any, *, id_field: str) -> Iterable[tuple[str, Any]]:
    if isinstance(body, dict):
        for key, item in body.items():
            yield to_id(key), item
    elif isinstance(body, list):
        for item in body:
            if not isinstance(item, dict) or item.get(id_field) is None:
                raise MalformedResponse(f"a list item has no {id_field!r}")
            yield to_id(item[id_field]), item
    else:
        raise MalformedResponse("a multi-id answer is neither an object nor a list")


# ---------------------------------------------------------------- refill


def parse_refill(body: Any) -> str | ItemError:
    if isinstance(body, dict):
        value = body.get("refill")
        if isinstance(value, dict):
            return _item_error(value) or ItemError("refill refused", classify("refill"))
        if value not in (None, ""):
            return to_id(value)
    raise MalformedResponse("the refill answer has no refill id")


def parse_multi_refill(body: Any) -> dict[str, str | ItemError]:
    results: dict[str, str | ItemError] = {}
    for key, item in _keyed_items(body, id_field="order"):
        value = item.get("refill") if isinstance(item, dict) else item
        error = _item_error(value) or (_item_error(item) if value is None else None)
        results[key] = error if error is not None else to_id(value)
    return results


def parse_refill_status(item: Any) -> RefillStatus | ItemError:
    if not isinstance(item, dict):
        error = _item_error(item)
        if error is not None:
            return error
        raise MalformedResponse("a refill status is not an object")
    value = item.get("status")
    error = _item_error(value) if isinstance(value, dict) else None
    if error is not None:
        return error
    if value is None:
        error = _item_error(item)
        if error is not None:
            return error
        raise MalformedResponse("a refill status has no status")
    raw_text = str(value).strip()
    state = refill_state_of(raw_text)
    return RefillStatus(state or RefillState.IN_PROGRESS, raw_text, recognised=state is not None)


def parse_multi_refill_status(body: Any) -> dict[str, RefillStatus | ItemError]:
    return {key: parse_refill_status(item) for key, item in _keyed_items(body, id_field="refill")}


# ---------------------------------------------------------------- cancel


def parse_cancel(body: Any) -> dict[str, CancelAccepted | ItemError]:
    """Any non-object ``cancel`` value means the request was accepted (SPEC §6)."""
    if isinstance(body, dict) and "order" in body and "cancel" in body:
        body = [body]  # doc 000 answers one order with a bare object
    results: dict[str, CancelAccepted | ItemError] = {}
    for key, item in _keyed_items(body, id_field="order"):
        if not isinstance(item, dict):
            error = _item_error(item)
            results[key] = error or CancelAccepted()
            continue
        value = item.get("cancel")
        if isinstance(value, dict):
            results[key] = _item_error(value) or ItemError("cancel refused", classify("cancel"))
        elif value is None and "error" in item:
            results[key] = _item_error(item) or ItemError("cancel refused", classify("cancel"))
        else:
            message = "" if value in (None, 1, "1", True) else str(value)
            results[key] = CancelAccepted(message)
    return results


# ---------------------------------------------------------------- balance


def parse_balance(body: Any) -> Balance:
    if isinstance(body, dict):
        amount = to_decimal(body.get("balance"))
        if amount is not None:
            return Balance(amount, str(body.get("currency") or "USD").upper())
    raise MalformedResponse("the balance answer has no balance")
