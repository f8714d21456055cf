"""What start-up checks and takes before it imports aiogram or talks to the network.

``python -m bot`` reads the settings, then ``prepare``: the token is there, the
redis package is when REDIS_URL needs it, the translations compile, no other bot
runs on the database, every port the bot will serve is free (and now held), the
database opens. Each failure is one line (``ConfigError``: exit 2;
``StartupError``: exit 1) said in the first second, not after aiogram's
seconds of imports nor after the wait for Telegram. Only then does the command
line import the rest (bot/app/bootstrap.py), which takes over what was prepared.

Nothing here imports aiogram: tests/test_startup.py runs the bot with
``-X importtime`` and checks it was never imported when a check failed.

**Ports.** The bot listens on WEBHOOK_PORT (else PORT, else 8080) in webhook
mode, on HEALTH_PORT (when set) in polling mode, and on API_PORT when the
wholesale API has a port of its own. Each is bound and listened on here, and
the very sockets are handed to the web servers (bot/app/serving.py): nothing can
take a port between the check and the start, so a busy port can't surface later
as a traceback from inside aiohttp. A connection arriving before the servers
start waits in the socket's backlog.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
import socket
import sys
from dataclasses import dataclass

from bot.app.backups import AutoBackup, RunLock
from bot.config import ConfigError, Settings, compiled_translations, startup_warnings
from bot.shop.messaging.translation_files import LOCALES_DIR
from storage.db import Database, DatabaseUnusable

log = logging.getLogger(__name__)

BACKLOG = 128  # aiohttp's own default for its sites


@dataclass(frozen=True, slots=True)
class ListenPort:
    """A port the bot serves, named as the owner set it."""

    setting: str  # WEBHOOK_PORT, PORT, HEALTH_PORT or API_PORT
    number: int
    default: bool = False  # the setting is empty: the bot's own default port

    def __str__(self) -> str:
        if self.default:
            return f"port {self.number} (the default: WEBHOOK_PORT and PORT are empty)"
        return f"port {self.number}"


def listen_ports(settings: Settings) -> list[ListenPort]:
    """Every port this configuration makes the bot listen on (bot/app/serving.py)."""
    ports = []
    if settings.webhook_url:
        if settings.webhook_port is not None:
            ports.append(ListenPort("WEBHOOK_PORT", settings.webhook_port))
        elif settings.port is not None:
            ports.append(ListenPort("PORT", settings.port))
        else:
            ports.append(ListenPort("WEBHOOK_PORT", settings.listen_port, default=True))
    elif settings.health_port is not None:
        ports.append(ListenPort("HEALTH_PORT", settings.health_port))
    if settings.api_enabled and settings.api_port is not None:
        ports.append(ListenPort("API_PORT", settings.api_port))
    return ports


class Listeners:
    """Listening sockets, per port, from the start-up check until a web server takes
    them (``take``); ``close`` closes what was not taken."""

    def __init__(self, sockets: dict[int, list[socket.socket]]) -> None:
        self._sockets = sockets

    @classmethod
    def bind(cls, settings: Settings) -> Listeners:
        """Every port of ``listen_ports`` on WEBHOOK_HOST, listened on; a port that
        can't be is a ``ConfigError`` naming its setting (nothing stays bound then)."""
        listeners = cls({})
        try:
            for port in listen_ports(settings):
                listeners._sockets[port.number] = _listen(settings.webhook_host, port)
        except BaseException:
            listeners.close()
            raise
        return listeners

    def take(self, port: int) -> list[socket.socket]:
        """The sockets bound for ``port``, now the caller's."""
        return self._sockets.pop(port)

    def close(self) -> None:
        for sockets in self._sockets.values():
            for sock in sockets:
                sock.close()
        self._sockets.clear()


