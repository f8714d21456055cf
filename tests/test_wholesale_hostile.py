"""Hostile input on every field of every wholesale API action, through real HTTP.

Hypothesis sends shop A (the unmodified bot on the sandbox panel, its API on)
requests of every encoding a client can send (a form, the query string, a JSON
object with any JSON values, multipart, raw bytes), with arbitrary text, bytes,
unicode, huge values and JSON types in the key, the action, the service, every
order field and the ids. After each one:

* never a 5xx; always JSON in the panel shape of the action (or ``{"error": ...}``);
  HTTP 400 exactly for a body that can't be read;
* every balance is what its ledger sums to, never negative;
* every order has its one debit, a refused one its full refund, and the sandbox
  holds exactly the orders A says it placed;
* a form A refuses (a field, the service, the funds) placed nothing anywhere.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.devtools.sandbox.server import RunningSandbox, SandboxPanel, start_sandbox
from bot.panel.order_types import ORDER_TYPES
from storage.db import Database
from tests.e2e import Shop, free_port, running_shop

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

RESELLER, OTHER = 7001, 7002
ACTIONS = ["services", "add", "status", "refill", "refill_status", "cancel", "balance"]
FIELDS = sorted({spec.name for order_type in ORDER_TYPES for spec in order_type.fields}
                | {"key", "action", "service", "order", "orders", "refill", "refills"})
STATUS_KEYS = {"charge", "start_count", "status", "remains", "currency"}
STATUS_WORDS = {"Pending", "In progress", "Completed", "Partial", "Canceled"}
REFILL_WORDS = {"Pending", "In progress", "Completed", "Rejected"}
SERVICE_KEYS = {"service", "name", "type", "category", "rate", "min", "max", "refill", "cancel",
                "dripfeed"}
MALFORMED = {"error": "Malformed request body"}
FORM_ERROR = re.compile(r"^Incorrect [a-z_ ]+: ")  # a field A refused before any money moved


# -------------------------------------------------------------------- the shop under attack

@dataclass
class Target:
    shop: Shop
    db: Database  # a reader of A's database file
    http: httpx.AsyncClient
    keys: dict[str, str]  # "reseller", "other" -> their key
    refs: dict[int, int]  # the sandbox's service id -> A's service number
    foreign_order: int  # OTHER's order

    @property
    def sandbox(self) -> RunningSandbox:
        return self.shop.sandbox

    def __repr__(self) -> str:  # in Hypothesis' report of a failing example
        return "Target(shop A)"

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(repr(self))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def target() -> AsyncIterator[Target]:
    sandbox = await start_sandbox(SandboxPanel(pace=60.0))
    with tempfile.TemporaryDirectory() as folder:
        async with running_shop(sandbox, Path(folder), api_enabled=True, api_port=free_port(),
                                api_rate_limit=100_000, panel_timeout=2) as shop:
            keys = {"reseller": await shop.api_key(RESELLER), "other": await shop.api_key(OTHER)}
            await shop.credit(RESELLER, 50_000)
            await shop.credit(OTHER, 1_000)
            refs = {int(panel_id): ref for ref, panel_id in
                    await shop.query("SELECT id, service_id FROM services")}
            db = await shop.db()
            async with httpx.AsyncClient(timeout=30) as http:
                foreign = (await http.post(shop.api_url, data={
                    "key": keys["other"], "action": "add", "service": str(refs[102]),
                    "link": "https://instagram.com/p/other", "quantity": "100"})).json()
                try:
                    yield Target(shop, db, http, keys, refs, int(foreign["order"]))
                finally:
                    await db.close()
    await sandbox.stop()


# -------------------------------------------------------------------- what is sent

@dataclass(frozen=True)
class Key:
    """A key resolved when sent: "reseller", "other", or sent as written."""

    who: str


@dataclass(frozen=True)
class Ref:
    """A's number for the sandbox's service ``panel_id``."""

    panel_id: int


@dataclass(frozen=True)
class Own:
    """One of the reseller's orders (the latest), or ``FOREIGN``'s."""

    foreign: bool = False


NASTY = ["", " ", "0", "-1", "+5", "00012", "1e3", "1.5", "٣", "١٠٠٠", "1,000", "1 000", "1k",
         "2.5k", str(2**31), str(2**63), str(2**64), "9" * 400, "NaN", "null", "true", "[]", "{}",
         "' OR 1=1 --", "\x00", "\u202e", "\u200b", "🙂" * 20, "x" * 100_001,
         "https://instagram.com/p/" + "a" * 3_000, "https://evil.example.com/p/1", "@alice",
         "a\nb\nc\nd\ne\nf\ng\nh\ni\nj", ",,,", "1,2,3", ",".join(["1"] * 150), "01/01/2000",
         "31/12/2999", "US", "<script>alert(1)</script>", "%00", "../../etc/passwd"]
SMALL_TEXT = st.text(max_size=40)
TEXTS = st.one_of(st.sampled_from(NASTY), SMALL_TEXT, st.integers().map(str),
                  st.from_regex(r"[0-9]{1,25}", fullmatch=True))
IDS = st.one_of(st.builds(Own, st.booleans()), TEXTS, st.integers(-10, 10**20).map(str))
ID_LISTS = st.lists(IDS, max_size=8)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(alphabet=st.characters(codec=None), max_size=30),
                         st.sampled_from(["\ud800", "a\udcffb"]))  # half characters
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)

# A valid form per order shape (the link's tail is drawn so repeats are rare).
BASES: dict[int, dict[str, str]] = {
    101: {"link": "https://instagram.com/p/{n}", "quantity": "100"},
    102: {"link": "https://instagram.com/p/{n}", "quantity": "20000"},
    103: {"link": "https://instagram.com/p/{n}", "quantity": "500", "runs": "3",
          "interval": "10"},
    106: {"link": "https://instagram.com/p/{n}", "comments": "\n".join(["nice"] * 5)},
    107: {"link": "https://instagram.com/p/{n}"},
    116: {"username": "alice{n}", "min": "100", "max": "200", "posts": "3", "delay": "30"},
    302: {"link": "https://youtube.com/watch?v={n}", "quantity": "20000"},  # $364: often short
}


@st.composite
def add_forms(draw: st.DrawFn) -> dict[str, Any]:
    """A valid add with up to three fields replaced, added or dropped."""
    panel_id = draw(st.sampled_from(sorted(BASES)))
    tail = draw(st.integers(0, 10**9))
    fields: dict[str, Any] = {"key": Key("reseller"), "action": "add", "service": Ref(panel_id),
                              **{k: v.format(n=tail) for k, v in BASES[panel_id].items()}}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        change = draw(st.sampled_from(["text", "drop", "service"]))
        if change == "drop":
            fields.pop(name, None)
        elif change == "service":
            fields["service"] = Ref(draw(st.sampled_from(sorted(BASES))))
        else:
            fields[name] = draw(TEXTS)
    return fields


@st.composite
def any_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Any action (mostly a real one, with a real key) with any fields: ids, lists of
    ids, anything at all."""
    who = draw(st.sampled_from(["reseller", "reseller", "reseller", "other", "text", "none"]))
    fields: dict[str, Any] = {"key": draw(TEXTS) if who == "text" else Key(who)}
    if who == "none":
        del fields["key"]
    fields["action"] = draw(st.one_of(st.sampled_from(ACTIONS), st.sampled_from(ACTIONS),
                                      st.sampled_from(ACTIONS).map(str.upper), TEXTS))
    for name in draw(st.lists(st.sampled_from(["order", "orders", "refill", "refills"]),
                              max_size=2, unique=True)):
        fields[name] = draw(st.one_of(IDS, ID_LISTS))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        fields[name] = draw(st.one_of(TEXTS, IDS, ID_LISTS))
    for name in draw(st.lists(SMALL_TEXT, max_size=2)):  # fields no action reads
        fields[name] = draw(TEXTS)
    return fields


