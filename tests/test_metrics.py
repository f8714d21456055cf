"""Issue 14: the Prometheus metrics (bot/observability/metrics.py), counted by the real code paths.

The metrics are module-level and every test in a process adds to them, so each
test reads a counter before and after what it does and checks the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.devtools.emulator import BotApiEmulator, start_emulator
from bot.devtools.sandbox.server import RunningSandbox
from bot.observability import metrics
from bot.panel import PanelError
from bot.panel.order_types import order_type_for
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.messaging.alerts import no_alert
from bot.shop.messaging.broadcasts import Broadcasts
from bot.shop.messaging.notifier import Notifier
from bot.shop.money.accounts import Accounts
from bot.shop.money.topups import Credit, Refund, StarsTopups
from bot.shop.orders.service import OrderService, Outcome
from bot.shop.orders.tracking import Tracker
from bot.shop.routing.failover import FAILOVER_REASONS
from handlers.middlewares.i18n import build_i18n
from handlers.middlewares.metrics import UPDATE_TYPES
from handlers.outbound.notices import TelegramDelivery
from storage import catalog as catalog_store
from storage import ledger, outbox, users
from storage.db import Database
from tests.conftest import ClientFactory, place_as_shown
from tests.e2e import TOKEN, Shop

pytestmark = pytest.mark.timeout(60)

VALUES = {"link": "https://instagram.com/p/metrics", "quantity": "1000"}


def sample(name: str, **labels: str) -> float:
    """A sample's value now, 0 for a series not created yet."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


Series = tuple[str, dict[str, str]]  # a sample's name and labels


class Delta:
    """Samples read now, to compare with later: ``delta(series)`` is how much it grew."""

    def __init__(self, *series: Series) -> None:
        self._before = {_key(one): sample(one[0], **one[1]) for one in series}

    def __call__(self, series: Series) -> float:
        return sample(series[0], **series[1]) - self._before[_key(series)]


def _key(series: Series) -> tuple[str, tuple[tuple[str, str], ...]]:
    return series[0], tuple(sorted(series[1].items()))


def add(result: str) -> Series:
    return "storefront_panel_requests_total", {"panel": "test", "action": "add", "result": result}


def order(outcome: str) -> Series:
    return "storefront_orders_total", {"outcome": outcome}


@pytest.fixture
async def service(db: Database, sandbox: RunningSandbox, make_client: ClientFactory
                  ) -> OrderService:
    client = make_client(sandbox)
    await refresh_catalog(db, client, "USD")
    await users.upsert_user(db, 7, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=7, amount_minor=10_000, kind="credit", key="seed")
    return OrderService(db, {"test": client}, Pricer(db, "USD", Decimal(30), {"test": Decimal(1)}))


async def likes(db: Database) -> int:
    stored = await catalog_store.by_panel_id(db, "test", "102")
    assert stored is not None
    return stored.ref


async def test_an_order_through_the_sandbox_counts_the_add_and_its_outcome(
        db: Database, service: OrderService) -> None:
    latency = ("storefront_panel_request_seconds_count", {"panel": "test", "action": "add"})
    delta = Delta(add("ok"), add("rejected"), order("placed"), order("rejected"), latency)
    ref = await likes(db)
    placed = await place_as_shown(service, 7, ref, VALUES)
    assert placed.outcome is Outcome.PLACED
    duplicate = await place_as_shown(service, 7, ref, VALUES)  # an active order for this link
    assert duplicate.outcome is Outcome.REJECTED
    assert delta(add("ok")) == 1 and delta(add("rejected")) == 1
    assert delta(latency) == 2
    assert delta(order("placed")) == 1 and delta(order("rejected")) == 1

    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    lines = body.decode().splitlines()
    assert any(line.startswith("storefront_panel_requests_total{")
               and all(f'{label}="{value}"' in line for label, value in add("ok")[1].items())
               for line in lines)
    assert any(line.startswith('storefront_orders_total{outcome="placed"} ') for line in lines)
    text = "\n".join(lines)
    assert "# TYPE storefront_panel_request_seconds histogram" in text


