"""The broadcast's progress message, edited as the counts change (run by
bot/shop/messaging/broadcasts.py ``BroadcastWatcher``), in the admin's language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.utils.i18n import I18n

from bot.shop.messaging.broadcasts import Broadcast, Counts
from bot.shop.money.accounts import Accounts
from handlers.middlewares.i18n import locale_for
from handlers.views.broadcast import progress_keyboard, progress_text


class BroadcastProgress:
    """The watcher's ``show``: edit the admin's progress message, in their language."""

    def __init__(self, bot: Bot, i18n: I18n, accounts: Accounts) -> None:
        self.bot = bot
        self.i18n = i18n
        self.accounts = accounts  # the admin's language

    async def __call__(self, broadcast: Broadcast, counts: Counts, finished: bool) -> None:
        if broadcast.progress_chat_id is None or broadcast.progress_message_id is None:
            return
        admin = await self.accounts.get(broadcast.admin_id)
        with self.i18n.context(), self.i18n.use_locale(
                locale_for(self.i18n, admin.language if admin else None)):
            text = progress_text(broadcast, counts, finished)
            markup = progress_keyboard(broadcast, finished)
        try:
            await self.bot.edit_message_text(text, chat_id=broadcast.progress_chat_id,
                                             message_id=broadcast.progress_message_id,
                                             reply_markup=markup)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise
