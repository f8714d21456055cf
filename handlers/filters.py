"""Cheap filters for the routers.

aiogram runs a synchronous filter (a magic ``F.text...`` filter, a bare ``State``)
in a thread executor, one thread hop per check, which was the largest single
cost per update (bench/conversation.py). These are async, and states are
always given as ``StateFilter(...)``.
"""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.config import Settings


class TextMessage(Filter):
    """A text message; ``command=True``/``False`` also asks whether it starts with '/'."""

    def __init__(self, command: bool | None = None) -> None:
        self.command = command

    async def __call__(self, message: Message) -> bool:
        if message.text is None:
            return False
        return self.command is None or message.text.startswith("/") == self.command


class CommandText:
    """A router's gate (handlers/routing.py ``AreaRouter``): a text starting with one
    of its commands (``/language``, ``/language@bot``, ``/language x``), or with
    ``unless=True`` any message that does not."""

    def __init__(self, *commands: str, unless: bool = False) -> None:
        self.commands = commands
        self.unless = unless

    def admits(self, message: Message) -> bool:
        return self._names_one(message.text) != self.unless

    def _names_one(self, text: str | None) -> bool:
        if text is None or not text.startswith("/"):
            return False
        for command in self.commands:
            if text.startswith(command):
                rest = text[len(command):]
                if not rest or rest[0] in " @\n":
                    return True
        return False


class CallbackPrefix:
    """A router's gate (handlers/routing.py ``AreaRouter``): only callbacks of its own
    ``CallbackData`` prefixes, so a button for another area skips the whole router
    instead of failing each ``CallbackData`` filter in turn."""

    def __init__(self, *factories: type[CallbackData]) -> None:
        self.prefixes = frozenset(f.__prefix__ for f in factories)

    def admits(self, query: CallbackQuery) -> bool:
        return (query.data or "").split(":", 1)[0] in self.prefixes


class Button(Filter):
    """One fixed button, e.g. ``Button(MenuCb(action="home"))``.

    The callback data is compared as a string. ``MenuCb.filter(F.action == ...)``
    would parse it into a model (pydantic validation) for every handler it is
    checked against, matching or not.
    """

    def __init__(self, data: CallbackData) -> None:
        self.packed = data.pack()

    async def __call__(self, query: CallbackQuery) -> bool:
        return query.data == self.packed


class SuccessfulPayment(Filter):
    """A message that reports a completed payment (Telegram Stars)."""

    async def __call__(self, message: Message) -> bool:
        return message.successful_payment is not None


class RefundedPayment(Filter):
    """Telegram's own message that a Stars payment was refunded (after /refund_stars)."""

    async def __call__(self, message: Message) -> bool:
        return message.refunded_payment is not None


class IsAdmin(Filter):
    """The sender is in ``ADMIN_IDS`` now: checked on every admin update as it arrives."""

    async def __call__(self, event: TelegramObject, settings: Settings) -> bool:
        user = getattr(event, "from_user", None)
        return user is not None and user.id in settings.admin_ids


# Every admin conversation state belongs to a StatesGroup named ``Admin...``, so
# one filter finds them all (handlers/admin/home.py answers commands in any of them).
ADMIN_STATE_PREFIX = "Admin"


class InAdminInput(Filter):
    """The sender is in one of the admin panel's input states."""

    async def __call__(self, event: TelegramObject, raw_state: str | None = None,
                      **_: Any) -> bool:
        return raw_state is not None and raw_state.startswith(ADMIN_STATE_PREFIX)
