"""bot/shop/backoffice/stats.py on a real SQLite file: exact sums, periods in a non-UTC zone,
refunds, panel cost at an fx rate other than 1, the backfill and the chart."""

from __future__ import annotations

import asyncio
import itertools
import struct
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.shop.backoffice import stats
from bot.shop.backoffice.chart import PROFIT, TURNOVER, Canvas, ChartDay, render
from storage import ledger, users
from storage.db import Database

ZONE = "Asia/Tokyo"  # UTC+9: local midnight of 2026-12-02 is 2026-12-01T15:00Z
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
_keys = itertools.count()


@pytest.fixture
async def db(tmp_path: Path):
    database = await Database(tmp_path / "shop.sqlite3").open()
    await users.upsert_user(database, 7, first_name="Ann")
    await database.write("INSERT INTO categories (id, panel, name, platform)"
                         " VALUES (1, 'main', 'c', 'other')")
    await database.write("INSERT INTO services (id, panel, service_id, category_id, name, type,"
                         " sellable, category, rate, currency, min_quantity, max_quantity,"
                         " synced_at) VALUES (1, 'main', '1', 1, 'Likes', 'default', 1, 'c',"
                         " '1', 'EUR', 1, 10, '')")
    yield database
    await database.close()


async def order(db: Database, at: str, price: int, *, state: str = "completed",
                panel_cost: str = "0.10", fx: str | None = "1.5", cost: int | None = None,
                refund: int = 0) -> int:
    """An order created at ``at`` with its debit (and refund) in the ledger at that time."""
    await ledger_credit(db, price)
    rows = await db.write(
        "INSERT INTO orders (token, user_id, panel, service_ref, service_id, service_name,"
        " order_type, fields, price_minor, currency, panel_cost, state, fx_rate, cost_minor,"
        " created_at) VALUES (?, 7, 'main', 1, '1', 'Likes', 'default', '{}', ?, 'USD', ?, ?,"
        " ?, ?, ?) RETURNING id", (f"t{next(_keys)}", price, panel_cost, state, fx, cost, at))
    order_id = int(rows[0][0])
    for amount, kind in ((-price, "order"), (refund, "refund")):
        if amount:
            async with db.transaction() as conn:
                entry = await ledger.post(conn, user_id=7, amount_minor=amount, kind=kind,
                                          key=f"k{next(_keys)}", order_id=order_id)
            await db.write("UPDATE ledger SET created_at = ? WHERE id = ?", (at, entry.id))
    return order_id


async def ledger_credit(db: Database, amount: int) -> None:
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=amount, kind="credit",
                          key=f"c{next(_keys)}")


async def board(db: Database, **extra) -> stats.Dashboard:
    return await stats.dashboard(db, panels={}, fx_rates={"main": Decimal("1.5")},
                                 currency="USD", timezone=ZONE, alert_below=None, now=NOW,
                                 **extra)


async def test_periods_start_at_local_midnight(db: Database) -> None:
    await order(db, "2026-12-01T14:59:59.999Z", 100, cost=10)  # 23:59 yesterday in Tokyo
    await order(db, "2026-12-01T15:00:00.000Z", 200, cost=20)  # 00:00 today in Tokyo
    await order(db, "2026-11-25T15:00:00.000Z", 400, cost=40)  # 6 local days back: in 7 d
    await order(db, "2026-11-25T14:59:59.999Z", 800, cost=80)  # just before the 7 days
    await order(db, "2025-01-01T00:00:00.000Z", 1600, cost=160)
    periods = (await board(db)).periods
    assert periods["today"].turnover_minor == 200
    assert periods["7d"].turnover_minor == 700
    assert periods["30d"].turnover_minor == 1500
    assert periods["all"].turnover_minor == 3100
    assert periods["today"].orders == 1 and periods["all"].orders == 5
    assert periods["7d"].cost_minor == 70
    assert periods["7d"].profit_minor == 630


