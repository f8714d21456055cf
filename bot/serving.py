"""How the bot takes its updates, and how it stops.

* **Long polling** (no ``WEBHOOK_URL``): any webhook is deleted first (Telegram
  refuses getUpdates while one is set), then aiogram polls. ``GET /healthz`` and
  ``GET /metrics`` are served on ``HEALTH_PORT`` when it is set.
* **Webhook** (``WEBHOOK_URL``): an aiohttp server on ``WEBHOOK_HOST``:``listen_port``
  serves the URL's path, ``/healthz`` and ``/metrics``, and the webhook is
  registered with ``allowed_updates`` limited to what the routers handle and
  pending updates kept. Every call must carry the secret token (``WEBHOOK_SECRET``,
  or one generated on the first start and kept in the database): a missing one
  is answered 401, a wrong one 403, before anything is parsed; refusals are
  logged once a minute at most, never with the header's value. An accepted
  update is answered at once and handled in the background, so a slow panel
  never makes Telegram's call time out; at most ``MAX_IN_FLIGHT`` are handled at
  once, past that Telegram is answered 503 and delivers the update again later.
* **Stopping** on SIGTERM or SIGINT: no new update is taken (polling stops; the
  webhook answers 503), the handlers under way get ``SHUTDOWN_GRACE`` seconds to
  finish (an order being confirmed ends placed, or in the states a restart
  already recovers), then the caller stops the background work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.config import Settings
from bot.health import Health
from storage import catalog as settings_store
from storage.db import Database

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_IN_FLIGHT = 200  # webhook updates handled at once (each is small; a flood waits at Telegram)
REFUSAL_LOG_EVERY = 60.0  # seconds between log lines about refused webhook calls

HealthCheck = Callable[[], Awaitable[Health]]
Metrics = Callable[[], tuple[bytes, str]]


class InFlight(BaseMiddleware):
    """An update outer middleware counting the handlers under way, for the graceful stop."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return len(self.tasks)

    async def __call__(self, handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
                       event: Any, data: dict[str, Any]) -> Any:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self.tasks.discard(task)
            if not self.tasks:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until no handler runs (True), or ``timeout`` seconds (False)."""
        if self._idle.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        return False

    async def cancel_rest(self) -> None:
        """Past the grace: stop what still runs before the panels and the database close
        under it. An order cut off while at its panel stays ``submitting``, which the
        next start turns into ``unknown`` for an admin (never lost, never doubled)."""
        rest = [task for task in self.tasks if task is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=5)


async def webhook_secret(db: Database, settings: Settings) -> str:
    """``WEBHOOK_SECRET``, else the one this shop generated on its first webhook start."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    stored = await settings_store.setting(db, "webhook_secret")
    if stored:
        return stored
    generated = secrets.token_urlsafe(32)  # A-Z a-z 0-9 _ -: Telegram's alphabet
    await settings_store.set_setting(db, "webhook_secret", generated)
    return generated


class WebhookReceiver:
    """The webhook's aiohttp handler: the secret checked first, the update handled in
    the background, at most ``limit`` at once."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret: str,
                 limit: int = MAX_IN_FLIGHT, clock: Callable[[], float] = time.monotonic) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self._secret = secret.encode()
        self.limit = limit
        self.accepting = True
        self.tasks: set[asyncio.Task[None]] = set()
        self._clock = clock
        self._refused_since_log = 0
        self._last_refusal_log = -REFUSAL_LOG_EVERY

    async def handle(self, request: web.Request) -> web.Response:
        if not self.accepting:
            return web.Response(status=503, text="stopping")
        token = request.headers.get(SECRET_HEADER)
        # surrogateescape: a header of arbitrary bytes is a wrong token, not a crash.
        if token is None or not hmac.compare_digest(token.encode("utf-8", "surrogateescape"),
                                                    self._secret):
            self._note_refusal(request, missing=token is None)
            return web.Response(status=401 if token is None else 403)
        if len(self.tasks) >= self.limit:
            return web.Response(status=503, headers={"Retry-After": "1"}, text="busy")
        try:
            update = Update.model_validate(await request.json(), context={"bot": self.bot})
        except (ValueError, ValidationError):
            return web.Response(status=400, text="not an update")
        task = asyncio.create_task(self._handle(update))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({})

    async def _handle(self, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:  # the errors router alerted already; the next update goes on
            log.exception("update %s failed", update.update_id)

    def _note_refusal(self, request: web.Request, *, missing: bool) -> None:
        self._refused_since_log += 1
        now = self._clock()
        if now - self._last_refusal_log >= REFUSAL_LOG_EVERY:
            log.warning("webhook call from %s refused: secret token %s (%d refused in the last"
                        " minute)", request.remote, "missing" if missing else "wrong",
                        self._refused_since_log)
            self._last_refusal_log, self._refused_since_log = now, 0


def web_app(health: HealthCheck, metrics: Metrics | None,
            webhook: tuple[str, WebhookReceiver] | None = None) -> web.Application:
    """``/healthz``, ``/metrics`` and, in webhook mode, the webhook's path."""
    async def healthz(_request: web.Request) -> web.Response:
        result = await health()
        return web.json_response(result.body, status=result.http_status)

    async def metrics_page(_request: web.Request) -> web.Response:
        assert metrics is not None
        body, content_type = metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application(client_max_size=1024 * 1024)  # an update is a few KB
    app.router.add_get("/healthz", healthz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics_page)
    if webhook is not None:
        path, receiver = webhook
        app.router.add_post(path, receiver.handle)
    return app


