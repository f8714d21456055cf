"""Admin commands. Anyone not in ADMIN_IDS falls through to the ordinary
"I didn't get that" answer, with no hint that these exist."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.filters import BaseFilter, Command, CommandObject
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.i18n import gettext as _

from bot import accounts
from bot.config import Settings
from bot.money import format_minor, parse_amount
from handlers.callbacks import MenuCb
from handlers.render import main_menu
from storage.db import Database

router = Router(name="admin")


class IsAdmin(BaseFilter):
    async def __call__(self, event: TelegramObject, settings: Settings) -> bool:
        user = getattr(event, "from_user", None)
        return user is not None and user.id in settings.admin_ids


router.message.filter(IsAdmin())
router.callback_query.filter(IsAdmin())

USAGE = ("/credit USER_ID AMOUNT [reason]\n/debit USER_ID AMOUNT [reason]")


@router.callback_query(MenuCb.filter(F.action == "admin"))
async def admin_menu(query: CallbackQuery, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    await query.message.edit_text(
        _("<b>Admin</b>\nAdjust a customer's balance (recorded in the ledger):\n{usage}").format(
            usage=escape(USAGE)),
        reply_markup=main_menu(True))


@router.message(Command("credit", "debit"))
async def adjust(message: Message, command: CommandObject, settings: Settings,
                 db: Database) -> None:
    assert message.from_user is not None
    parts = (command.args or "").split(maxsplit=2)
    currency = settings.shop_currency
    if len(parts) < 2 or not parts[0].isdigit():
        await message.answer(_("Usage:\n{usage}").format(usage=escape(USAGE)))
        return
    try:
        amount = parse_amount(parts[1], currency)
    except ValueError:
        await message.answer(_("“{amount}” is not an amount in {currency}.").format(
            amount=escape(parts[1][:50]), currency=currency))
        return
    sign = 1 if command.command == "credit" else -1
    reason = parts[2][:200] if len(parts) > 2 else command.command
    try:
        entry = await accounts.adjust_balance(
            db, user_id=int(parts[0]), amount_minor=sign * amount, admin_id=message.from_user.id,
            reason=reason, request_id=f"{message.chat.id}:{message.message_id}")
    except LookupError:
        await message.answer(_("No customer with id {id}. They must /start the bot first.")
                             .format(id=parts[0]))
        return
    except accounts.InsufficientFunds as exc:
        await message.answer(_("Their balance is only {balance}; a balance can't go "
                               "below zero.").format(balance=format_minor(exc.balance_minor,
                                                                          currency)))
        return
    verb = _("Credited") if sign > 0 else _("Debited")
    await message.answer(_("{verb} {amount} to {id}. New balance: {balance}.").format(
        verb=verb, amount=format_minor(amount, currency), id=parts[0],
        balance=format_minor(entry.balance_after, currency)))
