"""The admin panel's promo codes (handlers/admin/home.py has the menu): the list
with each code's uses, a new code (typed as /promo_new's arguments), a code's
card with 🚫 Turn off; and the commands /promo_new and /promo_off. The work is
bot/shop/growth/promo_codes.py, which writes the audit rows."""

from __future__ import annotations

from html import escape

from aiogram import F
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop.growth.promo_codes import EXAMPLES, SYNTAX, PromoCode, PromoCodes, PromoRefused
from handlers.admin.home import back_button
from handlers.callbacks import AdminCb, AdminPromoCb
from handlers.filters import Button, TextMessage
from handlers.routing import AreaRouter
from handlers.views.keyboards import button, edit, keyboard, pager
from handlers.views.promo import code_card, code_line, refusal_text
from handlers.views.text import current_locale, number, short

router = AreaRouter(name="admin_promo")

PAGE = 8


class AdminPromo(StatesGroup):
    new = State()  # the new code's terms, typed as /promo_new's arguments


def _promo_back() -> list:
    return [button(_("⬅ Promo codes"), AdminCb(area="promo"))]


def _syntax() -> str:
    return _("Send the code and its terms in one message:\n<code>{syntax}</code>\nFor "
             "example:\n<code>{examples}</code>\nuses: how many times it works in all (no "
             "limit if left out); per_user: for each customer (1 if left out); days: how "
             "many days until it expires (never if left out); min: the smallest order a "
             "discount applies to.").format(syntax=escape(SYNTAX), examples=escape(EXAMPLES))


async def _list(promo_codes: PromoCodes, page: int,
                settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    codes, total = await promo_codes.listing(PAGE, page * PAGE)
    lines = [ngettext("<b>🎟 Promo codes</b> ({count} code, newest first)",
                      "<b>🎟 Promo codes</b> ({count} codes, newest first)", total).format(
                          count=number(total)), ""]
    lines += [code_line(code, settings.shop_currency, settings.zone, promo_codes.expired(code))
              for code in codes] or [_("No promo codes yet.")]
    buttons = [button(short(code.code), AdminPromoCb(action="card", id=code.id))
               for code in codes]
    return "\n".join(lines), keyboard(
        [button(_("➕ New code"), AdminPromoCb(action="new"))],
        *[buttons[i:i + 2] for i in range(0, len(buttons), 2)],
        pager(page, total, lambda p: AdminCb(area="promo", page=p), size=PAGE),
        back_button())


def _card(code: PromoCode, promo_codes: PromoCodes,
          settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    turn_off = ([button(_("🚫 Turn off"), AdminPromoCb(action="off", id=code.id))]
                if code.disabled_at is None else [])
    return (code_card(code, settings.shop_currency, settings.zone, promo_codes.expired(code)),
            keyboard(turn_off, _promo_back(), back_button()))


@router.callback_query(AdminCb.filter(F.area == "promo"))
async def promo_screen(query: CallbackQuery, callback_data: AdminCb, state: FSMContext,
                       promo_codes: PromoCodes, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    await state.clear()  # leaves a new code half typed
    await edit(query.message, *await _list(promo_codes, callback_data.page, settings))


@router.callback_query(Button(AdminPromoCb(action="new")))
async def ask_new(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(AdminPromo.new)
    await query.message.answer(_syntax() + "\n\n" + _("/cancel to stop."))


async def _create(message: Message, text: str, promo_codes: PromoCodes, settings: Settings,
                  *, again: str = "") -> bool:
    """Make the code ``text`` describes, answered in ``message``'s chat: its card, or
    what is wrong (and ``again``). Returns whether it was made."""
    assert message.from_user is not None
    try:
        code = await promo_codes.create(message.from_user.id, text, current_locale())
    except PromoRefused as exc:
        await message.answer(refusal_text(exc) + again)
        return False
    card, markup = _card(code, promo_codes, settings)
    await message.answer(_("Created.") + "\n\n" + card, reply_markup=markup)
    return True


@router.message(StateFilter(AdminPromo.new), TextMessage(command=False))
async def typed_new(message: Message, state: FSMContext, promo_codes: PromoCodes,
                    settings: Settings) -> None:
    assert message.text is not None
    if await _create(message, message.text, promo_codes, settings,
                     again="\n" + _("Send it again corrected, or /cancel.")):
        await state.clear()


@router.message(StateFilter(AdminPromo.new))
async def new_wrong_input(message: Message) -> None:
    await message.answer(_("Send the code and its terms as text, like {example}; or "
                           "/cancel.").format(example="<code>SPRING10 discount 10</code>"))


@router.message(Command("promo_new"))
async def promo_new(message: Message, command: CommandObject, promo_codes: PromoCodes,
                    settings: Settings) -> None:
    if not (command.args or "").strip():
        await message.answer(_("Usage: /promo_new followed by the code and its terms.") + "\n"
                             + _syntax())
        return
    await _create(message, command.args or "", promo_codes, settings)


@router.callback_query(AdminPromoCb.filter(F.action == "card"))
async def card(query: CallbackQuery, callback_data: AdminPromoCb, promo_codes: PromoCodes,
               settings: Settings, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    code = await promo_codes.get(callback_data.id)
    if code is None:
        callback_answer.text = _("No such promo code.")
        return
    await edit(query.message, *_card(code, promo_codes, settings))


@router.callback_query(AdminPromoCb.filter(F.action == "off"))
async def turn_off(query: CallbackQuery, callback_data: AdminPromoCb, promo_codes: PromoCodes,
                   settings: Settings, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    code = await promo_codes.get(callback_data.id)
    if code is None:
        callback_answer.text = _("No such promo code.")
        return
    code, changed = await promo_codes.disable(query.from_user.id, code.code)
    assert code is not None  # codes are never deleted
    callback_answer.text = (_("Code {code} is off: customers can't use it any more.")
                            if changed else _("Code {code} was off already.")).format(
                                code=code.code)
    await edit(query.message, *_card(code, promo_codes, settings))


@router.message(Command("promo_off"))
async def promo_off(message: Message, command: CommandObject, promo_codes: PromoCodes) -> None:
    assert message.from_user is not None
    typed = (command.args or "").strip()
    if not typed:
        await message.answer(_("Usage: /promo_off CODE, like /promo_off SPRING10."))
        return
    code, changed = await promo_codes.disable(message.from_user.id, typed)
    if code is None:
        await message.answer(_("There is no promo code {code}. The list is in 🛠 Admin → 🎟 "
                               "Promo codes.").format(code=escape(short(typed, 40))))
        return
    await message.answer((_("Code {code} is off: customers can't use it any more.") if changed
                          else _("Code {code} was off already.")).format(code=escape(code.code)))
