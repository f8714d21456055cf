"""Browsing platform → category → service, search, and inline mode.

Every level edits the same message and reads only the in-memory catalog
(bot/shop/catalog/shop_catalog.py ShopCatalog), never the database or the panel. The browsing
pages are the same for every customer, so each is built once per language and
catalog/markup version (``PageCache``) and then only looked up.
"""

from __future__ import annotations

from html import escape

from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop.catalog import StoredService
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import PLATFORMS, ShopCatalog
from bot.shop.orders.service import OrderService, ServiceGone
from handlers.callbacks import CategoryCb, MenuCb, PlatformCb, ServiceCb
from handlers.customer.service_view import show_service
from handlers.filters import Button, CallbackPrefix, CommandText, TextMessage
from handlers.routing import AreaRouter
from handlers.views.catalog import Page, PageCache, platform_label
from handlers.views.keyboards import PAGE_SIZE, button, column, edit, keyboard, pager
from handlers.views.menu import home_button
from handlers.views.text import CATEGORY_LIMIT, money, number, panel_text, short

# /start leaves a search: the menu answers it.
router = AreaRouter(name="catalog",
                    callbacks=CallbackPrefix(MenuCb, PlatformCb, CategoryCb, ServiceCb),
                    messages=CommandText("/start", unless=True))
MAX_QUERY = 100
SEARCH_RESULTS = 20


class Search(StatesGroup):
    query = State()


async def _version(catalog: ShopCatalog, pricer: Pricer) -> tuple[int, int]:
    return catalog.version, await pricer.version()


@router.callback_query(Button(MenuCb(action="shop")))
async def platforms(query: CallbackQuery, catalog: ShopCatalog, pricer: Pricer,
                    pages: PageCache) -> None:
    assert isinstance(query.message, Message)
    page = await pages.get(await _version(catalog, pricer), "platforms",
                           lambda: _platforms_page(catalog))
    assert page is not None
    await edit(query.message, page[0], page[1])


async def _platforms_page(catalog: ShopCatalog) -> Page:
    found = await catalog.platforms()
    buttons = [button(platform_label(slug), PlatformCb(slug=slug))
               for slug in PLATFORMS if slug in found]
    buttons += [button(_("🔍 Search"), MenuCb(action="search")), home_button()]
    text = _("Choose a platform:") if found else _("The shop has no services yet. "
                                                  "Please come back a little later.")
    return text, keyboard(*(buttons[i:i + 2] for i in range(0, len(buttons), 2)))