async def _listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def webhook_path(url: str) -> str:
    return urlsplit(url).path or "/"


async def serve(dispatcher: Dispatcher, bot: Bot, settings: Settings, db: Database, *,
                in_flight: InFlight, health: HealthCheck, metrics: Metrics | None,
                handle_signals: bool) -> float:
    """Take updates (polling or webhook) until SIGTERM/SIGINT, then let the handlers
    under way finish within ``SHUTDOWN_GRACE``; returns the moment (``time.monotonic``)
    by which the rest of the stop must be done. Cancelling it stops at once."""
    stop = asyncio.Event()
    # aiogram closes the FSM storage as polling stops, under handlers still running;
    # it is closed below once they are done (in webhook mode nothing else would).
    dispatcher.shutdown.handlers[:] = [handler for handler in dispatcher.shutdown.handlers
                                       if handler.callback != dispatcher.fsm.close]
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers
                loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    receiver: WebhookReceiver | None = None
    try:
        if settings.webhook_url:
            secret = await webhook_secret(db, settings)
            from bot import redaction

            redaction.register(secret)
            receiver = WebhookReceiver(dispatcher, bot, secret)
            path = webhook_path(settings.webhook_url)
            runner = await _listen(web_app(health, metrics, (path, receiver)),
                                   settings.webhook_host, settings.listen_port)
            await bot.set_webhook(settings.webhook_url, secret_token=secret,
                                  allowed_updates=dispatcher.resolve_used_update_types(),
                                  drop_pending_updates=False)
            log.info("webhook mode: Telegram calls %s; listening on %s:%d", settings.webhook_url,
                     settings.webhook_host, settings.listen_port)
            await stop.wait()
            receiver.accepting = False
        else:
            if settings.health_port:
                runner = await _listen(web_app(health, metrics), settings.webhook_host,
                                       settings.health_port)
            await bot.delete_webhook(drop_pending_updates=False)
            await _poll_until(dispatcher, bot, stop)
        log.info("stopping: waiting up to %g s for %d update(s) under way",
                 settings.shutdown_grace, in_flight.count)
        deadline = time.monotonic() + settings.shutdown_grace
        if receiver is not None and receiver.tasks:  # updates accepted, not all started yet
            await asyncio.wait(receiver.tasks, timeout=settings.shutdown_grace)
        if not await in_flight.drain(max(0.0, deadline - time.monotonic())):
            log.warning("stopping: %d update(s) still under way after %g s: cancelled",
                        in_flight.count, settings.shutdown_grace)
            await in_flight.cancel_rest()
        return deadline
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)
        if runner is not None:
            await runner.cleanup()
        await dispatcher.fsm.close()  # the storage's last writes, after the handlers


async def _poll_until(dispatcher: Dispatcher, bot: Bot, stop: asyncio.Event) -> None:
    """Long-poll until ``stop`` is set or this coroutine is cancelled.

    Cancelling ``start_polling`` itself leaves its polling task running on its own
    (aiogram waits for it with ``asyncio.wait``, which a cancellation does not
    pass on): a bot "stopped" that way went on taking updates with a closed
    database. So both ways out ask the dispatcher to stop, and wait for it.
    """
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([polling, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not polling.done():
            try:
                await dispatcher.stop_polling()
            except RuntimeError:  # stopped before polling had started
                polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
    if not polling.cancelled():
        polling.result()  # a polling failure is not swallowed
