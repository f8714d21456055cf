"""API v2 for the shop's own customers: the actions panels answer, on the shop's
catalog, prices, balances and orders (README "API for your resellers").

``WholesaleApi.answer`` takes a request's fields (the web server merges the query
string and the body, bot/app/api_endpoint.py) and returns what to send back, in
the shapes of ``../shared/panel-api/SPEC.md``: any panel client, another shop bot,
or a second copy of this bot buys from the shop as from a panel.

* Every answer is HTTP 200, errors as ``{"error": "..."}`` in the words panels use
  (so a client's classification, bot/panel/errors.py's among them, reads them
  right); 429 past ``API_RATE_LIMIT`` requests a minute per key.
* ``add`` checks the form with the conversation's own rules (bot/shop/orders/form.py
  ``fill``) and places it with the one ``OrderService.place``: the debit and the
  order in one transaction, never above the price ``services`` lists for the
  customer (their markup and loyalty tier; a discount code attached to their next
  order applies too). The same request (the service and every order field, as
  normalised) again within 60 s answers the first order (clients retry; the check
  is in the order's transaction, so repeats sent at once still make one order).
  That transaction checks the key again: an add under way when the key stopped
  working (revoked, replaced, access off, customer blocked) charges nothing. An
  order whose outcome at the panel is unknown is answered with its number: it
  exists, and its status says Pending until it is settled.
* ``status``, ``refill``, ``refill_status``, ``cancel`` see the key holder's orders
  only; another's order answers "Incorrect order ID", as an unknown one does.
  Statuses are the shop's record (kept fresh by the tracker), never a panel call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.observability import metrics
from bot.panel import PanelError, PanelRejected, RejectReason
from bot.panel.order_types import FieldError
from bot.shop.catalog.pricing import Discount, Pricer
from bot.shop.catalog.shop_catalog import ShopCatalog
from bot.shop.growth.discounts import Discounts
from bot.shop.money.amounts import from_minor
from bot.shop.orders import form
from bot.shop.orders.service import OrderService, Outcome, Placement, ServiceGone
from bot.shop.wholesale.keys import ApiKeys, KeyGone, key_still_works_in
from bot.shop.wholesale.limits import RequestLimit
from storage import ledger
from storage import orders as order_store
from storage.catalog import StoredService
from storage.db import Database, is_row_id
from storage.orders import StoredOrder

log = logging.getLogger(__name__)

MAX_IDS = 100  # ids in one status, refill, refill_status or cancel (as panels allow)
PRICE_TRIES = 3  # an add priced again when a markup changed between its quote and its debit

# Errors in the words panels use (SPEC.md §8), so clients classify them.
BAD_KEY = "Invalid API key"
ACCESS_OFF = "Invalid API key: API access is turned off for this account"
BAD_ACTION = "Incorrect request: unknown action"
BAD_SERVICE = "Incorrect service ID"
BAD_ORDER = "Incorrect order ID"
NO_FUNDS = "Not enough funds on balance"
TOO_MANY = f"Incorrect request: at most {MAX_IDS} ids at once"
NO_IDS = "Incorrect request: no order id"
UNAVAILABLE = "The service is temporarily unavailable, try again later"
NOT_REFILLABLE = "Order cannot be refilled"
NOT_CANCELABLE = "Order cannot be canceled"
REFILL_NOT_FOUND = "Refill not found"
RATE_LIMITED = "Too many requests: at most {limit} a minute; try again in {seconds} s"

# A refusal by the shop's panel, told to the customer by its kind, never in the
# panel's own words (they may name the shop's supplier). The shop's own account
# trouble there (funds, key) is the shop's problem: "temporarily unavailable".
_REFUSALS = {
    RejectReason.BAD_LINK: "Incorrect link",
    RejectReason.QUANTITY: "Incorrect quantity",
    RejectReason.DUPLICATE: "You have active order with this link. Please wait until order"
                            " being completed.",
    RejectReason.DRIPFEED: "This service does not support drip-feed",
    RejectReason.BAD_SERVICE: BAD_SERVICE,
    RejectReason.NOT_ENOUGH_FUNDS: UNAVAILABLE,
    RejectReason.BAD_KEY: UNAVAILABLE,
}
_REFUSED = "The order was refused; check its fields or try another service"

# The shop's order states in the words panels answer `status` with.
_STATUS_WORDS = {
    "submitting": "Pending", "pending": "Pending", "unknown": "Pending",
    "in_progress": "In progress", "completed": "Completed", "partial": "Partial",
    "canceled": "Canceled", "failed": "Canceled",
}
_REFILL_WORDS = {"pending": "Pending", "in_progress": "In progress", "completed": "Completed",
                 "rejected": "Rejected"}


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """What to send back: ``body`` as JSON with HTTP ``status``."""

    body: Any
    status: int = 200
    retry_after: int | None = None  # 429: seconds (the Retry-After header)


def _error(message: str) -> dict[str, str]:
    return {"error": message}


class WholesaleApi:
    def __init__(self, db: Database, keys: ApiKeys, orders: OrderService, *,
                 rate_limit: RequestLimit, discounts: Discounts | None = None) -> None:
        self.db = db
        self.keys = keys
        self.orders = orders
        self.pricer: Pricer = orders.pricer
        self.catalog: ShopCatalog = orders.catalog
        self.currency = self.pricer.shop_currency
        self.discounts = discounts
        self.limit = rate_limit
        self._listings: dict[tuple[int, int, Decimal], list[dict[str, Any]]] = {}

    async def answer(self, fields: Mapping[str, str]) -> ApiAnswer:
        """One request's answer; its metric is counted here."""
        action = fields.get("action", "").strip().lower()
        # Found, limited, then counted: a request past the limit writes nothing (the
        # limit keeps a runaway client off the database, orders' writes wait there).
        access = await self.keys.find(fields.get("key", "").strip())
        if access is None or access.disabled or access.banned:
            if access is not None:
                await self.keys.count_use(access.user_id)
            metrics.api_request(action, "bad_key")
            return ApiAnswer(_error(BAD_KEY if access is None else ACCESS_OFF))
        wait = self.limit.take(access.user_id)
        if wait is not None:
            metrics.api_request(action, "rate_limited")
            return ApiAnswer(_error(RATE_LIMITED.format(limit=self.limit.per_minute,
                                                        seconds=wait)),
                             status=429, retry_after=wait)
        await self.keys.count_use(access.user_id)
        act = _ACTIONS.get(action)
        body = _error(BAD_ACTION) if act is None else await act(self, access.user_id, fields)
        metrics.api_request(action, "error" if isinstance(body, dict) and set(body) == {"error"}
                            else "ok")
        return ApiAnswer(body)

    # ------------------------------------------------------------ services

    async def services(self, user_id: int, _fields: Mapping[str, str]) -> list[dict[str, Any]]:
        """The catalog at this customer's price: ``rate`` per 1000 (a package's price)
        after their markup and loyalty tier, in the shop's currency."""
        tier = None if self.discounts is None else await self.discounts.tier_discount(user_id)
        percent = Decimal(0) if tier is None else tier.percent
        version = (self.catalog.version, await self.pricer.version(), percent)
        listing = self._listings.get(version)
        if listing is None:
            listing = [await self._listed(stored, tier) for stored in
                       await self.catalog.everything() if stored.service.order_type is not None]
            if len(self._listings) >= 8:  # customers on a few tiers; old versions go
                self._listings.clear()
            self._listings[version] = listing
        return listing

    async def _listed(self, stored: StoredService, tier: Discount | None) -> dict[str, Any]:
        service, order_type = stored.service, stored.service.order_type
        assert order_type is not None
        # The price of 1000 as a quote is priced: the tier's discount, cut where the
        # margin floor would cut it on an order (so no order costs more than listed).
        per_thousand = (await self.pricer.unit_quote(stored)).with_discount(
            tier, None, self.orders.router.lowest_price_minor(stored, service.rate))
        return {
            "service": stored.ref, "name": service.name, "type": order_type.name,
            "category": service.category, "rate": self._amount(per_thousand.price_minor),
            "min": str(service.min), "max": str(service.max), "refill": service.refill,
            "cancel": service.cancel, "dripfeed": service.dripfeed,
        }

    def _amount(self, minor: int) -> str:
        return f"{from_minor(minor, self.currency):f}"

    # ------------------------------------------------------------ add

    async def add(self, user_id: int, fields: Mapping[str, str]) -> dict[str, Any]:
        ref = _row_id(fields.get("service", ""))
        if ref is None:
            return _error(BAD_SERVICE)
        try:
            stored = await self.orders.on_sale(ref)
            values = form.fill(stored, fields)
        except ServiceGone:
            return _error(BAD_SERVICE)
        except FieldError as exc:
            return _error(f"Incorrect {exc.field_name}: {exc.render()}")
        order_type = stored.service.order_type
        assert order_type is not None
        repeat_key = _repeat_key(ref, order_type.add_params(values))
        token = f"api:{uuid.uuid4().hex}"
        # The key is checked again in the order's transaction: it may have stopped
        # working (revoked, replaced, access off, customer blocked) since it came in.
        guard = functools.partial(key_still_works_in, user_id=user_id,
                                  key=fields.get("key", "").strip())
        placement: Placement | None = None
        for _ in range(PRICE_TRIES):
            try:  # the service as it is now (a catalog refresh may have changed its limits)
                quote = await self.orders.quote(stored, values, user_id)
                placement = await self.orders.place(user_id, ref, values, token,
                                                    quote.price_minor, api_repeat_key=repeat_key,
                                                    guard=guard)
            except FieldError as exc:
                return _error(f"Incorrect {exc.field_name}: {exc.render()}")
            except KeyGone as gone:
                return _error(ACCESS_OFF if gone.access_off else BAD_KEY)
            if placement.outcome is not Outcome.PRICE_CHANGED:
                break
        assert placement is not None
        return self._placed(placement)

    def _placed(self, placement: Placement) -> dict[str, Any]:
        match placement.outcome:
            case Outcome.PLACED | Outcome.AMBIGUOUS | Outcome.ALREADY:
                assert placement.order is not None
                return {"order": placement.order.id}
            case Outcome.INSUFFICIENT:
                return _error(NO_FUNDS)
            case Outcome.GONE:
                return _error(BAD_SERVICE)
            case Outcome.REJECTED:
                assert placement.reason is not None
                return _error(_REFUSALS.get(placement.reason, _REFUSED))
            case _:  # UNAVAILABLE, NO_PANEL, a price still moving (PRICE_CHANGED)
                return _error(UNAVAILABLE)

    # ------------------------------------------------------------ status

    async def status(self, user_id: int, fields: Mapping[str, str]) -> dict[str, Any]:
        many = "orders" in fields
        ids = _ids(fields.get("orders" if many else "order", ""))
        if isinstance(ids, str):
            return _error(ids)
        owned = await self._owned(user_id, ids)
        refunded = await ledger.refunded_of(self.db, [o.id for o in owned.values()])
        answers = {raw: (self._status(owned[raw], refunded.get(owned[raw].id, 0))
                         if raw in owned else _error(BAD_ORDER)) for raw in ids}
        return answers if many else answers[next(iter(ids))]

    def _status(self, order: StoredOrder, refunded_minor: int) -> dict[str, str]:
        state = order.state
        if order.remains is not None:
            remains = order.remains
        else:
            remains = 0 if state == "completed" else (order.quantity or 0)
        return {"charge": self._amount(max(0, order.price_minor - refunded_minor)),
                "start_count": str(order.start_count or 0),
                "status": _STATUS_WORDS.get(state, "Pending"), "remains": str(remains),
                "currency": self.currency}

    async def _owned(self, user_id: int, ids: Mapping[str, int | None]) -> dict[str, StoredOrder]:
        """The key holder's orders among ``ids``, by the id as given."""
        found = await order_store.get_many(self.db, [n for n in ids.values() if n is not None])
        return {raw: found[number] for raw, number in ids.items()
                if number in found and found[number].user_id == user_id}

    # ------------------------------------------------------------ refill, cancel

    async def refill(self, user_id: int, fields: Mapping[str, str]) -> Any:
        many = "orders" in fields
        ids = _ids(fields.get("orders" if many else "order", ""))
        if isinstance(ids, str):
            return _error(ids)
        owned = await self._owned(user_id, ids)
        results: list[dict[str, Any]] = []
        for raw in ids:  # one by one: a refill is a panel call of its own
            order = owned.get(raw)
            outcome: Any = _error(BAD_ORDER)
            if order is not None:
                try:  # a number, as panels answer in the list (SPEC.md §5)
                    outcome = await self.orders.request_refill(order)
                except PanelRejected:
                    outcome = _error(NOT_REFILLABLE)
                except PanelError:
                    outcome = _error(UNAVAILABLE)
            results.append({"order": _echo(raw, ids[raw]), "refill": outcome})
        if many:
            return results
        outcome = results[0]["refill"]
        return outcome if isinstance(outcome, dict) else {"refill": str(outcome)}

    async def refill_status(self, user_id: int, fields: Mapping[str, str]) -> Any:
        many = "refills" in fields
        ids = _ids(fields.get("refills" if many else "refill", ""))
        if isinstance(ids, str):
            return _error(ids)
        found = await order_store.refills_by_id(
            self.db, [n for n in ids.values() if n is not None])
        results = []
        for raw, number in ids.items():
            refill = None if number is None else found.get(number)
            status: Any = _error(REFILL_NOT_FOUND)
            if refill is not None and refill.user_id == user_id:
                status = _REFILL_WORDS.get(refill.state, refill.state.title())
            results.append({"refill": _echo(raw, number), "status": status})
        if many:
            return results
        status = results[0]["status"]
        return status if isinstance(status, dict) else {"status": status}

    async def cancel(self, user_id: int, fields: Mapping[str, str]) -> Any:
        ids = _ids(fields.get("orders") or fields.get("order", ""))
        if isinstance(ids, str):
            return _error(ids)
        owned = await self._owned(user_id, ids)
        results = []
        for raw in ids:
            order = owned.get(raw)
            outcome: Any = _error(BAD_ORDER)
            if order is not None:
                try:
                    await self.orders.request_cancel(order)
                    outcome = 1
                except PanelRejected:
                    outcome = _error(NOT_CANCELABLE)
                except PanelError:
                    outcome = _error(UNAVAILABLE)
            results.append({"order": _echo(raw, ids[raw]), "cancel": outcome})
        return results

    # ------------------------------------------------------------ balance

    async def balance(self, user_id: int, _fields: Mapping[str, str]) -> dict[str, str]:
        return {"balance": self._amount(await ledger.balance_of(self.db, user_id)),
                "currency": self.currency}


