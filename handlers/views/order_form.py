"""The order form's screens: each step's prompt and buttons, and the order to
check and confirm."""

from __future__ import annotations

from functools import lru_cache
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.panel.order_types import FieldKind, FormField
from bot.shop.catalog import StoredService
from bot.shop.catalog.pricing import DiscountSource, Quote
from bot.shop.orders import form
from handlers.callbacks import FormCb, PromoCb
from handlers.views.keyboards import button, data_button, keyboard
from handlers.views.text import current_locale, money, number, panel_text, percent, short


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
        # A link example passes through gettext unchanged; "buy shoes" is translated.
        example = _(form.example_for(stored, spec))
        lines.append(_("Example: {example}").format(example=f"<code>{escape(example)}</code>"))
    return "\n".join(lines)


def field_keyboard(spec: FormField) -> InlineKeyboardMarkup:
    return _field_keyboard(current_locale(), spec)


@lru_cache(maxsize=256)
def _field_keyboard(_locale_key: str, spec: FormField) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]]
    if spec.choice_labels:  # words: one a row
        rows = [[button(_(label), FormCb(action="choice", value=value))]
                for value, label in zip(spec.choices, spec.choice_labels, strict=True)]
    else:
        codes = [button(c, FormCb(action="choice", value=c)) for c in spec.choices]
        rows = [codes[i:i + 5] for i in range(0, len(codes), 5)]
    if not spec.required:
        rows.append([button(_("Skip ⏭"), FormCb(action="skip"))])
    rows.append([button(_("⬅ Back"), FormCb(action="back")),
                 button(_("✖ Cancel"), FormCb(action="cancel"))])
    return keyboard(*rows)


def field_label(spec_name: str) -> str:
    return _field_labels(current_locale()).get(spec_name, spec_name)


@lru_cache(maxsize=64)
def _field_labels(_locale_key: str) -> dict[str, str]:
    """Each field's label in one language (24 translations, looked up once per language
    rather than at every line of every confirmation)."""
    return {
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
    specs = {spec.name: spec for spec in (stored.service.order_type.fields
                                          if stored.service.order_type else ())}
    for name, value in values.items():
        if value:
            spec = specs.get(name)
            label = spec.label_of(value) if spec is not None else None
            if label is not None:
                shown_value = escape(_(label))
            elif spec is not None and spec.kind is FieldKind.INTEGER and value.isdigit():
                shown_value = number(int(value))
            else:
                shown_value = show_value(value)
            lines.append(f"{field_label(name)}: {shown_value}")
    if quote.quantity is not None:
        lines.append(_("Total quantity: {quantity}").format(quantity=number(quote.quantity)))
    lines.append("")
    lines += price_lines(quote, currency)
    lines.append(_("Your balance: {balance}").format(balance=money(balance, currency)))
    if balance >= quote.price_minor:
        lines.append(_("After this order: {after}").format(
            after=money(balance - quote.price_minor, currency)))
    return "\n".join(lines)


def price_lines(quote: Quote, currency: str) -> list[str]:
    """The price, and with a discount the list price, what was taken off by what, and
    the total; an attached code that was not used says why it waits."""
    discount, kept = quote.discount, quote.code_kept
    if discount is None:
        lines = [_("Price: <b>{price}</b>").format(price=money(quote.price_minor, currency))]
    else:
        what = (_("Loyalty discount ({percent})") if discount.source is DiscountSource.TIER
                else _("Code {code} ({percent} off)")).format(
                    percent=percent(discount.percent), code=f"<code>{escape(discount.code)}</code>")
        lines = [_("List price: {price}").format(price=money(quote.list_price_minor, currency)),
                 f"{what}: −{money(quote.discount_minor, currency)}",
                 _("Total: <b>{price}</b>").format(price=money(quote.price_minor, currency))]
    if quote.discount_limited:
        lines.append(_("Your discount is limited on this service, so that its price still"
                       " covers the shop's costs."))
    if kept is not None:
        code = f"<code>{escape(kept.code)}</code>"
        if quote.list_price_minor < kept.min_order_minor:
            lines.append(_("Code {code} is for orders from {minimum}: it stays for a later"
                           " order.").format(code=code,
                                             minimum=money(kept.min_order_minor, currency)))
        else:
            lines.append(_("Code {code} ({percent} off) stays for a later order: your loyalty"
                           " discount applies instead.").format(code=code,
                                                                percent=percent(kept.percent)))
    return lines


_CONFIRM_DATA = FormCb(action="confirm").pack()  # "f:confirm:" + the screen's name


def confirm_keyboard(screen: str) -> InlineKeyboardMarkup:
    """Confirm names the screen it is on (``Draft.screen``); the other buttons are fixed.

    The Confirm button is unique to its screen, so it is built here rather than
    through the shared-button cache (it would push shared buttons out)."""
    confirm = data_button(_("✅ Confirm"), _CONFIRM_DATA + screen)
    return keyboard([confirm], *_fixed_rows(current_locale()))


@lru_cache(maxsize=64)
def _fixed_rows(_locale_key: str) -> tuple[list[InlineKeyboardButton], ...]:
    """A promo code for this order (handlers/customer/promo.py brings the confirmation
    back, priced with it), Edit and Cancel."""
    return ([button(_("🎟 Promo code"), PromoCb(action="ask"))],
            [button(_("✏️ Edit"), FormCb(action="edit")),
             button(_("✖ Cancel"), FormCb(action="cancel"))])
