"""The admin's catalog: refresh now, find any service, hide/show, markups.

Knows nothing of Telegram. Every change writes its audit row in the same
transaction, then reloads the in-memory catalog copy (``ShopCatalog``) or
invalidates the Pricer's markups, so the next customer sees it at once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal

from bot.panel import PanelClient, PanelError
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import RefreshResult, ShopCatalog, refresh_catalog
from storage import audit as audit_store
from storage import catalog as catalog_store
from storage.catalog import StoredCategory, StoredService
from storage.db import Database

MarkupKind = Literal["shop", "category", "service"]
# The one rule for a markup, the admin's screen and MARKUP_PERCENT alike: a percent
# from -99 to 10 000 with at most two decimals (a negative one sells below the
# panel's cost, so what it prices is hidden: "Never sold at a loss" in the README).
MIN_MARKUP, MAX_MARKUP = Decimal(-99), Decimal(10_000)
_PERCENT = re.compile(r"[+-]?\d+(?:[.,]\d{1,2})?")
_MORE_DECIMALS = re.compile(r"[+-]?\d+[.,]\d{3,}")  # 12.555; 1,000 and 10.000 too
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[ ,.'\u00a0\u202f]\d{3})+(?:[.,]\d+)?")  # 1 000


class MarkupInvalid(ValueError):
    """Not a markup an admin may set, and why: ``reason`` is ``format`` (no number),
    ``decimals`` (more than two), ``separator`` (a thousands separator) or ``range``."""

    WORDS: ClassVar[dict[str, str]] = {
        "format": "not a number", "decimals": "more than two decimals",
        "separator": "a thousands separator", "range": "outside -99 … 10000"}

    def __init__(self, reason: str) -> None:
        super().__init__(self.WORDS[reason])
        self.reason = reason


def parse_percent(text: str) -> Decimal:
    """"15", "12.5", "-10" (and "12,5", "15%", "15 %", and "%15", "-%10" as Turkish
    writes a percent); never "1e3", "12.345", "1 000", beyond -99..10 000
    (``MarkupInvalid`` says which)."""
    cleaned = text.strip()
    sign = "-" if cleaned.startswith("-%") else ""
    cleaned = cleaned.removeprefix(sign)
    # One percent sign, before (Turkish) or after the number, never both.
    cleaned = cleaned[1:] if cleaned.startswith("%") else cleaned.removesuffix("%")
    cleaned = sign + cleaned.strip()
    if len(cleaned) > 24 or not cleaned.isascii():
        raise MarkupInvalid("format")
    if not _PERCENT.fullmatch(cleaned):
        if _MORE_DECIMALS.fullmatch(cleaned):
            raise MarkupInvalid("decimals")
        raise MarkupInvalid("separator" if _GROUPED.fullmatch(cleaned) else "format")
    percent = Decimal(cleaned.replace(",", "."))
    if not MIN_MARKUP <= percent <= MAX_MARKUP:
        raise MarkupInvalid("range")
    return percent.quantize(Decimal(1)) if percent == percent.to_integral() else percent


def logged_percent(percent: Decimal) -> str:
    """A markup as the audit log keeps it, ``12.5 %`` (screens show it in the reader's
    locale: the log reads it back, bot/shop/backoffice/audit.py)."""
    return f"{percent.quantize(Decimal(1)) if percent == percent.to_integral() else percent} %"


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What the admin's service card shows."""

    stored: StoredService
    unit_price_minor: int
    markup: Decimal
    markup_from: str  # service, category or shop
    on_sale: bool
    cost_minor: int = 0  # its cost per 1000 in the shop currency (rate × FX, rounded up)


@dataclass(frozen=True, slots=True)
class Preview:
    """A markup before it is saved: an example service's price now and with it."""

    kind: MarkupKind
    target_id: int
    percent: Decimal
    current: Decimal | None  # the override (or global) now; None when inheriting
    example: StoredService | None
    price_now_minor: int
    price_then_minor: int


@dataclass(frozen=True, slots=True)
class RefreshReport:
    results: list[RefreshResult]
    failed: dict[str, str]  # panel -> why

    @property
    def added(self) -> int:
        return sum(r.added for r in self.results)

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.results)

    @property
    def withdrawn(self) -> int:
        return sum(r.deactivated for r in self.results)

    def note(self) -> str:
        failed = "".join(f"; {name} failed" for name in self.failed)
        return (f"added {self.added}, changed {self.changed}, withdrawn {self.withdrawn}"
                f"{failed}")


async def _nothing_moved() -> int:
    return 0


