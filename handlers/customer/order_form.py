"""The order form: ask each field the service's type needs, confirm, pay, place.

The draft (service ref, values, token) lives in FSM data; the rules live in
``bot.shop.orders.form`` and the order-type table. Each update is parsed into an
answer, ``OrderService.next_step`` says what comes next (a field, with why the
answer was wrong; or the confirmation, priced), and ``_show_step`` shows it.
Wrong input of any kind gets an explanation and leaves the user on the same step.
"""

from __future__ import annotations

import logging
from html import escape

from aiogram import F
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.panel import RejectReason
from bot.panel.order_types import FieldError
from bot.shop.money.topups import StarsTopups
from bot.shop.orders import form
from bot.shop.orders.service import OrderService, Outcome, Placement
from handlers.callbacks import FormCb, OrderStartCb
from handlers.customer import kept_order
from handlers.customer.balance import top_up_rows
from handlers.customer.service_view import show_service, top_up_hint
from handlers.filters import Button, CallbackPrefix, CommandText, TextMessage
from handlers.routing import AreaRouter
from handlers.views.keyboards import edit as edit_message
from handlers.views.keyboards import keyboard
from handlers.views.menu import main_menu
from handlers.views.order_form import confirm_keyboard, confirm_text, field_keyboard, field_prompt
from handlers.views.orders import order_card, order_keyboard
from handlers.views.text import field_error, money

log = logging.getLogger(__name__)
# /start: the menu answers it, keeping the draft. /promo: a promo code for this order,
# handlers/customer/promo.py takes it and shows the form again.
router = AreaRouter(name="order_form", callbacks=CallbackPrefix(OrderStartCb, FormCb),
                    messages=CommandText("/start", "/promo", unless=True))


class OrderForm(StatesGroup):
    field = State()
    confirm = State()


async def _next_step(state: FSMContext, orders: OrderService,
                     answer: form.Answer = None) -> form.FormStep:
    """The form stored for this chat, moved on by ``answer``: the domain decides."""
    assert state.key.user_id is not None
    draft = form.Draft.from_data(await state.get_data())
    return await orders.next_step(state.key.user_id, draft, answer)


async def _show_step(target: Message, step: form.FormStep, state: FSMContext,
                     orders: OrderService, settings: Settings, *, edit: bool,
                     note: str | None = None, top_up: tuple[StarsTopups, int] | None = None,
                     callback_answer: CallbackAnswer | None = None) -> None:
    """Show the step ``next_step`` decided and store the draft it leaves.

    ``note`` (HTML: escape what the customer or a panel wrote) is shown above it,
    unless an earlier answer no longer fits: then that is what the customer is
    told. A wrong answer is told on a popup for a button (``callback_answer``),
    with the field asked again for typed text; the draft is as it was then, so
    nothing is stored.
    """
    match step:
        case form.FormExpired():
            await _expired(target, state, settings)
            return
        case form.NothingToAnswer():
            return
        case form.FormLeft():
            await state.clear()
            await show_service(target, step.stored, orders.pricer, settings, edit=True)
            return
        case form.AskField(wrong_answer=FieldError() as wrong):
            if callback_answer is not None:
                callback_answer.text = field_error(wrong)
            else:
                await target.answer(field_prompt(step.stored, step.field, step.step, step.steps,
                                                 escape(field_error(wrong))),
                                    reply_markup=field_keyboard(step.field))
            return
        case form.AskField():
            await state.set_state(OrderForm.field)
            if step.no_longer_fits is not None:
                note = escape(field_error(step.no_longer_fits))
            text = field_prompt(step.stored, step.field, step.step, step.steps, note)
            markup = field_keyboard(step.field)
        case form.ConfirmOrder():
            await state.set_state(OrderForm.confirm)
            text = confirm_text(step.stored, step.draft.values, step.quote, step.balance_minor,
                                settings.shop_currency)
            if note:
                text = f"⚠️ {note}\n\n{text}"
            markup = confirm_keyboard(step.draft.screen)
            if top_up is not None:  # short of balance: pay the missing amount in Stars here
                topups, missing = top_up
                markup = keyboard(*markup.inline_keyboard, *top_up_rows(settings, topups, missing))
    await state.set_data(step.draft.to_data())
    if edit:
        await edit_message(target, text, markup)
    else:
        await target.answer(text, reply_markup=markup)


async def resume(message: Message, state: FSMContext, orders: OrderService,
                 settings: Settings) -> None:
    """Show where the customer's form is, as a new message: after a promo code was
    asked for in the middle of it, the confirmation comes back priced with the code."""
    await _show_step(message, await _next_step(state, orders), state, orders, settings,
                     edit=False)


