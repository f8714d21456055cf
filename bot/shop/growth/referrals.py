"""Referrals: customers invite customers and earn on the money those bring in.

- **The link.** Every customer has one, ``https://t.me/<bot>?start=<code>``: the
  code is ``r`` and 10 random URL-safe characters (never the Telegram id, never
  like a service's ``s<digits>`` link), made the first time it is asked for.
- **Who brought whom.** Only the link of a customer's *first* /start counts
  (``users.started_at``), and only when they had not used the shop before it
  (typed /balance and topped up without pressing Start); a later link, their own
  link, a code nobody has, and a link that would close a loop (A brought B, B's link brings A; at any depth)
  change nothing.
- **What it pays.** ``REFERRAL_PERCENT`` of each Stars top-up a referred customer
  makes goes to their referrer, ``REFERRAL_PERCENT_2`` to the referrer's referrer,
  each rounded down to the minor unit (0 pays nothing); a top-up under
  ``REFERRAL_MIN_TOPUP`` pays nothing, nor does a referrer an admin turned off.
  Only Stars top-ups pay: admin credits, promo codes and commissions never do.
  A commission is a ledger row of kind ``referral`` (key ``referral:<charge>:<level>``),
  a ``referral_payouts`` row, an audit row and the referrer's notice (the outbox),
  all in the top-up's own transaction (``credited``, a ``TopupHook``:
  bot/shop/money/topups.py calls it, knowing nothing of this module).
- **Refunds.** A refunded top-up takes its commissions back in the refund's
  transaction (``refunded``): as much as the referrer's balance holds, never below
  zero, and what they had spent already is written off (counted on the admin's
  screen). A refund that did not happen gives back what it took (``refund_undone``).
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import aiosqlite

from bot.shop.money.formatting import money
from bot.shop.money.topups import Topup
from storage import audit, ledger, outbox
from storage import referrals as store
from storage.db import Database
from storage.referrals import Figures, TopReferrer, Totals

__all__ = ["Figures", "Leaderboard", "Period", "Referrals", "TopReferrer", "Totals",
           "commission", "is_code", "new_code"]

CODE_LENGTH = 10  # random characters after the "r"
_ALPHABET = string.ascii_letters + string.digits + "_-"
_CODE = re.compile(rf"r[A-Za-z0-9_-]{{{CODE_LENGTH}}}")
SYSTEM = 0  # the audit log's admin id for what no admin did (a commission paid)

Period = Literal["7d", "30d", "all"]
PERIOD_DAYS: dict[str, int | None] = {"7d": 7, "30d": 30, "all": None}


def new_code() -> str:
    return "r" + "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    """Whether ``text`` is shaped like a referral code (whether anyone has it is another
    question)."""
    return _CODE.fullmatch(text) is not None


def commission(amount_minor: int, percent: Decimal) -> int:
    """``percent`` of ``amount_minor``, rounded down to the minor unit: exact, in
    integers (a percent of at most 100 never pays more than the amount)."""
    numerator, denominator = percent.as_integer_ratio()
    return amount_minor * numerator // (denominator * 100)


@dataclass(frozen=True, slots=True)
class Leaderboard:
    period: Period
    referrers: list[TopReferrer]
    totals: Totals


class Referrals:
    """The referral program of this shop's database, with its settings: bound once at
    start-up. It is also the top-ups' ``TopupHook``."""

    def __init__(self, db: Database, *, percent: Decimal, percent_2: Decimal = Decimal(0),
                 min_topup_minor: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.percent = percent
        self.percent_2 = percent_2
        self.min_topup_minor = min_topup_minor
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.percent > 0

    # ------------------------------------------------------------ customers

    async def code_for(self, user_id: int) -> str:
        """The customer's link code, made now if they have none. Raises ``LookupError``
        for a customer the shop does not know."""
        code = await store.code_of(self.db, user_id)
        while code is None:
            try:
                code = await store.give_code(self.db, user_id, new_code())
            except store.CodeTaken:
                continue  # 64^10 codes: another try all but never collides again
            if code is None:
                raise LookupError(user_id)
        return code

    async def started(self, user_id: int, code: str) -> int | None:
        """The customer sent /start with the referral link ``code``: their first
        /start is recorded and the code's owner made their referrer (see the module
        doc). Returns the referrer made now, if any. A /start without a code is
        recorded by ``Accounts.register(starting=True)``, in its one statement."""
        if not is_code(code):
            return None
        return await store.start_referred(self.db, user_id, code)

    async def figures(self, user_id: int) -> Figures | None:
        return await store.figures(self.db, user_id)

    # ------------------------------------------------------------ admins

    async def top(self, period: Period, limit: int = 10) -> Leaderboard:
        """The referrers of the last 7 or 30 days (or all time), most earned first."""
        days = PERIOD_DAYS[period]
        since = "" if days is None else datetime.fromtimestamp(
            self._clock() - days * 86_400, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        referrers, totals = await store.top(self.db, since, limit)
        return Leaderboard(period, referrers, totals)

    async def set_off(self, admin_id: int, user_id: int, off: bool) -> bool:
        """Turn a referrer's commissions off (or on again); False when it was so
        already. Raises ``LookupError`` for an unknown customer. Audited."""
        async with self.db.transaction() as conn:
            before = await store.set_off(conn, user_id, off)
            if before is None:
                raise LookupError(user_id)
            if before == off:
                return False
            await audit.record(conn, admin_id=admin_id,
                               action="referrals_off" if off else "referrals_on",
                               target_kind="user", target_id=user_id,
                               before="off" if before else "on", after="off" if off else "on")
        return True

    # ------------------------------------------------------------ the TopupHook

    async def credited(self, conn: aiosqlite.Connection, topup: Topup) -> bool:
        """Pay the commissions of a top-up just credited, in its transaction; whether a
        notice was queued."""
        if not self.enabled or topup.charge_id is None or topup.amount_minor < self.min_topup_minor:
            return False
        queued = False
        referred = topup.user_id
        for level, percent in ((1, self.percent), (2, self.percent_2)):
            if not percent:
                break
            referrer = await store.referrer_of(conn, referred)
            if referrer is None:
                break
            amount = commission(topup.amount_minor, percent)
            if amount > 0 and not referrer.off:
                queued |= await self._pay(conn, topup, level, percent, referrer.id, amount)
            referred = referrer.id
        return queued

    async def _pay(self, conn: aiosqlite.Connection, topup: Topup, level: int, percent: Decimal,
                   referrer_id: int, amount_minor: int) -> bool:
        charge_id = topup.charge_id
        assert charge_id is not None
        if not await store.record_payout(conn, charge_id=charge_id, level=level,
                                         referrer_id=referrer_id, referred_id=topup.user_id,
                                         topup_minor=topup.amount_minor,
                                         amount_minor=amount_minor):
            return False
        currency = topup.currency
        entry = await ledger.post(conn, user_id=referrer_id, amount_minor=amount_minor,
                                  kind="referral", key=f"referral:{charge_id}:{level}",
                                  note=f"level {level}: user {topup.user_id}'s top-up")
        await audit.record(conn, admin_id=SYSTEM, action="referral_payout", target_kind="user",
                           target_id=referrer_id,
                           before=money(entry.balance_after - amount_minor, currency),
                           after=money(entry.balance_after, currency),
                           note=f"level {level}: {percent}% of user {topup.user_id}'s top-up of"
                                f" {money(topup.amount_minor, currency)} (charge {charge_id})")
        await outbox.queue(conn, [referrer_id], "referral", {
            "level": level, "amount_minor": amount_minor, "currency": currency,
            "balance_minor": entry.balance_after})
        return True

    async def refunded(self, conn: aiosqlite.Connection, topup: Topup, attempt: int,
                       admin_id: int) -> None:
        """Take back the commissions of a top-up whose refund just took its credit
        back (refund ``attempt``), in that transaction: at most what each referrer's
        balance holds; the rest, spent already, is written off."""
        charge_id = topup.charge_id
        assert charge_id is not None
        for payout in await store.payouts_of(conn, charge_id, "paid"):
            balance = await ledger.balance_in(conn, payout.referrer_id)
            taken = min(payout.amount_minor, balance)
            written_off = payout.amount_minor - taken
            if not await store.mark_taken_back(conn, payout, taken_minor=taken,
                                               written_off_minor=written_off):
                continue
            after = balance
            if taken:
                entry = await ledger.post(
                    conn, user_id=payout.referrer_id, amount_minor=-taken,
                    kind="referral_clawback",
                    key=f"referral-clawback:{charge_id}:{payout.level}:{attempt}",
                    note=f"level {payout.level}: user {topup.user_id}'s top-up refunded")
                after = entry.balance_after
            await audit.record(
                conn, admin_id=admin_id, action="referral_clawback", target_kind="user",
                target_id=payout.referrer_id, before=money(balance, topup.currency),
                after=money(after, topup.currency),
                note=f"level {payout.level} commission of charge {charge_id}"
                     f" ({money(payout.amount_minor, topup.currency)}): top-up refunded;"
                     f" {money(taken, topup.currency)} taken back,"
                     f" {money(written_off, topup.currency)} written off (spent already)")

    async def refund_undone(self, conn: aiosqlite.Connection, topup: Topup, attempt: int,
                            admin_id: int) -> None:
        """Refund ``attempt`` did not happen (its debit was just given back): give
        back what it took from the referrers, in that transaction."""
        charge_id = topup.charge_id
        assert charge_id is not None
        for payout in await store.payouts_of(conn, charge_id, "taken_back"):
            if not await store.mark_given_back(conn, payout):
                continue
            balance = await ledger.balance_in(conn, payout.referrer_id)
            after = balance
            if payout.taken_back_minor:
                entry = await ledger.post(
                    conn, user_id=payout.referrer_id, amount_minor=payout.taken_back_minor,
                    kind="referral_clawback",
                    key=f"referral-clawback-undone:{charge_id}:{payout.level}:{attempt}",
                    note=f"level {payout.level}: the refund of user {topup.user_id}'s top-up"
                         " did not happen")
                after = entry.balance_after
            await audit.record(
                conn, admin_id=admin_id, action="referral_given_back", target_kind="user",
                target_id=payout.referrer_id, before=money(balance, topup.currency),
                after=money(after, topup.currency),
                note=f"level {payout.level} commission of charge {charge_id}: the top-up's"
                     " refund did not happen")