async def test_an_ambiguous_add_counts_as_ambiguous(db: Database, sandbox: RunningSandbox,
                                                    service: OrderService) -> None:
    delta = Delta(add("ambiguous"), order("ambiguous"))
    sandbox.panel.inject("http502", action="add")
    unknown = await place_as_shown(service, 7, await likes(db), VALUES)
    assert unknown.outcome is Outcome.AMBIGUOUS
    assert delta(add("ambiguous")) == 1 and delta(order("ambiguous")) == 1


async def test_a_tracking_cycle_is_timed(db: Database, service: OrderService) -> None:
    cycles = ("storefront_tracker_cycle_seconds_count", {"panel": "test"})
    status = ("storefront_panel_requests_total",
              {"panel": "test", "action": "status", "result": "ok"})
    delta = Delta(cycles, status)
    await place_as_shown(service, 7, await likes(db), VALUES)
    tracker = Tracker(db, service.panels, interval=1, alert=no_alert)
    await tracker.poll("test")
    assert delta(cycles) == 1 and delta(status) == 1


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[BotApiEmulator, Bot]]:
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(running.url)))
    yield emulator, bot
    await bot.session.close()
    await running.stop()


async def test_a_telegram_429_and_the_send_results_count(
        db: Database, telegram: tuple[BotApiEmulator, Bot]) -> None:
    emulator, bot = telegram
    sends = {r: ("storefront_outbox_sends_total", {"result": r}) for r in metrics.OUTBOX_RESULTS}
    throttled = ("storefront_telegram_429_total", {})
    delta = Delta(throttled, *sends.values())
    for user_id in (1, 2):
        emulator.user(user_id)
    emulator.user(3).chat.blocked = True
    async with db.transaction() as conn:
        await outbox.queue(conn, [1, 2, 3], "alert", {"text": "hello"})
    emulator.inject("sendMessage", 429, retry_after=1)
    delivery = TelegramDelivery(bot, build_i18n(), OrderService(db, {}, Pricer(
        db, "USD", Decimal(0), {})), Accounts(db), Broadcasts(db))
    await Notifier(db, delivery, rate=30).drain()
    assert emulator.throttled == 1
    assert delta(throttled) == 1
    assert delta(sends["retry"]) == 1
    assert delta(sends["sent"]) == 2
    assert delta(sends["gone"]) == 1
    metrics.set_outbox_backlog(5)
    assert sample("storefront_outbox_backlog") == 5


async def test_stars_top_ups_and_refunds_count(db: Database) -> None:
    topups = StarsTopups(db, stars_per_unit=Decimal(50), currency="USD", minimum_minor=100,
                         maximum_minor=100_000)
    credited = ("storefront_stars_topups_total", {"result": Credit.CREDITED.value})
    already = ("storefront_stars_topups_total", {"result": Credit.ALREADY.value})
    refunded = ("storefront_stars_refunds_total", {"outcome": Refund.REFUNDED.value})
    unknown = ("storefront_stars_refunds_total", {"outcome": Refund.UNKNOWN.value})
    delta = Delta(credited, already, refunded, unknown)
    await users.upsert_user(db, 8, first_name="Bo")
    topup = await topups.create(8, 500)
    await topups.record_payment(8, topup.payload, topup.stars, "XTR", "charge-m")
    await topups.record_payment(8, topup.payload, topup.stars, "XTR", "charge-m")

    async def telegram_refunds(_user_id: int, _charge_id: str) -> None:
        return None

    assert (await topups.refund("charge-m", telegram_refunds)).outcome is Refund.REFUNDED
    assert (await topups.refund("no-such-charge", telegram_refunds)).outcome is Refund.UNKNOWN
    assert (delta(credited), delta(already), delta(refunded), delta(unknown)) == (1, 1, 1, 1)


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not counted in time"
        await asyncio.sleep(0.02)


def update(kind: str, outcome: str) -> Series:
    return "storefront_updates_total", {"type": kind, "outcome": outcome}


