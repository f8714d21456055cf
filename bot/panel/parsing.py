"""Lenient readers for every response variant in SPEC.md, bounded against hostile ones.

Each ``parse_*`` function takes the decoded JSON body of one action and returns
typed models. Numbers are never floats: bodies are decoded with ``Decimal`` for
every JSON number. A malformed body raises ``MalformedResponse``; the client turns
that into "unavailable" (or "ambiguous" for ``add``). In a multi-id answer one
unreadable item becomes an ``ItemError`` (reason ``UNREADABLE``) for that id
alone, and the rest of the answer is used.

Every panel answer is hostile input: every number goes through ``count`` or
``money`` (a length cap on the text, no exponents, sane bounds), every text is
redacted and cut to a bound, and nesting deeper than ``MAX_DEPTH`` is refused,
so no answer can make parsing slow, unbounded in memory, or raise anything but
``MalformedResponse`` (a ``ValueError``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from bot.observability.redaction import redact
from bot.panel.errors import MESSAGE_CHARS, RejectReason, classify
from bot.panel.models import (
    Balance,
    CancelAccepted,
    ItemError,
    OrderState,
    OrderStatus,
    RefillState,
    RefillStatus,
    Service,
    ServiceList,
    order_state_of,
    refill_state_of,
)
from bot.panel.order_types import order_type_for

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bounds on what a panel may send. Real answers are far inside them; anything
# outside is an unreadable field, never a slow conversion (int(Decimal("1e500000"))
# took 31 s) or an OverflowError further on (SQLite INTEGER, Telegram pages).
MAX_NUMBER_TEXT = 40  # characters of one number, sign and separators included
MAX_COUNT = 10**12  # quantities, remains, start counts, min/max
MAX_MONEY = Decimal(10**12)
MONEY_PLACES = 8  # doc 000 charges "1.03841045"
MAX_ID = 64  # characters of an order, refill or service id
MAX_DEPTH = 20  # real answers nest 3 deep; json.loads raises RecursionError near 1,000
NAME_CHARS = 1_000  # service names and categories
DESCRIPTION_CHARS = 5_000
WORD_CHARS = 200  # status words, type names
CURRENCY_CHARS = 10
RAW_CHARS = 1_000  # an unreadable item kept for the admins
JSON_START_SEARCH = 16_384  # a PHP notice before the JSON is a few hundred characters
_REDACT_MARGIN = 1_024  # longer than any key: a key straddling the cut is still masked


class MalformedResponse(ValueError):
    """The body is not an API v2 answer (HTML, empty, garbage, unexpected shape)."""

    def __init__(self, message: str, *, challenge: bool = False) -> None:
        super().__init__(message)
        self.challenge = challenge  # a WAF / Cloudflare page: the panel never saw it


class FieldError(MalformedResponse):
    """One field of an answer is unreadable or out of bounds."""

    def __init__(self, name: str, value: Any, why: str) -> None:
        super().__init__(f"{name} {raw_text(value, 60)} {why}")
        self.field = name


_CHALLENGE_MARKERS = ("just a moment", "cf-chl", "attention required", "cloudflare",
                      "ddos-guard", "checking your browser")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_FORM_ENCODED = re.compile(r"^[A-Za-z_]+=[^<>{}\[\]]*$")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # "1,000.50"


# ---------------------------------------------------------------- texts


def clip(text: str, limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters (in that order)."""
    return redact(text[:limit + _REDACT_MARGIN])[:limit]


def raw_text(value: Any, limit: int = RAW_CHARS) -> str:
    """A panel value as text for messages and admins: JSON-ish, redacted, bounded."""
    if isinstance(value, str):
        return clip(value, limit)
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = repr(type(value))
    return clip(text, limit)


def _text(value: Any, limit: int, default: str = "") -> str:
    if value is None or isinstance(value, bool | list | dict):
        return default
    return clip(str(value).strip(), limit) or default


# ---------------------------------------------------------------- decoding


def _json_int(text: str) -> int | str:
    # A JSON int of thousands of digits stays text: the field reading it refuses it
    # (int() of it is quadratic, and over 4,300 digits raises in json.loads).
    return int(text) if len(text) <= MAX_NUMBER_TEXT else text


