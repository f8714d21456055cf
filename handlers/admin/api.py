"""The admin panel's 🔌 API customers (while the shop serves its wholesale API): the
customers with a key or whose access is off, the latest used first, each with
their key's last characters, its requests and last use, and a button to their
customer card, where their API access is turned off or on
(handlers/admin/customers.py)."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.wholesale.keys import ApiKeys
from handlers.admin.home import back_button
from handlers.callbacks import AdminCb
from handlers.filters import CallbackPrefix
from handlers.routing import AreaRouter
from handlers.views.api import holder_button, holder_line
from handlers.views.keyboards import PAGE_SIZE, edit, keyboard, pager
from handlers.views.text import number

router = AreaRouter(name="admin_api", callbacks=CallbackPrefix(AdminCb))


@router.callback_query(AdminCb.filter(F.area == "api"))
async def api_customers(query: CallbackQuery, callback_data: AdminCb, api_keys: ApiKeys,
                        settings: Settings, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if not api_keys.enabled:  # a button from before API_ENABLED was turned off
        callback_answer.text, callback_answer.show_alert = _("The API is off in this shop "
                                                             "(API_ENABLED)."), True
        return
    holders, total = await api_keys.holders(PAGE_SIZE, callback_data.page * PAGE_SIZE)
    lines = [_("<b>🔌 API customers</b> ({count}, the latest used first)").format(
        count=number(total)), ""]
    lines += ([holder_line(holder, settings.zone) for holder in holders]
              or [_("No customer has an API key yet.")])
    await edit(query.message, "\n".join(lines), keyboard(
        *[holder_button(holder) for holder in holders],
        pager(callback_data.page, total, lambda page: AdminCb(area="api", page=page)),
        back_button()))