@router.callback_query(PlatformCb.filter())
async def categories(query: CallbackQuery, callback_data: PlatformCb, catalog: ShopCatalog,
                     pricer: Pricer, pages: PageCache, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    slug, page_number = callback_data.slug, max(0, callback_data.page)
    page = await pages.get(await _version(catalog, pricer), ("platform", slug, page_number),
                           lambda: _categories_page(catalog, slug, page_number))
    if page is None:
        callback_answer.text = _("Nothing here any more.")
        return
    await edit(query.message, page[0], page[1])


async def _categories_page(catalog: ShopCatalog, slug: str, page: int) -> Page | None:
    rows, total = await catalog.categories(slug, page * PAGE_SIZE, PAGE_SIZE)
    if not rows:
        return None
    markup = keyboard(
        *column([button(short(f"{r.name} ({r.services})"), CategoryCb(id=r.id)) for r in rows]),
        pager(page, total, lambda p: PlatformCb(slug=slug, page=p)),
        [button(_("⬅ Back"), MenuCb(action="shop")), home_button()])
    return _("{platform}: choose a category").format(platform=platform_label(slug)), markup


@router.callback_query(CategoryCb.filter())
async def services(query: CallbackQuery, callback_data: CategoryCb, catalog: ShopCatalog,
                   pricer: Pricer, settings: Settings, pages: PageCache,
                   callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    category_id, page_number = callback_data.id, max(0, callback_data.page)
    page = await pages.get(
        await _version(catalog, pricer), ("category", category_id, page_number),
        lambda: _services_page(catalog, pricer, settings, category_id, page_number))
    if page is None:
        callback_answer.text = _("Nothing here any more.")
        return
    await edit(query.message, page[0], page[1])


async def _services_page(catalog: ShopCatalog, pricer: Pricer, settings: Settings,
                         category_id: int, page: int) -> Page | None:
    found = await catalog.category(category_id)
    rows, total = await catalog.services_in(category_id, page * PAGE_SIZE, PAGE_SIZE)
    if found is None or not rows:
        return None
    name, platform = found
    markup = keyboard(
        *column([button(await _service_button(s, pricer, settings), ServiceCb(ref=s.ref))
                 for s in rows]),
        pager(page, total, lambda p: CategoryCb(id=category_id, page=p)),
        [button(_("⬅ Back"), PlatformCb(slug=platform)), home_button()])
    return _("<b>{category}</b>: choose a service").format(
        category=panel_text(name, CATEGORY_LIMIT)), markup


async def _service_button(stored: StoredService, pricer: Pricer, settings: Settings) -> str:
    price = money(await pricer.unit_price(stored), settings.shop_currency)
    return short(f"{stored.service.name} · {price}")


@router.callback_query(ServiceCb.filter())
async def service(query: CallbackQuery, callback_data: ServiceCb, orders: OrderService,
                  pricer: Pricer, settings: Settings, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    try:
        stored = await orders.on_sale(callback_data.ref)
    except ServiceGone:
        callback_answer.text = _("That service is no longer available.")
        return
    await show_service(query.message, stored, pricer, settings, edit=True)


# ------------------------------------------------------------------ search

@router.callback_query(Button(MenuCb(action="search")))
async def ask_search(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(Search.query)
    await query.message.answer(_("What are you looking for? Send a word like "
                                 "<code>likes</code>, a category or a service number."))


@router.message(Command("search"), StateFilter(None, Search.query))
async def search_command(message: Message, command: CommandObject, state: FSMContext,
                         catalog: ShopCatalog, pricer: Pricer, settings: Settings) -> None:
    if not command.args:
        await state.set_state(Search.query)
        await message.answer(_("What are you looking for? Send a word like "
                               "<code>likes</code>, a category or a service number."))
        return
    await _search(message, command.args, state, catalog, pricer, settings)


@router.message(StateFilter(Search.query), TextMessage(command=False))
async def search_text(message: Message, state: FSMContext, catalog: ShopCatalog,
                      pricer: Pricer, settings: Settings) -> None:
    assert message.text is not None
    await _search(message, message.text, state, catalog, pricer, settings)


@router.message(StateFilter(Search.query), Command("cancel"))
async def search_cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("Search closed. Send /start for the menu."))


@router.message(StateFilter(Search.query))
async def search_wrong(message: Message) -> None:
    await message.answer(_("Please send the search as text, or /cancel."))


async def _search(message: Message, text: str, state: FSMContext, catalog: ShopCatalog,
                  pricer: Pricer, settings: Settings) -> None:
    text = text.strip()
    if len(text) > MAX_QUERY:
        await message.answer(_("That is too long to search for. Try one or two words."))
        return
    if len(text) < 2:
        await message.answer(_("Send at least two characters."))
        return
    await state.clear()
    found = await catalog.search(text, SEARCH_RESULTS)
    markup = keyboard(
        *column([button(await _service_button(s, pricer, settings), ServiceCb(ref=s.ref))
                 for s in found]),
        [button(_("🔍 Search again"), MenuCb(action="search")), home_button()])
    if found:
        reply = ngettext("Found {count} service for “{query}”:", "Found {count} services for “{query}”:",
                         len(found)).format(count=number(len(found)), query=escape(text))
    else:
        reply = _("Nothing found for “{query}”.").format(query=escape(text))
    await message.answer(reply, reply_markup=markup)


@router.inline_query()
async def inline_search(inline: InlineQuery, catalog: ShopCatalog, pricer: Pricer,
                        settings: Settings, bot_username: str) -> None:
    text = inline.query.strip()[:MAX_QUERY]
    found = await catalog.search(text, SEARCH_RESULTS) if len(text) >= 2 else []
    results = []
    for stored in found:
        price = money(await pricer.unit_price(stored), settings.shop_currency)
        link = f"https://t.me/{bot_username}?start=s{stored.ref}"
        results.append(InlineQueryResultArticle(
            id=str(stored.ref), title=short(stored.service.name, 100),
            description=f"{price} · {stored.service.category}"[:200],
            input_message_content=InputTextMessageContent(
                message_text=f"{panel_text(stored.service.name)} — {price}"),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
                text=_("Open in the shop"), url=link)]]),
        ))
    await inline.answer(results, cache_time=60, is_personal=False)