def _json_float(text: str) -> Decimal | str:
    # Exponents and very long numbers stay text for the same reason; the bound is
    # applied by the field reading them, so one bad item never spoils the body.
    if len(text) > MAX_NUMBER_TEXT or "e" in text or "E" in text:
        return text
    return Decimal(text)


def _json_constant(text: str) -> str:
    return text  # NaN / Infinity: json.loads would make floats of them


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_json_float, parse_int=_json_int,
                      parse_constant=_json_constant)


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
    for candidate in _candidates(body):
        try:
            value = _loads(candidate)
        except RecursionError:
            raise MalformedResponse("the panel's answer is nested too deeply") from None
        except ValueError:
            continue
        _check_depth(value)
        return value
    if _FORM_ENCODED.match(body):
        return dict(parse_qsl(body))
    raise MalformedResponse(f"the panel sent something that is not JSON: {raw_text(body, 80)!r}")


def _candidates(body: str) -> Iterable[str]:
    yield body
    repaired = _TRAILING_COMMA.sub(r"\1", body)
    if repaired.startswith('"'):
        repaired = "{" + repaired + "}"  # an object whose braces were lost
    if repaired != body:
        yield repaired


def _json_start(body: str) -> int | None:
    for index, char in enumerate(body[:JSON_START_SEARCH]):
        if char in "{[" and (index == 0 or body[index - 1] in "\n>"):
            return index
    return None


def _check_depth(value: Any) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH``: readers and ``json.dumps`` recurse."""
    level: list[Any] = [value]
    for _depth in range(MAX_DEPTH + 1):
        level = [child for node in level if isinstance(node, dict | list)
                 for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, dict | list)]
        if not level:
            return
    raise MalformedResponse("the panel's answer is nested too deeply")


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
            error = error.get("message") or error
        return raw_text(error, MESSAGE_CHARS) or "unknown error"
    if _text(body.get("status"), WORD_CHARS).lower() == "error" and "message" in body:
        return raw_text(body["message"], MESSAGE_CHARS)
    return None


# ---------------------------------------------------------------- numbers


def _number(value: Any, name: str) -> int | Decimal | None:
    """The one reader of panel numbers: ``None`` when absent, else bounded or refused."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError(name, value, "is not a number")
    if isinstance(value, int):
        if value.bit_length() > 64:  # O(1): no conversion of a huge int
            raise FieldError(name, value, "is out of bounds")
        return value
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None  # panels send "" for a start count they don't know yet
        if len(text) > MAX_NUMBER_TEXT:
            raise FieldError(name, value, "is too long for a number")
        if _PLAIN_NUMBER.fullmatch(text):
            number = Decimal(text)
        elif _GROUPED_NUMBER.fullmatch(text):
            number = Decimal(text.replace(",", ""))
        else:
            raise FieldError(name, value, "is not a plain number")
    else:
        raise FieldError(name, value, "is not a number")
    # adjusted() is O(1); a finite Decimal from any source is checked before use.
    if not number.is_finite() or number.adjusted() > 12:
        raise FieldError(name, value, "is out of bounds")
    return number


def count(value: Any, name: str) -> int | None:
    """A quantity, remains or start count: a whole number within +-10^12."""
    # The common shapes first (ints and digit strings): they are most of a 10,000
    # service list or a status answer, and provably in bounds at 12 digits.
    if type(value) is int and -MAX_COUNT <= value <= MAX_COUNT:
        return value
    if type(value) is str and len(value) <= 12 and value.isascii() and value.isdigit():
        return int(value)
    number = _number(value, name)
    if number is None:
        return None
    if isinstance(number, Decimal):
        if number != number.to_integral_value():
            raise FieldError(name, value, "is not a whole number")
        number = int(number)
    if abs(number) > MAX_COUNT:
        raise FieldError(name, value, "is out of bounds")
    return number


def money(value: Any, name: str) -> Decimal | None:
    """An amount: within +-10^12, at most ``MONEY_PLACES`` decimals (trailing zeros aside)."""
    number = _number(value, name)
    if number is None:
        return None
    amount = Decimal(number)
    if abs(amount) > MAX_MONEY:
        raise FieldError(name, value, "is out of bounds")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_PLACES:
        raise FieldError(name, value, f"has more than {MONEY_PLACES} decimals")
    return amount


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return False


