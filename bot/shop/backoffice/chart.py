"""The dashboard's 30-day chart: orders, turnover and profit per day, as a PNG.

Drawn in pure Python (a pixel buffer, a 5x7 bitmap font, ``zlib`` and ``struct`` for
the PNG) rather than with matplotlib: one picture did not justify ~170 MB of
matplotlib, numpy, pillow and fontTools in every install. Rendering takes a few
tens of milliseconds, so it still runs in a worker thread (``asyncio.to_thread``).
Money is exact everywhere else; here it becomes ``float`` only to be placed on
the picture (the tick labels are written from exact ``Decimal`` steps).
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.shop.money.amounts import exponent


@dataclass(frozen=True, slots=True)
class ChartDay:
    """One day's bar of the chart."""

    day: str  # local date, YYYY-MM-DD
    orders: int
    turnover_minor: int
    profit_minor: int


WIDTH, HEIGHT = 1000, 500
Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
INK: Color = (40, 40, 40)
GRID: Color = (225, 225, 225)
AXIS: Color = (136, 136, 136)
TURNOVER: Color = (76, 114, 176)
PROFIT: Color = (85, 168, 104)
ORDERS: Color = (196, 78, 82)

# A 5x7 font: each glyph is 7 rows of 5 bits, the top row first. Only what the
# chart writes: digits, capitals (the currency code) and signs.
_FONT: dict[str, tuple[int, ...]] = {
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31), "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14), "9": (14, 17, 17, 15, 1, 2, 12),
    "A": (14, 17, 17, 31, 17, 17, 17), "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14), "D": (28, 18, 17, 17, 17, 18, 28),
    "E": (31, 16, 16, 30, 16, 16, 31), "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15), "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14), "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17), "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17), "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14), "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13), "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30), "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14), "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10), "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 17, 10, 4, 4, 4), "Z": (31, 1, 2, 4, 8, 16, 31),
    "-": (0, 0, 0, 31, 0, 0, 0), ".": (0, 0, 0, 0, 0, 12, 12),
    "(": (2, 4, 8, 8, 8, 4, 2), ")": (8, 4, 2, 2, 2, 4, 8),
    " ": (0, 0, 0, 0, 0, 0, 0),
}
_UNKNOWN = (31, 17, 17, 17, 17, 17, 31)  # a box, for a sign the font lacks


class Canvas:
    """An RGB picture in one ``bytearray``; rectangles, lines, dots and text."""

    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill [x0, x1) x [y0, y1), clipped to the picture."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x0 >= x1:
            return
        run = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(run)] = run

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, thickness: int = 2) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        half = thickness // 2
        for step in range(steps + 1):
            x = x0 + (x1 - x0) * step // steps
            y = y0 + (y1 - y0) * step // steps
            self.rect(x - half, y - half, x - half + thickness, y - half + thickness, color)

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 2) -> None:
        """Write ``text`` with its top left corner at (x, y)."""
        for char in text.upper():
            for row, bits in enumerate(_FONT.get(char, _UNKNOWN)):
                for column in range(5):
                    if bits & (16 >> column):
                        self.rect(x + column * scale, y + row * scale,
                                  x + (column + 1) * scale, y + (row + 1) * scale, color)
            x += 6 * scale

    def png(self) -> bytes:
        """The picture as an 8-bit RGB PNG (every row unfiltered)."""
        stride = self.width * 3
        raw = b"".join(b"\x00" + self.pixels[y * stride:(y + 1) * stride]
                       for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 6 * scale - scale


def nice_ticks(low: Decimal, high: Decimal, smallest: Decimal, count: int = 5) -> list[Decimal]:
    """Round tick values (1, 2 or 5 times a power of ten, at least ``smallest`` apart)
    covering [low, high]."""
    if high <= low:
        high = low + smallest
    raw = (high - low) / count
    power = Decimal(10) ** math.floor(math.log10(raw))
    step = max(smallest, next(m * power for m in (1, 2, 5, 10) if m * power >= raw))
    first = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    ticks = [first]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def tick_label(value: Decimal) -> str:
    """A tick value in few characters: 1500 -> 1.5K, 2000000 -> 2M."""
    for size, suffix in ((Decimal(10) ** 6, "M"), (Decimal(1000), "K")):
        if abs(value) >= size:
            return f"{(value / size).normalize():f}{suffix}"
    return f"{value.normalize():f}"


def render(days: Sequence[ChartDay], currency: str) -> bytes:
    canvas = Canvas(WIDTH, HEIGHT, WHITE)
    left, right, top, bottom = 90, WIDTH - 70, 60, HEIGHT - 50
    first, last = (days[0].day, days[-1].day) if days else ("", "")
    # No words on the picture (the 5x7 font has Latin capitals only): the dates,
    # the scales and the currency code; the caption names the colours in the reader's language.
    title = f"{first} - {last}"
    canvas.text((WIDTH - text_width(title)) // 2, 16, title, INK)

    unit = Decimal(10) ** -exponent(currency)
    amounts = [Decimal(m) * unit for day in days
               for m in (day.turnover_minor, day.profit_minor)]
    money = nice_ticks(min([Decimal(0), *amounts]), max([Decimal(0), *amounts]), unit)
    orders = nice_ticks(Decimal(0), Decimal(max([day.orders for day in days] + [1])), Decimal(1))

    def money_y(amount: Decimal) -> int:
        share = (amount - money[0]) / (money[-1] - money[0])
        return round(bottom - float(share) * (bottom - top))

    def orders_y(count: Decimal) -> int:
        return round(bottom - float(count / orders[-1]) * (bottom - top))

    for value in money:  # the grid and the money scale on the left
        y = money_y(value)
        canvas.rect(left, y, right, y + 1, GRID)
        label = tick_label(value)
        canvas.text(left - 8 - text_width(label), y - 7, label, INK)
    for value in orders:  # the orders scale on the right
        canvas.text(right + 8, orders_y(value) - 7, tick_label(value), ORDERS)
    canvas.text(left - 8 - text_width(currency), top - 34, currency, INK)
    zero = money_y(Decimal(0))
    canvas.rect(left, zero, right, zero + 1, AXIS)
    canvas.rect(left, top, left + 1, bottom, AXIS)
    canvas.rect(right, top, right + 1, bottom, AXIS)

    slot = (right - left) / max(len(days), 1)
    bar = max(int(slot * 0.4), 1)
    points = []
    for index, day in enumerate(days):
        middle = round(left + slot * (index + 0.5))
        canvas.rect(middle - bar, zero, middle, money_y(Decimal(day.turnover_minor) * unit),
                    TURNOVER)
        canvas.rect(middle, zero, middle + bar, money_y(Decimal(day.profit_minor) * unit), PROFIT)
        points.append((middle, orders_y(Decimal(day.orders))))
        if index % 3 == 0:
            label = day.day[5:]  # MM-DD
            canvas.text(middle - text_width(label) // 2, bottom + 10, label, INK)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        canvas.line(x0, y0, x1, y1, ORDERS)
    for x, y in points:
        canvas.rect(x - 3, y - 3, x + 4, y + 4, ORDERS)
    return canvas.png()