async def test_refunds_and_failed_or_canceled_orders(db: Database) -> None:
    today = "2026-12-02T01:00:00.000Z"
    await order(db, today, 1000, state="failed", cost=300, refund=1000)
    await order(db, today, 900, state="canceled", cost=280, refund=900)
    await order(db, today, 500, state="partial", cost=200, refund=123)
    await order(db, today, 700, state="pending", cost=250)
    figures = (await board(db)).periods["today"]
    assert figures.by_state == {"failed": 1, "canceled": 1, "partial": 1, "pending": 1}
    assert figures.turnover_minor == 3100
    assert figures.refunds_minor == 2023
    assert figures.cost_minor == 450  # the failed and the canceled order cost nothing
    assert figures.profit_minor == 3100 - 2023 - 450
    day = await stats.daily_figures(db, "2026-12-01T15:00:00.000Z", "2026-12-02T15:00:00.000Z")
    assert (day.orders, day.cost_minor, day.profit_minor) == (4, 450, 3100 - 2023 - 450)


async def test_cost_is_exact_at_an_fx_rate_other_than_one(db: Database) -> None:
    assert stats.cost_minor(Decimal("0.123"), Decimal("1.5"), "USD") == 18  # 18.45 -> 18
    assert stats.cost_minor(Decimal("0.1"), Decimal("1.5"), "USD") == 15
    assert stats.cost_minor(Decimal("0.01"), Decimal("0.5"), "USD") == 1  # 0.5 rounds up
    assert stats.cost_minor(Decimal("3"), Decimal("90.5"), "JPY") == 272
    # 10,000 orders of 0.001 at 1.5: exactly 0 each, never summed as REAL text.
    for _ in range(3):
        await order(db, "2026-12-02T01:00:00.000Z", 10, panel_cost="0.017", fx="1.5", cost=None)
    assert await stats.backfill_costs(db, {"main": Decimal("9")}, "USD") == 3
    rows = await db.fetchall("SELECT cost_minor, fx_rate FROM orders")
    assert [tuple(r) for r in rows] == [(3, "1.5")] * 3  # 0.017 × 1.5 = 2.55 -> 3; own rate
    assert (await board(db)).periods["today"].cost_minor == 9
    assert await stats.backfill_costs(db, {}, "USD") == 0


async def test_backfill_uses_the_charge_and_todays_rate_for_old_rows(db: Database) -> None:
    order_id = await order(db, "2026-12-02T01:00:00.000Z", 10, fx=None, cost=None)
    await db.write("UPDATE orders SET charge = '0.2' WHERE id = ?", (order_id,))
    await stats.backfill_costs(db, {"main": Decimal("2")}, "USD")
    [(cost, fx)] = [tuple(r) for r in await db.fetchall("SELECT cost_minor, fx_rate FROM orders")]
    assert (cost, fx) == (40, "2")


async def test_daily_figures(db: Database) -> None:
    await order(db, "2026-12-01T15:30:00.000Z", 300, cost=100, refund=50)
    await order(db, "2026-12-02T16:00:00.000Z", 999, cost=1)  # the next day
    await db.write("INSERT INTO topups (payload, user_id, amount_minor, currency, stars, state,"
                   " expires_at, paid_at) VALUES ('p1', 7, 500, 'USD', 250, 'paid', 0,"
                   " '2026-12-01T20:00:00.000Z'), ('p2', 7, 700, 'USD', 350, 'pending', 0, NULL)")
    await users.upsert_user(db, 8, first_name="Bo")
    await db.write("UPDATE users SET created_at = ? WHERE id = 7", ("2026-12-01T16:00:00.000Z",))
    await db.write("UPDATE users SET created_at = ? WHERE id = 8", ("2026-12-02T15:00:00.000Z",))
    day = await stats.daily_figures(db, "2026-12-01T15:00:00.000Z", "2026-12-02T15:00:00.000Z")
    assert (day.orders, day.turnover_minor, day.refunds_minor, day.cost_minor) == (1, 300, 50, 100)
    assert day.profit_minor == 150
    assert (day.topups, day.topups_minor) == (1, 500)
    assert day.new_customers == 1  # Ann; Bo came the next local day


