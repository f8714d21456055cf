"""How the bot takes its updates, and how it stops.

Every update, however it arrives, goes through the durable inbox (bot/app/inbox.py):
committed to the database before Telegram is told it arrived, handled as a task,
marked handled when done. At start, what the last run left unhandled is handled
first.

* **Long polling** (no ``WEBHOOK_URL``): any webhook is deleted first (Telegram
  refuses getUpdates while one is set), then ``bot.inbox.poll`` polls: a batch's
  offset is confirmed only once the batch is committed. ``GET /healthz`` and
  ``GET /metrics`` are served on ``HEALTH_PORT`` when it is set.
* **Webhook** (``WEBHOOK_URL``): an aiohttp server on ``WEBHOOK_HOST``:``listen_port``
  serves the URL's path, ``/healthz`` and ``/metrics``, and the webhook is
  registered with ``allowed_updates`` limited to what the routers handle and
  pending updates kept. Every call must carry the secret token (``WEBHOOK_SECRET``,
  or one generated on the first start and kept in the database): a missing one
  is answered 401, a wrong one 403, before anything is parsed; refusals are
  logged once a minute at most, never with the header's value. A body that is
  not an update (nested JSON too deep to read included) is answered 400. An
  accepted update is committed, answered 200, and handled in the background, so a
  slow panel never makes Telegram's call time out; at most ``MAX_IN_FLIGHT``
  (bot/app/inbox.py) are handled at once, past that Telegram is answered 503 and
  delivers the update again later (so it does if the commit fails: 500).
* **Stopping** on SIGTERM or SIGINT: no new update is taken (polling stops; the
  webhook answers 503), the handlers under way get ``SHUTDOWN_GRACE`` seconds to
  finish (an order being confirmed ends placed, or in the states a restart
  already recovers); what is still running then is cancelled and stays in the
  inbox for the next start; then the caller stops the background work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiohttp import web

from bot.app.api_endpoint import ApiEndpoint
from bot.app.health import Health
from bot.app.inbox import UpdateFeed, poll
from bot.app.preflight import BACKLOG, Listeners
from bot.config import Settings
from storage import catalog as settings_store
from storage.db import Database

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
REFUSAL_LOG_EVERY = 60.0  # seconds between log lines about refused webhook calls

HealthCheck = Callable[[], Awaitable[Health]]
Metrics = Callable[[], tuple[bytes, str]]


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
    """The webhook's aiohttp handler: the secret checked first, the update committed to
    the inbox before the 200, then handled in the background (bot/app/inbox.py)."""

    def __init__(self, feed: UpdateFeed, secret: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.feed = feed
        self._secret = secret.encode()
        self.accepting = True
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
        if self.feed.full:
            return web.Response(status=503, headers={"Retry-After": "1"}, text="busy")
        try:
            raw = json.loads(await request.text())
            update = self.feed.parse(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            return web.Response(status=400, text="not an update")
        try:
            await self.feed.take([(update, raw)])
        except Exception:  # not stored: Telegram must deliver it again
            log.exception("webhook: update %d could not be stored", update.update_id)
            return web.Response(status=500, text="not stored")
        return web.json_response({})

    def _note_refusal(self, request: web.Request, *, missing: bool) -> None:
        self._refused_since_log += 1
        now = self._clock()
        if now - self._last_refusal_log >= REFUSAL_LOG_EVERY:
            log.warning("webhook call from %s refused: secret token %s (%d refused in the last"
                        " minute)", request.remote, "missing" if missing else "wrong",
                        self._refused_since_log)
            self._last_refusal_log, self._refused_since_log = now, 0


def web_app(health: HealthCheck | None, metrics: Metrics | None,
            webhook: tuple[str, WebhookReceiver] | None = None,
            api: tuple[str, ApiEndpoint] | None = None) -> web.Application:
    """``/healthz``, ``/metrics`` and, in webhook mode, the webhook's path; the
    wholesale API's path when it is served here."""
    async def healthz(_request: web.Request) -> web.Response:
        assert health is not None
        result = await health()
        return web.json_response(result.body, status=result.http_status)

    async def metrics_page(_request: web.Request) -> web.Response:
        assert metrics is not None
        body, content_type = metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application(client_max_size=1024 * 1024)  # an update is a few KB
    if health is not None:
        app.router.add_get("/healthz", healthz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics_page)
    if webhook is not None:
        path, receiver = webhook
        app.router.add_post(path, receiver.handle)
    if api is not None:
        path, endpoint = api
        app.router.add_post(path, endpoint.handle)
        # Some clients send the query string only. Not HEAD: it would act (an add
        # placed) with an answer nobody reads, for a link checker or a preview.
        app.router.add_get(path, endpoint.handle, allow_head=False)
    return app