ENCODINGS = st.sampled_from(["form", "query", "json", "multipart", "form+query"])


async def resolve(target: Target, value: Any, *, json_body: bool) -> Any:
    """A drawn value as it is sent: markers become keys, numbers and ids; lists become
    comma-separated text outside JSON."""
    match value:
        case Key(who):
            return target.keys.get(who, who)
        case Ref(panel_id):
            return str(target.refs[panel_id])
        case Own(foreign=True):
            return str(target.foreign_order)
        case Own():
            row = await target.db.fetchone("SELECT MAX(id) FROM orders WHERE user_id = ?",
                                           (RESELLER,))
            return str(row[0] or 1)
        case list():
            items = [await resolve(target, v, json_body=json_body) for v in value]
            return items if json_body else ",".join(str(i) for i in items)
    return value


async def send(target: Target, fields: dict[str, Any], encoding: str,
               extra: dict[str, Any] | None = None) -> tuple[httpx.Response, dict[str, Any]]:
    """Send ``fields`` encoded as ``encoding`` (``extra``: JSON-only values); returns
    the answer and the fields as the server should read them (None: it can't)."""
    json_body = encoding == "json"
    sent = {str(k): await resolve(target, v, json_body=json_body) for k, v in fields.items()}
    url = target.shop.api_url
    if encoding == "query":  # a URL's length is bounded by every server: keep it short
        sent = {k[:40]: str(v)[:200] for k, v in sent.items()}
        return await target.http.get(url, params=sent), sent
    if encoding == "json":
        sent.update(extra or {})
        body = json.dumps(sent).encode()
        return await target.http.post(url, content=body,
                                      headers={"Content-Type": "application/json"}), sent
    if encoding == "multipart":
        return await target.http.post(url, data=sent,
                                      files={"upload": ("x.bin", b"\x00\xff" * 10)}), sent
    if encoding == "form+query":  # the body's fields win over the query's
        query = {k[:40]: str(v)[:200] for k, v in list(sent.items())[::2]}
        return await target.http.post(url, params=query, data=sent), sent
    return await target.http.post(url, data=sent), sent


