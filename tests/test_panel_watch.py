"""The panel watch (bot/shop/backoffice/panel_watch.py): alerts that matter, once per event.

Against the sandbox panel over real HTTP and a real SQLite file; the alerts are
read back from the outbox as the admins would get them (bot/alerts.render).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.devtools.sandbox.server import RunningSandbox
from bot.shop.backoffice.panel_watch import PanelWatch
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.messaging.alerts import render
from bot.shop.orders.service import OrderService, Outcome
from storage import catalog as catalog_store
from storage import ledger, outbox, users
from storage.db import Database
from tests.conftest import ClientFactory, SandboxFactory, place_as_shown

pytestmark = pytest.mark.timeout(60)

ADMINS = [900, 901]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def alerts_to(db: Database, chat_id: int) -> list[str]:
    rows = await outbox.due(db, 1e12, 1000, per_chat=1000)
    return [render(r.payload) for r in rows if r.kind == "alert" and r.chat_id == chat_id]


def make_watch(db: Database, sandbox: RunningSandbox, make_client: ClientFactory,
               clock: Clock, **options: object) -> PanelWatch:
    options.setdefault("balance_alert", Decimal("50"))
    options.setdefault("down_minutes", 10)
    return PanelWatch(db, {"main": make_client(sandbox)}, ADMINS,
                      fx_rates={"main": Decimal("2")}, shop_currency="USD",
                      clock=clock, **options)  # type: ignore[arg-type]


async def test_low_balance_alerts_once_then_again_after_recovering(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    sandbox = await make_sandbox(balance=Decimal("20"))  # 20 panel units = $40 at rate 2
    clock = Clock()
    watch = make_watch(db, sandbox, make_client, clock)
    for _ in range(4):
        await watch.check("main")
        clock.now += 120
    for admin in ADMINS:
        texts = await alerts_to(db, admin)
        assert len(texts) == 1
        assert "main" in texts[0] and "low" in texts[0] and "$40.00" in texts[0]
    assert watch.status()["main"].balance == Decimal("20")
    assert watch.status()["main"].balance_shop == Decimal("40")

    sandbox.panel.balance = Decimal("30")  # $60: recovered, re-armed
    await watch.check("main")
    await watch.check("main")
    assert len(await alerts_to(db, 900)) == 1
    sandbox.panel.balance = Decimal("10")  # dips again
    await watch.check("main")
    await watch.check("main")
    texts = await alerts_to(db, 900)
    assert len(texts) == 2 and "$20.00" in texts[1]


async def test_no_threshold_no_balance_alert(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    sandbox = await make_sandbox(balance=Decimal("0.01"))
    watch = make_watch(db, sandbox, make_client, Clock(), balance_alert=None)
    await watch.check("main")
    assert await alerts_to(db, 900) == []


async def test_panel_down_longer_than_threshold_then_back(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    sandbox = await make_sandbox()
    clock = Clock()
    watch = make_watch(db, sandbox, make_client, clock)
    await watch.check("main")
    sandbox.panel.inject("http500", action="balance", times=10_000)
    for _ in range(5):  # 8 minutes down: under the 10-minute threshold
        await watch.check("main")
        clock.now += 120
    assert await alerts_to(db, 900) == []
    assert watch.status()["main"].down_since == 1_000_000.0
    for _ in range(5):  # 18 minutes: one alert, not one per check
        await watch.check("main")
        clock.now += 120
    texts = await alerts_to(db, 900)
    assert len(texts) == 1 and "main" in texts[0] and "10 minute" in texts[0]

    sandbox.panel.clear_faults()
    await watch.check("main")
    await watch.check("main")
    texts = await alerts_to(db, 901)
    assert len(texts) == 2 and "answers again" in texts[1]
    assert watch.status()["main"].down_since is None


async def test_short_outage_sends_no_back_alert(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    sandbox = await make_sandbox()
    clock = Clock()
    watch = make_watch(db, sandbox, make_client, clock)
    sandbox.panel.inject("http500", action="balance", times=10_000)
    await watch.check("main")
    clock.now += 60
    sandbox.panel.clear_faults()
    await watch.check("main")
    assert await alerts_to(db, 900) == []


async def test_wrong_key_counts_as_down(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    sandbox = await make_sandbox()
    clock = Clock()
    watch = PanelWatch(db, {"main": make_client(sandbox, key="wrong")}, ADMINS,
                       fx_rates={}, shop_currency="USD", balance_alert=None, down_minutes=1,
                       clock=clock)
    await watch.check("main")
    clock.now += 61
    await watch.check("main")
    texts = await alerts_to(db, 900)
    assert len(texts) == 1 and "key" in texts[0].lower()


async def test_a_restart_does_not_alert_again(
        make_sandbox: SandboxFactory, make_client: ClientFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox(balance=Decimal("1"))
    path = tmp_path / "shop.sqlite3"
    clock = Clock()
    async with Database(path) as db:
        watch = make_watch(db, sandbox, make_client, clock, down_minutes=1)
        await watch.check("main")
        sandbox.panel.inject("http500", action="balance", times=10_000)
        await watch.check("main")
        clock.now += 120
        await watch.check("main")
        assert len(await alerts_to(db, 900)) == 2  # low, then down
    async with Database(path) as db:
        watch = make_watch(db, sandbox, make_client, clock, down_minutes=1)
        await watch.load()
        assert watch.status()["main"].down_since == 1_000_000.0  # remembered
        clock.now += 120
        await watch.check("main")  # still down: no second down alert
        sandbox.panel.clear_faults()
        await watch.check("main")  # back (one alert), still low (no second low alert)
        texts = await alerts_to(db, 900)
        assert len(texts) == 3 and "answers again" in texts[2]


async def test_poke_is_debounced_and_in_the_background(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    sandbox = await make_sandbox()
    clock = Clock()
    watch = make_watch(db, sandbox, make_client, clock)
    before = sandbox.panel.requests["balance"]
    for _ in range(5):
        watch.poke("main")
    await watch.settle()
    assert sandbox.panel.requests["balance"] == before + 1
    clock.now += 61
    watch.poke()
    await watch.settle()
    assert sandbox.panel.requests["balance"] == before + 2


async def test_a_placed_order_checks_the_balance_in_the_background(
        make_sandbox: SandboxFactory, make_client: ClientFactory, db: Database) -> None:
    """The order that takes the panel under the threshold raises the alert; the
    customer's placement does not wait for the balance call."""
    sandbox = await make_sandbox(balance=Decimal("25.30"))  # $50.60 at rate 2
    client = make_client(sandbox)
    await refresh_catalog(db, client, "USD")
    clock = Clock()
    watch = PanelWatch(db, {"test": client}, ADMINS, fx_rates={"test": Decimal("2")},
                       shop_currency="USD", balance_alert=Decimal("50"), clock=clock)
    service = OrderService(db, {"test": client}, Pricer(db, "USD", Decimal(30),
                                                        {"test": Decimal("2")}),
                           on_panel_used=watch.poke)
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=10_000, kind="credit", key="seed")
    ref = (await catalog_store.by_panel_id(db, "test", "102")).ref  # type: ignore[union-attr]
    before = sandbox.panel.requests["balance"]
    placed = await place_as_shown(service, 7, ref, {"link": "https://instagram.com/p/a",
                                                    "quantity": "1000"})
    assert placed.outcome is Outcome.PLACED
    assert sandbox.panel.requests["balance"] == before  # not yet: in the background
    await watch.settle()
    texts = await alerts_to(db, 900)
    assert len(texts) == 1 and "24.85" in texts[0]  # 25.30 − 0.45
