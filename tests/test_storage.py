"""SQLite storage: migrations, the ledger's guarantees, the catalog cache."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal

import pytest

from bot.panel import Service
from storage import catalog, ledger, users
from storage import db as db_module
from storage.db import Database


async def test_migrations_apply_once_and_set_up_the_connection(tmp_path) -> None:
    path = tmp_path / "shop.sqlite3"
    async with Database(path) as db:
        assert await db.schema_version() >= 1
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
        await users.upsert_user(db, 1, first_name="A")
    async with Database(path) as db:  # a restart keeps the data and re-applies nothing
        assert await users.get_user(db, 1) is not None
        rows = await db.fetchall("SELECT version FROM schema_migrations")
        assert len(rows) == len({row[0] for row in rows})


async def test_the_wal_is_copied_into_the_file_off_the_database_thread(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits never copy the WAL themselves (SQLite's own checkpoint only past 40 MB):
    the background checkpoint does, on a connection of its own."""
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 0.05)
    path = tmp_path / "shop.sqlite3"
    async with Database(path) as db:
        assert (await db.fetchone("PRAGMA wal_autocheckpoint"))[0] == 10_000  # type: ignore[index]
        await db.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")  # the migrations, in the file
        before = path.stat().st_size
        await db.write_many("INSERT INTO users (id, first_name) VALUES (?, ?)",
                            [(n, "x" * 200) for n in range(1, 2_000)])
        async with asyncio.timeout(10):  # until a checkpoint has copied the new pages
            while path.stat().st_size <= before:  # noqa: ASYNC110 (a file, nothing to await)
                await asyncio.sleep(0.02)
        reader = sqlite3.connect(path)  # what any other connection reads: all of it
        assert reader.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1_999
        reader.close()


async def test_credit_debit_and_idempotency(db: Database) -> None:
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        first = await ledger.post(conn, user_id=7, amount_minor=1_000, kind="credit", key="c:1")
    async with db.transaction() as conn:
        again = await ledger.post(conn, user_id=7, amount_minor=1_000, kind="credit", key="c:1")
    assert first.created and not again.created and again.id == first.id
    async with db.transaction() as conn:
        debit = await ledger.post(conn, user_id=7, amount_minor=-400, kind="order", key="o:1")
    assert debit.balance_after == 600
    assert await ledger.balance_of(db, 7) == 600 == await ledger.ledger_sum(db, 7)


async def test_the_balance_never_goes_negative(db: Database) -> None:
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=500, kind="credit", key="c:1")
    with pytest.raises(ledger.InsufficientFunds) as info:
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=7, amount_minor=-501, kind="order", key="o:1")
    assert info.value.balance_minor == 500 and info.value.needed_minor == 501
    assert await ledger.balance_of(db, 7) == 500
    # The constraint holds even for SQL that bypasses ledger.post.
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            await conn.execute("UPDATE users SET balance_minor = -1 WHERE id = 7")


async def test_a_failure_later_in_the_transaction_undoes_the_debit(db: Database) -> None:
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=500, kind="credit", key="c:1")
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=7, amount_minor=-300, kind="order", key="o:1")
            raise RuntimeError("the order insert failed")
    assert await ledger.balance_of(db, 7) == 500
    assert await ledger.ledger_sum(db, 7) == 500


async def test_concurrent_debits_never_overdraw(db: Database) -> None:
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=500, kind="credit", key="c:1")

    async def spend(n: int) -> bool:
        try:
            async with db.transaction() as conn:
                await ledger.post(conn, user_id=7, amount_minor=-100, kind="order", key=f"o:{n}")
            return True
        except ledger.InsufficientFunds:
            return False

    outcomes = await asyncio.gather(*(spend(n) for n in range(12)))
    assert outcomes.count(True) == 5
    assert await ledger.balance_of(db, 7) == 0 == await ledger.ledger_sum(db, 7)


async def test_a_single_write_never_lands_inside_another_transaction(db: Database) -> None:
    """One connection serves everyone: a write from another coroutine waits while a
    transaction is open, so it is neither rolled back with it nor committed by it."""
    await users.upsert_user(db, 7, first_name="Ann")
    opened = asyncio.Event()

    async def other_customer() -> None:
        await opened.wait()
        await users.upsert_user(db, 8, first_name="Bob")

    other = asyncio.create_task(other_customer())
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=7, amount_minor=500, kind="credit", key="c:1")
            opened.set()
            for _ in range(20):  # the other write gets every chance to slip in
                await asyncio.sleep(0)
            await ledger.post(conn, user_id=7, amount_minor=1, kind="credit", key="c:2")
            raise RuntimeError("roll back")
    await other
    assert await ledger.balance_of(db, 7) == 0
    assert await users.get_user(db, 8) is not None


