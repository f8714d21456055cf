"""The admins' side of customers: finding one, their card, blocking, activity.

A customer an admin blocks (``ban``) gets a polite refusal to every message and
button (handlers/middlewares/access.py) but keeps their data and balance, and still gets the
refunds and status notices of orders already placed (the outbox skips only
customers who blocked the bot). Admins can't be blocked. A payment Telegram has
already taken from a blocked customer is still credited.

Activity (``seen``) is stored to within ``ACTIVITY_PRECISION``: at most one write
per customer per five minutes, for "active in 24 h / 7 d" and broadcast audiences,
written behind the answer with everyone else's (storage/behind.py; a crash loses
at most the last moments' marks, which the next update writes again).
A registration (``Accounts.register``: /start and the like) stores it as well, so
a new customer's first update, noted before their account exists, is not lost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass

from storage import audit, ledger, topups, users
from storage import orders as order_store
from storage.audit import AuditEntry
from storage.behind import WriteBehind
from storage.db import Database, is_row_id
from storage.ledger import HistoryEntry
from storage.orders import StoredOrder
from storage.users import User

ACTIVITY_PRECISION = 300.0  # seconds
CLOSE_TIMEOUT = 5.0  # seconds the last activity marks may take at a stop
MAX_QUERY = 64
_USERNAME = re.compile(r"@?[A-Za-z0-9_]{1,32}")


class QueryError(ValueError):
    """What an admin typed can't name a customer (too short, too long)."""


@dataclass(frozen=True, slots=True)
class CustomerCard:
    user: User
    topups_paid: int  # how many Stars top-ups were paid
    topups_minor: int  # what they credited, in shop minor units
    orders: list[StoredOrder]
    orders_total: int
    ledger: list[HistoryEntry]
    audit: list[AuditEntry]  # admin actions about this customer, newest first


class Customers:
    def __init__(self, db: Database, admin_ids: Collection[int]) -> None:
        self.db = db
        self.admin_ids = admin_ids
        self._banned: set[int] | None = None
        self._seen: dict[int, float] = {}
        self._activity = WriteBehind(self._store_seen, "activity marks")

    async def find(self, text: str, limit: int = 10) -> list[User]:
        """By id (digits), by @username, or by a part of the name or username."""
        query = text.strip()
        if len(query) > MAX_QUERY:
            raise QueryError("too long")
        if query.isascii() and query.isdigit():
            number = int(query)
            return await users.find(self.db, user_id=number, limit=limit) if (
                len(query) <= 19 and is_row_id(number)) else []
        if query.startswith("@"):
            if not _USERNAME.fullmatch(query):
                raise QueryError("not a username")
            return await users.find(self.db, username=query[1:], limit=limit)
        if len(query) < 2:
            raise QueryError("too short")
        return await users.find(self.db, name=query, limit=limit)

    async def card(self, user_id: int, *, orders: int = 5, entries: int = 5) -> CustomerCard | None:
        user = await users.get_user(self.db, user_id) if is_row_id(user_id) else None
        if user is None:
            return None
        paid, credited = await topups.paid_total(self.db, user_id)
        recent, total = await order_store.for_user(self.db, user_id, 0, orders)
        _balance, history, _total = await ledger.statement(self.db, user_id, 0, entries)
        return CustomerCard(user, paid, credited, recent, total,
                            history, await audit.about(self.db, "user", user_id, 5))

    async def set_banned(self, admin_id: int, user_id: int, banned: bool) -> bool:
        """Block or unblock; False when nothing changed (already so). Raises
        ``LookupError`` for an unknown customer and ``PermissionError`` for an admin."""
        if user_id in self.admin_ids:
            raise PermissionError(user_id)
        async with self.db.transaction() as conn:
            before = await users.set_banned(conn, user_id, banned)
            if before is None:
                raise LookupError(user_id)
            if before == banned:
                return False
            await audit.record(conn, admin_id=admin_id, action="block" if banned else "unblock",
                               target_kind="user", target_id=user_id,
                               before="blocked" if before else "active",
                               after="blocked" if banned else "active")
        banned_now = await self._banned_ids()
        (banned_now.add if banned else banned_now.discard)(user_id)
        return True

    async def is_banned(self, user_id: int) -> bool:
        """From a copy in memory (one read at the first call): asked on every update."""
        return user_id in await self._banned_ids()

    async def _banned_ids(self) -> set[int]:
        if self._banned is None:
            self._banned = await users.banned_ids(self.db)
        return self._banned

    def seen(self, user_id: int) -> None:
        """``user_id`` did something now (written behind, at most once per
        ``ACTIVITY_PRECISION``)."""
        now = time.monotonic()
        if now - self._seen.get(user_id, -ACTIVITY_PRECISION) < ACTIVITY_PRECISION:
            return
        self._seen[user_id] = now
        if len(self._seen) > 100_000:  # keep memory bounded; the worst case is one more write
            self._seen = {user_id: now}
        self._activity.note(user_id)

    async def _store_seen(self, user_ids: list[int]) -> None:
        await users.mark_seen(self.db, user_ids)

    async def close(self) -> None:
        """Write the last activity marks (at a stop, before the database closes)."""
        await self._activity.close(CLOSE_TIMEOUT)
