"""The dashboard's 30-day chart: orders, turnover and profit per day, as a PNG.

Drawn with matplotlib's Agg canvas on a ``Figure`` of its own (no pyplot and its
global state), so it can run in a worker thread (``asyncio.to_thread``) while the
bot goes on answering. Money is exact everywhere else; here it becomes ``float``
only to be drawn.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from bot.shop.money.amounts import from_minor


@dataclass(frozen=True, slots=True)
class ChartDay:
    """One day's bar of the chart."""

    day: str  # local date, YYYY-MM-DD
    orders: int
    turnover_minor: int
    profit_minor: int


def render(days: Sequence[ChartDay], currency: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [day.day[5:] for day in days]  # MM-DD
    turnover = [float(from_minor(day.turnover_minor, currency)) for day in days]
    profit = [float(from_minor(day.profit_minor, currency)) for day in days]
    orders = [day.orders for day in days]
    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    money_axis = figure.add_subplot()
    positions = range(len(days))
    money_axis.bar([p - 0.2 for p in positions], turnover, width=0.4, label="Turnover",
                   color="#4c72b0")
    money_axis.bar([p + 0.2 for p in positions], profit, width=0.4, label="Profit",
                   color="#55a868")
    money_axis.set_ylabel(currency)
    money_axis.axhline(0, color="#888888", linewidth=0.8)
    orders_axis = money_axis.twinx()
    orders_axis.plot(list(positions), orders, color="#c44e52", marker="o", markersize=3,
                     label="Orders")
    orders_axis.set_ylabel("Orders")
    orders_axis.set_ylim(bottom=0)
    money_axis.set_xticks(list(positions)[::3], labels[::3])
    handles = money_axis.get_legend_handles_labels()
    more = orders_axis.get_legend_handles_labels()
    money_axis.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    first, last = (days[0].day, days[-1].day) if days else ("", "")
    money_axis.set_title(f"Last {len(days)} days ({first} to {last})")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
