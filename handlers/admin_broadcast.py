"""The admin panel's broadcast screens (handlers/admin.py has the menu)."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from handlers.admin import back_button
from handlers.callbacks import AdminCb
from handlers.filters import Button, IsAdmin
from handlers.render import edit, keyboard

router = Router(name="admin_broadcast")
router.message.filter(IsAdmin())
router.callback_query.filter(IsAdmin())


@router.callback_query(Button(AdminCb(area="broadcast")))
async def broadcast_screen(query: CallbackQuery) -> None:
    assert isinstance(query.message, Message)
    await edit(query.message, _("Not built yet."), keyboard(back_button()))