# -------------------------------------------------------------------- what must hold

def _is_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _json_text(value: Any) -> bool:
    """Whether a JSON value holds only real characters (no half surrogates)."""
    if isinstance(value, str):
        return _is_text(value)
    if isinstance(value, list):
        return all(_json_text(v) for v in value)
    if isinstance(value, dict):
        return all(_is_text(k) and _json_text(v) for k, v in value.items())
    return True


def _decimal(text: Any) -> Decimal:
    assert isinstance(text, str), text
    number = Decimal(text)
    assert number.is_finite() and number >= 0, text
    return number


def _status_item(item: Any) -> None:
    assert isinstance(item, dict), item
    if set(item) == {"error"}:
        assert item["error"] == "Incorrect order ID"
        return
    assert set(item) == STATUS_KEYS, item
    _decimal(item["charge"])
    assert item["status"] in STATUS_WORDS and item["currency"] == "USD"
    assert item["start_count"].isdigit() and item["remains"].isdigit()


def check_shape(body: Any) -> str:
    """The answer is one a panel gives: an error, or one action's shape. Returns
    what it is ("error" or the action)."""
    if isinstance(body, dict) and set(body) == {"error"}:
        assert isinstance(body["error"], str) and body["error"].strip()
        return "error"
    if isinstance(body, list):
        for item in body:
            assert isinstance(item, dict), item
            if set(item) == SERVICE_KEYS:
                assert item["type"] and _decimal(item["rate"]) >= 0
                assert int(item["min"]) <= int(item["max"])
            elif set(item) == {"order", "refill"}:
                assert isinstance(item["refill"], int) or set(item["refill"]) == {"error"}
            elif set(item) == {"order", "cancel"}:
                assert item["cancel"] == 1 or set(item["cancel"]) == {"error"}
            else:
                assert set(item) == {"refill", "status"}, item
                status = item["status"]
                assert status == {"error": "Refill not found"} or status in REFILL_WORDS
        return "list"
    assert isinstance(body, dict), body
    if set(body) == {"order"}:
        assert isinstance(body["order"], int) and body["order"] > 0
        return "add"
    if set(body) == {"balance", "currency"}:
        _decimal(body["balance"])
        return "balance"
    if set(body) == {"refill"}:
        assert body["refill"].isdigit()
        return "refill"
    if set(body) == {"status"}:
        assert body["status"] in REFILL_WORDS
        return "refill_status"
    if set(body) == STATUS_KEYS and all(isinstance(v, str) for v in body.values()):
        _status_item(body)
        return "status"
    for item in body.values():  # many statuses, by the ids as asked
        _status_item(item)
    return "statuses"


@dataclass(frozen=True)
class Books:
    orders: int  # the highest order id
    sandbox_orders: int


async def books(target: Target) -> Books:
    row = await target.db.fetchone("SELECT COALESCE(MAX(id), 0) FROM orders")
    return Books(int(row[0]), len(target.sandbox.panel.orders))


async def check_books(target: Target, before: Books, answer: Any) -> None:
    """Money and orders are consistent after one request (see the module's doc)."""
    db = target.db
    for user_id, balance, total in await db.fetchall(
            "SELECT u.id, u.balance_minor, COALESCE(SUM(l.amount_minor), 0) FROM users u"
            " LEFT JOIN ledger l ON l.user_id = u.id GROUP BY u.id"):
        assert balance == total >= 0, (user_id, balance, total)
    rows = await db.fetchall(
        "SELECT o.id, o.user_id, o.state, o.price_minor, o.panel_order_id,"
        " (SELECT COALESCE(SUM(-amount_minor), 0) FROM ledger WHERE order_id = o.id"
        "  AND kind = 'order'),"
        " (SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE order_id = o.id"
        "  AND kind = 'refund')"
        " FROM orders o WHERE o.id > ?", (before.orders,))
    placed = 0
    for order_id, user_id, state, price, panel_order, debit, refund in rows:
        assert debit == price > 0, (order_id, debit, price)  # no order without its debit
        assert user_id in (RESELLER, OTHER)  # only a key's owner can have ordered
        if state == "failed":
            assert refund == price and panel_order is None
        elif state == "unknown":  # the sandbox's answer was too slow: kept, not refunded
            assert refund == 0 and answer == {"order": order_id}
            placed = len(target.sandbox.panel.orders) - before.sandbox_orders
        else:
            assert refund == 0 and panel_order is not None
            placed += 1
            assert answer == {"order": order_id}
    assert len(rows) <= 1  # one request, one order at most
    error = answer.get("error") if isinstance(answer, dict) else None
    if error is not None and (FORM_ERROR.match(error) or error == "Not enough funds on balance"):
        assert not rows, (error, rows)  # refused before anything was placed or charged
    assert len(target.sandbox.panel.orders) - before.sandbox_orders == placed


