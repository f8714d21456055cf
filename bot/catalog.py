"""The catalog: platforms, keeping the cache in step with the panels, searching it.

Browsing reads the SQLite cache only; ``refresh_catalog`` is the one place that
asks a panel for its services (at start-up and every ``CATALOG_REFRESH`` minutes).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.panel import PanelClient, PanelError, Service
from storage import catalog as catalog_store
from storage.db import Database

log = logging.getLogger(__name__)

# slug -> (label, words that name it), in display order; "other" catches the rest.
PLATFORMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "instagram": ("📸 Instagram", ("instagram", "insta", "ig", "reels")),
    "tiktok": ("🎵 TikTok", ("tiktok", "tik tok", "tt")),
    "youtube": ("▶️ YouTube", ("youtube", "yt", "shorts")),
    "telegram": ("✈️ Telegram", ("telegram", "tg")),
    "facebook": ("📘 Facebook", ("facebook", "fb")),
    "twitter": ("🐦 X / Twitter", ("twitter", "tweet", "tweets", "retweets", "x")),
    "spotify": ("🎧 Spotify", ("spotify",)),
    "twitch": ("🎮 Twitch", ("twitch",)),
    "discord": ("💬 Discord", ("discord",)),
    "web": ("🌐 Website traffic", ("website", "traffic", "seo", "web", "backlinks")),
    "other": ("✨ Other", ()),
}
_WORDS = re.compile(r"[a-z0-9]+")


def platform_of(text: str) -> str | None:
    """The platform a category or service name speaks of, or ``None``."""
    lowered = text.lower()
    words = set(_WORDS.findall(lowered))
    for slug, (_label, names) in PLATFORMS.items():
        for name in names:
            if (" " in name and name in lowered) or name in words:
                return slug
    return None


def platforms_for(services: Iterable[Service]) -> dict[str, str]:
    """Each category's platform: from its own name, else its services' names, else other."""
    names: dict[str, list[str]] = {}
    for service in services:
        names.setdefault(service.category, []).append(service.name)
    result = {}
    for category, service_names in names.items():
        found = platform_of(category)
        if found is None:
            found = next((p for p in map(platform_of, service_names) if p), "other")
        result[category] = found
    return result


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
    deactivated = await catalog_store.replace_services(db, client.name, currency, services,
                                                       platforms_for(services))
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


async def keep_catalog_fresh(db: Database, panels: Sequence[tuple[PanelClient, str]],
                             minutes: float) -> None:
    """Refresh every panel's catalog every ``minutes``; a failing panel keeps its cache."""
    while True:
        await asyncio.sleep(minutes * 60)
        for client, currency in panels:
            try:
                await refresh_catalog(db, client, currency)
            except PanelError as exc:
                log.warning("catalog refresh of %s failed, keeping the cached one: %s",
                            client.name, exc)