class CatalogAdmin:
    """``after_change`` runs after a refresh and after a markup change: it hides the
    services that now sell at a loss and shows the fixed ones, returning how many
    moved (bot/shop/routing/changes.py, injected by the composition root)."""

    def __init__(self, db: Database, catalog: ShopCatalog, pricer: Pricer,
                 panels: Mapping[str, PanelClient], currencies: Mapping[str, str], *,
                 price_alert: Decimal | None = None,
                 after_change: Callable[[], Awaitable[int]] = _nothing_moved) -> None:
        self.db = db
        self.catalog = catalog
        self.pricer = pricer
        self.panels = panels
        self.currencies = currencies
        self.price_alert = price_alert
        self.after_change = after_change

    # ------------------------------------------------------------ refresh

    async def refresh(self, admin_id: int) -> RefreshReport:
        """Ask every panel for its list now; a failing panel keeps its cache."""
        results, failed = [], {}
        for name, client in self.panels.items():
            try:
                results.append(await refresh_catalog(self.db, client,
                                                     self.currencies.get(name, "USD"),
                                                     self.price_alert))
            except PanelError as exc:
                failed[name] = str(exc)[:200]
        report = RefreshReport(results, failed)
        await audit_store.record(self.db, admin_id=admin_id, action="catalog_refresh",
                                 target_kind="shop", target_id="catalog", note=report.note())
        await self.after_change()
        await self.catalog.reload()
        return report

    # ------------------------------------------------------------ finding

    async def info(self, stored: StoredService) -> ServiceInfo:
        markup, source = await self.pricer.markup_source(stored)
        on_sale = await self.catalog.on_sale(stored.ref) is not None
        return ServiceInfo(stored, self.pricer.unit_price_with(stored, markup), markup, source,
                           on_sale, self.pricer.unit_cost(stored))

    async def find(self, text: str, limit: int = 10) -> list[ServiceInfo]:
        """Hidden and withdrawn services too: the admin may want to show them again."""
        return [await self.info(s) for s in await catalog_store.search_all(self.db, text, limit)]

    async def card(self, ref: int) -> ServiceInfo | None:
        stored = await catalog_store.get(self.db, ref)
        return await self.info(stored) if stored else None

    async def category(self, category_id: int) -> StoredCategory | None:
        return await catalog_store.category(self.db, category_id)

    # ------------------------------------------------------------ hide / show

    async def set_service_hidden(self, admin_id: int, ref: int, hidden: bool) -> bool:
        """Whether it changed (a repeated tap changes nothing and writes no row)."""
        return await self._set_hidden(admin_id, "service", ref, hidden)

    async def set_category_hidden(self, admin_id: int, category_id: int, hidden: bool) -> bool:
        return await self._set_hidden(admin_id, "category", category_id, hidden)

    async def _set_hidden(self, admin_id: int, kind: str, target_id: int, hidden: bool) -> bool:
        store = (catalog_store.set_service_hidden if kind == "service"
                 else catalog_store.set_category_hidden)
        async with self.db.transaction() as conn:
            changed = await store(conn, target_id, hidden)
            if changed:
                await audit_store.record(conn, admin_id=admin_id,
                                         action="hide" if hidden else "show",
                                         target_kind=kind, target_id=target_id)
        if changed:  # the customers' copy is read again only when something changed
            await self.catalog.reload()
        return changed

    # ------------------------------------------------------------ markups

    async def _key(self, kind: MarkupKind, target_id: int) -> tuple[str, str] | None:
        """(panel, target) of the markups table row for a category or service id."""
        if kind == "service":
            stored = await catalog_store.get(self.db, target_id)
            return (stored.panel, stored.service.id) if stored else None
        found = await catalog_store.category(self.db, target_id)
        return (found.panel, found.name) if found else None

    async def _example(self, kind: MarkupKind, target_id: int) -> StoredService | None:
        """The service whose price the preview shows: the one, or one it applies to."""
        if kind == "service":
            return await catalog_store.get(self.db, target_id)
        if kind == "category":
            return await catalog_store.first_in_category(self.db, target_id)
        services = await catalog_store.on_sale(self.db)
        return services[0] if services else None

    async def exists(self, kind: MarkupKind, target_id: int) -> bool:
        return kind == "shop" or await self._key(kind, target_id) is not None

    async def current(self, kind: MarkupKind, target_id: int) -> Decimal | None:
        if kind == "shop":
            return await self.pricer.global_markup()
        key = await self._key(kind, target_id)
        if key is None:
            return None
        return (await catalog_store.markups(self.db)).get((kind, *key))

    async def preview(self, kind: MarkupKind, target_id: int, percent: Decimal) -> Preview:
        example = await self._example(kind, target_id)
        now = then = 0
        if example is not None:
            now = self.pricer.unit_price_with(example, await self.pricer.markup_for(example))
            then = self.pricer.unit_price_with(example, percent)
        return Preview(kind, target_id, percent, await self.current(kind, target_id), example,
                       now, then)

    async def set_markup(self, admin_id: int, kind: MarkupKind, target_id: int,
                         percent: Decimal) -> bool:
        """Save it with its audit row; False when the target is gone."""
        if not MIN_MARKUP <= percent <= MAX_MARKUP:
            raise MarkupInvalid("range")
        before = await self.current(kind, target_id)
        key = None if kind == "shop" else await self._key(kind, target_id)
        if kind != "shop" and key is None:
            return False
        async with self.db.transaction() as conn:
            if key is None:
                await catalog_store.set_setting(conn, Pricer.GLOBAL_KEY, str(percent))
            else:
                await catalog_store.set_markup(conn, kind, key[0], key[1], percent)
            await audit_store.record(conn, admin_id=admin_id, action="markup", target_kind=kind,
                                     target_id=target_id if kind != "shop" else "markup",
                                     before="" if before is None else logged_percent(before),
                                     after=logged_percent(percent))
        await self._repriced()
        return True

    async def clear_markup(self, admin_id: int, kind: Literal["category", "service"],
                           target_id: int) -> bool:
        """Back to inheriting; False when there was no override."""
        key = await self._key(kind, target_id)
        before = await self.current(kind, target_id)
        if key is None or before is None:
            return False
        async with self.db.transaction() as conn:
            await catalog_store.clear_markup(conn, kind, key[0], key[1])
            await audit_store.record(conn, admin_id=admin_id, action="markup", target_kind=kind,
                                     target_id=target_id, before=logged_percent(before),
                                     after="inherited")
        await self._repriced()
        return True

    async def _repriced(self) -> None:
        """A markup changed: prices at once, and the services it put at (or took out
        of) a loss hidden or shown."""
        self.pricer.invalidate()
        if await self.after_change():
            await self.catalog.reload()