@router.callback_query(OrderStartCb.filter())
async def start_form(query: CallbackQuery, callback_data: OrderStartCb, state: FSMContext,
                     orders: OrderService, settings: Settings,
                     callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    step = await orders.next_step(query.from_user.id, form.Draft(callback_data.ref))
    if isinstance(step, form.FormExpired):
        callback_answer.text = _("That service is no longer available.")
        return
    await state.clear()
    await kept_order.drop(state)  # one order form at a time: this one replaces a kept one
    await _show_step(query.message, step, state, orders, settings, edit=True)


@router.callback_query(Button(FormCb(action="resume")))
async def resume_button(query: CallbackQuery, state: FSMContext, orders: OrderService,
                        settings: Settings, callback_answer: CallbackAnswer) -> None:
    """▶️ Continue your order: the form /start set aside, shown where it was."""
    assert isinstance(query.message, Message)
    draft = await kept_order.take_back(state)
    if draft is None:  # a menu from before it was continued, cancelled or replaced
        callback_answer.text = _("That order is no longer kept. Start a new one with 🛒 New "
                                 "order.")
        callback_answer.show_alert = True
        return
    await state.clear()
    await state.set_data(draft)
    await _show_step(query.message, await _next_step(state, orders), state, orders, settings,
                     edit=True)


# --------------------------------------------------------------- typed answers

@router.message(StateFilter(OrderForm.field, OrderForm.confirm), Command("cancel"))
async def cancel_command(message: Message, state: FSMContext, settings: Settings) -> None:
    assert message.from_user is not None
    await state.clear()
    await message.answer(_("Order cancelled. Nothing was charged."),
                         reply_markup=main_menu(message.from_user.id, settings))


@router.message(StateFilter(OrderForm.field, OrderForm.confirm), TextMessage(command=True))
async def command_in_form(message: Message) -> None:
    await message.answer(_("You are in the middle of an order. Finish it, or send /cancel "
                           "to leave it first."))


@router.message(StateFilter(OrderForm.field), TextMessage(command=False))
async def answer_field(message: Message, state: FSMContext, orders: OrderService,
                       settings: Settings) -> None:
    assert message.text is not None
    step = await _next_step(state, orders, form.Typed(message.text))
    await _show_step(message, step, state, orders, settings, edit=False)


@router.message(StateFilter(OrderForm.field))
async def not_text(message: Message) -> None:
    """Stickers, photos, voice...: the form only takes text."""
    await message.answer(_("Please answer with a text message (or /cancel to leave the order)."))


@router.message(StateFilter(OrderForm.confirm))
async def text_at_confirm(message: Message) -> None:
    await message.answer(_("Please use the buttons above: ✅ Confirm, ✏️ Edit or ✖ Cancel."))


# --------------------------------------------------------------- buttons

@router.callback_query(Button(FormCb(action="cancel")))
async def cancel_button(query: CallbackQuery, state: FSMContext, settings: Settings) -> None:
    assert isinstance(query.message, Message)
    await state.clear()
    await query.message.edit_text(
        _("Order cancelled. Nothing was charged."),
        reply_markup=main_menu(query.from_user.id, settings))


@router.callback_query(StateFilter(OrderForm.field),
                       FormCb.filter(F.action.in_({"choice", "skip"})))
async def choice_button(query: CallbackQuery, callback_data: FormCb, state: FSMContext,
                        orders: OrderService, settings: Settings,
                        callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    answer = form.Skipped() if callback_data.action == "skip" else form.Picked(callback_data.value)
    step = await _next_step(state, orders, answer)
    await _show_step(query.message, step, state, orders, settings, edit=True,
                     callback_answer=callback_answer)


@router.callback_query(StateFilter(OrderForm.field, OrderForm.confirm),
                       Button(FormCb(action="back")))
async def back_button(query: CallbackQuery, state: FSMContext, orders: OrderService,
                      settings: Settings) -> None:
    assert isinstance(query.message, Message)
    step = await _next_step(state, orders, form.WentBack())
    await _show_step(query.message, step, state, orders, settings, edit=True)


@router.callback_query(StateFilter(OrderForm.confirm), Button(FormCb(action="edit")))
async def edit_button(query: CallbackQuery, state: FSMContext, orders: OrderService,
                      settings: Settings) -> None:
    """Start the form again from the first field; the draft keeps its token."""
    assert isinstance(query.message, Message)
    step = await _next_step(state, orders, form.StartedOver())
    await _show_step(query.message, step, state, orders, settings, edit=True)


@router.callback_query(FormCb.filter(F.action == "confirm"))
async def confirm_button(query: CallbackQuery, callback_data: FormCb, state: FSMContext,
                         orders: OrderService, settings: Settings, topups: StarsTopups,
                         callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    draft = form.Draft.from_data(await state.get_data())
    if draft is None:
        # A second tap after the order went through: the first tap's answer stands.
        callback_answer.text = _("This order was already handled. See 📦 My orders.")
        return
    if not draft.screen or callback_data.value != draft.screen:
        # An older confirmation (or one from before confirmations were named): what it
        # shows may not be the draft now. Show the draft as it is in its place;
        # nothing is placed from a screen the customer didn't see.
        step = await _next_step(state, orders)
        if not isinstance(step, form.FormExpired):
            callback_answer.text = _("That confirmation was out of date.")
        await _show_step(query.message, step, state, orders, settings, edit=True,
                         note=_("This is your order as it is now. Check it and tap ✅ Confirm."))
        return
    note = None
    try:
        placement = await orders.place(query.from_user.id, draft.ref, draft.values, draft.token,
                                       draft.shown_price)
    except FieldError as exc:
        # The service changed since the form was filled (new limits, no drip-feed):
        # showing the step again asks the first field that no longer fits, or shows
        # the confirmation again, updated, with why.
        placement, note = None, escape(field_error(exc))
    if placement is None or placement.outcome in (Outcome.INSUFFICIENT, Outcome.PRICE_CHANGED):
        step = await _next_step(state, orders)
        if isinstance(step, form.FormExpired):
            await _show_step(query.message, step, state, orders, settings, edit=True)
            return
        top_up = None
        if placement is None:
            pass  # the note says what no longer fits
        elif placement.outcome is Outcome.INSUFFICIENT:
            callback_answer.text = _("Not enough balance.")
            note = _insufficient_text(placement, settings)
            if settings.stars_enabled:
                top_up = (topups, placement.missing_minor)
        else:
            callback_answer.text = _("The price has changed.")
            note = _("The price changed since you saw it: from {old} to <b>{price}</b>. Nothing "
                     "was charged. Check the order and tap ✅ Confirm again.").format(
                         old=money(draft.shown_price or 0, settings.shop_currency),
                         price=money(placement.price_minor, settings.shop_currency))
        await _show_step(query.message, step, state, orders, settings, edit=True,
                         note=note, top_up=top_up)
        return
    await state.clear()
    await _report(query, placement, orders, settings)


async def show_confirmation_again(message: Message, state: FSMContext, orders: OrderService,
                                  settings: Settings) -> bool:
    """After a top-up: the order being confirmed, shown again with the new balance (as a
    new message), so one more tap places it. False when no order is being confirmed."""
    if await state.get_state() != OrderForm.confirm.state:
        return False  # (a state the customer left while paying)
    step = await _next_step(state, orders)
    if isinstance(step, form.FormExpired):
        return False
    await _show_step(message, step, state, orders, settings, edit=False)
    return True


def _insufficient_text(placement: Placement, settings: Settings) -> str:
    how = (_("Pay the missing amount with Telegram Stars below, or choose another amount.")
           if settings.stars_enabled else top_up_hint(settings))
    return "\n".join([
        _("Your balance is short by <b>{missing}</b> for this order.").format(
            missing=money(placement.missing_minor, settings.shop_currency)),
        how,
        _("Your order is kept: tap ✅ Confirm again once your balance is topped up."),
    ])


async def _report(query: CallbackQuery, placement: Placement, orders: OrderService,
                  settings: Settings) -> None:
    assert isinstance(query.message, Message)
    order = placement.order
    menu = main_menu(query.from_user.id, settings)
    match placement.outcome:
        case Outcome.PLACED | Outcome.ALREADY if order is not None:
            head = (_("✅ Order #{id} placed!") if placement.outcome is Outcome.PLACED
                    else _("This order was already placed as #{id}.")).format(id=order.id)
            card = order_card(order, [], settings.zone)
            markup = order_keyboard(order, await orders.actions(order))
            await query.message.edit_text(f"{head}\n\n{card}", reply_markup=markup)
        case Outcome.REJECTED:
            await query.message.edit_text(_rejection_text(placement), reply_markup=menu)
        case Outcome.UNAVAILABLE:
            await query.message.edit_text(
                _("The supplier is temporarily unavailable, so the order was not placed. "
                  "Your balance was refunded. Please try again in a few minutes."),
                reply_markup=menu)
        case Outcome.NO_PANEL:
            await query.message.edit_text(
                _("This service is unavailable right now, so the order was not placed. "
                  "Nothing was charged. Please try again later or choose another service."),
                reply_markup=menu)
        case Outcome.AMBIGUOUS if order is not None:
            await query.message.edit_text(
                _("⏳ Order #{id} was sent, but the supplier did not confirm it yet. We are "
                  "checking it; you will not be charged twice. See 📦 My orders.").format(
                    id=order.id),
                reply_markup=menu)
        case _:
            await query.message.edit_text(_("That service is no longer available. "
                                            "Nothing was charged."), reply_markup=menu)


def _rejection_text(placement: Placement) -> str:
    friendly = {
        RejectReason.BAD_LINK: _("the link was not accepted. Check that it is public and "
                                 "correct."),
        RejectReason.QUANTITY: _("the quantity is outside what the service accepts."),
        RejectReason.DUPLICATE: _("there is already an active order for this link. Wait until "
                                  "it completes."),
        RejectReason.DRIPFEED: _("drip-feed is not available for this service."),
        RejectReason.NOT_ENOUGH_FUNDS: _("the service is temporarily unavailable."),
        RejectReason.BAD_KEY: _("the service is temporarily unavailable."),
        RejectReason.BAD_SERVICE: _("the service is no longer available."),
    }
    reason = friendly.get(placement.reason or RejectReason.OTHER,
                          _("the supplier refused it."))
    return _("❌ The order was not placed: {reason}\nYour balance was refunded.").format(
        reason=reason)


async def _expired(message: Message, state: FSMContext, settings: Settings) -> None:
    await state.clear()
    await message.answer(_("This order form has expired. Please start again."),
                         reply_markup=main_menu(message.chat.id, settings))

