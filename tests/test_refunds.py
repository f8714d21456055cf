"""Refunds are exact, whatever the panel says and however often (property-based).

Orders of every pricing shape (per-thousand, drip-feed runs, custom comment lines,
flat packages) are debited, then fed random sequences of panel statuses through
``apply_statuses``, the tracker's and Refresh's one way of writing a status. The
books must balance to the last minor unit and no order may get back more than it
cost.
"""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.panel import OrderState, OrderStatus
from bot.panel.order_types import get_order_type
from bot.shop.orders.service import apply_statuses
from storage import ledger, users
from storage import orders as order_store
from storage.db import Database

SHAPES = {
    "per thousand": ("Default", {"link": "https://x.com/a", "quantity": "{n}"}),
    "drip-feed": ("Default", {"link": "https://x.com/a", "quantity": "{n}", "runs": "{runs}",
                              "interval": "30"}),
    "comments": ("Custom Comments", {"link": "https://x.com/a", "comments": "{lines}"}),
    "package": ("Package", {"link": "https://x.com/a"}),
}
STATES = [OrderState.PENDING, OrderState.IN_PROGRESS, OrderState.PARTIAL, OrderState.CANCELED,
          OrderState.COMPLETED, OrderState.FAILED]

statuses = st.lists(st.tuples(st.sampled_from(STATES), st.integers(min_value=0,
                                                                   max_value=3_000_000)),
                    min_size=1, max_size=6)


def stored_quantity(shape: str, n: int, runs: int) -> tuple[str, dict[str, str], int | None]:
    type_name, template = SHAPES[shape]
    values = {k: v.format(n=n, runs=runs, lines="\n".join(f"c{i}" for i in range(n)))
              for k, v in template.items()}
    order_type = get_order_type(type_name)
    per_run = order_type.quantity_of(values)
    quantity = None if per_run is None else per_run * order_type.runs_of(values)
    return type_name, values, quantity


async def scenario(orders: list[tuple[str, int, int, int, list[tuple[OrderState, int]]]]) -> None:
    async with Database(":memory:") as db:
        await users.upsert_user(db, 1, first_name="A")
        await db.write("INSERT INTO categories (id, panel, name, platform) VALUES (1, 'p', 'c', 'x')")
        await db.write("INSERT INTO services (id, panel, service_id, category_id, name, type,"
                       " sellable, category, rate, currency, min_quantity, max_quantity,"
                       " synced_at) VALUES (1, 'p', '1', 1, 's', 'Default', 1, 'c', '1', 'USD',"
                       " 1, 10, 'now')")
        total_price = sum(price for _, price, _, _, _ in orders)
        async with db.transaction() as conn:
            await ledger.post(conn, user_id=1, amount_minor=total_price + 1, kind="credit",
                              key="seed")
        prices: dict[int, tuple[int, int | None]] = {}
        for n, (shape, price, quantity_in, runs, _) in enumerate(orders):
            type_name, values, quantity = stored_quantity(shape, quantity_in, runs)
            async with db.transaction() as conn:
                order_id = (await order_store.insert(
                    conn, token=uuid.uuid4().hex, user_id=1, panel="p", service_ref=1,
                    service_id="1", service_name="s", order_type=type_name, fields=values,
                    quantity=quantity, price_minor=price, currency="USD", panel_cost=0)).id
                if price:
                    await ledger.post(conn, user_id=1, amount_minor=-price, kind="order",
                                      key=f"order:{order_id}:debit", order_id=order_id)
                await order_store.set_outcome(conn, order_id, state="pending",
                                              panel_order_id=str(1000 + n))
            prices[order_id] = (price, quantity)
        # Statuses arrive interleaved across orders, some repeated.
        for step in range(max(len(o[4]) for o in orders)):
            answers = {}
            for order_id, (*_, steps) in zip(prices, orders, strict=True):
                if step < len(steps):
                    state, remains = steps[step]
                    answers[order_id] = OrderStatus(state, state.value.title(), remains=remains)
            await apply_statuses(db, answers, source="test")
            await apply_statuses(db, answers, source="test")  # a repeated poll

        balance = await ledger.balance_of(db, 1)
        assert balance == await ledger.ledger_sum(db, 1)  # the books balance exactly
        for order_id, (price, quantity) in prices.items():
            [state, remains] = (await db.fetchone(
                "SELECT state, remains FROM orders WHERE id = ?", (order_id,)))
            refunded = await db.fetchall(
                "SELECT amount_minor FROM ledger WHERE order_id = ? AND kind = 'refund'",
                (order_id,))
            back = sum(r[0] for r in refunded)
            assert len(refunded) <= 1 and 0 <= back <= price
            if state in ("canceled", "failed"):
                assert back == price
            elif state == "partial" and quantity:
                assert back == price * min(remains, quantity) // quantity  # rounded down
            else:
                assert back == 0
        assert balance == 1 + sum(
            r[0] for r in await db.fetchall("SELECT amount_minor FROM ledger WHERE kind = 'refund'"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(SHAPES)), st.integers(0, 10**7),
                          st.integers(1, 300), st.integers(2, 10), statuses),
                min_size=1, max_size=5))
def test_refunds_balance_to_the_last_minor_unit(orders) -> None:
    asyncio.run(scenario(orders))
