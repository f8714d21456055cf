"""Messages to the shop's admins (panel out of funds, orders to check, errors).

Alerts go through the outbox like every message the bot sends on its own, so
they survive a restart and respect Telegram's limits. Queuing never fails the
request that raised the alert: a failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from storage import outbox
from storage.db import Database

log = logging.getLogger(__name__)

MAX_ALERT = 3800  # leaves room under Telegram's 4096 characters


class AdminAlerts:
    def __init__(self, db: Database, admin_ids: Sequence[int],
                 on_queued: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.admin_ids = list(admin_ids)
        self._on_queued = on_queued

    async def send(self, text: str) -> None:
        if not self.admin_ids:
            log.warning("admin alert (no ADMIN_IDS set): %s", text)
            return
        try:
            async with self.db.transaction() as conn:
                await outbox.queue(conn, self.admin_ids, "alert", {"text": text[:MAX_ALERT]})
        except Exception:  # an alert must never break the request that raised it
            log.exception("could not queue an admin alert: %s", text)
            return
        self._on_queued()
