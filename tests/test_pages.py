"""The catalog page cache: built once per language and version, rebuilt when either changes."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup

from handlers.middlewares.i18n import build_i18n
from handlers.views.catalog import Page, PageCache


async def test_pages_are_rebuilt_for_a_new_version_and_kept_per_language() -> None:
    i18n = build_i18n()
    built: list[tuple[str, int]] = []

    def builder(version: int):
        async def build() -> Page:
            built.append((i18n.current_locale, version))
            return f"page v{version}", InlineKeyboardMarkup(inline_keyboard=[])
        return build

    cache = PageCache()
    with i18n.context():
        with i18n.use_locale("en"):
            first = await cache.get(1, "platforms", builder(1))
            assert await cache.get(1, "platforms", builder(1)) is first
        with i18n.use_locale("de"):  # another language: its own page
            await cache.get(1, "platforms", builder(1))
        with i18n.use_locale("en"):
            fresh = await cache.get(2, "platforms", builder(2))  # the catalog or a markup changed
    assert fresh[0] == "page v2"
    assert built == [("en", 1), ("de", 1), ("en", 2)]
