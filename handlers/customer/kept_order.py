"""An order form that /start set aside, kept until the customer comes back to it.

/start leaves whatever step the customer was in; when that was an order form (a
field, the confirmation, or a promo code or top-up amount asked from it), its
draft is kept in a slot of its own (the conversation's storage, another
destiny), which no other step's ``state.clear()`` touches. While it is kept, the
main menu offers ▶️ Continue your order (the service, the step), a message sent
outside any form says so instead of "I didn't get that", and /cancel drops it.
▶️ Continue (handlers/customer/order_form.py) takes it back and shows the form
where it was; a new order form replaces it. One draft is kept at most.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import InlineKeyboardMarkup

from bot.config import Settings
from bot.shop.orders import form
from bot.shop.orders.service import OrderService
from handlers.views.menu import main_menu

DESTINY = "kept_order"


def _slot(state: FSMContext) -> FSMContext:
    return FSMContext(storage=state.storage, key=replace(state.key, destiny=DESTINY))


async def set_aside(state: FSMContext, orders: OrderService) -> None:
    """Leave the current step (/start); an order form's draft is kept when its
    service is still sold."""
    draft = form.Draft.from_data(await state.get_data())
    if draft is not None:
        progress = await orders.progress(draft)
        if progress is not None:
            await _slot(state).set_data({
                "draft": draft.to_data(), "service": progress.service, "step": progress.step,
                "steps": progress.steps, "complete": progress.complete})
    await state.clear()


async def kept(state: FSMContext) -> form.Progress | None:
    """How far the kept draft was when it was set aside; ``None`` when none is kept."""
    data = await _slot(state).get_data()
    try:
        return form.Progress(str(data["service"]), int(data["step"]), int(data["steps"]),
                             bool(data["complete"]))
    except (KeyError, TypeError, ValueError):
        return None


async def take_back(state: FSMContext) -> dict[str, Any] | None:
    """The kept draft's data (no longer kept), or ``None``."""
    slot = _slot(state)
    data = await slot.get_data()
    if not data:
        return None
    await slot.clear()
    draft = data.get("draft")
    return draft if isinstance(draft, dict) else None


async def drop(state: FSMContext) -> bool:
    """Forget the kept draft (/cancel, a new order form); whether there was one."""
    slot = _slot(state)
    if not await slot.get_data():
        return False
    await slot.clear()
    return True


async def menu(user_id: int, settings: Settings, state: FSMContext) -> InlineKeyboardMarkup:
    """The main menu, with ▶️ Continue your order while a draft is kept."""
    return main_menu(user_id, settings, await kept(state))
