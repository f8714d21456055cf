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

    def take(self, who: int) -> int | None:
        """Count one request of ``who``; ``None`` when it is allowed, else the whole
        seconds until one is (it is then not counted)."""
        now = self._clock()
        recent = self._recent.setdefault(who, deque())
        while recent and now - recent[0] >= WINDOW:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return max(1, math.ceil(WINDOW - (now - recent[0])))
        recent.append(now)
        return None
