"""Promo codes and their uses (migration 0015).

A discount code attached to a customer's next order is read by the pricing
(``attached_discount``), consumed in the order's own transaction (``use_in``,
in the database's thread with the order's insert and debit) and given back
when that order fails or is refunded in full (``give_back_in``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from storage.db import NOW, Database


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
