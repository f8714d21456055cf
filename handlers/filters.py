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


class CommandText(Filter):
    """A text starting with one command (``/language``, ``/language@bot``, ``/language x``):
    a string test, for a router that every message passes."""

    def __init__(self, command: str) -> None:
        self.command = command

    async def __call__(self, message: Message) -> bool:
        text = message.text
        if text is None or not text.startswith(self.command):
            return False
        rest = text[len(self.command):]
        return not rest or rest[0] in " @\n"


class CallbackPrefix(Filter):
    """Let a router see only callbacks of its own ``CallbackData`` prefixes.

    Checked once per router, so a button for another area skips all of this
    router's handlers instead of failing each ``CallbackData`` filter in turn.
    """

    def __init__(self, *factories: type[CallbackData]) -> None:
        self.prefixes = frozenset(f.__prefix__ for f in factories)

    async def __call__(self, query: CallbackQuery) -> bool:
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
