"""Every update counted and timed (bot/observability/metrics.py), and named in the log lines it causes.

``UpdateMetrics`` is the first of the bot's outer middlewares on ``dispatcher.update``
(inside aiogram's own error middleware, so a handler's exception passes through it
before ``on_error`` sees it): it times the whole of the update's processing and
counts it by type and outcome. ``handled``: a handler took it (or a middleware
answered it); ``unhandled``: no handler matched; ``error``: it raised.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update
from aiogram.types.update import UpdateTypeLookupError

from bot.observability import metrics
from bot.observability.logs import current_update_id

# The update types this aiogram knows (message, callback_query, pre_checkout_query...):
# a bounded set; a type Telegram adds later is counted as "other" until aiogram knows it.
UPDATE_TYPES = frozenset(Update.model_fields) - {"update_id"}

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateMetrics(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject,
                       data: dict[str, Any]) -> Any:
        kind = metrics.OTHER
        token = None
        if isinstance(event, Update):
            kind = _update_type(event)
            token = current_update_id.set(event.update_id)
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            outcome = "unhandled" if result is UNHANDLED else "handled"
            return result
        finally:
            metrics.update_handled(kind, outcome, time.perf_counter() - started, UPDATE_TYPES)
            if token is not None:
                current_update_id.reset(token)


def _update_type(update: Update) -> str:
    try:
        return update.event_type  # aiogram's own (cached) lookup
    except UpdateTypeLookupError:  # an update of a type this aiogram does not know
        return metrics.OTHER