def _listen(host: str, port: ListenPort) -> list[socket.socket]:
    """Sockets listening on ``host``:``port``, as asyncio's ``create_server`` would
    bind them (one per address the host resolves to; every interface, IPv4 and IPv6,
    for an empty host)."""
    try:
        addresses = socket.getaddrinfo(host or None, port.number, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"configuration error: WEBHOOK_HOST: cannot resolve {host!r}"
                          f" ({exc.strerror}): set it to an address of this machine, like"
                          " 0.0.0.0 (every interface) or 127.0.0.1 (this machine only)") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix" and sys.platform != "cygwin":
                # As asyncio does: a restart may bind while the last run's connections
                # linger in TIME_WAIT. A port another program listens on stays refused.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)  # listening now: a port merely bound can still be taken
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ConfigError(_cannot_listen(host, port, exc)) from None
    return sockets


def _cannot_listen(host: str, port: ListenPort, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"configuration error: {port.setting}: {port} is in use by another program"
                f" (or another copy of the bot): stop it, or set {port.setting} to a free port")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"configuration error: WEBHOOK_HOST: {host} is no address of this machine"
                f" ({exc.strerror}): set it to 0.0.0.0 (every interface) or 127.0.0.1 (this"
                " machine only)")
    if exc.errno == errno.EACCES and port.number < 1024:
        return (f"configuration error: {port.setting}: {port} needs root (every port below"
                f" 1024 does): set {port.setting} to a port from 1024 up")
    return (f"configuration error: {port.setting}: cannot listen on {port} of {host}"
            f" ({exc.strerror or exc}): set {port.setting} to another port")


def redis_missing() -> ConfigError:
    """REDIS_URL is set but the redis package (the ``redis`` extra) can't be imported."""
    # This interpreter's own pip: the package must land where the bot runs.
    python = sys.executable
    with contextlib.suppress(ValueError):  # another drive (Windows): keep it absolute
        relative = os.path.relpath(python)
        python = python if relative.startswith("..") else relative
    return ConfigError(f"configuration error: REDIS_URL is set but the redis package is not"
                       f" installed: run {shlex.quote(python)} -m pip install 'redis>=5' (the"
                       " project's [redis] extra), or leave REDIS_URL empty to keep"
                       " conversations in SQLite")


def _require_redis() -> None:
    try:
        import redis  # noqa: F401 - only whether it imports
    except ImportError:
        raise redis_missing() from None


async def open_database(settings: Settings) -> Database:
    """The shop's database; a DATABASE_PATH it cannot be is a ``ConfigError`` naming it."""
    try:
        return await Database(settings.database_path).open()
    except DatabaseUnusable as exc:
        raise ConfigError(f"configuration error: DATABASE_PATH: {exc}; set it to a file in a"
                          " folder the bot can write to") from None


@dataclass
class Prepared:
    """What ``prepare`` took, for the bot's run (bot/app/bootstrap.py ``run_bot``),
    which releases it when it ends."""

    db: Database
    listeners: Listeners
    run_lock: RunLock

    async def release(self) -> None:
        self.listeners.close()
        await self.db.close()
        self.run_lock.release()


async def prepare(settings: Settings) -> Prepared:
    """Every start-up check that needs neither aiogram nor the network, in the order
    a new owner meets them; ``ConfigError`` or ``StartupError`` at the first that
    fails, with nothing left held. Then the likely mistakes are logged: the bot is
    sure to go on starting."""
    settings.required_token()
    if settings.redis_url:
        _require_redis()
    AutoBackup.check_settings(settings)
    compiled_translations(settings.locales_dir or LOCALES_DIR)
    # The run lock before the ports: when another copy of this bot holds the ports,
    # "another bot is already running on DATABASE_PATH" names the real cause.
    run_lock = RunLock.hold_for_bot(settings)  # StartupError: another bot runs on this database
    with contextlib.ExitStack() as undo:
        undo.callback(run_lock.release)
        listeners = Listeners.bind(settings)
        undo.callback(listeners.close)
        db = await open_database(settings)
        undo.pop_all()
    for warning in startup_warnings(settings):
        log.warning(warning)
    return Prepared(db, listeners, run_lock)
