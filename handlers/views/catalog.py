"""The catalog as customers see it: platform names, a service's card, and the
cache of pages every customer sees alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.shop.catalog import StoredService
from bot.shop.catalog.shop_catalog import PLATFORMS
from handlers.views.text import (
    CATEGORY_LIMIT,
    DESCRIPTION_LIMIT,
    ID_LIMIT,
    current_locale,
    money,
    number,
    panel_text,
)


def platform_label(slug: str) -> str:
    return _(PLATFORMS.get(slug, PLATFORMS["other"])[0])


def service_card(stored: StoredService, unit_price: int, currency: str) -> str:
    service = stored.service
    order_type = service.order_type
    flat = order_type is not None and order_type.pricing.value == "flat"
    per_post = order_type is not None and order_type.pricing.value == "per_thousand_per_post"
    if flat:
        price = _("Price: <b>{price}</b> per package").format(price=money(unit_price, currency))
    elif per_post:
        price = _("Price: <b>{price}</b> per 1000 on each post").format(
            price=money(unit_price, currency))
    else:
        price = _("Price: <b>{price}</b> per 1000").format(price=money(unit_price, currency))
    yes, no = _("yes"), _("no")
    lines = [
        f"<b>{panel_text(service.name)}</b>",
        _("Service #{id} · {category}").format(id=panel_text(service.id, ID_LIMIT),
                                               category=panel_text(service.category,
                                                                   CATEGORY_LIMIT)),
        "",
        price,
    ]
    if not flat:
        lines.append(_("Order from {min} to {max}").format(min=number(service.min),
                                                            max=number(service.max)))
    lines.append(_("Refill: {refill} · Cancel: {cancel} · Drip-feed: {dripfeed}").format(
        refill=yes if service.refill else no, cancel=yes if service.cancel else no,
        dripfeed=yes if service.dripfeed else no))
    if service.description:
        lines += ["", panel_text(service.description, DESCRIPTION_LIMIT)]
    return "\n".join(lines)


Page = tuple[str, InlineKeyboardMarkup]


class PageCache:
    """Pages every customer sees alike (the catalog's), built once per language.

    ``version`` names what the pages show (the catalog copy and the markups);
    when it changes, every page is dropped and built again on its next view.
    A browsing tap then costs a dictionary lookup instead of pricing and
    building eight to thirteen buttons.
    """

    LIMIT = 4096  # pages per version, all languages; beyond it the cache starts over

    def __init__(self) -> None:
        self._version: Hashable = None
        self._pages: dict[tuple[str, Hashable], Page | None] = {}

    async def get(self, version: Hashable, key: Hashable,
                  build: Callable[[], Awaitable[Page | None]]) -> Page | None:
        if version != self._version:
            self._pages.clear()
            self._version = version
        full_key = (current_locale(), key)
        if full_key in self._pages:
            return self._pages[full_key]
        page = await build()
        if version == self._version:  # not when the catalog reloaded while building
            if len(self._pages) >= self.LIMIT:
                self._pages.clear()
            self._pages[full_key] = page
        return page
