"""/start: register the customer and greet them."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.types import Message

from bot.accounts import register
from bot.config import Settings
from bot.money import format_minor
from storage.db import Database

router = Router(name="start")


@router.message(CommandStart())
async def start(message: Message, db: Database, settings: Settings) -> None:
    sender = message.from_user
    if sender is None:
        return
    user = await register(db, sender.id, username=sender.username, first_name=sender.first_name,
                          language=sender.language_code)
    balance = format_minor(user.balance_minor, settings.shop_currency)
    await message.answer(f"Welcome, {escape(user.first_name or 'friend')}!\n"
                         f"Your balance: <b>{balance}</b>")
