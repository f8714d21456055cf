"""Promo codes and their uses (migration 0015).

A discount code attached to a customer's next order is read by the pricing
(``attached_discount``), consumed in the order's own transaction (``use_in``,
in the database's thread with the order's insert and debit) and given back
when that order fails or is refunded in full (``give_back_in``).

The codes themselves (``create``, ``disable``, the admin's list) and a
customer's redemption (``code_in`` ... ``attach_in``, composed in one
transaction by bot/shop/growth/promo_codes.py) are below them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import aiosqlite

from storage.db import NOW, Database, first


@dataclass(frozen=True, slots=True)
class AttachedDiscount:
    """A discount code waiting for its customer's next order, as it stands now."""

    use_id: int
    code_id: int
    code: str
    percent: Decimal
    min_order_minor: int
    usable: bool  # not disabled, not expired, not used up, within the customer's uses


_ATTACHED_SELECT = (
    "SELECT u.id, c.id, c.code, c.percent, c.min_order_minor,"
    " c.disabled_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > ?)"
    "  AND (c.max_uses IS NULL OR c.uses < c.max_uses)"
    "  AND (SELECT COUNT(*) FROM promo_uses o WHERE o.code_id = c.id AND o.user_id = u.user_id"
    "       AND o.state = 'used') < c.per_user"
    " FROM promo_uses u JOIN promo_codes c ON c.id = u.code_id"
    " WHERE u.state = 'attached' AND c.kind = 'discount'")
_ATTACHED_TO_USER = _ATTACHED_SELECT + " AND u.user_id = ?"
_ATTACHED_USE = _ATTACHED_SELECT + " AND u.id = ?"


def _attached(row: Sequence) -> AttachedDiscount:
    return AttachedDiscount(int(row[0]), int(row[1]), row[2], Decimal(row[3]), int(row[4]),
                            bool(row[5]))


async def attached_discount(db: Database, user_id: int, now: float) -> AttachedDiscount | None:
    """The discount code attached to ``user_id``'s next order, if any (usable or not)."""
    row = await db.fetchone(_ATTACHED_TO_USER, (now, user_id))
    return _attached(row) if row else None


def use_in(conn: sqlite3.Connection, *, use_id: int, order_id: int, now: float) -> bool:
    """Consume the attached use ``use_id`` for ``order_id``, in the order's transaction
    (the database's thread). False, with nothing changed, when the code can no
    longer be used: disabled, expired, used up (another customer took the last
    use a moment ago), or the customer's own uses are spent."""
    row = conn.execute(_ATTACHED_USE, (now, use_id)).fetchone()
    if row is None or not row[5]:
        return False
    # The count and the increment are one statement under the writer's lock, so
    # of 50 customers confirming the last use at once, exactly one gets it.
    taken = conn.execute(
        "UPDATE promo_codes SET uses = uses + 1 WHERE id = ?"
        " AND (max_uses IS NULL OR uses < max_uses)", (int(row[1]),)).rowcount
    if not taken:
        return False
    conn.execute(f"UPDATE promo_uses SET state = 'used', order_id = ?, used_at = {NOW}"
                 " WHERE id = ? AND state = 'attached'", (order_id, use_id))
    return True


def give_back_in(conn: sqlite3.Connection, order_id: int) -> bool:
    """The discount use ``order_id`` consumed counts no more (the order failed or was
    refunded in full): the code's use is free again. False when it used none."""
    row = conn.execute(
        f"UPDATE promo_uses SET state = 'given_back', used_at = {NOW}"
        " WHERE order_id = ? AND state = 'used' RETURNING code_id", (order_id,)).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE promo_codes SET uses = uses - 1 WHERE id = ? AND uses > 0",
                 (int(row[0]),))
    return True


# ---------------------------------------------------------------- the codes
# Written by the promo code service (bot/shop/growth/promo_codes.py): an admin's
# codes, and a customer's redemption (a balance code's credit, a discount code
# attached to their next order), each in one transaction with what it causes.

@dataclass(frozen=True, slots=True)
class PromoCode:
    id: int
    code: str
    kind: str  # balance | discount
    amount_minor: int | None  # a balance code's credit
    percent: Decimal | None  # a discount code's percent off
    min_order_minor: int
    max_uses: int | None  # None: unlimited
    per_user: int
    uses: int
    expires_at: float | None  # unix time; None: never
    disabled_at: str | None
    created_by: int
    created_at: str

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def used_up(self) -> bool:
        return self.max_uses is not None and self.uses >= self.max_uses


_CODE_COLUMNS = ("id, code, kind, amount_minor, percent, min_order_minor, max_uses, per_user,"
                 " uses, expires_at, disabled_at, created_by, created_at")


def _code(row: Sequence) -> PromoCode:
    return PromoCode(int(row[0]), row[1], row[2], None if row[3] is None else int(row[3]),
                     None if row[4] is None else Decimal(row[4]), int(row[5]),
                     None if row[6] is None else int(row[6]), int(row[7]), int(row[8]),
                     None if row[9] is None else float(row[9]), row[10], int(row[11]), row[12])


