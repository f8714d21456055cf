"""/language and the 🌐 button: the customer picks the shop's language.

The choice is stored (bot/shop/messaging/languages.py) and wins over the Telegram language from
the next screen on, background messages included. /language works in any
state: in the middle of an order form the customer carries on where they were,
in the new language, and nothing of the draft is lost.
"""

from __future__ import annotations

from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.messaging.languages import LanguageChoices
from bot.shop.money.accounts import Accounts
from handlers.callbacks import LanguageCb
from handlers.customer import kept_order
from handlers.customer.menu import greeting
from handlers.filters import Button, CallbackPrefix, CommandText
from handlers.middlewares.i18n import language_name
from handlers.routing import AreaRouter
from handlers.views.keyboards import button, edit, keyboard
from handlers.views.menu import home_button

router = AreaRouter(name="language", messages=CommandText("/language"),
                    callbacks=CallbackPrefix(LanguageCb))
# Every update passes this router first (/language works in any state), so it
# lets through only its own: the /language command and its own buttons.


def languages(i18n: I18n) -> list[str]:
    """English (the source) and every language with a catalog, English first."""
    return [i18n.default_locale, *sorted(x for x in i18n.available_locales
                                         if x != i18n.default_locale)]


def picker(i18n: I18n) -> tuple[str, InlineKeyboardMarkup]:
    current = i18n.current_locale
    buttons = [button(("✅ " if code == current else "") + language_name(code), LanguageCb(code=code))
               for code in languages(i18n)]
    return (_("🌐 Choose the shop's language:"),
            keyboard(*[buttons[i:i + 2] for i in range(0, len(buttons), 2)], [home_button()]))


@router.message(Command("language"))
async def language_command(message: Message, i18n: I18n) -> None:
    text, markup = picker(i18n)
    await message.answer(text, reply_markup=markup)


@router.callback_query(Button(LanguageCb(code="list")))
async def language_menu(query: CallbackQuery, i18n: I18n) -> None:
    assert isinstance(query.message, Message)
    await edit(query.message, *picker(i18n))


@router.callback_query(LanguageCb.filter())
async def choose(query: CallbackQuery, callback_data: LanguageCb, i18n: I18n,
                 languages_chosen: LanguageChoices, state: FSMContext, settings: Settings,
                 accounts: Accounts, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    code = callback_data.code
    if code not in languages(i18n):
        callback_answer.text = _("That language is not available.")
        return
    user = query.from_user
    await accounts.register(user.id, username=user.username, first_name=user.first_name,
                            language=user.language_code)
    await languages_chosen.choose(user.id, code)
    with i18n.use_locale(code):
        callback_answer.text = _("Language: {name}").format(name=language_name(code))
        if await state.get_state() is not None:
            await edit(query.message, _("✅ Language: {name}. Carry on where you were: send "
                                        "your answer, or /cancel.").format(
                                            name=language_name(code)), None)
            return
        await edit(query.message, greeting(user.first_name),
                   await kept_order.menu(user.id, settings, state))
