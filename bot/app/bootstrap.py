"""The composition root: builds every service once and hands them to the handlers.

``Runtime`` owns the database, the panel clients and (when no panel is
configured) the embedded sandbox panel. ``build_dispatcher`` registers the
routers and injects the services built on them through ``workflow_data``, so
handlers receive them as keyword arguments and never build anything themselves;
neither the database nor the runtime is injected: handlers reach the database
only through the services.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import User
from aiohttp import ClientConnectorError, ClientSSLError, InvalidURL

from bot.app.api_endpoint import ApiEndpoint
from bot.app.backups import AutoBackup
from bot.app.fsm_storage import DestinyKeys, SqliteStorage
from bot.app.preflight import Prepared, open_database, prepare, redis_missing
from bot.app.telegram_session import KeptResponsesSession
from bot.config import SANDBOX_PANEL_NAME, ConfigError, PanelSettings, Settings, StartupError
from bot.observability import redaction
from bot.panel import PanelClient, PanelError
from bot.shop.backoffice.audit import AuditLog
from bot.shop.backoffice.customers import Customers
from bot.shop.backoffice.daily_report import DailyReport
from bot.shop.backoffice.panel_watch import PanelWatch
from bot.shop.backoffice.retention import Retention
from bot.shop.backoffice.stats import ShopStats
from bot.shop.catalog.admin import CatalogAdmin
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import ShopCatalog, keep_catalog_fresh, refresh_catalog
from bot.shop.growth.discounts import Discounts
from bot.shop.growth.loyalty import LoyaltyTiers
from bot.shop.growth.promo_codes import PromoCodes
from bot.shop.growth.referrals import Referrals
from bot.shop.messaging.alerts import AdminAlerts
from bot.shop.messaging.broadcasts import Broadcasts, BroadcastWatcher
from bot.shop.messaging.languages import LanguageChoices
from bot.shop.messaging.notifier import Notifier
from bot.shop.money import reconcile
from bot.shop.money.accounts import Accounts
from bot.shop.money.amounts import to_minor_up
from bot.shop.money.topups import StarsTopups
from bot.shop.orders.service import OrderService
from bot.shop.orders.tracking import Tracker
from bot.shop.routing.changes import CatalogWatch
from bot.shop.routing.failover import Router, Routing
from bot.shop.routing.links import RouteLinks
from bot.shop.wholesale.api import WholesaleApi
from bot.shop.wholesale.keys import ApiKeys
from bot.shop.wholesale.limits import RequestLimit
from handlers.middlewares.i18n import UserLanguageMiddleware, checked_i18n, report_broken_translations
from handlers.middlewares.metrics import UpdateMetrics
from handlers.middlewares.services import HandlerServices
from storage.db import Database

if TYPE_CHECKING:
    from aiogram.fsm.storage.redis import RedisStorage

log = logging.getLogger(__name__)

TELEGRAM_RETRY_DELAY = 5.0  # seconds between start-up tries to reach Telegram
# Seconds one try may take: aiogram's own 60 would eat the whole wait on a network
# that drops packets; the total is at most TELEGRAM_WAIT plus one of these.
TELEGRAM_TRY_TIMEOUT = 10
OFFICIAL_API = "https://api.telegram.org"
REFUSED_BY_TELEGRAM = "BOT_TOKEN was refused by Telegram: check it with @BotFather"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    panels: dict[str, PanelClient]
    panel_currencies: dict[str, str] = field(default_factory=dict)
    sandbox: EmbeddedPanel | None = None  # the panel started when none is configured
    catalog: ShopCatalog = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = ShopCatalog(self.db)

    async def close(self) -> None:
        for client in self.panels.values():
            await client.aclose()
        if self.sandbox is not None:
            await self.sandbox.stop()
        await self.db.close()


class EmbeddedPanel(Protocol):
    """A panel the shop starts itself when none is configured: the sandbox, which the
    command line hands in (bot/devtools/sandbox/embedded.py)."""

    @property
    def url(self) -> str: ...

    @property
    def key(self) -> str: ...

    async def stop(self) -> None: ...


StartEmbeddedPanel = Callable[[Settings], Awaitable[EmbeddedPanel]]


async def start_runtime(settings: Settings, *, db: Database | None = None,
                        embedded_panel: StartEmbeddedPanel | None = None) -> Runtime:
    """Open the database (unless given one), connect the panels (or, with none
    configured, start ``embedded_panel``) and sync catalogs."""
    if db is None:
        db = await open_database(settings)
    configured = settings.panel_settings()
    sandbox = None
    if not configured:
        if embedded_panel is None:
            await db.close()
            raise ConfigError("configuration error: no panel: set PANEL_URL and PANEL_KEY (or"
                              " PANELS) in .env")
        sandbox = await embedded_panel(settings)
        configured = [PanelSettings(name=SANDBOX_PANEL_NAME, url=sandbox.url, key=sandbox.key,
                                    rate_limit=0)]
    runtime = Runtime(settings, db, {p.name: p.client() for p in configured}, sandbox=sandbox)
    for panel in configured:
        client = runtime.panels[panel.name]
        currency = panel.currency
        try:
            if currency is None:
                currency = (await client.balance()).currency
            runtime.panel_currencies[panel.name] = currency
            await refresh_catalog(db, client, currency, settings.price_alert_percent)
        except PanelError as exc:
            # The cached catalog keeps the shop open while a panel is down.
            log.error("panel %s is not reachable at start-up: %s", panel.name, exc)
            runtime.panel_currencies.setdefault(panel.name, currency or "USD")
    await runtime.catalog.reload()
    return runtime


def build_bot(settings: Settings) -> Bot:
    token = settings.required_token()
    # Registered first: aiohttp puts request URLs, token included, in its errors.
    redaction.register(token)
    session = (KeptResponsesSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
               if settings.telegram_api_url else KeptResponsesSession())
    return Bot(token.get_secret_value(), session=session,
               default=DefaultBotProperties(parse_mode="HTML"))


def fsm_storage(runtime: Runtime) -> BaseStorage:
    """SQLite by default, so forms survive restarts; Redis when REDIS_URL is set."""
    if runtime.settings.redis_url:
        return redis_storage_class().from_url(runtime.settings.redis_url,
                                              key_builder=DestinyKeys())
    return SqliteStorage(runtime.db)


def redis_storage_class() -> type[RedisStorage]:
    """aiogram's RedisStorage, or a ``ConfigError`` saying how to install redis-py
    (an optional dependency: the ``redis`` extra)."""
    try:
        from aiogram.fsm.storage.redis import RedisStorage
    except ImportError:
        raise redis_missing() from None
    return RedisStorage


def build_dispatcher(runtime: Runtime, bot: Bot, bot_username: str) -> Dispatcher:
    """The dispatcher with every router, middleware and service wired in."""
    from handlers import routers
    from handlers.customer.payments import PaymentsFirst
    from handlers.middlewares.access import BlockedCustomers
    from handlers.middlewares.errors import SafeCallbackAnswer, on_error
    from handlers.middlewares.private_chats import PrivateChatsOnly
    from handlers.outbound.notices import TelegramDelivery
    from handlers.views.catalog import PageCache

    settings = runtime.settings
    fx_rates = {name: settings.fx_rate for name in runtime.panels}
    for panel in settings.panel_settings():
        if panel.fx_rate is not None:
            fx_rates[panel.name] = panel.fx_rate
    pricer = Pricer(runtime.db, settings.shop_currency, settings.markup_percent, fx_rates)
    i18n, dropped_translations = (checked_i18n(settings.locales_dir) if settings.locales_dir
                                  else checked_i18n())
    languages_chosen = LanguageChoices(runtime.db)
    # Alerts wake the notifier, which renders with the order service, which alerts.
    alerts = AdminAlerts(runtime.db, settings.admin_ids, lambda: notifier.wake())
    watch = PanelWatch(runtime.db, runtime.panels, settings.admin_ids, fx_rates=fx_rates,
                       shop_currency=settings.shop_currency,
                       balance_alert=settings.panel_balance_alert,
                       down_minutes=settings.panel_down_alert, on_queued=lambda: notifier.wake())
    daily = DailyReport(runtime.db, settings.admin_ids, hour=settings.daily_report_hour,
                        zone=settings.zone, currency=settings.shop_currency, fx_rates=fx_rates,
                        watch=watch, on_queued=lambda: notifier.wake())
    catalog_watch = CatalogWatch(runtime.db, pricer, settings.admin_ids,
                                 hour=settings.daily_report_hour, zone=settings.zone,
                                 on_queued=lambda: notifier.wake())
    discounts = Discounts(runtime.db, LoyaltyTiers(settings.loyalty_tiers, settings.shop_currency),
                          settings.discount_max_percent)
    router = Router(runtime.db, panels=runtime.panels, fx_rates=fx_rates,
                    shop_currency=settings.shop_currency, routing=Routing(settings.routing),
                    min_margin_percent=settings.min_margin_percent, is_down=watch.is_down)
    orders = OrderService(runtime.db, runtime.panels, pricer, runtime.catalog, alert=alerts.send,
                          on_panel_used=watch.poke, discounts=discounts, router=router)
    currency = settings.shop_currency
    referrals = build_referrals(runtime.db, settings)
    # Built even with Stars off: invoices sent before it was turned off can still be paid.
    # A top-up's referral commissions move in its own transactions (the hook).
    topups = StarsTopups(runtime.db, stars_per_unit=settings.stars_per_unit or Decimal(1),
                         currency=currency, minimum_minor=to_minor_up(settings.topup_min, currency),
                         maximum_minor=to_minor_up(settings.topup_max, currency),
                         alert=alerts.send, pending_max=settings.topup_pending_max,
                         hook=referrals, on_notice=lambda: notifier.wake())
    accounts = Accounts(runtime.db)
    broadcasts = Broadcasts(runtime.db)
    notifier = Notifier(runtime.db, TelegramDelivery(bot, i18n, orders, accounts, broadcasts,
                                                     alert=alerts.send),
                        rate=settings.send_rate)
    from handlers.outbound.broadcast_progress import BroadcastProgress

    # Broadcast progress: the admin's message edited as it goes, and the summary
    # (bot/shop/messaging/broadcasts.py).
    broadcast_watcher = BroadcastWatcher(runtime.db, BroadcastProgress(bot, i18n, accounts),
                                         notifier.wake)
    tracker = Tracker(runtime.db, runtime.panels, interval=settings.track_interval,
                      alert=alerts.send, on_notice=notifier.wake)
    customers = Customers(runtime.db, settings.admin_ids)
    shop_stats = ShopStats(runtime.db, panels=runtime.panels, fx_rates=fx_rates,
                           currency=settings.shop_currency, timezone=settings.shop_timezone,
                           alert_below=settings.panel_balance_alert)
    services: dict[str, Any] = dict(
        catalog=runtime.catalog, settings=settings,
        pricer=pricer, orders=orders, pages=PageCache(), accounts=accounts,
        broadcasts=broadcasts, audit_log=AuditLog(runtime.db), shop_stats=shop_stats,
        alerts=alerts, notifier=notifier, tracker=tracker, topups=topups, referrals=referrals,
        customers=customers, bot_username=bot_username, languages_chosen=languages_chosen,
        i18n=i18n, dropped_translations=dropped_translations,
        catalog_admin=CatalogAdmin(runtime.db, runtime.catalog, pricer, runtime.panels,
                                   runtime.panel_currencies,
                                   price_alert=settings.price_alert_percent,
                                   after_change=catalog_watch.after_refresh),
        catalog_watch=catalog_watch,
        route_links=RouteLinks(runtime.db, pricer, list(runtime.panels),
                               on_change=runtime.catalog.reload),
        watch=watch, daily_report=daily, broadcast_watcher=broadcast_watcher,
        discounts=discounts,
        promo_codes=PromoCodes(runtime.db, currency=currency,
                               max_percent=settings.discount_max_percent),
        api_keys=ApiKeys(runtime.db, settings.admin_ids, enabled=settings.api_enabled,
                         url=settings.api_url),
    )
    # Given to the handler that runs, not carried through the routers (handlers/middlewares/services.py).
    dispatcher = Dispatcher(storage=fsm_storage(runtime), events_isolation=SimpleEventIsolation(),
                            settings=settings, services=services)
    HandlerServices(services).setup(dispatcher)
    dispatcher.update.outer_middleware(UpdateMetrics())  # first: times all the others too
    # Pre-checkout queries are answered, and payments credited, before the FSM
    # middleware can make them wait for the payer's other updates (handlers/customer/payments.py).
    dispatcher.update.outer_middleware.unregister(dispatcher.fsm)
    dispatcher.update.outer_middleware(PaymentsFirst(topups, i18n, languages_chosen))
    dispatcher.update.outer_middleware(dispatcher.fsm)
    UserLanguageMiddleware(i18n, languages_chosen).setup(dispatcher)
    private_only = PrivateChatsOnly(bot_username)
    dispatcher.message.outer_middleware(private_only)
    dispatcher.callback_query.outer_middleware(private_only)
    blocked = BlockedCustomers(customers, settings)
    dispatcher.message.outer_middleware(blocked)
    dispatcher.callback_query.outer_middleware(blocked)
    dispatcher.callback_query.middleware(SafeCallbackAnswer())
    for router in routers():
        dispatcher.include_router(router)
    dispatcher.errors.register(on_error)
    return dispatcher


def wholesale_endpoint(runtime: Runtime, dispatcher: Dispatcher) -> ApiEndpoint | None:
    """The wholesale API's web endpoint on the shop's services (``None``: API_ENABLED
    is off)."""
    settings = runtime.settings
    if not settings.api_enabled:
        return None
    services = dispatcher["services"]
    return ApiEndpoint(WholesaleApi(runtime.db, services["api_keys"], services["orders"],
                                    rate_limit=RequestLimit(settings.api_rate_limit),
                                    discounts=services["discounts"]))


def build_referrals(db: Database, settings: Settings) -> Referrals:
    """The referral program as the settings make it (also the command line's, for the
    reconciliation: a refund given back gives back its commissions' clawback)."""
    return Referrals(db, percent=settings.referral_percent,
                     percent_2=settings.referral_percent_2,
                     min_topup_minor=to_minor_up(settings.referral_min_topup,
                                                 settings.shop_currency))


def settle_heap() -> None:
    """Hide what start-up built (modules, pydantic schemas, the routers, the
    catalog copy) from the garbage collector before traffic starts, and turn the
    collector on (``python -m bot`` starts with it off: bot/__main__.py).

    Those objects live as long as the process, yet every full collection
    walked them all: ~250 ms pauses under load (bench/conversation.py). What is
    allocated later is collected as usual; ``unsettle_heap`` undoes it at shutdown.
    A start-up run with the collector off leaves almost no garbage (~2,000
    objects), so it is frozen as it is rather than after a 0.1 s full collection
    (0.18 s in a test process, at every bot the tests start). What garbage a
    process that started with the collector on (the tests, the demo) freezes here
    is collected after ``unsettle_heap``.

    The young generation is collected every ``COLLECT_AFTER`` allocations, not
    Python's 700: an update allocates a few hundred objects (pydantic models for
    the update and each Bot API call), nearly all freed by their reference
    counts, so at 700 the collector ran about every other update, and its older
    generations' passes (5-17 ms each) every few hundred. 3 % of the bot's CPU in
    a burst of orders went to it, 1 % after (bench/README.md); a cycle of garbage
    still goes within a few seconds.
    """
    gc.freeze()
    gc.set_threshold(*COLLECT_AFTER)
    gc.enable()


COLLECT_AFTER = (20_000, 20, 10)  # the collector's thresholds once the bot runs
_PYTHON_THRESHOLDS = gc.get_threshold()


def unsettle_heap() -> None:
    gc.unfreeze()
    gc.set_threshold(*_PYTHON_THRESHOLDS)


async def _report_unresolved(orders: OrderService, alerts: AdminAlerts) -> None:
    """Orders a previous run left undecided are put before the admins at start-up."""
    interrupted = await orders.recover_interrupted()
    _, unknown = await orders.unresolved(limit=0)
    if unknown:
        await alerts.send(
            f"❔ {unknown} order(s) need checking on the panel"
            f"{f' ({interrupted} interrupted by a restart)' if interrupted else ''}."
            " Send /unresolved to attach the panel's order id or refund each one.")


async def reach_telegram(bot: Bot, settings: Settings) -> User:
    """The bot's own user (``getMe``), tried for ``TELEGRAM_WAIT`` seconds while
    Telegram cannot be reached, with a line on stderr before each pause.

    A refused token and an answer that is not the Bot API's stop at once with
    ``StartupError``; so does the end of the wait. Every line is one a new shop
    owner can act on: what is wrong and where, never aiohttp's traceback.
    """
    url = settings.telegram_api_url or OFFICIAL_API
    where = ("TELEGRAM_API_URL and that a Bot API server runs there" if settings.telegram_api_url
             else "this machine's internet connection")
    deadline = time.monotonic() + settings.telegram_wait
    while True:
        pause = TELEGRAM_RETRY_DELAY
        try:
            return await bot.get_me(request_timeout=TELEGRAM_TRY_TIMEOUT)
        except TelegramUnauthorizedError:
            raise StartupError(REFUSED_BY_TELEGRAM) from None
        except TelegramNotFound:
            # The official API says 404 to a well-formed token only for a wrong path.
            raise StartupError(f"{url} has no Bot API method getMe (404 Not Found): check"
                               " TELEGRAM_API_URL (a Bot API server's base URL, like"
                               " http://localhost:8081, without /bot...)") from None
        except TelegramNetworkError as exc:
            if isinstance(exc.__cause__, InvalidURL):
                raise StartupError(f"TELEGRAM_API_URL {url} does not make a valid URL: check"
                                   " it") from None
            cause = _network_cause(exc, TELEGRAM_TRY_TIMEOUT)
        except TelegramRetryAfter as exc:
            cause, pause = "it asks to wait", max(pause, exc.retry_after)
        except TelegramServerError as exc:
            cause = f"server error: {exc.message}"
        except ClientDecodeError:
            # A web page rather than the Bot API's JSON: often a proxy between
            # us and a Bot API server that is (re)starting, so it is waited for.
            cause = "its answer is not the Bot API's"
        except TelegramAPIError as exc:
            raise StartupError(f"Telegram at {url} refused getMe ({exc.message}): check"
                               " BOT_TOKEN with @BotFather") from None
        left = deadline - time.monotonic()
        if left <= 0:
            waited = f" after {settings.telegram_wait:g} s" if settings.telegram_wait else ""
            raise StartupError(f"Telegram is not reachable at {url} ({cause}); gave up{waited}:"
                               f" check {where}, then start the bot again")
        pause = min(pause, left)
        print(redaction.redact(f"Telegram is not reachable at {url} ({cause}); retrying in"
                               f" {math.ceil(pause)} s (giving up in {math.ceil(left)} s)…"),
              file=sys.stderr, flush=True)
        await asyncio.sleep(pause)


def _network_cause(exc: TelegramNetworkError, timeout: float) -> str:
    """aiohttp's reason, in a few words (its own text repeats host and port)."""
    origin = exc.__cause__
    if isinstance(origin, asyncio.TimeoutError):
        return f"no answer in {timeout:g} s"
    if isinstance(origin, ClientSSLError):
        return f"TLS failed: {getattr(origin, 'certificate_error', origin.os_error)}"
    if isinstance(origin, ClientConnectorError):
        if isinstance(origin.os_error, socket.gaierror):
            return f"cannot resolve {origin.host}: {origin.os_error.strerror}"
        if isinstance(origin.os_error, ConnectionRefusedError):
            return "connection refused"
        return origin.os_error.strerror or str(origin.os_error)
    return str(origin or exc.message)[:200]


async def run_bot(settings: Settings, *, prepared: Prepared | None = None,
                  handle_signals: bool = True,
                  embedded_panel: StartEmbeddedPanel | None = None) -> None:
    """Run the shop until SIGTERM/SIGINT. ``prepared``: what the command line's start-up
    checks took before it imported this module (bot/app/preflight.py); prepared here
    when not given. Released when the run ends, however it ends."""
    from bot.app import health
    from bot.app.inbox import UpdateFeed
    from bot.app.serving import serve
    from bot.observability import metrics
    from handlers.customer.language import languages
    from handlers.customer.menu import describe_bot
    from handlers.outbound.star_transactions import telegram_transactions

    redaction.register(*settings.secrets())  # before anything can log, alert or store them
    if prepared is None:
        # What is wrong on this machine is said at once, before any wait on the network.
        prepared = await prepare(settings)
    db = prepared.db
    runtime: Runtime | None = None
    background: list[asyncio.Task[None]] = []
    dispatcher: Dispatcher | None = None
    bot: Bot | None = None
    try:
        bot = build_bot(settings)
        # Telegram before the panels: a refused token is said before the sandbox
        # banner and catalog syncs, and nothing is synced for a bot that cannot run.
        me = await reach_telegram(bot, settings)
        runtime = await start_runtime(settings, db=db, embedded_panel=embedded_panel)
        dispatcher = build_dispatcher(runtime, bot, me.username or "")
        services = dispatcher["services"]
        i18n, watch = services["i18n"], services["watch"]
        await describe_bot(bot, i18n, languages(i18n), invite=settings.referrals_enabled,
                           api=settings.api_enabled)
        await _report_unresolved(services["orders"], services["alerts"])
        await report_broken_translations(services["dropped_translations"], services["alerts"])
        # The start-up refresh's losses and digest (the notifier sends it once running).
        if await services["catalog_watch"].after_refresh():
            await runtime.catalog.reload()
        tracking = asyncio.create_task(services["tracker"].run())
        background += [
            tracking,
            asyncio.create_task(keep_catalog_fresh(
                runtime.catalog, [(runtime.panels[name], currency)
                             for name, currency in runtime.panel_currencies.items()],
                settings.catalog_refresh, after_refresh=services["watch"].poke,
                price_alert=settings.price_alert_percent,
                after_stored=services["catalog_watch"].after_refresh)),
            asyncio.create_task(services["catalog_watch"].run()),
            asyncio.create_task(services["watch"].run()),
            asyncio.create_task(services["daily_report"].run()),
            asyncio.create_task(services["notifier"].run()),
            asyncio.create_task(services["broadcast_watcher"].run()),
            asyncio.create_task(AutoBackup.for_settings(settings, services["alerts"].send).run()),
            asyncio.create_task(reconcile.every_day(
                runtime.db, telegram_transactions(bot), services["alerts"].send,
                hook=services["topups"].hook)),
            asyncio.create_task(Retention(runtime.db, days=settings.retention_days,
                                          alert=services["alerts"].send).run()),
        ]
        settle_heap()
        log.info("bot @%s is running", me.username)
        feed = UpdateFeed(dispatcher, bot, runtime.db, alert=services["alerts"].send)
        deadline = await serve(dispatcher, bot, settings, runtime.db, feed=feed,
                               listeners=prepared.listeners,
                               health=lambda: health.check(runtime.db, watch.status),
                               metrics=metrics.render, handle_signals=handle_signals,
                               api=wholesale_endpoint(runtime, dispatcher))
        # Stopping (SIGTERM/SIGINT): the tracker finishes the cycle under way, within
        # what is left of SHUTDOWN_GRACE (the whole stop fits in it, plus a few seconds).
        services["tracker"].stop()
        await asyncio.wait([tracking], timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if dispatcher is not None:
            await dispatcher["services"]["watch"].aclose()
            await dispatcher["services"]["customers"].close()
        prepared.listeners.close()  # those the web servers did not take
        await (runtime.close() if runtime is not None else db.close())
        if bot is not None:
            await bot.session.close()
        unsettle_heap()
        prepared.run_lock.release()
