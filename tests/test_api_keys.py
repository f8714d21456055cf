"""Customers' API keys (bot/shop/wholesale/keys.py) without aiogram: a real SQLite
file, the service as the chat and the owner's screens call it."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.shop.wholesale.keys import MAX_KEY_LENGTH, ApiAccessOff, ApiKeys
from storage import users
from storage.db import Database

ADMIN = 1
ANN, BOB, CY = 101, 102, 103


@pytest.fixture
async def keys(db: Database) -> ApiKeys:
    for user_id, name in ((ANN, "Ann"), (BOB, "Bob"), (CY, "Cy")):
        await users.upsert_user(db, user_id, first_name=name)
    return ApiKeys(db, {ADMIN}, enabled=True, url="https://shop.example.com/api/v2")


async def audit_rows(db: Database) -> list[tuple]:
    return [tuple(row) for row in await db.fetchall(
        "SELECT admin_id, action, target_kind, target_id, before, after FROM audit_log"
        " ORDER BY id")]


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))


async def test_a_key_is_long_random_url_safe_kept_only_as_its_hash(keys: ApiKeys, db: Database,
                                                                  tmp_path: Path) -> None:
    assert await keys.access(ANN) is None
    made = await keys.new_key(ANN)
    assert not made.replaced and len(made.key) >= 32
    assert set(made.key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    access = await keys.access(ANN)
    assert access is not None and access.has_key and access.key_hint == made.key[-4:]
    assert (access.requests, access.last_used_at, access.notify, access.disabled) == (
        0, None, False, False)
    assert access.key_created_at is not None
    [(stored,)] = await db.fetchall("SELECT key_hash FROM api_access WHERE user_id = ?", (ANN,))
    assert stored == hashlib.sha256(made.key.encode()).hexdigest()
    assert made.key.encode() not in file_bytes(tmp_path / "shop.sqlite3")
    assert (await keys.new_key(BOB)).key != made.key
    assert await audit_rows(db) == [
        (ANN, "api_key_create", "user", str(ANN), "", f"…{made.key[-4:]}"),
        (BOB, "api_key_create", "user", str(BOB), "", f"…{(await keys.access(BOB)).key_hint}")]


async def test_a_new_key_replaces_the_old_at_once_and_use_is_counted(keys: ApiKeys,
                                                                    db: Database) -> None:
    old = (await keys.new_key(ANN)).key
    holder = await keys.find(old)
    assert holder is not None and holder.user_id == ANN
    await keys.count_use(ANN)
    new = await keys.new_key(ANN)
    assert new.replaced and new.key != old
    assert await keys.find(old) is None
    assert (await keys.find(new.key)).user_id == ANN  # type: ignore[union-attr]
    await keys.count_use(ANN)
    access = await keys.access(ANN)
    assert access is not None and access.requests == 2 and access.last_used_at is not None
    assert access.key_hint == new.key[-4:]
    assert [row[1] for row in await audit_rows(db)] == ["api_key_create", "api_key_rotate"]
    assert (await audit_rows(db))[1][4:] == ("", f"…{new.key[-4:]}")


async def test_revoke_once_then_nothing_to_revoke(keys: ApiKeys, db: Database) -> None:
    assert await keys.revoke(ANN) is False
    key = (await keys.new_key(ANN)).key
    assert await keys.revoke(ANN) is True
    assert await keys.revoke(ANN) is False
    assert await keys.find(key) is None
    access = await keys.access(ANN)
    assert access is not None and not access.has_key and access.key_created_at is None
    assert [row[1:] for row in await audit_rows(db)] == [
        ("api_key_create", "user", str(ANN), "", f"…{key[-4:]}"),
        ("api_key_revoke", "user", str(ANN), f"…{key[-4:]}", "")]
    assert not (await keys.new_key(ANN)).replaced  # a key after a revoke replaces none


async def test_notices_are_off_by_default_and_need_an_access_row(keys: ApiKeys) -> None:
    assert await keys.set_notify(ANN, True) is False
    assert await keys.access(ANN) is None
    await keys.new_key(ANN)
    assert await keys.set_notify(ANN, True) is True
    assert (await keys.access(ANN)).notify is True  # type: ignore[union-attr]
    await keys.new_key(ANN)  # a new key keeps the choice
    assert (await keys.access(ANN)).notify is True  # type: ignore[union-attr]
    assert await keys.set_notify(ANN, False) is True
    assert (await keys.access(ANN)).notify is False  # type: ignore[union-attr]


async def test_the_owner_turns_access_off_and_on(keys: ApiKeys, db: Database) -> None:
    key = (await keys.new_key(ANN)).key
    with pytest.raises(PermissionError):
        await keys.set_allowed(ANN, ANN, False)  # a customer is no admin
    with pytest.raises(LookupError):
        await keys.set_allowed(ADMIN, 999, False)
    assert await keys.set_allowed(ADMIN, ANN, False) is True  # was allowed
    assert await keys.set_allowed(ADMIN, ANN, False) is False  # already off: not recorded
    with pytest.raises(ApiAccessOff):
        await keys.new_key(ANN)
    access = await keys.access(ANN)
    assert access is not None and access.disabled and access.has_key
    holder = await keys.find(key)  # the endpoint refuses it by this flag
    assert holder is not None and holder.disabled
    assert await keys.set_allowed(ADMIN, ANN, True) is False
    assert not (await keys.access(ANN)).disabled  # type: ignore[union-attr]
    assert (await keys.new_key(ANN)).replaced
    # Off before any key: no key can be made either.
    assert await keys.set_allowed(ADMIN, BOB, False) is True
    with pytest.raises(ApiAccessOff):
        await keys.new_key(BOB)
    assert not (await keys.access(BOB)).has_key  # type: ignore[union-attr]
    assert [(row[0], row[1], row[3], row[4], row[5]) for row in await audit_rows(db)
            if row[1].startswith("api_o")] == [
        (ADMIN, "api_off", str(ANN), "on", "off"), (ADMIN, "api_on", str(ANN), "off", "on"),
        (ADMIN, "api_off", str(BOB), "on", "off")]


async def test_the_owners_list_the_latest_used_first(keys: ApiKeys, db: Database) -> None:
    assert await keys.holders(10) == ([], 0)
    await keys.new_key(ANN)
    await keys.new_key(BOB)
    await keys.set_allowed(ADMIN, CY, False)  # no key, access off: listed
    await keys.count_use(ANN)
    await db.write("UPDATE api_access SET last_used_at = '2000-01-01T00:00:00.000Z'"
                   " WHERE user_id = ?", (ANN,))
    await keys.new_key(BOB)
    await keys.count_use(BOB)
    listed, total = await keys.holders(10)
    assert total == 3
    assert [h.access.user_id for h in listed] == [BOB, ANN, CY]
    assert [h.first_name for h in listed] == ["Bob", "Ann", "Cy"]
    page, total = await keys.holders(2, 2)
    assert total == 3 and [h.access.user_id for h in page] == [CY]
    await keys.revoke(BOB)  # no key and access on: off the list
    assert [h.access.user_id for h in (await keys.holders(10))[0]] == [ANN, CY]


def test_no_text_but_the_key_is_anyones_key(tmp_path: Path) -> None:
    """Whatever a client sends as its key (any length, any characters, the key's own
    hint or a part of it), only the key itself is found, and nothing raises."""
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(Database(tmp_path / "shop.sqlite3").open())
    loop.run_until_complete(users.upsert_user(db, ANN, first_name="Ann"))
    keys = ApiKeys(db, {ADMIN}, enabled=True, url=None)
    key = loop.run_until_complete(keys.new_key(ANN)).key

    @settings(max_examples=200)
    @given(text=st.one_of(st.text(max_size=MAX_KEY_LENGTH + 20),
                          st.integers(0, len(key) - 1).map(lambda cut: key[:cut]),
                          st.sampled_from([key[-4:], key + " ", " " + key, key.upper(),
                                           key * 5, "\ud800" + key])))
    def look_up(text: str) -> None:
        holder = loop.run_until_complete(keys.find(text))
        assert (holder is not None) == (text == key)

    try:
        look_up()
        assert loop.run_until_complete(keys.find(key)).user_id == ANN  # type: ignore[union-attr]
    finally:
        loop.run_until_complete(db.close())
        loop.close()
