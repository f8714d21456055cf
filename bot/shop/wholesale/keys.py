"""Customers' API keys: one per customer, shown once, kept only as its SHA-256.

A customer makes, replaces and revokes their key in the chat (``/api``); the old
key stops working in the same statement that stores the new one. The owner can
turn a customer's API access off (their key then answers "API access is disabled")
and on again. Every change is an audit row written with it: the customer's own as
``api_key_create`` / ``api_key_rotate`` / ``api_key_revoke`` with the customer as
the actor, the owner's as ``api_off`` / ``api_on``.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

from storage import api_keys as store
from storage import audit
from storage.api_keys import ApiAccess, ApiHolder
from storage.db import Database

__all__ = ["ApiAccess", "ApiAccessOff", "ApiHolder", "ApiKeys", "NewKey", "hash_key"]

KEY_BYTES = 32  # secrets.token_urlsafe: 43 URL-safe characters
MAX_KEY_LENGTH = 200  # longer is no key of ours: refused before hashing


def hash_key(key: str) -> str:
    # surrogatepass: a key with any lone surrogate (JSON's "\ud800" decodes to one) hashes
    # (to nobody's) instead of raising; surrogateescape takes only \udc80-\udcff. Our keys
    # are ASCII: their hashes are the same either way.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ApiAccessOff(Exception):
    """The owner turned this customer's API access off: no key can be made."""


class KeyGone(Exception):
    """The key stopped working after its request was let in: revoked, replaced, API
    access turned off (``access_off``) or the customer blocked."""

    def __init__(self, user_id: int, *, access_off: bool) -> None:
        super().__init__(user_id)
        self.access_off = access_off


def key_still_works_in(conn: sqlite3.Connection, *, user_id: int, key: str) -> None:
    """In an order's transaction (``OrderService.place``'s ``guard``): ``KeyGone``
    unless ``key`` is still ``user_id``'s working key. The check when the request
    came in is not enough: an add waiting behind others (a thief's burst) would
    still spend after the owner of the key revoked it."""
    access = store.by_key_hash_in(conn, hash_key(key))
    if access is None or access.user_id != user_id:
        raise KeyGone(user_id, access_off=False)
    if access.disabled or access.banned:
        raise KeyGone(user_id, access_off=True)


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str  # shown to the customer once, never stored
    replaced: bool  # an older key stopped working


class ApiKeys:
    def __init__(self, db: Database, admin_ids: Collection[int], *, enabled: bool,
                 url: str | None) -> None:
        self.db = db
        self.admin_ids = admin_ids
        self.enabled = enabled  # API_ENABLED
        self.url = url  # where requests go (Settings.api_url); None: the owner must set it

    async def access(self, user_id: int) -> ApiAccess | None:
        return await store.access_of(self.db, user_id)

    async def new_key(self, user_id: int) -> NewKey:
        """A new key for ``user_id``, replacing theirs; ``ApiAccessOff`` when the owner
        turned their access off."""
        current = await store.access_of(self.db, user_id)
        if current is not None and current.disabled:
            raise ApiAccessOff(user_id)
        key = secrets.token_urlsafe(KEY_BYTES)
        async with self.db.transaction() as conn:
            replaced = await store.set_key(conn, user_id, hash_key(key), key[-4:])
            await audit.record(conn, admin_id=user_id,
                               action="api_key_rotate" if replaced else "api_key_create",
                               target_kind="user", target_id=user_id, after=f"…{key[-4:]}")
        return NewKey(key, replaced)

    async def revoke(self, user_id: int) -> bool:
        """The customer's key stops working; False when they had none."""
        async with self.db.transaction() as conn:
            hint = await store.revoke(conn, user_id)
            if hint is None:
                return False
            await audit.record(conn, admin_id=user_id, action="api_key_revoke",
                               target_kind="user", target_id=user_id, before=f"…{hint}")
        return True

    async def set_notify(self, user_id: int, notify: bool) -> bool:
        """Whether the customer's API orders notify in the chat; False: no access row."""
        return await store.set_notify(self.db, user_id, notify)

    async def set_allowed(self, admin_id: int, user_id: int, allowed: bool) -> bool:
        """The owner turns a customer's API access on or off; the previous state
        (allowed or not). ``PermissionError`` when ``admin_id`` is no admin,
        ``LookupError`` for an unknown customer."""
        if admin_id not in self.admin_ids:
            raise PermissionError(admin_id)
        async with self.db.transaction() as conn:
            was_disabled = await store.set_disabled(conn, user_id, not allowed, admin_id)
            if was_disabled is None:
                raise LookupError(user_id)
            if was_disabled != allowed:  # already as asked: nothing to record
                return allowed
            await audit.record(conn, admin_id=admin_id, action="api_on" if allowed else "api_off",
                               target_kind="user", target_id=user_id,
                               before="off" if was_disabled else "on",
                               after="on" if allowed else "off")
        return not allowed

    async def holders(self, limit: int, offset: int = 0) -> tuple[list[ApiHolder], int]:
        """The owner's list: customers with a key or with access off, the latest used
        first, and how many there are."""
        return await store.holders(self.db, limit, offset)

    async def find(self, key: str) -> ApiAccess | None:
        """Whose key ``key`` is (``None``: nobody's, or revoked); its use not counted
        (a request refused for the rate limit writes nothing)."""
        if not key or len(key) > MAX_KEY_LENGTH:
            return None
        return await store.by_key_hash(self.db, hash_key(key))

    async def count_use(self, user_id: int) -> None:
        """One more request made with the customer's key, now."""
        await store.note_use(self.db, user_id)
