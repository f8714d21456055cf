"""Links between a shop service and its backups on other panels: made and undone
(each with its audit row, in the same transaction), listed with both costs, and
suggested.

A backup is a service of ANOTHER configured panel taking the same kind of order;
an order may go to it when the service's own panel certainly did not take it
(bot/shop/routing/ failover). Links never go round in a circle (A -> B -> A).

Suggestions match a service with the other panels' services of the same order
type and platform whose min/max overlap its own, scored by how alike their names
and categories read (words in common, difflib's ratio on the normalised texts)
and how much of its range they cover. Catalogs reach 10,000 services a panel, so
the candidates are grouped by type once per call, and the costly ratio is only
computed for a candidate whose cheap upper bound can still beat the ones kept.

Knows nothing of Telegram: the admin's Backups screen (handlers/admin/routes.py)
and ``python -m bot routes`` (bot/cli.py) call it.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum

from bot.panel.order_types import N_
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import PLATFORMS
from storage import audit as audit_store
from storage import catalog as catalog_store
from storage import routes as routes_store
from storage.catalog import StoredService
from storage.db import Database

NEEDS_TWO_PANELS = N_("Backups need a second panel: add one to PANELS (the same service "
                      "sold by another panel can then take an order when this one can't).")


class Refusal(StrEnum):
    UNKNOWN = "unknown"
    PANEL_NOT_CONFIGURED = "panel_not_configured"
    NOT_AVAILABLE = "not_available"
    SELF = "self"
    SAME_PANEL = "same_panel"
    OTHER_TYPE = "other_type"
    ALREADY = "already"
    LOOP = "loop"
    NOT_LINKED = "not_linked"


# Each refusal's words; ``{service}`` and ``{backup}`` are PANEL:SERVICE labels.
REFUSALS: dict[Refusal, str] = {
    Refusal.UNKNOWN: N_("{service} is not in the catalog (as the panels last listed it)."),
    Refusal.PANEL_NOT_CONFIGURED: N_("{service} is on panel {panel}, which is not configured "
                                     "(PANEL_URL / PANELS)."),
    Refusal.NOT_AVAILABLE: N_("{service} can't take orders: its panel no longer lists it, or "
                              "the bot doesn't know its type."),
    Refusal.SELF: N_("A service can't be its own backup."),
    Refusal.SAME_PANEL: N_("{backup} is on the same panel as {service}: a backup must be on "
                           "another panel."),
    Refusal.OTHER_TYPE: N_("{backup} takes “{backup_type}” orders and {service} “{service_type}” "
                           "ones: a backup must take the same kind of order."),
    Refusal.ALREADY: N_("{backup} is already a backup of {service}."),
    Refusal.LOOP: N_("{backup} already falls back on {service}: the link would go round in a "
                     "circle."),
    Refusal.NOT_LINKED: N_("{backup} is not a backup of {service}."),
}


class LinkRefused(Exception):
    """A link not made (or not undone), and why: ``reason`` with its ``params``
    (texts: PANEL:SERVICE labels, a panel, type names) for ``REFUSALS``."""

    def __init__(self, reason: Refusal, **params: str) -> None:
        self.reason = reason
        self.params = params
        super().__init__(self.text)

    @property
    def text(self) -> str:
        """In English (the command line); handlers translate ``REFUSALS[reason]``."""
        return REFUSALS[self.reason].format(**self.params)


def label(stored: StoredService) -> str:
    """A service as the command line names it: PANEL:SERVICE (the panel's id)."""
    return f"{stored.panel}:{stored.service.id}"


@dataclass(frozen=True, slots=True)
class Link:
    """A link as listed: both services, the backup's place, and both costs per 1000
    (the package price for packages) in the shop's currency, without markup."""

    service: StoredService
    backup: StoredService
    position: int
    service_cost_minor: int
    backup_cost_minor: int


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A candidate backup, not linked: ``score`` 1-100, higher is a better match."""

    service: StoredService
    backup: StoredService
    score: int
    service_cost_minor: int
    backup_cost_minor: int


class RouteLinks:
    """``panels``: the configured panels' names, the shop's first (PANEL_URL, then PANELS)."""

    def __init__(self, db: Database, pricer: Pricer, panels: Sequence[str],
                 on_change: Callable[[], Awaitable[None]] | None = None) -> None:
        """``on_change`` runs after a link or unlink: the storefront's copy of the
        catalog is read again, since a backup is not listed for customers."""
        self.db = db
        self.pricer = pricer
        self.panels = tuple(panels)
        self._on_change = on_change

    @property
    def can_link(self) -> bool:
        """Backups need a second configured panel."""
        return len(self.panels) > 1

    def cost(self, stored: StoredService) -> int:
        """What the panel charges per 1000, in the shop's currency (``Pricer.unit_cost``)."""
        return self.pricer.unit_cost(stored)

    async def service(self, ref: int) -> StoredService | None:
        return await catalog_store.get(self.db, ref)

    async def find(self, panel: str, service_id: str) -> StoredService | None:
        """A service by its panel's name and that panel's own id."""
        return await catalog_store.by_panel_id(self.db, panel, service_id)

    # ------------------------------------------------------------ making links

    async def link(self, admin_id: int, service_ref: int, backup_ref: int) -> Link:
        """Make ``backup_ref`` the last backup of ``service_ref``, with its audit row
        (admin 0: the command line). Raises ``LinkRefused`` saying why not."""
        service = await self._known(service_ref)
        backup = await self._known(backup_ref)
        if service.ref == backup.ref:
            raise LinkRefused(Refusal.SELF)
        for stored in (service, backup):
            if stored.panel not in self.panels:
                raise LinkRefused(Refusal.PANEL_NOT_CONFIGURED, service=label(stored),
                                  panel=stored.panel)
        if not backup.active or backup.service.order_type is None:
            raise LinkRefused(Refusal.NOT_AVAILABLE, service=label(backup))
        words = {"service": label(service), "backup": label(backup)}
        if service.panel == backup.panel:
            raise LinkRefused(Refusal.SAME_PANEL, **words)
        if service.service.type != backup.service.type:
            raise LinkRefused(Refusal.OTHER_TYPE, service_type=service.service.type,
                              backup_type=backup.service.type, **words)
        async with self.db.transaction() as conn:
            if await routes_store.reaches(conn, backup.ref, service.ref):
                raise LinkRefused(Refusal.LOOP, **words)
            if not await routes_store.link(self.db, service.ref, backup.ref, admin_id,
                                           conn=conn):
                raise LinkRefused(Refusal.ALREADY, **words)
            await audit_store.record(conn, admin_id=admin_id, action="route_link",
                                     target_kind="service", target_id=service.ref,
                                     after=label(backup), note=f"backup #{backup.ref}")
        if self._on_change is not None:
            await self._on_change()
        position = next(link.position for link in await routes_store.links(self.db)
                        if (link.service_ref, link.backup_ref) == (service.ref, backup.ref))
        return Link(service, backup, position, self.cost(service), self.cost(backup))

    async def unlink(self, admin_id: int, service_ref: int, backup_ref: int) -> None:
        """Undo a link, with its audit row; ``LinkRefused`` when there is none."""
        service = await self._known(service_ref)
        backup = await self._known(backup_ref)
        async with self.db.transaction() as conn:
            if not await routes_store.unlink(conn, service.ref, backup.ref):
                raise LinkRefused(Refusal.NOT_LINKED, service=label(service),
                                  backup=label(backup))
            await audit_store.record(conn, admin_id=admin_id, action="route_unlink",
                                     target_kind="service", target_id=service.ref,
                                     before=label(backup), note=f"backup #{backup.ref}")
        if self._on_change is not None:
            await self._on_change()

    async def _known(self, ref: int) -> StoredService:
        stored = await catalog_store.get(self.db, ref)
        if stored is None:
            raise LinkRefused(Refusal.UNKNOWN, service=f"#{ref}")
        return stored

    # ------------------------------------------------------------ listing

    async def backups(self, service_ref: int) -> list[Link]:
        """One service's backups, in the order they are tried."""
        return [link for link in await self.listing() if link.service.ref == service_ref]

    async def listing(self) -> list[Link]:
        """Every link, by service, then in the order its backups are tried."""
        found = []
        for row in await routes_store.links(self.db):
            service = await catalog_store.get(self.db, row.service_ref)
            backup = await catalog_store.get(self.db, row.backup_ref)
            if service is not None and backup is not None:
                found.append(Link(service, backup, row.position, self.cost(service),
                                  self.cost(backup)))
        return found

    # ------------------------------------------------------------ suggesting

    async def suggest(self, service_ref: int | None = None, limit: int = 5) -> list[Suggestion]:
        """Candidate links, not made, best first.

        For one service: up to ``limit`` backups from the other panels. Without one:
        the best candidate of each service on sale that has no backup yet (a pair
        once, from the panel configured first; the first ``MAX_SERVICES`` of them),
        at most ``limit`` suggestions.
        """
        if not self.can_link:
            return []
        links = await routes_store.links(self.db)
        linked = {(link.service_ref, link.backup_ref) for link in links}
        falls_back_on: dict[int, set[int]] = {}  # a backup -> the services linked to it
        for link in links:
            falls_back_on.setdefault(link.backup_ref, set()).add(link.service_ref)
        listed = await catalog_store.listed_on(self.db, self.panels)
        index = _Index(listed)
        if service_ref is not None:
            service = await catalog_store.get(self.db, service_ref)
            if service is None or service.panel not in self.panels:
                return []
            queries, per_service = [service], limit
        else:
            has_backups = {link.service_ref for link in links}
            order = {name: place for place, name in enumerate(self.panels)}
            on_sale = [s for s in await catalog_store.on_sale(self.db)
                       if s.panel in order and s.ref not in has_backups]
            queries = sorted(on_sale, key=lambda s: (order[s.panel], s.ref))[:MAX_SERVICES]
            per_service = 1
        found: list[Suggestion] = []
        suggested: set[tuple[int, int]] = set()
        for service in queries:
            # Not its backups already, nor one that falls back on it at any depth (a
            # circle), nor the other way round of a pair suggested already.
            ruled_out = _reaching(service.ref, falls_back_on)
            ruled_out |= {b for s, b in linked if s == service.ref}
            ruled_out |= {s for s, b in suggested if b == service.ref}
            for score, backup in index.best(service, per_service, ruled_out):
                suggested.add((service.ref, backup.ref))
                found.append(Suggestion(service, backup, score, self.cost(service),
                                        self.cost(backup)))
        found.sort(key=lambda s: -s.score)  # stable: a service's own order is kept
        return found[:limit]


def _reaching(ref: int, falls_back_on: dict[int, set[int]]) -> set[int]:
    """Every service whose links lead to ``ref`` (itself included)."""
    seen, todo = {ref}, [ref]
    while todo:
        for parent in falls_back_on.get(todo.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


# ------------------------------------------------------------ matching

_WORD = re.compile(r"[^\W_]+")
# Panels shorten words differently: each side is read the same way.
_SPELLINGS = [(re.compile(p), r) for p, r in (
    (r"\br(\d+)\b", r"refill \1"),  # R30: 30 days refill
    (r"\b(?:no|non|without)[ -]?refill\b", "norefill"),
    (r"\b(?:no|non)[ -]?drop\b", "nondrop"),
)]
_ALIASES = {"ig": "instagram", "insta": "instagram", "yt": "youtube", "tt": "tiktok",
            "tg": "telegram", "fb": "facebook", "x": "twitter", "tw": "twitter",
            "subs": "subscribers", "subscriber": "subscribers", "follower": "followers",
            "like": "likes", "view": "views", "member": "members", "comment": "comments",
            "reel": "reels"}
# Words that say nothing of what a service delivers.
_FILLER = frozenset({"the", "a", "and", "or", "with", "from", "for", "of", "to", "in", "on",
                     "by", "day", "days", "max", "min", "start", "package", "service"})
# Naming the platform alone makes no two services alike (the platform check does that):
# its brand, not words like "retweets" or "traffic" that also say what is delivered.
_PLATFORM_WORDS = frozenset(slug for slug in PLATFORMS if slug != "other") | {"website"}
MAX_SERVICES = 500  # examined by one whole-shop suggestion (a second or so)
MIN_SCORE = 50  # below this, a candidate reads too unlike the service to suggest
# Weights of the score's parts (they add up to 1).
_NAME, _WORDS, _CATEGORY, _RANGE = 0.45, 0.25, 0.15, 0.15
# A candidate whose platform could not be told (a category like "Threads") is less
# likely the same thing; one on another known platform is never suggested.
_UNSURE_PLATFORM = 0.9


def _words(text: str) -> list[str]:
    text = text.lower()
    for pattern, replacement in _SPELLINGS:
        text = pattern.sub(replacement, text)
    found = (_ALIASES.get(w, w) for w in _WORD.findall(text))
    return [w for w in found if w not in _FILLER]


@dataclass(frozen=True, slots=True)
class _Entry:
    stored: StoredService
    name: str  # the name's words, sorted: word order does not matter
    category: str
    words: frozenset[str]  # of the name and the category
    telling: frozenset[str]  # those words that say what it delivers (not a number, a platform)
    low: float  # log of min and max: ranges span orders of magnitude
    high: float


def _entry(stored: StoredService) -> _Entry:
    service = stored.service
    name, category = _words(service.name), _words(service.category)
    words = frozenset(name + category)
    telling = frozenset(w for w in words if not w.isdigit() and w not in _PLATFORM_WORDS)
    return _Entry(stored, " ".join(sorted(name)), " ".join(sorted(category)), words, telling,
                  math.log10(max(service.min, 1)),
                  math.log10(max(service.max, service.min, 1)))


def _range_share(service: _Entry, backup: _Entry) -> float | None:
    """How much of the service's min..max the backup also takes (0-1, on a log
    scale); ``None`` when they have no quantity in common."""
    if backup.stored.service.min > service.stored.service.max \
            or service.stored.service.min > backup.stored.service.max:
        return None
    width = service.high - service.low
    if width <= 0:
        return 1.0
    return max(0.0, min(backup.high, service.high) - max(backup.low, service.low)) / width


class _Index:
    """The candidates by order type, platform and telling word, built once per
    suggestion call: a service is only compared with those sharing all three."""

    def __init__(self, services: Iterable[StoredService]) -> None:
        # type -> platform -> word -> entries
        self.postings: dict[str, dict[str, dict[str, list[_Entry]]]] = {}
        for stored in services:
            entry = _entry(stored)
            by_word = self.postings.setdefault(stored.service.type, {}).setdefault(
                stored.platform, {})
            for word in entry.telling:
                by_word.setdefault(word, []).append(entry)

    def _candidates(self, query: _Entry) -> list[_Entry]:
        platforms = self.postings.get(query.stored.service.type, {})
        platform = query.stored.platform
        wanted = (platforms.values() if platform == "other"
                  else [platforms.get(platform, {}), platforms.get("other", {})])
        found = {id(e): e for by_word in wanted for word in query.telling
                 for e in by_word.get(word, ())}
        return sorted(found.values(), key=lambda e: e.stored.ref)

    def best(self, service: StoredService, count: int,
             ruled_out: set[int]) -> list[tuple[int, StoredService]]:
        """The ``count`` best candidates on other panels, as (score, service), best
        first; none of ``ruled_out`` (refs)."""
        query = _entry(service)
        name_ratio = SequenceMatcher(None, autojunk=False)
        name_ratio.set_seq2(query.name)  # the matcher keeps its analysis of seq2
        category_ratio = SequenceMatcher(None, autojunk=False)
        category_ratio.set_seq2(query.category)
        kept: list[tuple[float, int, StoredService]] = []  # a min-heap of the best
        floor = MIN_SCORE / 100
        for candidate in self._candidates(query):
            stored = candidate.stored
            if stored.panel == service.panel or stored.ref in ruled_out:
                continue
            if stored.platform == service.platform:
                sure = 1.0
            elif "other" in (stored.platform, service.platform):  # one side's is unknown
                sure = _UNSURE_PLATFORM
            else:
                continue
            share = _range_share(query, candidate)
            if share is None:
                continue
            union = len(query.words | candidate.words)
            words = len(query.words & candidate.words) / union if union else 0.0
            partial = (_WORDS * words + _RANGE * share) * sure
            name_weight, category_weight = _NAME * sure, _CATEGORY * sure
            bar = max(floor, kept[0][0]) if len(kept) == count else floor
            # Cheap upper bounds first: the ratios are the costly part.
            if partial + name_weight + category_weight < bar:
                continue
            name_ratio.set_seq1(candidate.name)
            if partial + name_weight * name_ratio.quick_ratio() + category_weight < bar:
                continue
            category_ratio.set_seq1(candidate.category)
            score = (partial + name_weight * name_ratio.ratio()
                     + category_weight * category_ratio.ratio())
            if score < bar:
                continue
            item = (score, -stored.ref, stored)  # equal scores: the lower id first
            if len(kept) < count:
                heapq.heappush(kept, item)
            else:
                heapq.heapreplace(kept, item)
        return [(max(1, round(score * 100)), stored)
                for score, _, stored in sorted(kept, key=lambda k: (-k[0], -k[1]))]
