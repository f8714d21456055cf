"""Texts and keyboards shared by the routers. Every text goes through gettext."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from functools import lru_cache
from html import escape
from zoneinfo import ZoneInfo

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity
from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from aiogram.utils.text_decorations import HtmlDecoration

from bot.panel.order_types import FieldError, FieldKind, FormField
from bot.shop.catalog import StoredService
from bot.shop.catalog.pricing import Quote
from bot.shop.catalog.shop_catalog import PLATFORMS
from bot.shop.money import formatting
from bot.shop.orders import StoredOrder
from bot.shop.orders.service import OrderActions
from handlers.callbacks import FormCb, LanguageCb, MenuCb, OrderCb, OrdersCb

PAGE_SIZE = 8
MAX_BUTTON = 60
# Panel texts can be any length (5,000-character names were seen): they are cut
# to these before they are escaped, so every message stays under Telegram's 4,096
# visible characters whatever the panel sends.
NAME_LIMIT = 200
CATEGORY_LIMIT = 100
DESCRIPTION_LIMIT = 1500
ID_LIMIT = 40

STATE_EMOJI = {"submitting": "⏳", "pending": "🕓", "in_progress": "🔄", "completed": "✅",
               "partial": "🌗", "canceled": "↩️", "failed": "❌", "unknown": "❔"}


def state_word(state: str) -> str:
    words = {"submitting": _("Sending"), "pending": _("Pending"), "in_progress": _("In progress"),
             "completed": _("Completed"), "partial": _("Partially done"),
             "canceled": _("Canceled"), "failed": _("Failed"), "unknown": _("Being checked")}
    return words.get(state, state)


def ledger_kind(kind: str, order_id: int | None) -> str:
    """What a balance movement was, in the reader's words."""
    words = {
        "order": _("Order #{id}"), "refund": _("Refund for order #{id}"),
        "topup": _("⭐ Top-up"), "topup_refund": _("⭐ Top-up refunded"),
        "credit": _("Added by the shop"), "debit": _("Taken by the shop"),
    }
    return words[kind].format(id=order_id) if kind in words else escape(kind)