async def test_panel_balances_unreachable_and_low() -> None:
    class Answer:
        amount, currency = Decimal("10.00"), "EUR"

    class Fine:
        async def balance(self) -> Answer:
            return Answer()

    class Down:
        async def balance(self) -> Answer:
            raise OSError("connection refused")

    class Slow:
        async def balance(self) -> Answer:
            await asyncio.sleep(30)
            return Answer()

    balances = await stats.panel_balances(
        {"a": Fine(), "b": Down(), "c": Slow()}, {"a": Decimal("1.1")}, "USD",
        alert_below=Decimal("11.01"), timeout=0.2)
    a, b, c = balances
    assert (a.amount, a.shop_minor, a.low) == (Decimal("10.00"), 1100, True)
    assert b.amount is None and c.amount is None
    ok = await stats.panel_balances({"a": Fine()}, {"a": Decimal("1.1")}, "USD",
                                    alert_below=Decimal("11"))
    assert not ok[0].low


async def test_chart_is_a_png_of_thirty_local_days(db: Database) -> None:
    await order(db, "2026-12-01T15:30:00.000Z", 300, cost=100)
    days = await stats.chart_days(db, stats.shop_zone(ZONE), NOW)
    assert len(days) == 30 and days[-1].day == "2026-12-02" and days[0].day == "2026-11-03"
    assert (days[-1].orders, days[-1].turnover_minor, days[-1].profit_minor) == (1, 300, 200)
    png = await stats.chart_png(db, stats.shop_zone(ZONE), "USD", NOW)
    width, height, pixels = decode_png(png)
    assert (width, height) == (1000, 500)
    # Only the last day has orders: its turnover and profit bars are drawn, right of
    # the middle; a day without orders has no bar.
    assert columns_of(pixels, width, TURNOVER) and min(columns_of(pixels, width, TURNOVER)) > 800
    assert columns_of(pixels, width, PROFIT) and min(columns_of(pixels, width, PROFIT)) > 800
    quiet = render([ChartDay(f"2026-11-{d:02d}", 0, 0, 0) for d in range(1, 31)], "JPY")
    assert not columns_of(decode_png(quiet)[2], width, TURNOVER)


def test_the_chart_writes_no_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """The picture's font has Latin capitals only, so a word on it would be English on a
    Russian or Turkish admin's screen: it writes dates, numbers and the currency code;
    the (translated) caption names the colours."""
    written: list[str] = []
    draw = Canvas.text
    monkeypatch.setattr(Canvas, "text", lambda self, x, y, text, color, scale=2: (
        written.append(text), draw(self, x, y, text, color, scale))[1])
    render([ChartDay(f"2026-11-{d:02d}", d, 100 * d, 40 * d) for d in range(1, 31)], "USD")
    assert written and "USD" in written
    assert not [text for text in written if text != "USD" and any(c.isalpha() for c in text)]


def decode_png(png: bytes) -> tuple[int, int, bytes]:
    """An unfiltered 8-bit RGB PNG's size and pixels, read as a viewer would."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    position, chunks = 8, {}
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind, data = png[position + 4:position + 8], png[position + 8:position + 8 + length]
        assert struct.unpack(">I", png[position + 8 + length:position + 12 + length])[0] == \
            zlib.crc32(kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        position += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * 3 + 1
    assert len(raw) == stride * height and all(raw[y * stride] == 0 for y in range(height))
    return width, height, b"".join(raw[y * stride + 1:(y + 1) * stride] for y in range(height))


def columns_of(pixels: bytes, width: int, color: tuple[int, int, int]) -> set[int]:
    """The columns where ``color`` is drawn below the legend (the top 100 rows)."""
    wanted = bytes(color)
    return {(i // 3) % width for i in range(width * 3 * 100, len(pixels), 3)
            if pixels[i:i + 3] == wanted}


async def test_a_reported_charge_becomes_the_cost_at_the_orders_own_rate(db: Database) -> None:
    from bot.panel import OrderState, OrderStatus
    from bot.shop.orders.service import apply_statuses

    order_id = await order(db, "2026-12-02T01:00:00.000Z", 500, state="pending",
                           panel_cost="0.30", fx="1.5", cost=45)
    await apply_statuses(db, {order_id: OrderStatus(OrderState.COMPLETED, "Completed",
                                                    charge=Decimal("0.25"))}, source="test")
    [(cost,)] = [tuple(r) for r in await db.fetchall("SELECT cost_minor FROM orders")]
    assert cost == 38  # 0.25 × 1.5 = 0.375 -> 38 minor, not the 45 expected at placement
    assert (await board(db)).periods["today"].profit_minor == 500 - 38
