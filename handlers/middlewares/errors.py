"""The last line of defence: an apology with a reference for the user, the
traceback for the admins, and nothing internal shown to the customer."""

from __future__ import annotations

import logging
import secrets
import traceback
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, ErrorEvent
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware
from aiogram.utils.i18n import gettext as _

from bot.shop.messaging.alerts import AdminAlerts

log = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, bot: Bot, alerts: AdminAlerts) -> bool:
    reference = secrets.token_hex(4).upper()
    exception = event.exception
    # update_id given here: aiogram calls this outside the middleware that sets it
    # (bot/observability/logs.py).
    log.error("unhandled error %s in update %s", reference, event.update.update_id,
              exc_info=exception, extra={"update_id": event.update.update_id})
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
    summary = f"{type(exception).__name__}: {exception}".splitlines()[0]
    await alerts.send(f"🐞 Error {reference}: {summary}",
                      details="".join(traceback.format_exception(exception)),
                      key=error_kind(exception))
    return True


def error_kind(exception: BaseException) -> str:
    """What makes two errors "the same" for folding their alerts: the exception's
    type and the line that raised it (not its message, which names ids, times...)."""
    kind = f"{type(exception).__module__}.{type(exception).__qualname__}"
    frames = traceback.extract_tb(exception.__traceback__)
    if frames:
        where = frames[-1]
        kind += f" at {Path(where.filename).name}:{where.lineno} in {where.name}"
    return f"🐞 {kind}"


class SafeCallbackAnswer(CallbackAnswerMiddleware):
    """aiogram's callback answer, minus one failure: a query Telegram no longer
    accepts ("query is too old", after ~15 s or an earlier answer).

    The middleware answers in a ``finally`` after the handler. When the handler
    was slow and then failed, that late answer raised too, and its error took the
    original's place: the apology and the alert were about the answer, not the
    crash (and a slow handler that succeeded got an apology for nothing). A late
    answer has nothing left to do: the user's button stopped spinning already.
    """

    async def answer(self, event: CallbackQuery,  # type: ignore[override]
                     callback_answer: CallbackAnswer) -> Any:
        try:
            return await super().answer(event, callback_answer)
        except TelegramBadRequest as exc:
            if "query is too old" not in exc.message and "query ID is invalid" not in exc.message:
                raise
            log.info("callback query %s was answered too late; skipped", event.id)
            return None
