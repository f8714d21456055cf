"""Shopping happens in a private chat with the bot, never in a group.

In a group the bot would show the group's id as a chat, and every balance and
order belongs to one person: so a command in a group gets a button that opens
the private chat, a button tapped in a group gets the same hint, and nothing
else happens there. Other group messages are ignored (the bot is not a chat
member that answers every message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class PrivateChatsOnly(BaseMiddleware):
    """Outer middleware for messages and callback queries (after the i18n one).

    It also answers a button whose message the bot can no longer see, so every
    callback handler can rely on ``query.message`` being a ``Message``."""

    def __init__(self, bot_username: str) -> None:
        self.bot_username = bot_username

    async def __call__(self, handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        if isinstance(event, Message):
            chat = event.chat
        elif isinstance(event, CallbackQuery) and event.message is not None:
            chat = event.message.chat  # an old message Telegram no longer shows has one too
        else:
            return await handler(event, data)  # an inline message's button: no chat to check
        if chat.type == "private":
            if isinstance(event, CallbackQuery) and not isinstance(event.message, Message):
                # A button on a message Telegram no longer gives the bot (deleted, or
                # too old): nothing can be shown in its place.
                await event.answer(_("This button is no longer valid. Send /start for the "
                                     "menu."), show_alert=True)
                return None
            return await handler(event, data)
        hint = _("The shop works in a private chat with me, so your balance and orders stay "
                 "yours. Tap below to open it.")
        if isinstance(event, CallbackQuery):
            await event.answer(hint, show_alert=True)
        elif event.text is not None and event.text.startswith("/"):
            link = f"https://t.me/{self.bot_username}?start=group"
            await event.reply(hint, reply_markup=InlineKeyboardMarkup(inline_keyboard=[[
                InlineKeyboardButton(text=_("🛒 Open the shop"), url=link)]]))
        return None