def to_id(value: Any) -> str:
    """An order, refill or service id: a whole number or a short single-line text."""
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"not an id: {raw_text(value, 60)}")
    if isinstance(value, Decimal | int):
        number = count(value, "id")
        text = "" if number is None else str(number)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise MalformedResponse(f"not an id: {raw_text(value, 60)}")
    # Ids are shown to customers and admins and stored: no control, zero-width or
    # bidi characters (not printable), and never a secret a panel echoed back.
    if not text or len(text) > MAX_ID or not text.isprintable() or redact(text) != text:
        raise MalformedResponse(f"not an id: {raw_text(value, 60)}")
    return text


def _item_error(value: Any) -> ItemError | None:
    """An item-level error: ``{"error": ...}`` or a bare message string."""
    if isinstance(value, dict) and "error" in value:
        message = raw_text(value["error"], MESSAGE_CHARS)
        return ItemError(message, classify(message), raw_text(value))
    if isinstance(value, str):
        message = clip(value, MESSAGE_CHARS)
        return ItemError(message, classify(message), message)
    return None


def unreadable(exc: ValueError, item: Any) -> ItemError:
    """The item error for an id whose answer could not be read."""
    return ItemError(f"unreadable answer: {exc}", RejectReason.UNREADABLE, raw_text(item))


def _per_item(body: Any, id_field: str,
              read: Callable[[Any], T | ItemError]) -> dict[str, T | ItemError]:
    """``read`` each item of a multi-id answer; one that fails is that id's item error."""
    results: dict[str, T | ItemError] = {}
    for key, item in _keyed_items(body, id_field=id_field):
        try:
            results[key] = read(item)
        except ValueError as exc:  # MalformedResponse, or a model refusing the values
            results[key] = unreadable(exc, item)
    return results


# ---------------------------------------------------------------- services


def parse_services(body: Any) -> ServiceList:
    """The panel's services; an item with unusable fields is skipped (and counted)."""
    if isinstance(body, dict):
        data = body.get("data", body.get("services"))
        if isinstance(data, list):
            body = data
        elif isinstance(data, str) or body.get("status") == "success":
            return ServiceList()  # SmartPanel's {"status":"success","data":"Empty Data"}
        else:
            raise MalformedResponse("the services answer is not a list")
    if not isinstance(body, list):
        raise MalformedResponse("the services answer is not a list")
    services: list[Service] = []
    skipped = 0
    for item in body:
        try:
            services.append(_parse_service(item))
        except MalformedResponse as exc:
            skipped += 1
            if skipped <= 5:  # enough to find them; a list of junk must not flood the log
                log.warning("skipped an unusable service: %s", exc)
    if skipped:
        log.warning("skipped %d unusable services in the panel's list", skipped)
    return ServiceList(services, skipped)


