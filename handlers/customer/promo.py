"""A customer's promo code: ``/promo CODE``, or ``/promo`` alone and 🎟 Promo code (on
the balance screen, and wherever else a ``PromoCb`` button is shown), which ask
for it. The code is redeemed by bot/shop/growth/promo_codes.py; the answer is
handlers/views/promo.py's ``redemption_text``.

Asking remembers the state the customer was in (an order's confirmation keeps its
draft) and goes back to it once a code did something or was refused for good, or
on /cancel; a code mistyped or unknown is asked for again.
"""

from __future__ import annotations

from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.growth.promo_codes import Outcome, PromoCodes, Redemption
from bot.shop.money.accounts import Accounts
from bot.shop.orders.service import OrderService
from handlers.callbacks import MenuCb, PromoCb
from handlers.customer import kept_order
from handlers.customer.order_form import OrderForm, resume
from handlers.filters import CallbackPrefix, TextMessage
from handlers.routing import AreaRouter
from handlers.views.keyboards import button, keyboard
from handlers.views.menu import home_button
from handlers.views.promo import redemption_text

router = AreaRouter(name="promo", callbacks=CallbackPrefix(PromoCb))

# Answers after which the code is asked for again: what was typed is no code, or
# none of this shop's (a typo, most likely).
TRY_AGAIN = frozenset({Outcome.INVALID, Outcome.UNKNOWN})
MAX_TYPED = 100  # characters of a typed code looked at (a code has at most 32)


class PromoInput(StatesGroup):
    code = State()


IN_ORDER_FORM = (OrderForm.field.state, OrderForm.confirm.state)


def _ask() -> str:
    return _("Send your promo code, like SPRING10 (or /cancel).")


async def _ask_for_code(message: Message, state: FSMContext) -> None:
    # Remember where the customer was (an order's confirmation keeps its draft).
    await state.update_data(after_promo=await state.get_state())
    await state.set_state(PromoInput.code)
    await message.answer(_ask())


async def _leave(state: FSMContext) -> str | None:
    """Back to where the code was asked for (the state before, its data kept)."""
    data = await state.get_data()
    back = data.pop("after_promo", None)
    await state.set_data(data)
    await state.set_state(back)
    return back


async def _answer(message: Message, text: str, markup: InlineKeyboardMarkup | None,
                  state: FSMContext, orders: OrderService, settings: Settings) -> None:
    """``text``, then the order form again when the code was asked for in the middle
    of one (its confirmation re-priced with a discount code), else ``markup``."""
    in_form = await state.get_state() in IN_ORDER_FORM
    await message.answer(text, reply_markup=None if in_form else markup)
    if in_form:
        await resume(message, state, orders, settings)


def _next_steps(redemption: Redemption) -> InlineKeyboardMarkup:
    """Where to go from the answer: the balance a code credited, an order to use a
    discount on, or the menu."""
    if redemption.outcome is Outcome.CREDITED:
        return keyboard([button(_("💰 Balance"), MenuCb(action="balance")), home_button()])
    if redemption.accepted:
        return keyboard([button(_("🛒 New order"), MenuCb(action="shop")), home_button()])
    return keyboard([home_button()])


async def _redeem(message: Message, typed: str, promo_codes: PromoCodes,
                  accounts: Accounts) -> Redemption:
    sender = message.from_user
    assert sender is not None
    # The account must exist to be credited (a customer's first message may be /promo).
    await accounts.register(sender.id, username=sender.username, first_name=sender.first_name,
                            language=sender.language_code)
    # Keyed by the message: replayed after a restart, it credits nothing more.
    return await promo_codes.redeem(sender.id, typed[:MAX_TYPED],
                                    f"{message.chat.id}:{message.message_id}")


@router.message(Command("promo"), StateFilter(None, *IN_ORDER_FORM))
async def promo_command(message: Message, command: CommandObject, state: FSMContext,
                        promo_codes: PromoCodes, accounts: Accounts, orders: OrderService,
                        settings: Settings) -> None:
    assert message.from_user is not None
    typed = (command.args or "").strip()
    if not typed:
        await _ask_for_code(message, state)
        return
    redemption = await _redeem(message, typed, promo_codes, accounts)
    await _answer(message, redemption_text(redemption), _next_steps(redemption), state, orders,
                  settings)


@router.callback_query(PromoCb.filter())
async def promo_button(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await _ask_for_code(query.message, state)


@router.message(StateFilter(PromoInput.code), Command("cancel"))
async def cancel_code(message: Message, state: FSMContext, orders: OrderService,
                      settings: Settings) -> None:
    assert message.from_user is not None
    await _leave(state)
    await _answer(message, _("No code redeemed."),
                  await kept_order.menu(message.from_user.id, settings, state), state, orders,
                  settings)


@router.message(StateFilter(PromoInput.code), TextMessage(command=True))
async def command_in_code(message: Message) -> None:
    await message.answer(_("Send the promo code itself, like SPRING10, or /cancel first."))


@router.message(StateFilter(PromoInput.code), TextMessage())
async def typed_code(message: Message, state: FSMContext, promo_codes: PromoCodes,
                     accounts: Accounts, orders: OrderService, settings: Settings) -> None:
    assert message.text is not None and message.from_user is not None
    redemption = await _redeem(message, message.text, promo_codes, accounts)
    if redemption.outcome in TRY_AGAIN:
        await message.answer(f"{redemption_text(redemption)}\n\n{_ask()}")
        return
    await _leave(state)
    await _answer(message, redemption_text(redemption), _next_steps(redemption), state, orders,
                  settings)


@router.message(StateFilter(PromoInput.code))
async def not_a_code(message: Message) -> None:
    """A sticker, a photo, a voice note...: the code is text."""
    await message.answer(_("Send the promo code as text, like SPRING10, or /cancel."))
