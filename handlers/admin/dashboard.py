"""The admin panel's dashboard: customers, orders, money per period, panel balances,
and the 30-day chart (bot/shop/backoffice/stats.py computes; this only renders)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.backoffice.stats import ShopStats
from handlers.admin.home import back_button
from handlers.callbacks import AdminCb, DashboardCb
from handlers.filters import Button
from handlers.routing import AreaRouter
from handlers.views.dashboard import render_dashboard
from handlers.views.keyboards import button, edit, keyboard

router = AreaRouter(name="admin_dashboard")


@router.callback_query(Button(AdminCb(area="dashboard")))
async def dashboard_screen(query: CallbackQuery, shop_stats: ShopStats) -> None:
    assert isinstance(query.message, Message)
    board = await shop_stats.dashboard()
    await edit(query.message, render_dashboard(board), keyboard(
        [button(_("📈 30-day chart"), DashboardCb(action="chart"))],
        [button(_("🔄 Refresh"), AdminCb(area="dashboard"))], back_button()))


@router.callback_query(Button(DashboardCb(action="chart")))
async def chart(query: CallbackQuery, bot: Bot, shop_stats: ShopStats, settings: Settings,
                callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    png = await shop_stats.chart_png()
    callback_answer.text = _("Drawing the chart…")
    await bot.send_photo(query.message.chat.id, BufferedInputFile(png, "dashboard.png"),
                         caption=_("📈 Per day, last 30 days ({currency}): 🟦 turnover, "
                                   "🟩 profit, 🟥 orders (the line, right scale).").format(
                                       currency=settings.shop_currency))