def _parse_service(item: Any) -> Service:
    if not isinstance(item, dict):
        raise MalformedResponse(f"not an object: {raw_text(item, 60)}")
    service_id = to_id(item.get("service", item.get("id")))
    try:
        rate = money(item.get("rate"), "rate")
        low = count(item.get("min"), "min")
        high = count(item.get("max"), "max")
    except FieldError as exc:
        raise MalformedResponse(f"service {service_id}: {exc}") from None
    if rate is None or rate < 0:
        raise MalformedResponse(f"service {service_id} has no usable rate")
    low = low if low is not None and low > 0 else 1
    high = high if high is not None and high > 0 else low
    if low > high:
        raise MalformedResponse(f"service {service_id}: min {low} is above max {high}")
    raw_type = item.get("type")
    order_type = order_type_for(raw_type if isinstance(raw_type, str) else None)
    type_name = order_type.name if order_type else _text(raw_type, WORD_CHARS, "Unknown")
    description = _text(item.get("description", item.get("desc")), DESCRIPTION_CHARS)
    return Service(
        id=service_id,
        name=_text(item.get("name"), NAME_CHARS, f"Service {service_id}"),
        type=type_name,
        category=_text(item.get("category"), NAME_CHARS, "Other"),
        rate=rate,
        min=low,
        max=high,
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
    """One order's status, its item error, or (unreadable) an ``UNREADABLE`` item error."""
    error = _item_error(item)
    if error is not None and not (isinstance(item, dict) and "status" in item):
        return error
    try:
        return _order_status(item)
    except ValueError as exc:  # MalformedResponse, or OrderStatus refusing a Partial
        return unreadable(exc, item)


def _order_status(item: Any) -> OrderStatus:
    if not isinstance(item, dict):
        raise MalformedResponse("a status item is not an object")
    raw = item.get("status")
    if not isinstance(raw, str | int | Decimal) or isinstance(raw, bool):
        raise MalformedResponse("a status item has no status")
    raw_text_ = _text(raw, WORD_CHARS)
    if not raw_text_:
        raise MalformedResponse("a status item has no status")
    state = order_state_of(raw_text_)
    start = item.get("start_count", item.get("statt_count"))
    return OrderStatus(
        status=state or OrderState.IN_PROGRESS,
        raw_status=raw_text_,
        charge=money(item.get("charge"), "charge"),
        start_count=count(start, "start_count"),
        remains=count(item.get("remains"), "remains"),
        currency=_text(item.get("currency"), CURRENCY_CHARS).upper() or None,
        recognised=state is not None,
    )


def parse_multi_status(body: Any) -> dict[str, OrderStatus | ItemError]:
    """``{"1": {...}, "10": {"error": ...}}``, bare-string errors, or a list of items."""
    return _per_item(body, "order", parse_order_status)


def _keyed_items(body: Any, *, id_field: str) -> Iterable[tuple[str, Any]]:
    """(id, item) pairs; an item that names no readable id can't be given to any
    order, so it is skipped (logged) and the rest are read."""
    if isinstance(body, dict):
        pairs: Iterable[tuple[Any, Any]] = body.items()
    elif isinstance(body, list):
        pairs = ((item.get(id_field) if isinstance(item, dict) else None, item) for item in body)
    else:
        raise MalformedResponse("a multi-id answer is neither an object nor a list")
    for key, item in pairs:
        try:
            yield to_id(key), item
        except MalformedResponse as exc:
            log.warning("skipped an item without a usable %s: %s", id_field, exc)


# ---------------------------------------------------------------- refill


def parse_refill(body: Any) -> str | ItemError:
    if isinstance(body, dict):
        value = body.get("refill")
        if isinstance(value, dict):
            return _item_error(value) or ItemError("refill refused", classify("refill"),
                                                   raw_text(value))
        if value not in (None, ""):
            return to_id(value)
    raise MalformedResponse("the refill answer has no refill id")


def _refill_item(item: Any) -> str | ItemError:
    value = item.get("refill") if isinstance(item, dict) else item
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return to_id(value)  # an id written as text (SPEC §5: a string or an int), no message
    error = _item_error(value) or (_item_error(item) if value is None else None)
    return error if error is not None else to_id(value)


def parse_multi_refill(body: Any) -> dict[str, str | ItemError]:
    return _per_item(body, "order", _refill_item)


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
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise MalformedResponse("a refill status has no status")
    raw = _text(value, WORD_CHARS)
    if not raw:
        raise MalformedResponse("a refill status has no status")
    state = refill_state_of(raw)
    return RefillStatus(state or RefillState.IN_PROGRESS, raw, recognised=state is not None)


def parse_multi_refill_status(body: Any) -> dict[str, RefillStatus | ItemError]:
    return _per_item(body, "refill", parse_refill_status)


# ---------------------------------------------------------------- cancel


def _cancel_item(item: Any) -> CancelAccepted | ItemError:
    """Any non-object ``cancel`` value means the request was accepted (SPEC §6)."""
    if not isinstance(item, dict):
        return _item_error(item) or CancelAccepted()
    value = item.get("cancel")
    if isinstance(value, dict):
        return _item_error(value) or ItemError("cancel refused", classify("cancel"),
                                               raw_text(value))
    if value is None and "error" in item:
        return _item_error(item) or ItemError("cancel refused", classify("cancel"),
                                              raw_text(item))
    message = "" if value in (None, 1, "1", True) else raw_text(value, MESSAGE_CHARS)
    return CancelAccepted(message)


def parse_cancel(body: Any) -> dict[str, CancelAccepted | ItemError]:
    if isinstance(body, dict) and "order" in body and "cancel" in body:
        body = [body]  # doc 000 answers one order with a bare object
    return _per_item(body, "order", _cancel_item)


# ---------------------------------------------------------------- balance


def parse_balance(body: Any) -> Balance:
    if isinstance(body, dict):
        amount = money(body.get("balance"), "balance")
        if amount is not None:
            return Balance(amount, _text(body.get("currency"), CURRENCY_CHARS, "USD").upper())
    raise MalformedResponse("the balance answer has no balance")