async def test_the_update_middleware_counts_messages_and_callbacks(shop: Shop) -> None:
    timed = ("storefront_update_seconds_count", {"type": "message"})
    edited = ("storefront_updates_total", {"type": "edited_message", "outcome": "unhandled"})
    delta = Delta(update("message", "handled"), update("callback_query", "handled"), timed,
                  edited)
    user = shop.user()
    await user.send("/start")
    await user.tap("New order")
    # The counter moves when the handler has returned, a moment after its answer.
    await wait_for(lambda: delta(update("callback_query", "handled")) == 1)
    assert delta(update("message", "handled")) == 1
    assert delta(timed) == 1
    # An update no handler takes: the bot has no handler for edited messages.
    shop.emulator.push({"edited_message": {
        "message_id": 1, "date": 0, "edit_date": 1, "chat": user.chat.as_object(),
        "from": user.sender, "text": "edited"}})
    await wait_for(lambda: delta(edited) == 1)


async def test_label_values_stay_bounded_whatever_a_panel_sends(
        sandbox: RunningSandbox, make_client: ClientFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(sandbox)
    odd = [(200, '{"error": "Ünïcode 🚀 \\u0000 %s"}'), (418, "I'm a teapot"),
           (299, "<html>not json</html>"), (200, '{"order": {"nested": [1, 2]}}'),
           (200, "[" * 5000), (503, '{"error": "' + "x" * 10_000 + '"}'),
           (200, '{"status": "Déjà vu", "charge": "NaN", "remains": "-1e999"}')]
    for status, body in odd:
        for action in ("add", "status", "balance", "services"):
            sandbox.panel.inject("raw", action=action, status=status, body=body)
    calls = [lambda: client.add("102", order_type_for("Default"), VALUES),
             lambda: client.status("1"), client.balance, client.services]
    for _ in odd:
        for call in calls:
            with contextlib.suppress(PanelError):
                await call()
    # Codes that are not the code's own values become "other".
    metrics.update_handled("a-type-from-the-future", "exploded", 0.1, UPDATE_TYPES)
    metrics.outbox_send("whatever")
    metrics.failover("a-reason-from-the-future", FAILOVER_REASONS)
    metrics.api_request("an-action-from-the-future", "whatever")
    seen_panels = set(metrics._panels)
    monkeypatch.setattr(metrics, "_panels", set())
    labels = [metrics.panel_label(f"panel-{n}") for n in range(metrics.MAX_PANELS + 5)]
    assert labels[-1] == metrics.OTHER and len(set(labels)) == metrics.MAX_PANELS + 1
    assert metrics.panel_label("p" * 200) == metrics.OTHER
    known = {
        "panel": seen_panels | {metrics.OTHER},
        "action": set(metrics.PANEL_ACTIONS) | set(metrics.API_ACTIONS) | {metrics.OTHER},
        "result": set(metrics.PANEL_RESULTS) | set(metrics.OUTBOX_RESULTS)
        | set(metrics.API_RESULTS) | {c.value for c in Credit} | {metrics.OTHER},
        "type": UPDATE_TYPES | {metrics.OTHER},
        "reason": FAILOVER_REASONS | {metrics.OTHER},
        "outcome": set(metrics.UPDATE_OUTCOMES) | {o.value for o in Outcome}
        | {r.value for r in Refund} | {metrics.OTHER},
    }
    assert len(seen_panels) <= metrics.MAX_PANELS and "test" in seen_panels
    for family in metrics.REGISTRY.collect():
        if not family.name.startswith("storefront_"):
            continue
        for point in family.samples:
            for label, value in point.labels.items():
                if label != "le":  # a histogram's bucket bounds: fixed in code
                    assert value in known[label], (family.name, label, value)
    assert sample("storefront_updates_total", type="other", outcome="other") >= 1


def test_render_is_the_exposition_of_its_own_registry() -> None:
    body, content_type = metrics.render()
    assert content_type == metrics.CONTENT_TYPE_LATEST
    assert b"storefront_outbox_sends_total" in body
    from prometheus_client import REGISTRY as GLOBAL

    assert not any(f.name.startswith("storefront") for f in GLOBAL.collect())