async def _listen(app: web.Application, sockets: list[socket.socket]) -> web.AppRunner:
    """``app`` served on sockets the start-up check bound (bot/app/preflight.py)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock, backlog=BACKLOG).start()
    return runner


def webhook_path(url: str) -> str:
    return urlsplit(url).path or "/"


async def serve(dispatcher: Dispatcher, bot: Bot, settings: Settings, db: Database, *,
                feed: UpdateFeed, listeners: Listeners, health: HealthCheck,
                metrics: Metrics | None, handle_signals: bool,
                api: ApiEndpoint | None = None) -> float:
    """Handle what the last run left in the inbox, then take updates (polling or
    webhook) until SIGTERM/SIGINT, then let the handlers under way finish within
    ``SHUTDOWN_GRACE``; returns the moment (``time.monotonic``) by which the rest of
    the stop must be done. Cancelling it stops at once. The web servers listen on
    ``listeners``' sockets, bound before start-up went on (bot/app/preflight.py)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers
                loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    receiver: WebhookReceiver | None = None
    # The wholesale API: on a server of its own on API_PORT, else on the webhook's
    # (webhook mode) or HEALTH_PORT's (polling; settings make sure one is set).
    api_route = None if api is None else (settings.api_path, api)
    try:
        if api_route is not None and settings.api_port is not None:
            runners.append(await _listen(web_app(None, None, api=api_route),
                                         listeners.take(settings.api_port)))
            log.info("wholesale API: %s on port %d", settings.api_path, settings.api_port)
            api_route = None
        # Before any new update: their per-chat locks are taken first (bot/app/inbox.py).
        await feed.replay()
        allowed_updates = dispatcher.resolve_used_update_types()
        if settings.webhook_url:
            secret = await webhook_secret(db, settings)
            from bot.observability import redaction
            redaction.register(secret)
            receiver = WebhookReceiver(feed, secret)
            path = webhook_path(settings.webhook_url)
            runners.append(await _listen(web_app(health, metrics, (path, receiver), api_route),
                                         listeners.take(settings.listen_port)))
            await bot.set_webhook(settings.webhook_url, secret_token=secret,
                                  allowed_updates=allowed_updates, drop_pending_updates=False)
            log.info("webhook mode: Telegram calls %s; listening on %s:%d", settings.webhook_url,
                     settings.webhook_host, settings.listen_port)
            await stop.wait()
            receiver.accepting = False
        else:
            if settings.health_port:
                runners.append(await _listen(web_app(health, metrics, api=api_route),
                                             listeners.take(settings.health_port)))
            await bot.delete_webhook(drop_pending_updates=False)
            await poll(feed, bot, allowed_updates, stop)
        log.info("stopping: waiting up to %g s for %d update(s) under way",
                 settings.shutdown_grace, feed.count)
        deadline = time.monotonic() + settings.shutdown_grace
        if api is not None:  # API orders under way finish like the updates'
            await api.drain(settings.shutdown_grace)
        if not await feed.drain(max(0.0, deadline - time.monotonic())):
            log.warning("stopping: %d update(s) still under way after %g s: cancelled; they are"
                        " handled again at the next start", feed.count, settings.shutdown_grace)
            await feed.cancel_rest()
        return deadline
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)
        for runner in runners:
            await runner.cleanup()
        await feed.close()
        await dispatcher.fsm.close()  # the storage's last writes, after the handlers
