"""The wholesale API's texts (bot/shop/wholesale/keys.py keeps the keys): the
customer's 🔌 API screen, their key shown once, the confirmations, and the owner's
words for a customer's API use (their card, the 🔌 API customers list)."""

from __future__ import annotations

from html import escape
from typing import Literal
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop.wholesale.keys import ApiAccess, ApiHolder
from handlers.callbacks import AdminCustomerCb, ApiCb, MenuCb
from handlers.views.keyboards import button, keyboard
from handlers.views.menu import home_button
from handlers.views.text import day_of, number, short, when

# ------------------------------------------------------------ the customer's screen


def no_api() -> tuple[str, InlineKeyboardMarkup]:
    """/api in a shop that serves no API (API_ENABLED off)."""
    return (_("This shop does not offer an API: orders are placed here, in the chat."),
            keyboard([home_button()]))


def _back() -> list[InlineKeyboardButton]:
    return [button(_("⬅ Back"), MenuCb(action="balance")), home_button()]


def api_screen(access: ApiAccess | None, url: str | None, settings: Settings,
               ) -> tuple[str, InlineKeyboardMarkup]:
    """The customer's API screen: what it is for, where requests go, their key (its
    last characters only), the request limit and whether API orders notify here."""
    lines = [_("<b>🔌 API</b>")]
    if access is not None and access.disabled:
        lines.append(_("⛔ The shop has turned API access off for your account: your key does "
                       "not work and no new key can be made."))
        if settings.support_contact:
            lines.append(_("Please contact support: {contact}").format(
                contact=escape(settings.support_contact)))
        else:
            lines.append(_("Please ask the shop's support about it."))
        return "\n".join(lines), keyboard(_back())
    lines += [_("Sell our services from your own panel or bot: any SMM panel client speaks "
                "this API (API v2), and its orders are paid from your balance here."), ""]
    if url:
        lines.append(_("Address: <code>{url}</code>").format(url=escape(url)))
    else:
        lines.append(_("The shop owner has not set the API address yet: ask support for it."))
    if access is not None and access.has_key:
        lines += [_("Your key: <code>…{hint}</code>, made {made}").format(
                      hint=escape(access.key_hint or ""), made=day_of(access.key_created_at,
                                                                      settings.zone)),
                  _("Requests so far: {count} · the last: {used}").format(
                      count=number(access.requests), used=when(access.last_used_at,
                                                               settings.zone))]
    else:
        lines.append(_("You have no key now: tap 🔑 Create key to get one."))
    lines.append(ngettext("Limit: {count} request a minute.", "Limit: {count} requests a minute.",
                          settings.api_rate_limit).format(count=number(settings.api_rate_limit)))
    notify = access is not None and access.notify
    lines.append(_("Notices of your API orders come to this chat.") if notify else
                 _("Your API orders send no notices to this chat."))
    if access is None or not access.has_key:
        return "\n".join(lines), keyboard([button(_("🔑 Create key"), ApiCb(action="create"))],
                                          _back())
    toggle = (button(_("🔔 Order notices in chat: on"), ApiCb(action="notify_off")) if notify
              else button(_("🔕 Order notices in chat: off"), ApiCb(action="notify_on")))
    return "\n".join(lines), keyboard(
        [button(_("🔄 New key"), ApiCb(action="rotate")),
         button(_("🗑 Revoke"), ApiCb(action="revoke"))],
        [toggle], _back())


def key_text(key: str) -> str:
    """A new key, in a message of its own: the only time it is ever shown."""
    return "\n".join([
        _("<b>🔑 Your API key</b>"), f"<code>{escape(key)}</code>", "",
        _("⚠️ Keep it secret: anyone with it can spend your balance. It is shown only now: "
          "copy it into your panel or bot. Lost it? Make a new one on the 🔌 API screen.")])


def confirm_screen(action: Literal["rotate", "revoke"]) -> tuple[str, InlineKeyboardMarkup]:
    """Asked before the customer's key stops working."""
    cancel = button(_("✖ Cancel"), ApiCb(action="show"))
    if action == "rotate":
        return (_("<b>🔄 Make a new key?</b>\nThe old key stops working at once: whatever uses "
                  "it is refused until you put the new one in."),
                keyboard([button(_("✅ Yes, a new key"), ApiCb(action="rotate_ok")), cancel]))
    return (_("<b>🗑 Revoke your key?</b>\nIt stops working at once, and you have no key until "
              "you create one."),
            keyboard([button(_("✅ Yes, revoke it"), ApiCb(action="revoke_ok")), cancel]))


# ------------------------------------------------------------ the owner's words


def key_use(access: ApiAccess | None, zone: ZoneInfo) -> str:
    """A customer's key and its use, as the owner reads it: "key …abcd, 42 requests,
    last used <date>", or "no key"."""
    if access is None or not access.has_key:
        return _("no key")
    return ngettext("key …{hint}, {count} request, last used {used}",
                    "key …{hint}, {count} requests, last used {used}", access.requests).format(
        hint=escape(access.key_hint or ""), count=number(access.requests),
        used=when(access.last_used_at, zone))


def card_lines(access: ApiAccess | None, zone: ZoneInfo) -> list[str]:
    """The API lines of a customer's admin card."""
    lines = [_("API: {state}").format(state=key_use(access, zone))]
    if access is not None and access.disabled:
        lines.append(_("⛔ Their API access is turned off: their key does not work."))
    return lines


def card_button(user_id: int, access: ApiAccess | None) -> list[InlineKeyboardButton]:
    if access is not None and access.disabled:
        return [button(_("🔌 Turn API on"), AdminCustomerCb(action="api_on", id=user_id))]
    return [button(_("🔌 Turn API off"), AdminCustomerCb(action="api_off", id=user_id))]


def holder_line(holder: ApiHolder, zone: ZoneInfo) -> str:
    """One customer on the 🔌 API customers list."""
    access = holder.access
    who = escape(short(holder.first_name or "—", 40))
    if holder.username:
        who += f" @{escape(holder.username)}"
    line = f"{who} · {access.user_id} · {key_use(access, zone)}"
    if access.disabled:
        line += " · " + _("⛔ turned off")
    return line


def holder_button(holder: ApiHolder) -> list[InlineKeyboardButton]:
    label = short(f"{holder.first_name or '—'} · {holder.access.user_id}")
    return [button(label, AdminCustomerCb(action="card", id=holder.access.user_id))]