async def test_posting_to_an_unknown_user_fails(db: Database) -> None:
    with pytest.raises(LookupError):
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=404, amount_minor=5, kind="credit", key="x")


async def test_registration_keeps_the_balance(db: Database) -> None:
    await users.upsert_user(db, 7, username="ann", first_name="Ann", language="en")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=250, kind="credit", key="c:1")
    user = await users.upsert_user(db, 7, username="ann2", first_name="Annie", language="de")
    assert (user.username, user.first_name, user.balance_minor) == ("ann2", "Annie", 250)
    assert user.language == "de"  # Telegram's language is followed...
    assert await users.choose_language(db, 7, "tr")
    user = await users.upsert_user(db, 7, username="ann2", first_name="Annie", language="ru")
    assert (user.language, user.chosen_language, user.speaks) == ("ru", "tr", "tr")  # ...a choice wins
    user = await users.upsert_user(db, 7, username="ann2", first_name="Annie", language=None)
    assert user.language == "ru"  # Telegram sent none: the last one is kept
    assert await users.chosen_languages(db) == {7: "tr"}
    assert not await users.choose_language(db, 404, "tr")  # no account, nothing stored


def _service(service_id: str, rate: str = "1.5") -> Service:
    return Service(service_id, f"Service {service_id}", "Default", "Likes", Decimal(rate), 10, 100)


async def test_catalog_refresh_withdraws_what_the_panel_dropped(db: Database) -> None:
    await catalog.replace_services(db, "main", "USD", [_service("1"), _service("2")])
    replaced = await catalog.replace_services(db, "main", "USD", [_service("2", "1.75")])
    assert (replaced.added, replaced.changed, replaced.withdrawn) == (0, 1, 1)
    assert [s.id for s in await catalog.active_services(db, "main")] == ["2"]
    current = await catalog.by_panel_id(db, "main", "2")
    assert current is not None and current.service.rate == Decimal("1.75")
    kept = await catalog.by_panel_id(db, "main", "1")
    assert kept is not None and not kept.active  # withdrawn, yet old orders stay readable
    assert kept.service.name == "Service 1"
    assert (await catalog.get(db, kept.ref)) == kept
    await catalog.replace_services(db, "other", "EUR", [_service("1")])
    assert len(await catalog.active_services(db, "main")) == 1  # panels are separate


async def test_a_transaction_cancelled_at_its_begin_leaves_no_transaction_open(
        db: Database) -> None:
    """A graceful stop cancels handlers past its grace, maybe while BEGIN is queued:
    later writes must still commit, and the next transaction must start."""
    await db.write("CREATE TABLE t (x INTEGER)")

    async def hold() -> None:
        async with db.transaction():
            await asyncio.sleep(10)

    task = asyncio.create_task(hold())
    await asyncio.sleep(0)  # BEGIN is queued, not yet run
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.write("INSERT INTO t VALUES (1)")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (2)")
    path = db.path
    await db.close()
    async with Database(path) as again:
        assert [r[0] for r in await again.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2]


async def test_a_statement_reads_balance_page_and_length_together(db: Database) -> None:
    """The balance screen's one query: right for no customer, no entry, and a page."""
    assert await ledger.statement(db, 404, 0, 5) == (0, [], 0)
    await users.upsert_user(db, 7, first_name="Ann")
    assert await ledger.statement(db, 7, 0, 5) == (0, [], 0)
    async with db.transaction() as conn:
        for n, amount in enumerate((500, -120, 300)):
            await ledger.post(conn, user_id=7, amount_minor=amount, kind="credit"
                              if amount > 0 else "debit", key=f"statement:{n}")
    balance, newest, total = await ledger.statement(db, 7, 0, 2)
    assert (balance, total) == (680, 3)
    assert [(e.amount_minor, e.balance_after) for e in newest] == [(300, 680), (-120, 380)]
    _, older, _ = await ledger.statement(db, 7, 2, 2)
    assert [(e.amount_minor, e.balance_after) for e in older] == [(500, 500)]
    assert (await ledger.statement(db, 7, 10, 2))[1:] == ([], 3)  # past the end