def short(text: str, limit: int = MAX_BUTTON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def panel_text(text: str, limit: int = NAME_LIMIT) -> str:
    """A text from a panel (a name, a category, an id) as HTML: cut, then escaped."""
    return escape(short(text, limit))


def platform_label(slug: str) -> str:
    return _(PLATFORMS.get(slug, PLATFORMS["other"])[0])


# Keyboards are built directly rather than with InlineKeyboardBuilder, which
# deep-copies and re-validates every button, and with ``model_construct``: the
# values are our own strings, and pydantic validation of each button was the
# largest remaining cost of an update (bench/conversation.py). Serialised the
# same way (unset fields are None and left out). Buttons are immutable once
# built, so the same (label, data) pair is built once and shared: a catalog page
# shows every customer the same buttons, and ``model_construct`` with
# ``pack()`` still costs tens of microseconds a button. Fixed keyboards are
# also cached per language.

def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return _button(text, data.pack())


@lru_cache(maxsize=4096)
def _button(text: str, callback_data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton.model_construct(text=text, callback_data=callback_data)


def keyboard(*rows: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup.model_construct(inline_keyboard=[list(row) for row in rows if row])


def column(buttons: Sequence[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    return [[b] for b in buttons]


def current_locale() -> str:
    """The locale of the message being built (the aiogram i18n context)."""
    return get_i18n().current_locale



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


def main_menu(is_admin: bool) -> InlineKeyboardMarkup:
    return _main_menu(current_locale(), is_admin)


@lru_cache(maxsize=64)
def _main_menu(_locale_key: str, is_admin: bool) -> InlineKeyboardMarkup:
    rows = [[button(_("🛒 New order"), MenuCb(action="shop")),
             button(_("📦 My orders"), OrdersCb(page=0))],
            [button(_("💰 Balance"), MenuCb(action="balance")),
             button(_("❓ Help"), MenuCb(action="help"))],
            [button(_("🌐 Language"), LanguageCb(code="list"))]]
    if is_admin:
        rows.append([button(_("🛠 Admin"), MenuCb(action="admin"))])
    return keyboard(*rows)


def home_button() -> InlineKeyboardButton:
    return button(_("🏠 Menu"), MenuCb(action="home"))


def pager(page: int, total: int, make: Callable[[int], CallbackData], *,
          size: int = PAGE_SIZE) -> list[InlineKeyboardButton]:
    """The ◀ page x/y ▶ row (empty when everything fits on one page)."""
    pages = max(1, -(-total // size))
    if pages == 1:
        return []
    row = []
    if page > 0:
        row.append(button("◀", make(page - 1)))
    row.append(button(_("page {page}/{pages}").format(page=number(page + 1), pages=number(pages)),
                      make(page)))
    if page + 1 < pages:
        row.append(button("▶", make(page + 1)))
    return row


# Money, numbers and dates in the reader's locale (bot/shop/money/formatting.py): the aiogram
# i18n context says whose message is being built, in a handler or a notice.

def money(minor: int, currency: str) -> str:
    return formatting.money(minor, currency, current_locale())


def number(value: int) -> str:
    return formatting.number(value, current_locale())


def shown(value: object) -> str:
    """A message parameter (``Money``, a number, text) as this reader reads it."""
    return formatting.shown(value, current_locale())


def when(stored: str | None) -> str:
    """A stored UTC time, as the reader writes dates, in the shop's time zone."""
    return formatting.stored_moment(stored, current_locale(), _shop_zone[0])


def day_of(stored: str | None) -> str:
    """The date of a stored UTC time in the shop's time zone, as the reader writes it."""
    if not stored:
        return "—"
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(_shop_zone[0])
    return formatting.day(moment.date(), current_locale())


_shop_zone = [ZoneInfo("UTC")]


def set_shop_zone(zone: ZoneInfo) -> None:
    """Times are shown in ``SHOP_TIMEZONE`` (set once, when the dispatcher is built)."""
    _shop_zone[0] = zone


def field_error(error: FieldError) -> str:
    """A ``FieldError`` (or ``AmountError``) in this reader's words."""
    return error.render(_, shown)


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


def field_prompt(stored: StoredService, spec: FormField, step: int, steps: int,
                 note: str | None = None) -> str:
    """A form step; ``note`` (HTML, already escaped) says what was wrong with the last answer."""
    service = stored.service
    lines = [f"<b>{panel_text(service.name, 80)}</b>",
             _("Step {step} of {steps}").format(step=step, steps=steps), ""]
    if note:
        lines += [f"⚠️ {note}", ""]
    lines.append(escape(_(spec.prompt)))
    if spec.name == "quantity":
        lines.append(_("A number from {min} to {max}.").format(min=number(service.min),
                                                               max=number(service.max)))
    if spec.kind is FieldKind.LINES:
        lines.append(_("One per line; send them all in one message."))
        if stored.service.order_type and stored.service.order_type.quantity_field == spec.name:
            lines.append(ngettext("Between {min} and {max} line.", "Between {min} and {max} lines.",
                                  service.max).format(min=number(service.min),
                                                      max=number(service.max)))
    if spec.kind is not FieldKind.CHOICE:
        lines.append(_("Example: {example}").format(
            example=f"<code>{escape(_(spec.example))}</code>"))
    return "\n".join(lines)


def field_keyboard(spec: FormField) -> InlineKeyboardMarkup:
    return _field_keyboard(current_locale(), spec)


@lru_cache(maxsize=256)
def _field_keyboard(_locale_key: str, spec: FormField) -> InlineKeyboardMarkup:
    choices = [button(c, FormCb(action="choice", value=c)) for c in spec.choices]
    rows: list[list[InlineKeyboardButton]] = [choices[i:i + 5] for i in range(0, len(choices), 5)]
    if not spec.required:
        rows.append([button(_("Skip ⏭"), FormCb(action="skip"))])
    rows.append([button(_("⬅ Back"), FormCb(action="back")),
                 button(_("✖ Cancel"), FormCb(action="cancel"))])
    return keyboard(*rows)


def field_label(spec_name: str) -> str:
    labels = {
        "link": _("Link"), "quantity": _("Quantity"), "runs": _("Runs"),
        "interval": _("Interval (min)"), "comments": _("Comments"), "usernames": _("Usernames"),
        "hashtags": _("Hashtags"), "hashtag": _("Hashtag"), "username": _("Username"),
        "media": _("Media"), "answer_number": _("Answer number"), "groups": _("Groups"),
        "min": _("Minimum"), "max": _("Maximum"), "posts": _("New posts"),
        "old_posts": _("Existing posts"), "delay": _("Delay (min)"), "expiry": _("Expires"),
        "keywords": _("Keywords"), "country": _("Country"), "device": _("Device"),
        "type_of_traffic": _("Traffic source"), "google_keyword": _("Google keyword"),
        "referring_url": _("Referring page"),
    }
    return labels.get(spec_name, spec_name)


def show_value(value: str) -> str:
    lines = value.split("\n")
    if len(lines) > 1:
        preview = "; ".join(lines[:3]) + ("…" if len(lines) > 3 else "")
        return escape(short(preview, 120)) + " " + ngettext(
            "({count} line)", "({count} lines)", len(lines)).format(count=number(len(lines)))
    return escape(short(value, 120))


def confirm_text(stored: StoredService, values: dict[str, str], quote: Quote, balance: int,
                 currency: str) -> str:
    lines = [_("<b>Check your order</b>"), "", f"<b>{panel_text(stored.service.name)}</b>"]
    integers = {spec.name for spec in (stored.service.order_type.fields
                                       if stored.service.order_type else ())
                if spec.kind is FieldKind.INTEGER}
    for name, value in values.items():
        if value:
            shown_value = (number(int(value)) if name in integers and value.isdigit()
                           else show_value(value))
            lines.append(f"{field_label(name)}: {shown_value}")
    if quote.quantity is not None:
        lines.append(_("Total quantity: {quantity}").format(quantity=number(quote.quantity)))
    lines += [
        "",
        _("Price: <b>{price}</b>").format(price=money(quote.price_minor, currency)),
        _("Your balance: {balance}").format(balance=money(balance, currency)),
    ]
    if balance >= quote.price_minor:
        lines.append(_("After this order: {after}").format(
            after=money(balance - quote.price_minor, currency)))
    return "\n".join(lines)


_CONFIRM_DATA = FormCb(action="confirm").pack()  # "f:confirm:" + the screen's name


def confirm_keyboard(screen: str) -> InlineKeyboardMarkup:
    """Confirm names the screen it is on (``Draft.screen``); Edit and Cancel are fixed.

    The Confirm button is unique to its screen, so it is built here rather than
    through the shared-button cache (it would push shared buttons out)."""
    confirm = InlineKeyboardButton.model_construct(text=_("✅ Confirm"),
                                                   callback_data=_CONFIRM_DATA + screen)
    return keyboard([confirm], _edit_cancel_row(current_locale()))


@lru_cache(maxsize=64)
def _edit_cancel_row(_locale_key: str) -> list[InlineKeyboardButton]:
    return [button(_("✏️ Edit"), FormCb(action="edit")),
            button(_("✖ Cancel"), FormCb(action="cancel"))]


def order_line(order: StoredOrder) -> str:
    return f"{STATE_EMOJI.get(order.state, '•')} #{order.id} {short(order.service_name, 40)}"


def order_card(order: StoredOrder, refills: list[tuple[str, str]]) -> str:
    lines = [
        _("<b>Order #{id}</b>").format(id=order.id),
        panel_text(order.service_name),
        "",
        _("Status: {emoji} {word}").format(emoji=STATE_EMOJI.get(order.state, "•"),
                                          word=state_word(order.state)),
    ]
    target = order.fields.get("link") or order.fields.get("username")
    if target:
        lines.append(_("Target: {target}").format(target=escape(short(target, 200))))
    if order.quantity is not None:
        lines.append(_("Quantity: {quantity}").format(quantity=number(order.quantity)))
    lines.append(_("Price: {price}").format(price=money(order.price_minor, order.currency)))
    if order.start_count is not None:
        lines.append(_("Start count: {count}").format(count=number(order.start_count)))
    if order.remains is not None and order.state not in ("pending", "completed"):
        lines.append(_("Remains: {remains}").format(remains=number(order.remains)))
    lines.append(_("Placed: {date}").format(date=when(order.created_at)))
    if order.updated_at != order.created_at:
        lines.append(_("Updated: {date}").format(date=when(order.updated_at)))
    if order.state == "unknown":
        lines += ["", _("We are checking this order with the supplier. Your money is safe.")]
    if order.state == "failed" and order.error:
        lines += ["", _("The supplier did not accept it; the price was refunded.")]
    if order.cancel_requested and order.state in ("pending", "in_progress"):
        lines += ["", _("Cancellation requested. You'll get the refund when it is confirmed.")]
    for refill_id, state in refills:
        lines.append(_("Refill {id}: {state}").format(id=panel_text(refill_id, ID_LIMIT),
                                                      state=state))
    return "\n".join(lines)


def order_action_buttons(order: StoredOrder,
                         allowed: OrderActions) -> list[InlineKeyboardButton]:
    """Refill and Cancel, where the order allows them now."""
    actions = []
    if allowed.refill:
        actions.append(button(_("♻️ Refill"), OrderCb(id=order.id, action="refill")))
    if allowed.cancel:
        actions.append(button(_("🚫 Cancel order"), OrderCb(id=order.id, action="cancel")))
    return actions


def order_keyboard(order: StoredOrder, allowed: OrderActions) -> InlineKeyboardMarkup:
    actions = []
    if order.state in ("pending", "in_progress"):
        actions.append(button(_("🔄 Refresh"), OrderCb(id=order.id, action="refresh")))
    actions += order_action_buttons(order, allowed)
    return keyboard(actions[:2], actions[2:],
                    [button(_("⬅ My orders"), OrdersCb(page=0)), home_button()])


async def edit(message: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit ``message``; an edit that would change nothing (a repeated tap) is fine."""
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "message is not modified" not in exc.message:
            raise



class _QuotedAttributes(HtmlDecoration):
    """aiogram's HTML for a message's entities, with every attribute value escaped.

    aiogram (3.31 at least) writes a link's URL, a pre block's language and a
    custom emoji's id into ``attr="..."`` as they are: a URL holding ``">`` ended
    the attribute and opened markup of its own (Telegram refused the message, or
    showed other formatting). Each value here is escaped with ``quote=True``
    (``"`` ``'`` ``<`` ``>`` ``&``), which Telegram decodes back. A pre block's
    language goes where Telegram reads it, ``<code class="language-...">``
    (aiogram writes a ``language`` attribute Telegram ignores).
    """

    def link(self, value: str, link: str) -> str:
        return f'<a href="{escape(link)}">{value}</a>'

    def pre_language(self, value: str, language: str) -> str:
        return f'<pre><code class="language-{escape(language)}">{value}</code></pre>'

    def custom_emoji(self, value: str, custom_emoji_id: str) -> str:
        return f'<tg-emoji emoji-id="{escape(custom_emoji_id)}">{value}</tg-emoji>'

    def date_time(self, value: str, unix_time: int | datetime,
                  date_time_format: str | None = None) -> str:
        if isinstance(unix_time, datetime):
            unix_time = int(unix_time.timestamp())
        shown = f' format="{escape(date_time_format)}"' if date_time_format else ""
        return f'<tg-time unix="{int(unix_time)}"{shown}>{value}</tg-time>'


_MESSAGE_HTML = _QuotedAttributes()


def message_html(text: str, entities: Sequence[MessageEntity] | None) -> str:
    """A received message (an admin's broadcast draft) as Telegram HTML that
    renders exactly as it was sent: its text escaped, its formatting kept."""
    return _MESSAGE_HTML.unparse(text, list(entities) if entities else None)
