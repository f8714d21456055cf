"""Each key's requests a minute (``API_RATE_LIMIT``): a sliding window, in memory.

A restart forgets the window, which at worst lets one minute's requests through
twice: the limit protects the shop's panel and database from a runaway client,
and the balance (checked in the order's own transaction) is what stops spending.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0  # seconds


class RequestLimit:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._swept = clock()

    @property
    def tracked(self) -> int:
        """Customers with a request in the window (or since the last sweep)."""
        return len(self._recent)

    def take(self, who: int) -> int | None:
        """Count one request of ``who``; ``None`` when it is allowed, else the whole
        seconds until one is (it is then not counted)."""
        now = self._clock()
        if now - self._swept >= WINDOW:  # once a window: forget who stopped asking
            self._recent = {k: q for k, q in self._recent.items() if now - q[-1] < WINDOW}
            self._swept = now
        recent = self._recent.setdefault(who, deque())
        while recent and now - recent[0] >= WINDOW:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return max(1, math.ceil(WINDOW - (now - recent[0])))
        recent.append(now)
        return None
