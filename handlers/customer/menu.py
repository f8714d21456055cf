"""/start, the main menu and help."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import BotCommand, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop import is_row_id
from bot.shop.catalog.pricing import Pricer
from bot.shop.growth.referrals import Referrals, is_code
from bot.shop.money.accounts import Accounts
from bot.shop.orders.service import OrderService, ServiceGone
from handlers.callbacks import MenuCb
from handlers.customer import kept_order
from handlers.customer.service_view import show_service
from handlers.filters import Button
from handlers.routing import AreaRouter
from handlers.views.keyboards import edit
from handlers.views.menu import main_menu

log = logging.getLogger(__name__)
router = AreaRouter(name="menu")


def greeting(first_name: str) -> str:
    return _("Hi, {name}! 👋\nOrder followers, likes, views and more. "
             "Pick what you need below.").format(name=escape(first_name or _("friend")))


def _is_service_link(deep_link: str) -> bool:
    """``s123``: a service's deep link (``/start s²`` is not one)."""
    ref = deep_link[1:]
    return (deep_link.startswith("s") and ref.isascii() and ref.isdigit() and len(ref) <= 19
            and is_row_id(int(ref)))


@router.message(CommandStart())
async def start(message: Message, command: CommandObject, accounts: Accounts, settings: Settings,
                orders: OrderService, pricer: Pricer, state: FSMContext,
                referrals: Referrals) -> None:
    """/start works in any state: it leaves whatever step the customer was in (an order
    form, a search, a top-up amount, an admin's input) and shows the menu; an order
    form's draft is kept, and the menu offers to continue it (kept_order.py).
    A customer's first /start is recorded, with who brought them when its link is a
    referral link (bot/shop/growth/referrals.py); any other link is the greeting's."""
    sender = message.from_user
    assert sender is not None
    await kept_order.set_aside(state, orders)
    deep_link = (command.args or "").strip()
    service_link = _is_service_link(deep_link)
    referred = not service_link and is_code(deep_link)
    # One round trip for a plain /start: the account and the first /start together.
    await accounts.register(sender.id, username=sender.username, first_name=sender.first_name,
                            language=sender.language_code, starting=not referred)
    if referred:
        await referrals.started(sender.id, deep_link)
    if service_link:
        try:
            stored = await orders.on_sale(int(deep_link[1:]))
        except ServiceGone:
            await message.answer(_("That service is no longer available."),
                                 reply_markup=await kept_order.menu(sender.id, settings, state))
            return
        await show_service(message, stored, pricer, settings, edit=False)
        return
    await message.answer(greeting(sender.first_name),
                         reply_markup=await kept_order.menu(sender.id, settings, state))


@router.callback_query(Button(MenuCb(action="home")))
async def home(query: CallbackQuery, settings: Settings, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await edit(query.message, greeting(query.from_user.first_name),
               await kept_order.menu(query.from_user.id, settings, state))


def help_text(settings: Settings) -> str:
    lines = [
        _("<b>How it works</b>"),
        _("1. Tap 🛒 New order, pick a platform, a category and a service."),
        _("2. Send what the service asks for (a link, a quantity...)."),
        _("3. Check the price and confirm: it is paid from your balance."),
        _("4. Follow it in 📦 My orders. If an order is canceled or only partly done, "
          "the undelivered part is refunded to your balance."),
        "",
        _("Commands: /start menu, /search find a service, /cancel leave a form."),
    ]
    if settings.referrals_enabled:
        lines.append(_("/invite: your link to invite friends, and what it earned."))
    if settings.api_enabled:
        lines.append(_("/api: your key to sell our services from your own panel or bot."))
    if settings.support_contact:
        lines.append(_("Support: {contact}").format(contact=escape(settings.support_contact)))
    return "\n".join(lines)


@router.callback_query(Button(MenuCb(action="help")))
async def help_menu(query: CallbackQuery, settings: Settings, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await edit(query.message, help_text(settings),
               await kept_order.menu(query.from_user.id, settings, state))


@router.message(Command("help"), StateFilter(None))
async def help_command(message: Message, settings: Settings, state: FSMContext) -> None:
    assert message.from_user is not None
    await message.answer(help_text(settings),
                         reply_markup=await kept_order.menu(message.from_user.id, settings, state))


@router.message(Command("cancel"), StateFilter(None))
async def cancel_kept_order(message: Message, settings: Settings, state: FSMContext) -> None:
    """Outside any step, /cancel drops the order form /start set aside, if one is kept."""
    assert message.from_user is not None
    text = (_("Order cancelled. Nothing was charged.") if await kept_order.drop(state)
            else _("There is nothing to cancel."))
    await message.answer(text, reply_markup=main_menu(message.from_user.id, settings))


# ------------------------------------------------------------ the bot's profile

def command_list(*, invite: bool, api: bool) -> list[BotCommand]:
    """The command hints Telegram shows by the text box, in the current language
    (/invite while the referral program runs, /api while the shop serves its API)."""
    commands = [
        BotCommand(command="start", description=_("Menu")),
        BotCommand(command="search", description=_("Find a service")),
        BotCommand(command="balance", description=_("Your balance")),
    ]
    if invite:
        commands.append(BotCommand(command="invite", description=_("Invite friends")))
    if api:
        commands.append(BotCommand(command="api", description=_("Your API key")))
    commands += [
        BotCommand(command="promo", description=_("Redeem a promo code")),
        BotCommand(command="language", description=_("Change the language")),
        BotCommand(command="help", description=_("How it works")),
        BotCommand(command="cancel", description=_("Leave the current form")),
        BotCommand(command="paysupport", description=_("Payments and refunds")),
    ]
    return commands


def bot_description() -> str:
    """What a new visitor reads before pressing Start (at most 512 characters)."""
    return _("Order followers, likes, views and more for Instagram, TikTok, YouTube, Telegram "
             "and other platforms. Pay from your balance, topped up with Telegram Stars, and "
             "follow every order here.")


def bot_short_description() -> str:
    """The bot's profile line (at most 120 characters)."""
    return _("Followers, likes and views for your social media, paid with Telegram Stars.")


async def describe_bot(bot: Bot, i18n: I18n, languages: list[str], *, invite: bool,
                       api: bool) -> None:
    """Commands and descriptions for every language (Telegram shows each user their
    language's, and the default, English, to the rest). A refusal (flood control, a
    code Telegram does not take) is logged and skipped: the shop runs without it."""
    for locale in languages:
        code = None if locale == i18n.default_locale else locale.split("_")[0]
        if code is not None and not (len(code) == 2 and code.isalpha()):
            log.warning("no command hints for %s: Telegram takes two-letter language codes",
                        locale)
            continue
        with i18n.context(), i18n.use_locale(locale):
            commands = command_list(invite=invite, api=api)
            for call in (bot.set_my_commands(commands, language_code=code),
                         bot.set_my_description(bot_description()[:512], language_code=code),
                         bot.set_my_short_description(bot_short_description()[:120],
                                                      language_code=code)):
                try:
                    await call
                except TelegramAPIError as exc:
                    log.warning("Telegram refused the bot's profile for %s: %s",
                                locale, exc.message)
