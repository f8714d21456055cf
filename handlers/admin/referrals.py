"""The admin panel's Referrals: the program's settings, the top referrers of the last
7 or 30 days or all time (invited, earned, taken back with refunds, written off),
each a button to their customer card, where their commissions are turned off or
on (handlers/admin/customers.py). bot/shop/growth/referrals.py computes."""

from __future__ import annotations

from html import escape

from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.shop.growth.referrals import Leaderboard, Period, Referrals
from bot.shop.money.amounts import to_minor_up
from handlers.admin.home import back_button
from handlers.callbacks import AdminCb, AdminCustomerCb, AdminReferralsCb
from handlers.filters import Button, CallbackPrefix
from handlers.routing import AreaRouter
from handlers.views.keyboards import button, edit, keyboard
from handlers.views.text import money, number, percent, short, who

router = AreaRouter(name="admin_referrals", callbacks=CallbackPrefix(AdminCb, AdminReferralsCb))


def _period_names() -> dict[Period, str]:
    return {"7d": _("7 days"), "30d": _("30 days"), "all": _("All time")}


def _program(settings: Settings) -> str:
    if not settings.referrals_enabled:
        return _("The program is off (REFERRAL_PERCENT is 0): nobody earns, and customers "
                 "see no invite button.")
    line = _("Referrers get {percent} of each Stars top-up of the customers they "
             "invited.").format(percent=percent(settings.referral_percent))
    if settings.referral_percent_2:
        line += " " + _("Their own referrers get {percent}.").format(
            percent=percent(settings.referral_percent_2))
    minimum = to_minor_up(settings.referral_min_topup, settings.shop_currency)
    if minimum:
        line += " " + _("Top-ups under {amount} earn nothing.").format(
            amount=money(minimum, settings.shop_currency))
    return line


def render_leaderboard(board: Leaderboard,
                       settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    currency = settings.shop_currency
    totals = board.totals
    lines = [_("<b>🤝 Referrals</b> · {period}").format(period=_period_names()[board.period]),
             _program(settings), "",
             _("Invited: {invited} · referrers: {referrers}").format(
                 invited=number(totals.invited), referrers=number(totals.referrers)),
             _("Earned: {earned} · taken back: {taken} · written off: {written}").format(
                 earned=money(totals.earned_minor, currency),
                 taken=money(totals.taken_back_minor, currency),
                 written=money(totals.written_off_minor, currency)),
             _("Written off: rewards of refunded top-ups the referrer had spent already."), ""]
    rows = []
    for place, top in enumerate(board.referrers, 1):
        name = short(top.first_name or "—", 40)
        off = " ⛔" if top.off else ""
        lines.append(_("{place}. {name} ({id}){off}: invited {invited} · earned "
                       "{earned} · taken back {taken} · written off {written}").format(
            place=place, name=escape(who(top.first_name, top.username, 40)), id=top.user_id,
            off=off, invited=number(top.invited), earned=money(top.earned_minor, currency),
            taken=money(top.taken_back_minor, currency),
            written=money(top.written_off_minor, currency)))
        rows.append([button(f"{place}. {name}{off}",
                            AdminCustomerCb(action="card", id=top.user_id))])
    if not board.referrers:
        lines.append(_("No referrals in this period."))
    else:
        lines += ["", _("⛔: commissions turned off. Open a referrer to turn theirs off or on.")]
    periods = [button(("✅ " if period == board.period else "") + name,
                      AdminReferralsCb(period=period))
               for period, name in _period_names().items()]
    return "\n".join(lines), keyboard(periods, *rows, back_button())


@router.callback_query(Button(AdminCb(area="referrals")))
@router.callback_query(AdminReferralsCb.filter())
async def referrals_screen(query: CallbackQuery, referrals: Referrals, settings: Settings,
                           callback_data: AdminReferralsCb | None = None) -> None:
    assert isinstance(query.message, Message)
    board = await referrals.top(callback_data.period if callback_data else "30d")
    await edit(query.message, *render_leaderboard(board, settings))
