"""The answers of last resort, checked after every other router."""

from __future__ import annotations

from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from handlers.customer import kept_order
from handlers.routing import AreaRouter
from handlers.views.menu import kept_order_text, main_menu

router = AreaRouter(name="fallback")


@router.message(StateFilter(None))
async def anything_else(message: Message, settings: Settings, state: FSMContext) -> None:
    """Text, stickers, unknown commands outside a form: point at the menu, or at the
    order /start set aside (the answer typed next was meant for it)."""
    assert message.from_user is not None
    kept = await kept_order.kept(state)
    text = (kept_order_text(kept) if kept is not None
            else _("I didn't get that. Use the menu below, or /help."))
    await message.answer(text, reply_markup=main_menu(message.from_user.id, settings, kept))


@router.message()
async def stale_state(message: Message, state: FSMContext, settings: Settings) -> None:
    """A message in a state no router answers any more: an admin input after the
    sender left ADMIN_IDS, or a state from an older version. It is left."""
    assert message.from_user is not None
    await state.clear()
    await anything_else(message, settings, state)


@router.callback_query()
async def stale_button(query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    """A button from an old message, or data nobody should be able to send."""
    callback_answer.text = _("This button is no longer valid. Send /start for the menu.")
    callback_answer.show_alert = True
