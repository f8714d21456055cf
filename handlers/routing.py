"""The routers' class, and routers declared afresh for each dispatcher.

Every update walks the routers in order until one takes it (handlers/__init__.py),
and each router it passes costs aiogram's whole propagation: its middleware
chain is wrapped, its root filters and each handler's filters are called with
the update's data. ``AreaRouter`` turns an update away in one call when it is
not the router's business: an update type it has no handler for, a button of
another area, a message its gate refuses. This was a tenth of the CPU of a
browsing tap (bench/README.md).

An aiogram router can be attached to one parent only (a dispatcher or another
router), so when one process builds a second dispatcher (the bot restarted
in-process by the tests, the benchmarks) each module whose router is already
attached is executed again to declare a new one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any, Protocol

from aiogram import Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import CallbackQuery, Message, TelegramObject

from handlers.filters import CallbackPrefix


class MessageGate(Protocol):
    def admits(self, message: Message) -> bool: ...


class AreaRouter(Router):
    """A router for one area of the bot, with optional gates.

    ``callbacks``: the ``CallbackData`` prefixes of its buttons (a ``CallbackPrefix``);
    ``messages``: which messages it looks at (e.g. ``CommandText("/language")``, or
    ``CommandText("/start", unless=True)``). Refused updates skip the router and
    every router inside it, as aiogram's root filters would, but without its
    propagation machinery. An update type the router and its sub-routers have
    no handler for is skipped the same way.
    """

    def __init__(self, *, name: str, callbacks: CallbackPrefix | None = None,
                 messages: MessageGate | None = None) -> None:
        super().__init__(name=name)
        self._callbacks = callbacks
        self._messages = messages

    async def propagate_event(self, update_type: str, event: TelegramObject,
                              **kwargs: Any) -> Any:
        if update_type == "callback_query":
            assert isinstance(event, CallbackQuery)
            if self._callbacks is not None and not self._callbacks.admits(event):
                return UNHANDLED
        elif update_type == "message":
            assert isinstance(event, Message)
            if self._messages is not None and not self._messages.admits(event):
                return UNHANDLED
        observer = self.observers.get(update_type)  # None: a type aiogram has no observer for
        if not self.sub_routers and (observer is None or not observer.handlers):
            return UNHANDLED
        return await super().propagate_event(update_type, event, **kwargs)


def fresh_routers(module_names: Iterable[str]) -> list[Router]:
    """The ``router`` of each module, in order, each one not yet attached anywhere."""
    routers = []
    for name in module_names:
        module = sys.modules.get(name)
        needs_fresh = module is not None and module.router.parent_router is not None
        module = importlib.reload(module) if needs_fresh else importlib.import_module(name)
        routers.append(module.router)
    return routers
