"""The composition root: builds every service once and hands them to the handlers.

``Runtime`` owns the database, the panel clients and (when no panel is
configured) the embedded sandbox panel. ``build_dispatcher`` registers the
routers and injects the runtime's services through ``workflow_data``, so handlers
receive them as keyword arguments and never build anything themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.catalog import refresh_catalog
from bot.config import SANDBOX_PANEL_NAME, ConfigError, PanelSettings, Settings
from bot.panel import PanelClient, PanelError
from bot.sandbox.server import DEFAULT_KEY, RunningSandbox, SandboxPanel, start_sandbox
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    panels: dict[str, PanelClient]
    panel_currencies: dict[str, str] = field(default_factory=dict)
    sandbox: RunningSandbox | None = None

    async def close(self) -> None:
        for client in self.panels.values():
            await client.aclose()
        if self.sandbox is not None:
            await self.sandbox.stop()
        await self.db.close()


def client_for(panel: PanelSettings) -> PanelClient:
    return PanelClient(panel.url, panel.key, name=panel.name, rate_limit=panel.rate_limit,
                       timeout=panel.timeout)


async def start_runtime(settings: Settings) -> Runtime:
    """Open the database, connect the panels (or start the sandbox) and sync catalogs."""
    db = await Database(settings.database_path).open()
    configured = settings.panel_settings()
    sandbox = None
    if not configured:
        sandbox = await start_sandbox(
            SandboxPanel(dialect=settings.sandbox_dialect, pace=settings.sandbox_pace),
            port=settings.sandbox_port,
        )
        log.warning("=" * 72)
        log.warning("NO PANEL CONFIGURED: using the embedded SANDBOX panel at %s", sandbox.url)
        log.warning("Orders are simulated and nothing is delivered. Set PANEL_URL and")
        log.warning("PANEL_KEY (or PANELS) in .env to sell real services.")
        log.warning("=" * 72)
        configured = [PanelSettings(name=SANDBOX_PANEL_NAME, url=sandbox.url, key=DEFAULT_KEY,
                                    rate_limit=0)]
    runtime = Runtime(settings, db, {p.name: client_for(p) for p in configured}, sandbox=sandbox)
    for panel in configured:
        client = runtime.panels[panel.name]
        currency = panel.currency
        try:
            if currency is None:
                currency = (await client.balance()).currency
            runtime.panel_currencies[panel.name] = currency
            await refresh_catalog(db, client, currency)
        except PanelError as exc:
            # The cached catalog keeps the shop open while a panel is down.
            log.error("panel %s is not reachable at start-up: %s", panel.name, exc)
            runtime.panel_currencies.setdefault(panel.name, currency or "USD")
    return runtime


def build_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise ConfigError("configuration error: BOT_TOKEN is not set (get one from @BotFather)")
    session = None
    if settings.telegram_api_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(settings.bot_token.get_secret_value(), session=session,
               default=DefaultBotProperties(parse_mode="HTML"))


def build_dispatcher(runtime: Runtime) -> Dispatcher:
    from handlers import routers

    dispatcher = Dispatcher(runtime=runtime, db=runtime.db, settings=runtime.settings)
    for router in routers():
        dispatcher.include_router(router)
    return dispatcher


async def run_bot(settings: Settings) -> None:
    bot = build_bot(settings)
    runtime = await start_runtime(settings)
    try:
        dispatcher = build_dispatcher(runtime)
        await dispatcher.start_polling(bot, handle_signals=True)
    finally:
        await runtime.close()
        await bot.session.close()
