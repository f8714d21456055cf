"""Customer accounts: registration and balances."""

from __future__ import annotations

from storage import users
from storage.db import Database
from storage.users import User


async def register(db: Database, user_id: int, *, username: str | None, first_name: str,
                   language: str | None) -> User:
    """Create the account on first contact; later calls refresh the names only."""
    return await users.upsert_user(db, user_id, username=username, first_name=first_name,
                                   language=language)