async def create(conn: aiosqlite.Connection, *, code: str, kind: str, amount_minor: int | None,
                 percent: Decimal | None, min_order_minor: int, max_uses: int | None,
                 per_user: int, expires_at: float | None, created_by: int) -> PromoCode | None:
    """A new code (in the caller's transaction, with its audit row); ``None`` when
    ``code`` exists already (nothing written)."""
    row = await first(
        conn, "INSERT INTO promo_codes (code, kind, amount_minor, percent, min_order_minor,"
        " max_uses, per_user, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        f" ON CONFLICT (code) DO NOTHING RETURNING {_CODE_COLUMNS}",
        (code, kind, amount_minor, None if percent is None else str(percent), min_order_minor,
         max_uses, per_user, expires_at, created_by))
    return _code(row) if row else None


async def disable(conn: aiosqlite.Connection, code: str) -> PromoCode | None:
    """Disable ``code`` now; ``None`` when there is no such code or it was disabled before."""
    row = await first(conn, f"UPDATE promo_codes SET disabled_at = {NOW}"
                            f" WHERE code = ? AND disabled_at IS NULL RETURNING {_CODE_COLUMNS}",
                      (code,))
    return _code(row) if row else None


async def by_code(target: Database | aiosqlite.Connection, code: str) -> PromoCode | None:
    sql, params = f"SELECT {_CODE_COLUMNS} FROM promo_codes WHERE code = ?", (code,)
    row = (await target.fetchone(sql, params) if isinstance(target, Database)
           else await first(target, sql, params))
    return _code(row) if row else None


async def by_id(db: Database, code_id: int) -> PromoCode | None:
    row = await db.fetchone(f"SELECT {_CODE_COLUMNS} FROM promo_codes WHERE id = ?", (code_id,))
    return _code(row) if row else None


async def page(db: Database, limit: int, offset: int) -> tuple[list[PromoCode], int]:
    """A page of the codes, newest first, and how many there are."""
    total = await db.fetchone("SELECT COUNT(*) FROM promo_codes")
    rows = await db.fetchall(f"SELECT {_CODE_COLUMNS} FROM promo_codes ORDER BY id DESC"
                             " LIMIT ? OFFSET ?", (limit, offset))
    return [_code(r) for r in rows], int(total[0]) if total else 0


# In the database's thread, inside one transaction (``Database.transact``): a
# redemption's reads and writes, so concurrent redemptions are one after another.

def code_in(conn: sqlite3.Connection, code: str) -> PromoCode | None:
    row = conn.execute(f"SELECT {_CODE_COLUMNS} FROM promo_codes WHERE code = ?",
                       (code,)).fetchone()
    return _code(row) if row else None


def uses_of_user_in(conn: sqlite3.Connection, code_id: int, user_id: int) -> int:
    """How many uses of ``code_id`` ``user_id`` has made (given back ones do not count)."""
    row = conn.execute("SELECT COUNT(*) FROM promo_uses WHERE code_id = ? AND user_id = ?"
                       " AND state = 'used'", (code_id, user_id)).fetchone()
    return int(row[0])


def take_use_in(conn: sqlite3.Connection, code_id: int) -> bool:
    """Count one more use of ``code_id``; False, with nothing changed, when it is used up.
    The test and the increment are one statement, so of many redeeming the last use,
    exactly one gets it."""
    return bool(conn.execute("UPDATE promo_codes SET uses = uses + 1 WHERE id = ?"
                             " AND (max_uses IS NULL OR uses < max_uses)", (code_id,)).rowcount)


def record_use_in(conn: sqlite3.Connection, code_id: int, user_id: int) -> int:
    """A use made now (a balance code's credit); its id."""
    row = conn.execute(f"INSERT INTO promo_uses (code_id, user_id, state, used_at)"
                       f" VALUES (?, ?, 'used', {NOW}) RETURNING id", (code_id, user_id)).fetchone()
    return int(row[0])


def attached_discount_in(conn: sqlite3.Connection, user_id: int,
                         now: float) -> AttachedDiscount | None:
    """``attached_discount`` in the database's thread (inside the caller's transaction)."""
    row = conn.execute(_ATTACHED_TO_USER, (now, user_id)).fetchone()
    return _attached(row) if row else None


def attach_in(conn: sqlite3.Connection, code_id: int, user_id: int) -> int:
    """Attach ``code_id`` to ``user_id``'s next order, in place of the one attached
    before (that one is 'detached'); the new use's id."""
    conn.execute("UPDATE promo_uses SET state = 'detached' WHERE user_id = ?"
                 " AND state = 'attached'", (user_id,))
    row = conn.execute("INSERT INTO promo_uses (code_id, user_id, state)"
                       " VALUES (?, ?, 'attached') RETURNING id", (code_id, user_id)).fetchone()
    return int(row[0])
