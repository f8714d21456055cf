"""The daily summary (bot/shop/backoffice/daily_report.py): once a day, to every admin, right figures.

Real orders placed on the sandbox panel, a real Stars top-up credited, a real
SQLite file; the clock is injected so "tomorrow at the hour" comes at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_settings
from bot.shop.backoffice.daily_report import DailyReport, Report
from bot.shop.backoffice.panel_watch import PanelWatch
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.messaging.alerts import render
from bot.shop.money import formatting
from bot.shop.money.topups import StarsTopups
from bot.shop.orders.service import OrderService, Outcome
from handlers.middlewares.i18n import build_i18n
from handlers.views.dashboard import daily_summary_text
from storage import catalog as catalog_store
from storage import ledger, outbox, users
from storage.db import Database
from tests.conftest import ClientFactory, SandboxFactory, place_as_shown

pytestmark = pytest.mark.timeout(60)

ADMINS = [900, 901]
ZONE = ZoneInfo("Europe/Berlin")


def values(n: int) -> dict[str, str]:
    """Service 102's form (0.45 per 1000); a link per order (the panel refuses duplicates)."""
    return {"link": f"https://instagram.com/p/x{n}", "quantity": "1000"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(day_offset: int, hour: int) -> float:
    """Unix time of ``hour``:00 shop time, ``day_offset`` days after today (shop time)."""
    today = datetime.now(ZONE).date()
    moment = datetime.combine(today + timedelta(days=day_offset), datetime.min.time(), ZONE)
    return moment.replace(hour=hour).timestamp()


async def alerts_to(db: Database, chat_id: int, locale: str = "en") -> list[str]:
    """The admin's alerts as they will read them (the summary is worded when sent)."""
    rows = await outbox.due(db, 1e12, 1000, per_chat=1000)
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(locale):
        return [daily_summary_text(Report.from_payload(r.payload["daily_report"]))
                if "daily_report" in r.payload else render(r.payload)
                for r in rows if r.kind == "alert" and r.chat_id == chat_id]


def report(db: Database, clock: Clock, hour: int | None = 9,
           watch: PanelWatch | None = None) -> DailyReport:
    return DailyReport(db, ADMINS, hour=hour, zone=ZONE, currency="USD",
                       fx_rates={"test": Decimal(1)}, watch=watch, clock=clock)


async def a_day_of_business(db: Database, sandbox, make_client: ClientFactory) -> PanelWatch:
    """Two customers, four orders (one refused and refunded, one of unknown outcome),
    one Stars top-up of $5."""
    client = make_client(sandbox, timeout=1)
    await refresh_catalog(db, client, "USD")
    service = OrderService(db, {"test": client}, Pricer(db, "USD", Decimal(30),
                                                        {"test": Decimal(1)}))
    ref = (await catalog_store.by_panel_id(db, "test", "102")).ref  # type: ignore[union-attr]
    for user in (7, 8):
        await users.upsert_user(db, user, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=10_000, kind="credit", key="seed")
    placed = [await place_as_shown(service, 7, ref, values(n)) for n in range(2)]
    assert [p.outcome for p in placed] == [Outcome.PLACED, Outcome.PLACED]
    assert placed[0].order.price_minor == 59  # 0.45 × 1.3, rounded up
    balance = sandbox.panel.balance
    sandbox.panel.balance = Decimal(0)
    refused = await place_as_shown(service, 7, ref, values(2))
    assert refused.outcome is Outcome.REJECTED
    sandbox.panel.balance = balance
    sandbox.panel.inject("drop_after", action="add")
    unknown = await place_as_shown(service, 7, ref, values(3))
    assert unknown.outcome is Outcome.AMBIGUOUS

    topups = StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                         maximum_minor=100_000)
    topup = await topups.create(8, 500)
    await topups.record_payment(8, topup.payload, topup.stars, "XTR", "charge-1")

    watch = PanelWatch(db, {"test": client}, ADMINS, fx_rates={"test": Decimal(1)},
                       shop_currency="USD", balance_alert=None)
    await watch.check("test")
    return watch


async def test_the_summary_goes_once_a_day_with_the_days_figures(
        make_sandbox: SandboxFactory, make_client: ClientFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    path = tmp_path / "shop.sqlite3"
    async with Database(path) as db:
        watch = await a_day_of_business(db, sandbox, make_client)
        clock = Clock(at(1, 8) + 59 * 60)  # tomorrow 08:59: not yet
        daily = report(db, clock, watch=watch)
        assert not await daily.tick()
        assert await alerts_to(db, 900) == []

        clock.now = at(1, 9)
        assert await daily.tick()
        for admin in ADMINS:
            texts = await alerts_to(db, admin)
            assert len(texts) == 1
            text = texts[0]
            assert f"Summary of {formatting.day(datetime.now(ZONE).date())}" in text
            assert "Orders: 4" in text
            assert "Turnover: $2.36" in text  # four debits of $0.59
            assert "Refunds: $0.59" in text  # the refused one
            assert "Panel cost: $1.35" in text  # three at the panel, 0.45 each
            assert "Profit: $0.42" in text
            assert "New customers: 2" in text
            assert "Stars top-ups: 1 ($5.00)" in text
            assert "Problem orders open: 1" in text
            assert f"Panel test: {formatting.amount(sandbox.panel.balance, 'USD')}" in text

        clock.now = at(1, 15)  # later the same day: nothing more
        assert not await daily.tick()
    async with Database(path) as db:  # a restart the same day: nothing more
        clock = Clock(at(1, 20))
        assert not await report(db, clock).tick()
        assert len(await alerts_to(db, 901)) == 1
        clock.now = at(2, 9)  # the next day: its own summary (a quiet day)
        assert await report(db, clock).tick()
        texts = await alerts_to(db, 901)
        assert len(texts) == 2
        assert "Orders: 0" in texts[1] and "Turnover: $0.00" in texts[1]
        assert "Problem orders open: 1" in texts[1]  # still open


async def test_no_hour_no_summary(db: Database) -> None:
    await users.upsert_user(db, 7, first_name="Ann")
    daily = report(db, Clock(at(1, 23)), hour=None)
    assert not await daily.tick()
    await daily.run()  # returns at once: nothing to do
    assert await alerts_to(db, 900) == []


def test_settings() -> None:
    settings = load_settings(daily_report_hour="", shop_timezone="Europe/Berlin",
                             panel_balance_alert="", panel_down_alert="10")
    assert settings.daily_report_hour is None and settings.panel_balance_alert is None
    assert settings.zone == ZONE
    assert load_settings(daily_report_hour="9").daily_report_hour == 9
    assert load_settings(panel_balance_alert="12.50").panel_balance_alert == Decimal("12.50")
    for bad, name in [({"shop_timezone": "Mars/Olympus"}, "SHOP_TIMEZONE"),
                      ({"daily_report_hour": "24"}, "DAILY_REPORT_HOUR"),
                      ({"panel_balance_alert": "0"}, "PANEL_BALANCE_ALERT"),
                      ({"panel_down_alert": "0"}, "PANEL_DOWN_ALERT")]:
        with pytest.raises(ConfigError) as error:
            load_settings(**bad)
        message = str(error.value)
        assert name in message and "\n" not in message
