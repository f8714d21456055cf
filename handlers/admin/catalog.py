"""The admin panel's catalog screens (handlers/admin/home.py has the menu).

Refresh now, find any service (hidden ones too), its card with hide/show of
the service or its category, markups (global, category, service) shown
with an example price before they are saved, and its backups on other panels
(linked, and suggested). The work is bot/shop/catalog/admin.py and
bot/shop/routing/links.py.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape

from aiogram import F
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop.catalog.admin import CatalogAdmin, MarkupInvalid, ServiceInfo, parse_percent
from bot.shop.routing.links import NEEDS_TWO_PANELS, REFUSALS, LinkRefused, RouteLinks, label
from handlers.admin.home import back_button
from handlers.callbacks import AdminCatalogCb, AdminCb, AdminRoutesCb
from handlers.filters import Button, TextMessage
from handlers.routing import AreaRouter
from handlers.views.keyboards import button, edit, keyboard
from handlers.views.text import (
    CATEGORY_LIMIT,
    ID_LIMIT,
    money,
    number,
    panel_amount,
    panel_text,
    percent,
    short,
)

router = AreaRouter(name="admin_catalog")

MAX_QUERY = 100
RESULTS = 10


class AdminCatalog(StatesGroup):
    find = State()
    markup = State()  # FSM data: kind, target, (after a valid number) percent


def _catalog_back() -> list:
    return [button(_("⬅ Catalog"), AdminCb(area="catalog"))]


async def _home(admin: CatalogAdmin) -> tuple[str, InlineKeyboardMarkup]:
    current = percent(await admin.pricer.global_markup())
    text = _("<b>🗂 Catalog</b>\nGlobal markup: <b>{percent}</b> (a category's or a "
             "service's own markup wins over it).").format(percent=current)
    return text, keyboard(
        [button(_("🔄 Refresh now"), AdminCatalogCb(action="refresh")),
         button(_("🔍 Find a service"), AdminCatalogCb(action="find"))],
        [button(_("💹 Global markup: {percent}").format(percent=current),
                AdminCatalogCb(action="global"))],
        back_button())


@router.callback_query(Button(AdminCb(area="catalog")))
async def catalog_screen(query: CallbackQuery, state: FSMContext,
                         catalog_admin: CatalogAdmin) -> None:
    assert isinstance(query.message, Message)
    await state.clear()
    await edit(query.message, *await _home(catalog_admin))


@router.callback_query(AdminCatalogCb.filter(F.action == "refresh"))
async def refresh_now(query: CallbackQuery, catalog_admin: CatalogAdmin) -> None:
    assert isinstance(query.message, Message)
    report = await catalog_admin.refresh(query.from_user.id)
    lines = [_("<b>Catalog refreshed.</b>"),
             _("Added: {added} · changed: {changed} · withdrawn: {withdrawn}").format(
                 added=number(report.added), changed=number(report.changed),
                 withdrawn=number(report.withdrawn))]
    for result in report.results:
        lines.append(ngettext("{panel}: {services} service, {sellable} on sale",
                              "{panel}: {services} services, {sellable} on sale",
                              result.services).format(
            panel=escape(result.panel), services=number(result.services),
            sellable=number(result.sellable)))
    for panel, why in report.failed.items():
        lines.append(_("⚠️ {panel} did not answer ({why}); its cached list is kept.").format(
            panel=escape(panel), why=escape(why[:150])))
    await edit(query.message, "\n".join(lines), keyboard(_catalog_back(), back_button()))


# ------------------------------------------------------------ find

@router.callback_query(AdminCatalogCb.filter(F.action == "find"))
async def ask_find(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(AdminCatalog.find)
    await query.message.answer(_("Send a service id (ours or the panel's) or words of its name "
                                 "or category; hidden services are found too. /cancel to stop."))


def _state_word(info: ServiceInfo) -> str:
    if info.on_sale:
        return _("on sale")
    if info.stored.hidden_by_admin:
        return _("hidden")
    if info.stored.hidden_at_loss:
        return _("hidden at a loss")
    return _("not sold")


@router.message(StateFilter(AdminCatalog.find), TextMessage(command=False))
async def find(message: Message, state: FSMContext, catalog_admin: CatalogAdmin,
               settings: Settings) -> None:
    assert message.text is not None
    text = message.text.strip()
    if not 1 <= len(text) <= MAX_QUERY:
        await message.answer(_("Send one to {limit} characters, or /cancel.").format(
            limit=MAX_QUERY))
        return
    found = await catalog_admin.find(text, RESULTS)
    if not found:
        await message.answer(_("Nothing found for “{query}”. Try another word, or /cancel.")
                             .format(query=escape(short(text, 60))))
        return
    await state.clear()
    lines = [ngettext("Found {count} service for “{query}”:", "Found {count} services for “{query}”:",
                      len(found)).format(count=number(len(found)), query=escape(short(text, 60)))]
    buttons = []
    for info in found:
        stored = info.stored
        lines.append(_("#{ref} · {panel} #{id} · {name} · {category} · {price} · {state}").format(
            ref=stored.ref, panel=escape(stored.panel), id=panel_text(stored.service.id, ID_LIMIT),
            name=panel_text(stored.service.name, 60),
            category=panel_text(stored.service.category, 40),
            price=money(info.unit_price_minor, settings.shop_currency), state=_state_word(info)))
        buttons.append([button(short(f"#{stored.ref} {stored.service.name}"),
                               AdminCatalogCb(action="card", id=stored.ref))])
    await message.answer("\n".join(lines), reply_markup=keyboard(*buttons, _catalog_back()))


@router.message(StateFilter(AdminCatalog.find))
async def find_wrong_input(message: Message) -> None:
    await message.answer(_("Send the search as text, or /cancel."))


# ------------------------------------------------------------ the service card

def _source_word(source: str) -> str:
    return {"service": _("this service's own"), "category": _("its category's"),
            "shop": _("the global one")}.get(source, source)


async def _card(admin: CatalogAdmin, info: ServiceInfo,
                settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    stored = info.stored
    category = await admin.category(stored.category_id)
    category_hidden = category.hidden if category else False
    if info.on_sale:
        status = _("✅ on sale")
    elif stored.hidden_by_admin:
        status = _("🙈 hidden") + (_(" (its category is hidden)") if category_hidden else "")
    elif stored.hidden_at_loss and stored.active:
        status = _("📉 hidden by the shop: at its markup it would sell below its cost ({cost}"
                   " per 1000). Raise the markup, or it is shown again when the panel's"
                   " price falls.").format(cost=money(info.cost_minor, settings.shop_currency))
    else:
        status = _("⛔ not sold (withdrawn by the panel or of an unknown type)")
    lines = [
        f"<b>{panel_text(stored.service.name)}</b>",
        _("Id #{ref} · panel {panel} #{id}").format(ref=stored.ref, panel=escape(stored.panel),
                                                   id=panel_text(stored.service.id, ID_LIMIT)),
        _("Category: {category}").format(category=panel_text(stored.service.category,
                                                             CATEGORY_LIMIT)),
        _("Panel rate: {rate} per 1000").format(
            rate=escape(panel_amount(stored.service.rate, stored.currency))),
        _("Shop price: <b>{price}</b> per 1000").format(
            price=money(info.unit_price_minor, settings.shop_currency)),
        _("Markup: {percent} ({source})").format(percent=percent(info.markup),
                                                   source=_source_word(info.markup_from)),
        _("State: {status}").format(status=status),
    ]
    ref, cat = stored.ref, stored.category_id
    hide_service = (button(_("👁 Show service"), AdminCatalogCb(action="show_s", id=ref))
                    if stored.hidden else
                    button(_("🙈 Hide service"), AdminCatalogCb(action="hide_s", id=ref)))
    hide_category = (button(_("👁 Show category"), AdminCatalogCb(action="show_c", id=cat))
                     if category_hidden else
                     button(_("🙈 Hide category"), AdminCatalogCb(action="hide_c", id=cat)))
    clear = []
    if await admin.current("service", ref) is not None:
        clear.append(button(_("↩️ Clear service markup"), AdminCatalogCb(action="clear_s", id=ref)))
    if await admin.current("category", cat) is not None:
        clear.append(button(_("↩️ Clear category markup"),
                            AdminCatalogCb(action="clear_c", id=cat)))
    return "\n".join(lines), keyboard(
        [hide_service, hide_category],
        [button(_("💹 Service markup"), AdminCatalogCb(action="mk_s", id=ref)),
         button(_("💹 Category markup"), AdminCatalogCb(action="mk_c", id=cat))],
        clear, [button(_("🔀 Backups"), AdminCatalogCb(action="backups", id=ref))],
        _catalog_back(), back_button())


async def _show_card(message: Message, state: FSMContext, admin: CatalogAdmin, ref: int,
                     settings: Settings, *, new: bool = False) -> bool:
    info = await admin.card(ref)
    if info is None:
        return False
    await state.update_data(card=ref)  # where category actions come back to
    text, markup = await _card(admin, info, settings)
    if new:
        await message.answer(text, reply_markup=markup)
    else:
        await edit(message, text, markup)
    return True


async def _back_to_card(message: Message, state: FSMContext, admin: CatalogAdmin,
                        settings: Settings) -> None:
    ref = int((await state.get_data()).get("card", 0) or 0)
    if not ref or not await _show_card(message, state, admin, ref, settings):
        await edit(message, *await _home(admin))


@router.callback_query(AdminCatalogCb.filter(F.action == "card"))
async def card(query: CallbackQuery, callback_data: AdminCatalogCb, state: FSMContext,
               catalog_admin: CatalogAdmin, settings: Settings,
               callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(None)
    if not await _show_card(query.message, state, catalog_admin, callback_data.id, settings):
        callback_answer.text = _("No such service.")


@router.callback_query(AdminCatalogCb.filter(F.action.in_({"hide_s", "show_s"})))
async def hide_service(query: CallbackQuery, callback_data: AdminCatalogCb, state: FSMContext,
                       catalog_admin: CatalogAdmin, settings: Settings,
                       callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    hidden = callback_data.action == "hide_s"
    if await catalog_admin.card(callback_data.id) is None:
        callback_answer.text = _("No such service.")
        return
    changed = await catalog_admin.set_service_hidden(query.from_user.id, callback_data.id, hidden)
    callback_answer.text = (_("Hidden: customers can't see or order it.") if hidden else
                            _("Shown again.")) if changed else _("Nothing changed.")
    await _show_card(query.message, state, catalog_admin, callback_data.id, settings)


@router.callback_query(AdminCatalogCb.filter(F.action.in_({"hide_c", "show_c"})))
async def hide_category(query: CallbackQuery, callback_data: AdminCatalogCb, state: FSMContext,
                        catalog_admin: CatalogAdmin, settings: Settings,
                        callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    hidden = callback_data.action == "hide_c"
    if await catalog_admin.category(callback_data.id) is None:
        callback_answer.text = _("No such category.")
        return
    changed = await catalog_admin.set_category_hidden(query.from_user.id, callback_data.id,
                                                      hidden)
    callback_answer.text = (_("Category hidden with all its services.") if hidden else
                            _("Category shown again.")) if changed else _("Nothing changed.")
    await _back_to_card(query.message, state, catalog_admin, settings)


@router.callback_query(AdminCatalogCb.filter(F.action.in_({"clear_s", "clear_c"})))
async def clear_markup(query: CallbackQuery, callback_data: AdminCatalogCb, state: FSMContext,
                       catalog_admin: CatalogAdmin, settings: Settings,
                       callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    kind = "service" if callback_data.action == "clear_s" else "category"
    cleared = await catalog_admin.clear_markup(query.from_user.id, kind, callback_data.id)
    callback_answer.text = _("Override cleared: it inherits again.") if cleared else _(
        "There was no override; nothing changed.")
    await _back_to_card(query.message, state, catalog_admin, settings)


# ------------------------------------------------------------ markups

_KINDS = {"global": "shop", "mk_c": "category", "mk_s": "service"}


def _target_words(kind: str, target: int) -> str:
    if kind == "shop":
        return _("the global markup")
    if kind == "category":
        return _("the markup of category #{id}").format(id=target)
    return _("the markup of service #{id}").format(id=target)


@router.callback_query(AdminCatalogCb.filter(F.action.in_(set(_KINDS))))
async def ask_markup(query: CallbackQuery, callback_data: AdminCatalogCb, state: FSMContext,
                     catalog_admin: CatalogAdmin, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    kind = _KINDS[callback_data.action]
    target = 0 if kind == "shop" else callback_data.id
    if not await catalog_admin.exists(kind, target):
        callback_answer.text = _("Nothing here any more.")
        return
    current = await catalog_admin.current(kind, target)  # type: ignore[arg-type]
    now = (_("now {percent}").format(percent=percent(current)) if current is not None
           else _("now inherited"))
    await state.set_state(AdminCatalog.markup)
    await state.update_data(kind=kind, target=target, percent=None)
    await query.message.answer(_("Send {what} in percent ({now}): a number from -99 to 10000, "
                                 "at most two decimals, like 15 or 12.5. /cancel to stop.")
                               .format(what=_target_words(kind, target), now=now))


def _markup_help() -> str:
    return _("Send a number from -99 to 10000 with at most two decimals, like 15, 12.5 or "
             "-10; or /cancel.")


@router.message(StateFilter(AdminCatalog.markup), TextMessage(command=False))
async def markup_value(message: Message, state: FSMContext, catalog_admin: CatalogAdmin,
                       settings: Settings) -> None:
    assert message.text is not None
    data = await state.get_data()
    try:
        markup = parse_percent(message.text)
    except MarkupInvalid as exc:
        problem = {
            "range": _("That is outside -99 … 10000."),
            "decimals": _("That has more than two decimals (a thousand is written 1000)."),
            "separator": _("Write the number without a thousands separator, like 1000."),
        }.get(exc.reason, _("That is not a percent."))
        await message.answer(f"⚠️ {problem} {_markup_help()}")
        return
    kind, target = data.get("kind", "shop"), int(data.get("target", 0))
    preview = await catalog_admin.preview(kind, target, markup)
    await state.update_data(percent=str(markup))
    lines = [_("Set {what} to <b>{percent}</b>?").format(what=_target_words(kind, target),
                                                          percent=percent(markup))]
    if preview.example is not None:
        currency = settings.shop_currency
        lines.append(_("1000 of service #{ref}: {now} now → {then} with {percent}").format(
            ref=preview.example.ref, now=money(preview.price_now_minor, currency),
            then=money(preview.price_then_minor, currency), percent=percent(markup)))
    if markup < 0:
        lines.append(_("⚠️ A negative markup sells below what the panel charges you."))
    lines.append(_("Or send another number."))
    await message.answer("\n".join(lines), reply_markup=keyboard(
        [button(_("✅ Save"), AdminCatalogCb(action="save"))], _catalog_back()))


@router.message(StateFilter(AdminCatalog.markup))
async def markup_wrong_input(message: Message) -> None:
    await message.answer(f"⚠️ {_markup_help()}")


@router.callback_query(AdminCatalogCb.filter(F.action.in_({"save", "save_below"})),
                       StateFilter(AdminCatalog.markup))
async def save_markup(query: CallbackQuery, callback_data: AdminCatalogCb, state: FSMContext,
                      catalog_admin: CatalogAdmin, settings: Settings,
                      callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    data = await state.get_data()
    if data.get("percent") is None:
        callback_answer.text = _("Send the number first.")
        return
    markup = Decimal(data["percent"])
    kind, target = data.get("kind", "shop"), int(data.get("target", 0))
    if markup < 0 and callback_data.action != "save_below":
        await edit(query.message, _("⚠️ With a markup of {percent}, every affected service "
                                    "would sell below the panel's cost, so the shop hides it "
                                    "until the markup or the panel's price is fixed. Save "
                                    "anyway?").format(percent=percent(markup)),
                   keyboard([button(_("Yes, save and hide them"),
                                    AdminCatalogCb(action="save_below"))], _catalog_back()))
        return
    if not await catalog_admin.set_markup(query.from_user.id, kind, target, markup):
        await state.set_state(None)
        callback_answer.text = _("Nothing here any more.")
        return
    await state.set_state(None)
    await state.update_data(kind=None, target=None, percent=None)
    callback_answer.text = _("Saved: {what} is {percent}.").format(
        what=_target_words(kind, target), percent=percent(markup))
    if kind == "shop":
        await edit(query.message, *await _home(catalog_admin))
    else:
        await _back_to_card(query.message, state, catalog_admin, settings)


@router.callback_query(AdminCatalogCb.filter(F.action.in_({"save", "save_below"})))
async def save_stale(query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("That change was already saved or cancelled.")


# ------------------------------------------------------------ backups on other panels

SUGGESTED = 5


async def _backups(links: RouteLinks, ref: int,
                   settings: Settings) -> tuple[str, InlineKeyboardMarkup] | None:
    service = await links.service(ref)
    if service is None:
        return None
    currency = settings.shop_currency
    back = [button(_("⬅ Service"), AdminCatalogCb(action="card", id=ref))]
    lines = [_("<b>🔀 Backups of #{ref}</b> {name}").format(
                 ref=ref, name=panel_text(service.service.name, 80)),
             _("Its panel: {panel} #{id} · cost {cost} per 1000").format(
                 panel=escape(service.panel), id=panel_text(service.service.id, ID_LIMIT),
                 cost=money(links.cost(service), currency))]
    if not links.can_link:
        lines.append(_(NEEDS_TWO_PANELS))
        return "\n".join(lines), keyboard(back, back_button())
    rows = []
    linked = await links.backups(ref)
    if linked:
        lines.append(_("When its panel certainly did not take an order, these are tried in "
                       "this order:"))
    else:
        lines.append(_("No backup yet: when its panel can't take an order, it is refunded."))
    for link in linked:
        backup = link.backup
        lines.append(_("{position}. {panel} #{id} · {name} · cost {cost} per 1000").format(
            position=link.position, panel=escape(backup.panel),
            id=panel_text(backup.service.id, ID_LIMIT), name=panel_text(backup.service.name, 60),
            cost=money(link.backup_cost_minor, currency)))
        rows.append([button(short(_("✖ {backup}").format(backup=label(backup))),
                            AdminRoutesCb(action="unlink", id=ref, backup=backup.ref))])
    suggested = await links.suggest(ref, SUGGESTED)
    if suggested:
        lines.append(_("Suggested (best first; tap ➕ to link):"))
    for found in suggested:
        backup = found.backup
        lines.append(_("➕ {panel} #{id} · {name} · cost {cost} per 1000 · match {score}")
                     .format(panel=escape(backup.panel),
                             id=panel_text(backup.service.id, ID_LIMIT),
                             name=panel_text(backup.service.name, 60),
                             cost=money(found.backup_cost_minor, currency),
                             score=percent(Decimal(found.score))))
        rows.append([button(short(f"➕ {label(backup)} {backup.service.name}"),
                            AdminRoutesCb(action="link", id=ref, backup=backup.ref))])
    if not suggested and not linked:
        lines.append(_("No service on the other panels reads like this one (same kind of "
                       "order, overlapping min/max). Link one from the command line: "
                       "python -m bot routes link PANEL:SERVICE PANEL:SERVICE"))
    return "\n".join(lines), keyboard(*rows, back, back_button())


@router.callback_query(AdminCatalogCb.filter(F.action == "backups"))
async def backups_screen(query: CallbackQuery, callback_data: AdminCatalogCb,
                         route_links: RouteLinks, settings: Settings,
                         callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    screen = await _backups(route_links, callback_data.id, settings)
    if screen is None:
        callback_answer.text = _("No such service.")
        return
    await edit(query.message, *screen)


@router.callback_query(AdminRoutesCb.filter())
async def link_or_unlink(query: CallbackQuery, callback_data: AdminRoutesCb,
                         route_links: RouteLinks, settings: Settings,
                         callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    try:
        if callback_data.action == "link":
            await route_links.link(query.from_user.id, callback_data.id, callback_data.backup)
            callback_answer.text = _("Linked: it is tried when this service's panel can't "
                                     "take an order.")
        else:
            await route_links.unlink(query.from_user.id, callback_data.id, callback_data.backup)
            callback_answer.text = _("Unlinked.")
    except LinkRefused as refused:
        callback_answer.text = _(REFUSALS[refused.reason]).format(
            **{key: short(value, 60) for key, value in refused.params.items()})
    screen = await _backups(route_links, callback_data.id, settings)
    if screen is not None:
        await edit(query.message, *screen)
