"""Promo codes: an admin creates and disables them, a customer redeems them.

Knows nothing of Telegram: the admin's ``/promo_new`` arguments come in as text
(``parse``), a customer's code as text (``redeem``), and every answer goes back
as a value for the handlers to render (``PromoRefused``, ``Redemption``).

- A **balance** code credits its amount at once: the ledger row (kind ``promo``,
  key ``promo:<code id>:<user id>:<request>``, the request being the customer's
  message: replayed after a restart, it answers as the first time and credits
  nothing more), the ``promo_uses`` row and the code's use count are one
  transaction. A customer
  makes at most ``per_user`` uses of a code, all customers together at most
  ``max_uses``; the count is taken by one conditional statement, so of 50
  customers redeeming the last use at once exactly one is credited.
- A **discount** code is only attached to the customer's next order (one code at
  a time: a new one replaces it). The order's own transaction consumes it, and
  gives it back when the order fails or is refunded in full (storage/promo.py
  ``use_in`` / ``give_back_in``, called by the orders); ``redeem`` refuses up
  front what that would refuse.

Codes are case-insensitive: stored and compared upper case.

Guessing is slowed: a customer who sent ``MISSES_ALLOWED`` codes that are no
code or no such code within ``MISS_WINDOW`` seconds is refused
(``TOO_MANY_TRIES``, nothing looked up) until the oldest of them is that old, so
a short balance code can't be found by trying every word. The count is kept in
memory: a restart forgets it, which a guesser can't cause.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.panel.order_types import N_, FieldError
from bot.shop.money.amounts import (
    AmountError,
    SpacedAmount,
    parse_amount,
    refuse_spaced_amount,
)
from bot.shop.money.formatting import money
from storage import audit, ledger
from storage import promo as promo_store
from storage.db import Database
from storage.promo import PromoCode

__all__ = ["EXAMPLES", "SYNTAX", "NewCode", "Outcome", "PromoCode", "PromoCodes",
           "PromoRefused", "Redemption", "normalise"]

# The argument syntax of /promo_new (and of the admin panel's New code), as typed:
# the words are the command's own, not translated.
SYNTAX = ("CODE balance AMOUNT [uses=N] [per_user=N] [days=N]\n"
          "CODE discount PERCENT [uses=N] [per_user=N] [days=N] [min=AMOUNT]")
EXAMPLES = ("WELCOME5 balance 5 uses=100\n"
            "SPRING10 discount 10 days=30 min=5")

_CODE = re.compile(r"[A-Z0-9_-]{3,32}")
# "10", "12.5", "12,5", "10%", and "%10" as Turkish writes it.
_PERCENT = re.compile(r"%?(\d{1,3})(?:[.,](\d{1,2}))?%?")
_WHOLE = re.compile(r"\d{1,7}")
MAX_TEXT = 300  # characters of /promo_new arguments
SHOWN = 40  # characters of a typed word quoted back in a refusal
DAY = 24 * 60 * 60
# The options of /promo_new: the largest value of each whole-number one.
_LIMITS = {"uses": 1_000_000, "per_user": 1_000, "days": 3_650}
MISSES_ALLOWED = 5  # codes that are none, per customer within MISS_WINDOW
MISS_WINDOW = 15 * 60  # seconds
MISSES_KEPT = 10_000  # customers whose misses are remembered (the oldest go first)


def normalise(text: str) -> str | None:
    """A code as stored (upper case), or ``None`` when ``text`` can't be one:
    3 to 32 of ``A-Z 0-9 _ -`` (ASCII only: ``ß`` does not become ``SS``)."""
    text = text.strip()
    if not text.isascii():
        return None
    code = text.upper()
    return code if _CODE.fullmatch(code) else None


def _quoted(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def _show_percent(percent: Decimal) -> Decimal:
    """``10`` rather than ``10.00`` or ``1E+1``; ``12.5`` rather than ``12.50``."""
    return percent.quantize(Decimal(1)) if percent == percent.to_integral() else percent.normalize()


class PromoRefused(FieldError):
    """What is wrong with an admin's new code (or why it can't be made): a
    translatable message with its example; ``cause`` is the amount's own error
    when the amount was what was wrong, shown after it."""

    def __init__(self, message: str, cause: FieldError | None = None, **params: object) -> None:
        super().__init__("promo", message, **params)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class NewCode:
    """A code as an admin asked for it, checked."""

    code: str
    kind: str  # balance | discount
    amount_minor: int | None = None
    percent: Decimal | None = None
    max_uses: int | None = None  # None: unlimited
    per_user: int = 1
    days: int | None = None  # None: never expires
    min_order_minor: int = 0


class Outcome(StrEnum):
    CREDITED = "credited"  # a balance code: the amount is on the balance
    ATTACHED = "attached"  # a discount code: waits for the next order
    REPLACED = "replaced"  # attached, in place of another code (``Redemption.replaced``)
    INVALID = "invalid"  # not the shape of a code
    UNKNOWN = "unknown"  # no such code
    DISABLED = "disabled"  # an admin turned it off
    EXPIRED = "expired"
    USED_UP = "used_up"  # all its uses are made
    ALREADY_USED = "already_used"  # this customer made all the uses one customer may
    TOO_MANY_TRIES = "too_many_tries"  # too many codes that are none: wait (``wait_minutes``)


@dataclass(frozen=True, slots=True)
class Redemption:
    """What a customer's code did, with the numbers its answer shows."""

    outcome: Outcome
    code: str  # upper case; as typed (cut) when INVALID
    currency: str
    kind: str | None = None  # balance | discount, when the code exists
    amount_minor: int = 0  # a balance code's credit
    balance_minor: int | None = None  # the balance after the credit
    percent: Decimal | None = None
    min_order_minor: int = 0
    per_user: int = 1
    replaced: str | None = None  # the code a discount code took the place of
    wait_minutes: int = 0  # TOO_MANY_TRIES: until the customer may try again

    @property
    def accepted(self) -> bool:
        return self.outcome in (Outcome.CREDITED, Outcome.ATTACHED, Outcome.REPLACED)


