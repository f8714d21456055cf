"""The Bot API session: aiogram's, keeping its response classes alive.

aiogram parses every Bot API answer with ``Response[method.__returning__]``, a
pydantic generic. pydantic caches parametrised classes in a
``WeakValueDictionary`` and nothing else holds them, so once the garbage
collector frees one the next call of that method builds the class again (its
schema and validator: 1-5 ms each, about a quarter of the bot's CPU under load;
see bench/README.md). Holding one strong reference per return type ends that:
a few dozen small classes for the bot's whole life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods.base import Response, TelegramMethod, TelegramType

if TYPE_CHECKING:
    from aiogram import Bot


class KeptResponsesSession(AiohttpSession):
    """``AiohttpSession`` whose ``Response[T]`` classes outlive the garbage collector."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Keyed by the method's return type (a class or a typing union: hashable).
        self._response_classes: dict[Any, type[Response[Any]]] = {}

    def check_response(self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int,
                       content: str) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._response_classes:
            self._response_classes[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