async def attack(target: Target, fields: dict[str, Any], encoding: str,
                 extra: dict[str, Any] | None = None) -> Any:
    before = await books(target)
    response, sent = await send(target, fields, encoding, extra)
    assert response.status_code < 500, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    readable = encoding != "json" or _json_text(sent)
    # A multipart field's name goes in a header of its part: httpx escapes control
    # characters there but ESC and DEL, which make the part unreadable.
    may_be_unreadable = encoding == "multipart" and not all(k.isprintable() for k in sent)
    if response.status_code == 400:
        assert body == MALFORMED and (not readable or may_be_unreadable), sent
    else:
        assert response.status_code == 200 and readable, (response.status_code, sent)
        kind = check_shape(body)
        # --hypothesis-show-statistics: how often each answer came (orders placed among them)
        event(kind if kind != "error" else f"error: {body['error'].split(':')[0][:40]}")
    await check_books(target, before, body)
    return body


# -------------------------------------------------------------------- the properties

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(fields=add_forms(), encoding=ENCODINGS)
async def test_hostile_add_forms(target: Target, fields: dict[str, Any], encoding: str) -> None:
    await attack(target, fields, encoding)


@SETTINGS
@given(fields=any_requests(), encoding=ENCODINGS)
async def test_hostile_requests_of_every_action(target: Target, fields: dict[str, Any],
                                                encoding: str) -> None:
    await attack(target, fields, encoding)


@settings(SETTINGS, max_examples=100)
@given(fields=st.one_of(add_forms(), any_requests()),
       extra=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=4))
async def test_any_json_value_in_any_field(target: Target, fields: dict[str, Any],
                                           extra: dict[str, Any]) -> None:
    await attack(target, fields, "json", extra)


@settings(SETTINGS, max_examples=60)
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=x", "text/plain",
                                     "application/octet-stream", "application/json; charset=utf-8"]))
async def test_raw_bodies(target: Target, body: bytes, content_type: str) -> None:
    before = await books(target)
    response = await target.http.post(target.shop.api_url, content=body,
                                      headers={"Content-Type": content_type})
    assert response.status_code in (200, 400), response.text[:300]
    answer = response.json()
    if response.status_code == 400:
        assert answer == MALFORMED
    else:
        assert check_shape(answer) == "error"  # no key in it
    if content_type.startswith("application/json") and body:  # readable: exactly an object
        try:
            parsed = json.loads(body.decode())
        except (UnicodeDecodeError, ValueError):
            parsed = None
        readable = isinstance(parsed, dict) and _json_text(parsed)
        assert (response.status_code == 200) == readable, body
    await check_books(target, before, answer)


async def test_half_characters_in_json_are_unreadable_not_an_internal_error(
        target: Target) -> None:
    """JSON can escape half of a character; Python reads it as a lone surrogate, which
    no hash, database or panel takes (it answered 500 for the key and every field)."""
    for fields in ({"key": "\ud800", "action": "balance"},
                   {"key": target.keys["reseller"], "action": "add",
                    "service": target.refs[101], "link": "https://instagram.com/p/\udcff",
                    "quantity": 100},
                   {"key": target.keys["reseller"], "action": "status", "order": "1\ud800"}):
        before = await books(target)
        response = await target.http.post(target.shop.api_url,
                                          content=json.dumps(fields).encode(),
                                          headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()) == (400, MALFORMED)
        await check_books(target, before, response.json())


async def test_a_multipart_part_with_no_http_header_is_unreadable_not_an_internal_error(
        target: Target) -> None:
    """A field named with ESC made aiohttp's multipart reader raise InvalidHeader,
    which reached the client as a bare 500 page."""
    for form, upload in (({"\x1b": "v"}, "file"), ({}, "\x1b")):
        response = await target.http.post(
            target.shop.api_url, data={"key": target.keys["reseller"], "action": "balance",
                                       **form}, files={upload: ("x.bin", b"1")})
        assert (response.status_code, response.json()) == (400, MALFORMED)