class PromoCodes:
    """The promo codes of this shop's database, in ``currency``; a discount code may
    take at most ``max_percent`` off (``DISCOUNT_MAX_PERCENT``)."""

    def __init__(self, db: Database, *, currency: str, max_percent: Decimal,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.currency = currency
        self.max_percent = max_percent
        self._clock = clock
        self._misses: dict[int, deque[float]] = {}  # customer -> times of codes that were none

    # ------------------------------------------------------------ the admin's

    def parse(self, text: str, lang: str | None = "en") -> NewCode:
        """``/promo_new``'s arguments (``SYNTAX``) as a ``NewCode``; amounts read by the
        shop's one rule in the admin's locale ``lang``. Raises ``PromoRefused``."""
        if len(text) > MAX_TEXT:
            raise PromoRefused(N_("That is too long: at most {limit} characters, like {example}."),
                               limit=MAX_TEXT, example="SPRING10 discount 10 uses=100")
        words = text.split()
        if len(words) < 3:
            raise PromoRefused(N_("A new code is at least three words: the code, balance or "
                                  "discount, and the amount or percent, like {example}."),
                               example="SPRING10 discount 10")
        code = normalise(words[0])
        if code is None:
            raise PromoRefused(N_("“{code}” can't be a code: use 3 to 32 of the letters A-Z, "
                                  "the digits 0-9, _ and -, like {example}."),
                               code=_quoted(words[0]), example="SPRING10")
        kind = words[1].lower()
        options = words[3:]
        if kind == "balance":
            new = NewCode(code, kind, amount_minor=self._amount(words[2], options, lang))
        elif kind == "discount":
            new = NewCode(code, kind, percent=self._percent(words[2]))
        else:
            raise PromoRefused(N_("“{kind}” is not a kind of code: write balance (an amount "
                                  "added at once) or discount (a percent off the next "
                                  "order), like {example}."),
                               kind=_quoted(words[1]), example=f"{code} balance 5")
        return self._options(new, options, lang)

    def _amount(self, text: str, rest: list[str], lang: str | None, option: str = "") -> int:
        try:
            # One word: "5 000 uses=3" is refused, not read as 5 with a stray "000".
            refuse_spaced_amount(text, " ".join(rest), self.currency, lang)
            return parse_amount(text, self.currency, lang)
        except SpacedAmount as exc:
            raise PromoRefused(N_("Write the amount as one number without spaces, like "
                                  "{example}."), example=f"{option}{exc.params['example']}"
                               ) from None
        except AmountError as exc:
            raise PromoRefused(N_("“{amount}” is not an amount in {currency}."), cause=exc,
                               amount=_quoted(option + text), currency=self.currency) from None

    def _percent(self, text: str) -> Decimal:
        match = _PERCENT.fullmatch(text) if text.isascii() else None
        percent = Decimal(f"{match[1]}.{match[2] or 0}") if match else Decimal(0)
        if not 0 < percent <= 100:
            raise PromoRefused(N_("“{percent}” is not a percent: send a number above 0 and at "
                                  "most 100, with at most two decimals, like {example}."),
                               percent=_quoted(text), example="10")
        if percent > self.max_percent:
            raise PromoRefused(N_("A discount can be at most {maximum}% (the "
                                  "DISCOUNT_MAX_PERCENT setting): send a smaller percent, like "
                                  "{example}."), maximum=_show_percent(self.max_percent),
                               example="10")
        return _show_percent(percent)

    def _options(self, new: NewCode, words: list[str], lang: str | None) -> NewCode:
        seen: dict[str, int] = {}
        for index, word in enumerate(words):
            name, equals, value = word.partition("=")
            name = name.lower()
            if not equals or name not in (*_LIMITS, "min"):
                raise PromoRefused(N_("“{option}” is not an option: write uses=N, per_user=N, "
                                      "days=N (and min=AMOUNT for a discount code), like "
                                      "{example}."), option=_quoted(word), example="uses=100")
            if name in seen:
                raise PromoRefused(N_("{option} is given twice: write it once, like {example}."),
                                   option=f"{name}=", example=f"{name}={value or 10}"[:SHOWN])
            if name == "min":
                if new.kind != "discount":
                    raise PromoRefused(N_("min= is for discount codes only (the smallest order "
                                          "the discount applies to), like {example}."),
                                       example=f"{new.code} discount 10 min=5")
                seen[name] = self._amount(value, words[index + 1:], lang, "min=")
                continue
            limit = _LIMITS[name]
            if not (value.isascii() and _WHOLE.fullmatch(value) and 1 <= int(value) <= limit):
                raise PromoRefused(N_("{option} takes a whole number from 1 to {maximum}, like "
                                      "{example}."), option=f"{name}=", maximum=limit,
                                   example=f"{name}=10")
            seen[name] = int(value)
        return NewCode(new.code, new.kind, new.amount_minor, new.percent,
                       max_uses=seen.get("uses"), per_user=seen.get("per_user", 1),
                       days=seen.get("days"), min_order_minor=seen.get("min", 0))

    async def create(self, admin_id: int, text: str, lang: str | None = "en") -> PromoCode:
        """The code ``text`` describes (``parse``), made now with its audit row
        (``promo_new``). Raises ``PromoRefused``, also when the code exists already."""
        new = self.parse(text, lang)
        expires_at = None if new.days is None else self._clock() + new.days * DAY
        async with self.db.transaction() as conn:
            made = await promo_store.create(
                conn, code=new.code, kind=new.kind, amount_minor=new.amount_minor,
                percent=new.percent, min_order_minor=new.min_order_minor, max_uses=new.max_uses,
                per_user=new.per_user, expires_at=expires_at, created_by=admin_id)
            if made is None:
                raise PromoRefused(N_("The code {code} exists already: choose another, like "
                                      "{example}."), code=new.code, example=_another(new.code))
            await audit.record(conn, admin_id=admin_id, action="promo_new", target_kind="promo",
                               target_id=made.code, after=self.describe(made))
        return made

    def describe(self, code: PromoCode) -> str:
        """A code's terms in a line, for the audit log (English, like the log's notes)."""
        if code.amount_minor is not None:
            terms = [f"balance {money(code.amount_minor, self.currency)}"]
        else:
            terms = [f"discount {code.percent}%"]
            if code.min_order_minor:
                terms.append(f"orders from {money(code.min_order_minor, self.currency)}")
        terms.append(f"{code.max_uses} uses" if code.max_uses else "unlimited uses")
        terms.append(f"{code.per_user} per customer")
        if code.expires_at is not None:
            expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(code.expires_at))
            terms.append(f"expires {expiry}")
        return ", ".join(terms)

    async def disable(self, admin_id: int, text: str) -> tuple[PromoCode | None, bool]:
        """Turn the code ``text`` off (audit ``promo_off``): (the code, whether it was
        on until now); (None, False) when there is no such code. Customers' uses
        already made stay; a discount code attached to a next order no longer applies."""
        code = normalise(text)
        if code is None:
            return None, False
        async with self.db.transaction() as conn:
            disabled = await promo_store.disable(conn, code)
            if disabled is None:
                return await promo_store.by_code(conn, code), False
            await audit.record(conn, admin_id=admin_id, action="promo_off", target_kind="promo",
                               target_id=code, before="on", after="off")
        return disabled, True

    async def get(self, code_id: int) -> PromoCode | None:
        return await promo_store.by_id(self.db, code_id)

    async def listing(self, limit: int, offset: int = 0) -> tuple[list[PromoCode], int]:
        """A page of the codes with their uses, newest first, and how many there are."""
        return await promo_store.page(self.db, limit, offset)

    def expired(self, code: PromoCode) -> bool:
        return code.expired(self._clock())

    # ------------------------------------------------------------ the customer's

    async def redeem(self, user_id: int, text: str, request_id: str | None = None) -> Redemption:
        """``user_id`` (a registered customer) redeems the code ``text``: a balance code
        is credited, a discount code attached to their next order, each in one
        transaction; anything else is refused with nothing changed. ``request_id``
        (the message's chat and message id) makes the same message, replayed, credit
        nothing more."""
        now = self._clock()
        wait = self._wait(user_id, now)
        if wait:
            return Redemption(Outcome.TOO_MANY_TRIES, "", self.currency, wait_minutes=wait)
        code = normalise(text)
        if code is None:
            redemption = Redemption(Outcome.INVALID, _quoted(text.strip()), self.currency)
        else:
            redemption = await self.db.transact(self._redeem_in, code, user_id, now,
                                                request_id or uuid.uuid4().hex)
        if redemption.outcome in (Outcome.INVALID, Outcome.UNKNOWN):
            self._missed(user_id, now)
        return redemption

    def _wait(self, user_id: int, now: float) -> int:
        """Minutes ``user_id`` must wait before trying a code again; 0: none."""
        misses = self._misses.get(user_id)
        while misses and misses[0] <= now - MISS_WINDOW:
            misses.popleft()
        if not misses or len(misses) < MISSES_ALLOWED:
            return 0
        return max(1, -int((now - misses[0] - MISS_WINDOW) // 60))

    def _missed(self, user_id: int, now: float) -> None:
        misses = self._misses.pop(user_id, None) or deque(maxlen=MISSES_ALLOWED)
        misses.append(now)
        self._misses[user_id] = misses  # last: the most recent customer
        if len(self._misses) > MISSES_KEPT:
            del self._misses[next(iter(self._misses))]

    def _redeem_in(self, conn: sqlite3.Connection, typed: str, user_id: int, now: float,
                   request_id: str) -> Redemption:
        code = promo_store.code_in(conn, typed)
        if code is None:
            return Redemption(Outcome.UNKNOWN, typed, self.currency)
        key = f"promo:{code.id}:{user_id}:{request_id}"
        credited = ledger.entry_in(conn, key) if code.kind == "balance" else None
        if credited is not None:  # this very message was redeemed (replayed after a restart)
            return self._answer(code, Outcome.CREDITED, balance_minor=credited.balance_after)
        if code.disabled_at is not None:
            return self._answer(code, Outcome.DISABLED)
        if code.expired(now):
            return self._answer(code, Outcome.EXPIRED)
        used = promo_store.uses_of_user_in(conn, code.id, user_id)
        if used >= code.per_user:
            return self._answer(code, Outcome.ALREADY_USED)
        if code.kind == "discount":
            if code.used_up:
                return self._answer(code, Outcome.USED_UP)
            attached = promo_store.attached_discount_in(conn, user_id, now)
            if attached is not None and attached.code_id == code.id:
                return self._answer(code, Outcome.ATTACHED)  # attached already: nothing to change
            promo_store.attach_in(conn, code.id, user_id)
            if attached is None:
                return self._answer(code, Outcome.ATTACHED)
            return self._answer(code, Outcome.REPLACED, replaced=attached.code)
        if not promo_store.take_use_in(conn, code.id):
            return self._answer(code, Outcome.USED_UP)
        promo_store.record_use_in(conn, code.id, user_id)
        assert code.amount_minor is not None  # a balance code has one (a CHECK says so)
        entry = ledger.post_in(conn, user_id=user_id, amount_minor=code.amount_minor, kind="promo",
                               key=key, note=code.code)
        return self._answer(code, Outcome.CREDITED, balance_minor=entry.balance_after)

    def _answer(self, code: PromoCode, outcome: Outcome, *, balance_minor: int | None = None,
                replaced: str | None = None) -> Redemption:
        return Redemption(outcome, code.code, self.currency, kind=code.kind,
                          amount_minor=code.amount_minor or 0, balance_minor=balance_minor,
                          percent=code.percent, min_order_minor=code.min_order_minor,
                          per_user=code.per_user, replaced=replaced)


def _another(code: str) -> str:
    """An example of a code like ``code`` that is not it."""
    return f"{code[:31]}2" if not code.endswith("2") else f"{code[:31]}3"
