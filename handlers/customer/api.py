"""/api and the balance screen's 🔌 API: the customer's wholesale API key
(bot/shop/wholesale/keys.py) and the screen around it.

``/api`` gives a customer with no key one at once; the 🔌 API button shows the
screen, with 🔑 Create key when there is none. A key is shown once, in a
message of its own (moving around the screen edits the screen, never that
message); the screen shows its last characters only. A new key or revoking asks
first, since the old key stops working at once. Every button reads the access
again: a button from an old screen does nothing once the owner turned the
customer's access off, or the shop its API.
"""

from __future__ import annotations

from aiogram.filters import Command, StateFilter
from aiogram.types import CallbackQuery, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.money.accounts import Accounts
from bot.shop.wholesale.keys import ApiAccessOff, ApiKeys
from handlers.callbacks import ApiCb
from handlers.filters import CallbackPrefix
from handlers.routing import AreaRouter
from handlers.views.api import api_screen, confirm_screen, key_text, no_api
from handlers.views.keyboards import edit

router = AreaRouter(name="api", callbacks=CallbackPrefix(ApiCb))


def _access_off() -> str:
    return _("API access is turned off for your account.")


async def _make_key(user: User, accounts: Accounts, api_keys: ApiKeys) -> str | None:
    """A new key for ``user`` (their old one stops working); ``None`` when the owner
    turned their access off."""
    # The access row needs the account (a customer's first message may be /api).
    await accounts.register(user.id, username=user.username, first_name=user.first_name,
                            language=user.language_code)
    try:
        return (await api_keys.new_key(user.id)).key
    except ApiAccessOff:
        return None


@router.message(Command("api"), StateFilter(None))
async def api_command(message: Message, accounts: Accounts, api_keys: ApiKeys,
                      settings: Settings) -> None:
    sender = message.from_user
    assert sender is not None
    if not api_keys.enabled:
        text, markup = no_api()
        await message.answer(text, reply_markup=markup)
        return
    access = await api_keys.access(sender.id)
    key = None
    if access is None or not (access.has_key or access.disabled):
        key = await _make_key(sender, accounts, api_keys)
        access = await api_keys.access(sender.id)
    text, markup = api_screen(access, api_keys.url, settings)
    await message.answer(text, reply_markup=markup)
    if key is not None:
        await message.answer(key_text(key))


@router.callback_query(ApiCb.filter())
async def api_button(query: CallbackQuery, callback_data: ApiCb, accounts: Accounts,
                     api_keys: ApiKeys, settings: Settings,
                     callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if not api_keys.enabled:
        callback_answer.text, callback_answer.show_alert = no_api()[0], True
        return
    user = query.from_user
    access = await api_keys.access(user.id)
    action = callback_data.action
    if access is not None and access.disabled and action != "show":
        callback_answer.text, callback_answer.show_alert = _access_off(), True
        action = "show"  # and the screen that says so, in place of the old one
    key = None
    match action:
        case "rotate" | "revoke":
            if access is None or not access.has_key:
                callback_answer.text = _("You have no key now.")
            else:
                await edit(query.message, *confirm_screen(action))
                return
        case "create" | "rotate_ok":
            if action == "create" and access is not None and access.has_key:
                # A button from before the key was made: the key is never replaced unasked.
                callback_answer.text = _("You have a key already.")
            else:
                key = await _make_key(user, accounts, api_keys)
                if key is None:
                    callback_answer.text, callback_answer.show_alert = _access_off(), True
                else:
                    callback_answer.text = _("Your new key is in the message below.")
        case "revoke_ok":
            if await api_keys.revoke(user.id):
                callback_answer.text = _("Key revoked: it no longer works.")
            else:
                callback_answer.text = _("You have no key now.")
        case "notify_on" | "notify_off":
            on = action == "notify_on"
            if await api_keys.set_notify(user.id, on):
                callback_answer.text = (_("Notices of your API orders will come to this chat.")
                                        if on else
                                        _("Your API orders will send no notices here."))
    await edit(query.message, *api_screen(await api_keys.access(user.id), api_keys.url, settings))
    if key is not None:
        await query.message.answer(key_text(key))
