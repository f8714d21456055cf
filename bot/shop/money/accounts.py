"""Customer accounts: registration and balances, and the admins' credit/debit."""

from __future__ import annotations

import uuid

from bot.shop.money.formatting import money
from storage import audit, ledger, users
from storage.db import Database
from storage.ledger import HistoryEntry, InsufficientFunds, LedgerEntry
from storage.users import User

__all__ = ["Accounts", "HistoryEntry", "InsufficientFunds"]


class Accounts:
    """The customers' accounts in this shop's database: bound once at start-up, so
    handlers ask for a balance or a registration without ever holding the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def register(self, user_id: int, *, username: str | None, first_name: str,
                       language: str | None, starting: bool = False) -> User:
        """Create the account on first contact; later calls refresh the names only.
        ``starting``: this is a /start not brought by a referral link, and the first
        one is recorded with it (one statement; a referral link's first /start is
        ``Referrals.started``'s)."""
        return await users.upsert_user(self.db, user_id, username=username,
                                       first_name=first_name, language=language,
                                       starting=starting)

    async def get(self, user_id: int) -> User | None:
        return await users.get_user(self.db, user_id)

    async def balance(self, user_id: int) -> int:
        return await ledger.balance_of(self.db, user_id)

    async def statement(self, user_id: int, offset: int,
                        limit: int) -> tuple[int, list[HistoryEntry], int]:
        """The customer's balance, a page of its history (newest first) and the
        history's length, read together (one round trip, never cached)."""
        return await ledger.statement(self.db, user_id, offset, limit)

    async def adjust_balance(self, *, user_id: int, amount_minor: int, admin_id: int,
                             reason: str, currency: str,
                             request_id: str | None = None) -> LedgerEntry:
        """An admin's credit (positive) or debit (negative), recorded in the ledger.

        ``request_id`` (the command's chat and message id) makes a redelivered or replayed
        command a no-op.
        Raises ``LookupError`` for an unknown user and ``InsufficientFunds`` when a
        debit would take the balance below zero.
        """
        kind = "credit" if amount_minor > 0 else "debit"
        key = f"admin:{admin_id}:{request_id or uuid.uuid4().hex}"
        async with self.db.transaction() as conn:
            entry = await ledger.post(conn, user_id=user_id, amount_minor=amount_minor,
                                      kind=kind, key=key, actor_id=admin_id, note=reason)
            if entry.created:
                await audit.record(conn, admin_id=admin_id, action=kind, target_kind="user",
                                   target_id=user_id,
                                   before=money(entry.balance_after - amount_minor, currency),
                                   after=money(entry.balance_after, currency), note=reason)
            return entry
