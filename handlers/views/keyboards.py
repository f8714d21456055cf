"""Inline keyboards, built cheaply and shared: a button, rows, a column, the
pager row; and ``edit``, which puts a screen (text and keyboard) on the message
it replaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from handlers.views.text import number

PAGE_SIZE = 8

# Keyboards are built directly rather than with InlineKeyboardBuilder, which
# deep-copies and re-validates every button, and without validation: the
# values are our own strings, and pydantic validation of each button was the
# largest remaining cost of an update (bench/conversation.py). Serialised the
# same way (unset fields are None and left out). Buttons are immutable once
# built, so the same (label, data) pair is built once and shared: a catalog page
# shows every customer the same buttons, and ``pack()`` still costs tens of
# microseconds a button. Fixed keyboards are also cached per language.

def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return _button(text, data.pack())


@lru_cache(maxsize=4096)
def _button(text: str, callback_data: str) -> InlineKeyboardButton:
    return data_button(text, callback_data)


_BLANK = InlineKeyboardButton.model_construct(text="", callback_data="")


def data_button(text: str, callback_data: str) -> InlineKeyboardButton:
    """A callback button, not shared (one whose data is unique to its screen). A copy
    of a blank one: ``model_construct`` resolves every optional field's default
    again, 17 µs a button against 2."""
    return _BLANK.model_copy(update={"text": text, "callback_data": callback_data})


def keyboard(*rows: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup.model_construct(inline_keyboard=[list(row) for row in rows if row])


def column(buttons: Sequence[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    return [[b] for b in buttons]


def pager(page: int, total: int, make: Callable[[int], CallbackData], *,
          size: int = PAGE_SIZE) -> list[InlineKeyboardButton]:
    """The ◀ page x/y ▶ row (empty when everything fits on one page)."""
    pages = max(1, -(-total // size))
    if pages == 1:
        return []
    row = []
    if page > 0:
        row.append(button("◀", make(page - 1)))
    row.append(button(_("page {page}/{pages}").format(page=number(page + 1), pages=number(pages)),
                      make(page)))
    if page + 1 < pages:
        row.append(button("▶", make(page + 1)))
    return row


async def edit(message: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit ``message``; an edit that would change nothing (a repeated tap) is fine."""
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "message is not modified" not in exc.message:
            raise
