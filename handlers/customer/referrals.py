"""/invite and the menu's 👥 Invite friends: the customer's referral link, how it
pays and what it earned (bot/shop/growth/referrals.py).

Both work in any state, like /language: the screen changes nothing, so in the
middle of a form the customer reads it and carries on where they were.
"""

from __future__ import annotations

from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from bot.config import Settings
from bot.shop.growth.referrals import Referrals
from bot.shop.money.accounts import Accounts
from handlers.callbacks import ReferralCb
from handlers.filters import Button, CallbackPrefix, CommandText
from handlers.routing import AreaRouter
from handlers.views.keyboards import edit
from handlers.views.referrals import invite_link, invite_screen, program_off

router = AreaRouter(name="referrals", messages=CommandText("/invite"),
                    callbacks=CallbackPrefix(ReferralCb))
# Every update passes this router early (/invite works in any state), so it lets
# through only its own: the /invite command and its button.


async def _screen(user: User, accounts: Accounts, referrals: Referrals, settings: Settings,
                  bot_username: str) -> tuple[str, InlineKeyboardMarkup]:
    if not settings.referrals_enabled:
        return program_off()
    # The link may be asked for before any /start (its code is made on first need).
    await accounts.register(user.id, username=user.username, first_name=user.first_name,
                            language=user.language_code)
    code = await referrals.code_for(user.id)
    figures = await referrals.figures(user.id)
    assert figures is not None  # registered just above
    return invite_screen(invite_link(bot_username, code), figures, settings)


@router.message(Command("invite"))
async def invite_command(message: Message, accounts: Accounts, referrals: Referrals,
                         settings: Settings, bot_username: str) -> None:
    assert message.from_user is not None
    text, markup = await _screen(message.from_user, accounts, referrals, settings, bot_username)
    await message.answer(text, reply_markup=markup)


@router.callback_query(Button(ReferralCb()))
async def invite_button(query: CallbackQuery, accounts: Accounts, referrals: Referrals,
                        settings: Settings, bot_username: str) -> None:
    assert isinstance(query.message, Message)
    await edit(query.message,
               *await _screen(query.from_user, accounts, referrals, settings, bot_username))
