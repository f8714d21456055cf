"""The dashboard's texts: the figures per period, panel balances, the daily summary
(bot/shop/backoffice/stats.py and daily_report.py compute; these only word them)."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.shop.backoffice import stats
from bot.shop.backoffice.daily_report import Report
from bot.shop.money import formatting
from handlers.views.text import current_locale, money, number, panel_amount, signed


def _period_names() -> dict[str, str]:
    return {"today": _("Today"), "7d": _("7 days"), "30d": _("30 days"), "all": _("All time")}


def _state_names() -> dict[str, str]:
    return {"submitting": _("submitting"), "pending": _("pending"),
            "in_progress": _("in progress"), "completed": _("completed"),
            "partial": _("partial"), "canceled": _("canceled"), "failed": _("failed"),
            "unknown": _("to check")}


def render_dashboard(board: stats.Dashboard) -> str:
    currency = board.currency
    lines = [_("<b>📊 Dashboard</b>"), "",
             _("👥 Customers: {total} · active 24 h: {day} · 7 d: {week} · new today: {new}")
             .format(total=number(board.customers), day=number(board.active_day),
                     week=number(board.active_week), new=number(board.new_today)), ""]
    states = _state_names()
    for period, name in _period_names().items():
        figures = board.periods[period]
        by_state = ", ".join(f"{states[s]} {number(figures.by_state[s])}" for s in stats.STATES
                             if figures.by_state.get(s))
        lines.append(ngettext("<b>{period}</b>: {orders} order{states}",
                              "<b>{period}</b>: {orders} orders{states}", figures.orders).format(
            period=name, orders=number(figures.orders),
            states=f" ({by_state})" if by_state else ""))
        lines.append(_("turnover {turnover} · refunds {refunds} · panel cost {cost} · "
                       "profit {profit}").format(
            turnover=money(figures.turnover_minor, currency),
            refunds=money(figures.refunds_minor, currency),
            cost=money(figures.cost_minor, currency),
            profit=signed(figures.profit_minor, currency, plus=False)))
        if figures.discounts_minor or figures.bonuses_minor:
            lines.append(_("discounts given {discounts} · bonuses {bonuses}").format(
                discounts=money(figures.discounts_minor, currency),
                bonuses=signed(figures.bonuses_minor, currency, plus=False)))
    lines += ["", _("<b>Panel balances</b>")]
    for balance in board.balances:
        if balance.amount is None:
            lines.append(_("{panel}: unreachable").format(panel=escape(balance.panel)))
            continue
        lines.append(f"{escape(balance.panel)}: {escape(panel_amount(balance.amount, balance.currency))}")
        if balance.low:
            lines.append(_("⚠️ {panel} is below the alert level: top it up, or orders "
                           "will be refused.").format(panel=escape(balance.panel)))
    if not board.balances:
        lines.append(_("No panel configured."))
    return "\n".join(lines)


def daily_summary_text(report: Report) -> str:
    """The daily summary (bot/shop/backoffice/daily_report.py), in the reading admin's language."""
    f, cur = report.figures, report.currency
    lines = [
        _("📊 Summary of {day} ({zone})").format(day=formatting.day(report.day, current_locale()),
                                                zone=escape(report.zone)),
        _("Orders: {n}").format(n=number(f.orders)),
        _("Turnover: {amount}").format(amount=money(f.turnover_minor, cur)),
        _("Refunds: {amount}").format(amount=money(f.refunds_minor, cur)),
        _("Panel cost: {amount}").format(amount=money(f.cost_minor, cur)),
        _("Profit: {amount}").format(amount=signed(f.profit_minor, cur, plus=False)),
        *([_("Discounts given: {amount}").format(amount=money(f.discounts_minor, cur)),
           _("Bonuses: {amount}").format(amount=signed(f.bonuses_minor, cur, plus=False))]
          if f.discounts_minor or f.bonuses_minor else []),
        _("New customers: {n}").format(n=number(f.new_customers)),
        _("Stars top-ups: {n} ({amount})").format(n=number(f.topups),
                                                  amount=money(f.topups_minor, cur)),
        _("Problem orders open: {n}").format(n=number(report.open_problems)),
    ]
    for panel in report.panels:
        if panel.balance is None:
            lines.append(_("Panel {name}: not answering").format(name=escape(panel.name)))
        else:
            lines.append(_("Panel {name}: {balance}").format(
                name=escape(panel.name),
                balance=escape(panel_amount(Decimal(panel.balance), panel.currency))))
    return "\n".join(lines)