_ACTIONS = {
    "services": WholesaleApi.services, "add": WholesaleApi.add, "status": WholesaleApi.status,
    "refill": WholesaleApi.refill, "refill_status": WholesaleApi.refill_status,
    "cancel": WholesaleApi.cancel, "balance": WholesaleApi.balance,
}


def _repeat_key(ref: int, params: Mapping[str, str]) -> str:
    """What tells a repeat of an ``add`` from another order: the service and every field
    the panel is sent, as normalised (so other comments, or 2 runs of 500 rather than
    1000 at once, are another order, while a link written without https:// is not)."""
    request = json.dumps([ref, sorted(params.items())], ensure_ascii=False)
    return hashlib.sha256(request.encode("utf-8", "surrogatepass")).hexdigest()


def _row_id(text: str) -> int | None:
    """A positive id written in ASCII digits (not "+5", "٣" or "1e3"), else ``None``."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if is_row_id(number) else None


def _ids(text: str) -> dict[str, int | None] | str:
    """The comma-separated ids of a field, each once (by its number: "7" and "07" are
    one order, named as first written), in order, as written with their number (``None``:
    no id); or the error to answer."""
    first: dict[int | str, tuple[str, int | None]] = {}
    for part in text.split(","):
        raw = part.strip()
        if raw:
            number = _row_id(raw)
            first.setdefault(raw if number is None else number, (raw, number))
    ids = dict(first.values())
    if not ids:
        return NO_IDS
    if len(ids) > MAX_IDS:
        return TOO_MANY
    return ids


def _echo(raw: str, number: int | None) -> int | str:
    """An id as it goes back in a list answer: a number when it is one (panels answer ints)."""
    return raw if number is None else number
