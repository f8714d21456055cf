"""What ``GET /healthz`` reports: the database, the panels, the outbox, the version.

A panel being down is reported, not an error: the shop still sells from its
catalog copy, and an order's panel failure is handled per order. Only a database
the bot cannot read or write makes the shop unhealthy (HTTP 503): nothing can be
sold or remembered then. Nothing here knows aiogram or aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from typing import Any, Protocol

from bot.observability import metrics
from storage import outbox
from storage.db import Database

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0  # seconds: a database slower than this is reported as unusable


class PanelState(Protocol):
    down_since: float | None


@cache
def version() -> str:
    try:
        return metadata.version("smm-storefront")
    except metadata.PackageNotFoundError:
        return "dev"


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    body: dict[str, Any]

    @property
    def http_status(self) -> int:
        return 200 if self.ok else 503


async def check(db: Database, panels: Callable[[], Mapping[str, PanelState]]) -> Health:
    """The shop's health; never raises (a failure is what it reports)."""
    database, backlog = "ok", None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await db.fetchone("SELECT COUNT(*) FROM schema_migrations")
            backlog = await outbox.backlog(db)
        metrics.set_outbox_backlog(backlog)
    except Exception as exc:  # unreadable, locked, closed, slow: all are "unusable"
        database = f"unusable: {type(exc).__name__}"
        log.warning("health check: the database is unusable: %s", exc)
    states = {}
    for name, state in sorted(panels().items()):
        states[name] = ("ok" if state.down_since is None else
                        "down since " + datetime.fromtimestamp(state.down_since, UTC)
                        .isoformat(timespec="seconds"))
    ok = database == "ok"
    return Health(ok, {"status": "ok" if ok else "error", "database": database,
                       "panels": states, "outbox_backlog": backlog, "version": version()})
