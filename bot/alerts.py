"""Messages to the shop's admins (panel out of funds, orders to check, errors).

Delivery is best effort and never fails the customer's request: a failed send
is logged. ``send_message`` is injected so this module knows nothing of aiogram.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger(__name__)

SendMessage = Callable[[int, str], Awaitable[object]]


class AdminAlerts:
    def __init__(self, admin_ids: Sequence[int], send_message: SendMessage) -> None:
        self.admin_ids = list(admin_ids)
        self._send = send_message

    async def send(self, text: str) -> None:
        if not self.admin_ids:
            log.warning("admin alert (no ADMIN_IDS set): %s", text)
            return
        for admin_id in self.admin_ids:
            try:
                await self._send(admin_id, text)
            except Exception:  # an alert must never break the request that raised it
                log.exception("could not alert admin %s", admin_id)
