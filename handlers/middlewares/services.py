"""The shop's services, handed to the handler that takes an update, and to nothing before it.

aiogram passes its ``data`` (the dispatcher's workflow data and what middlewares
add) through every router, root filter, handler check and filter as keyword
arguments, a copy at each step. With the thirty-odd services in it, those copies
cost a bare echo bot 20 % more CPU per update, and the storefront (a dozen
routers, filters on most handlers) more (bench/README.md). So the dispatcher
carries ``settings`` (``IsAdmin`` reads it) and ``services``, and this inner
middleware, which runs only for the handler whose filters passed, adds the
services to that handler's data: a handler still names what it needs
(``orders: OrderService``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.types import TelegramObject

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class HandlerServices(BaseMiddleware):
    def __init__(self, services: Mapping[str, Any]) -> None:
        self.services = dict(services)

    async def __call__(self, handler: Handler, event: TelegramObject,
                       data: dict[str, Any]) -> Any:
        data.update(self.services)
        return await handler(event, data)

    def setup(self, dispatcher: Dispatcher) -> None:
        """On every observer but ``update`` (the dispatcher's own listener, which
        starts the walk through the routers): its inner middlewares reach the
        handlers of every router below, errors included."""
        for name, observer in dispatcher.observers.items():
            if name != "update":
                observer.middleware(self)
