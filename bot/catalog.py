"""Keeping the cached catalog in step with the panels."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.panel import PanelClient
from storage import catalog as catalog_store
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    panel: str
    services: int
    sellable: int  # services whose order type the storefront knows
    deactivated: int
    fetch_seconds: float
    store_seconds: float


async def refresh_catalog(db: Database, client: PanelClient, currency: str) -> RefreshResult:
    """Fetch ``client``'s services and store them; unknown types are stored, not sold."""
    started = time.perf_counter()
    services = await client.services()
    fetched = time.perf_counter()
    deactivated = await catalog_store.replace_services(db, client.name, currency, services)
    stored = time.perf_counter()
    sellable = sum(1 for s in services if s.order_type is not None)
    unknown = {s.type for s in services if s.order_type is None}
    if unknown:
        log.warning("panel %s: services of unknown type are not sold: %s", client.name,
                    ", ".join(sorted(unknown)[:10]))
    log.info("panel %s: %d services (%d sellable, %d withdrawn)", client.name, len(services),
             sellable, deactivated)
    return RefreshResult(client.name, len(services), sellable, deactivated,
                         fetched - started, stored - fetched)
