"""The last line of defence: an apology with a reference for the user, the
traceback for the admins, and nothing internal shown to the customer."""

from __future__ import annotations

import logging
import secrets
import traceback
from html import escape

from aiogram import Bot
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

from bot.alerts import AdminAlerts

log = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, bot: Bot, alerts: AdminAlerts) -> bool:
    reference = secrets.token_hex(4).upper()
    log.error("unhandled error %s in update %s", reference, event.update.update_id,
              exc_info=event.exception)
    update = event.update
    chat_id = None
    if update.message is not None:
        chat_id = update.message.chat.id
    elif update.callback_query is not None and update.callback_query.message is not None:
        chat_id = update.callback_query.message.chat.id
    if chat_id is not None:
        try:
            await bot.send_message(chat_id, _(
                "Sorry, something went wrong on our side. Please try again. "
                "If it keeps happening, tell support this reference: {reference}").format(
                    reference=reference))
        except Exception:
            log.exception("could not send the apology for %s", reference)
    details = "".join(traceback.format_exception(event.exception))[-3000:]
    await alerts.send(f"🐞 Error {reference}\n<pre>{escape(details)}</pre>")
    return True
