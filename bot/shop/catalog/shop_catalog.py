"""The catalog: platforms, keeping the cache in step with the panels, browsing it.

``refresh_catalog`` is the one place that asks a panel for its services (at
start-up and every ``CATALOG_REFRESH`` minutes) and stores them in SQLite;
``ShopCatalog`` serves browsing and search from an in-memory copy of that.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.panel import PanelClient, PanelError, Service
from bot.panel.order_types import N_
from storage import catalog as catalog_store
from storage import routes as routes_store
from storage.catalog import StoredService
from storage.db import Database

log = logging.getLogger(__name__)

# slug -> (label, words that name it), in display order; "other" catches the rest.
# Labels are translated where they are shown (brand names are not marked).
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
    "web": (N_("🌐 Website traffic"), ("website", "traffic", "seo", "web", "backlinks")),
    "other": (N_("✨ Other"), ()),
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
    skipped: int = 0  # panel items with unusable fields (rate, min, max...): not stored
    added: int = 0  # services new to the cache (or listed again after a withdrawal)
    changed: int = 0  # services whose name, rate, limits or options changed


async def refresh_catalog(db: Database, client: PanelClient, currency: str,
                          price_alert: Decimal | None = None) -> RefreshResult:
    """Fetch ``client``'s services and store them; unknown types are stored, not sold.

    With ``price_alert`` (PRICE_ALERT_PERCENT) what changed is kept for the admins'
    digest, in the same transaction (bot/shop/routing/changes.py).

    A service whose fields can't be used (a rate, min or max out of bounds or
    unreadable) is skipped by the parser and counted here; it never spoils the
    rest of the list. A skipped service that was on sale before is withdrawn like
    one the panel stopped listing.
    """
    started = time.perf_counter()
    services = await client.services()
    skipped = services.skipped
    fetched = time.perf_counter()
    replaced = await catalog_store.replace_services(db, client.name, currency, services,
                                                       platforms_for(services), price_alert)
    stored = time.perf_counter()
    deactivated = replaced.withdrawn
    sellable = sum(1 for s in services if s.order_type is not None)
    unknown = {s.type for s in services if s.order_type is None}
    if unknown:
        log.warning("panel %s: services of unknown type are not sold: %s", client.name,
                    ", ".join(sorted(unknown)[:10]))
    log.info("panel %s: %d services (%d sellable, %d withdrawn, %d skipped as unusable)",
             client.name, len(services), sellable, deactivated, skipped)
    return RefreshResult(client.name, len(services), sellable, deactivated,
                         fetched - started, stored - fetched, skipped, replaced.added,
                         replaced.changed)


async def _nothing() -> object:
    return None


async def keep_catalog_fresh(catalog: ShopCatalog, panels: Sequence[tuple[PanelClient, str]],
                             minutes: float,
                             after_refresh: Callable[[], None] = lambda: None, *,
                             price_alert: Decimal | None = None,
                             after_stored: Callable[[], Awaitable[object]] = _nothing) -> None:
    """Refresh every panel's catalog every ``minutes``; a failing panel keeps its cache.
    ``after_stored`` runs after each round, before the customers' copy is read again
    (services hidden at a loss, the digest); ``after_refresh`` then (the panel watch
    checks the balances)."""
    while True:
        await asyncio.sleep(minutes * 60)
        for client, currency in panels:
            try:
                await refresh_catalog(catalog.db, client, currency, price_alert)
            except PanelError as exc:
                log.warning("catalog refresh of %s failed, keeping the cached one: %s",
                            client.name, exc)
        try:
            await after_stored()
        except Exception:  # a failed check must not stop the refreshes
            log.exception("after the catalog refresh")
        await catalog.reload()
        after_refresh()


@dataclass(frozen=True, slots=True)
class CategoryRow:
    id: int
    name: str
    services: int


class ShopCatalog:
    """What customers browse: the services on sale, held in memory.

    A service linked as another's backup (storage/routes.py) is not listed: the
    customer sees one service, and the failover sends its orders to the backup.

    Browsing and search never touch the database (or the panel): the copy is read
    from SQLite, the source of truth, at the first use and again after every
    catalog refresh. A service taken off sale is still found by ``any_service``
    (from the database), so old orders stay readable.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.version = 0  # changes with every reload, so pages built from the copy can tell
        self._loaded = False
        self._by_ref: dict[int, StoredService] = {}
        self._by_category: dict[int, list[StoredService]] = {}
        self._categories: dict[str, list[CategoryRow]] = {}
        self._category_of: dict[int, tuple[str, str]] = {}

    async def reload(self) -> None:
        backups = await routes_store.backup_refs(self.db)
        services = [s for s in await catalog_store.on_sale(self.db) if s.ref not in backups]
        by_category: dict[int, list[StoredService]] = {}
        category_of: dict[int, tuple[str, str]] = {}
        for stored in services:
            by_category.setdefault(stored.category_id, []).append(stored)
            category_of[stored.category_id] = (stored.service.category, stored.platform)
        categories: dict[str, list[CategoryRow]] = {}
        for category_id, members in by_category.items():
            name, platform = category_of[category_id]
            categories.setdefault(platform, []).append(CategoryRow(category_id, name, len(members)))
        for rows in categories.values():
            rows.sort(key=lambda row: (row.name, row.id))
        self._by_ref = {s.ref: s for s in services}
        self._by_category, self._category_of, self._categories = (by_category, category_of,
                                                                  categories)
        self._loaded = True
        self.version += 1

    async def _ready(self) -> None:
        if not self._loaded:
            await self.reload()

    async def platforms(self) -> dict[str, int]:
        """Platforms with services on sale, and how many."""
        await self._ready()
        return {slug: sum(row.services for row in rows) for slug, rows in self._categories.items()}

    async def categories(self, platform: str, offset: int,
                         limit: int) -> tuple[list[CategoryRow], int]:
        await self._ready()
        rows = self._categories.get(platform, [])
        return rows[offset:offset + limit], len(rows)

    async def category(self, category_id: int) -> tuple[str, str] | None:
        """(name, platform) of a category with services on sale."""
        await self._ready()
        return self._category_of.get(category_id)

    async def services_in(self, category_id: int, offset: int,
                          limit: int) -> tuple[list[StoredService], int]:
        await self._ready()
        rows = self._by_category.get(category_id, [])
        return rows[offset:offset + limit], len(rows)

    async def on_sale(self, ref: int) -> StoredService | None:
        await self._ready()
        return self._by_ref.get(ref)

    async def everything(self) -> list[StoredService]:
        """Every service on sale, by the shop's number (the wholesale API's list)."""
        await self._ready()
        return sorted(self._by_ref.values(), key=lambda stored: stored.ref)

    async def any_service(self, ref: int) -> StoredService | None:
        """A service on sale or not (an old order's)."""
        found = await self.on_sale(ref)
        return found if found is not None else await catalog_store.get(self.db, ref)

    async def search(self, text: str, limit: int) -> list[StoredService]:
        """Services whose name or category contains ``text``, or whose panel id is ``text``."""
        await self._ready()
        needle, exact = text.strip().lower(), text.strip()
        found = []
        for stored in self._by_ref.values():
            if (needle in stored.service.name.lower() or needle in stored.service.category.lower()
                    or stored.service.id == exact):
                found.append(stored)
                if len(found) == limit:
                    break
        return found
