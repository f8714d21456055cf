"""Broadcasts: one admin message to every customer, through the outbox.

A broadcast is queued whole when confirmed (storage/broadcasts.py): one outbox
row per reachable customer, at the lowest priority, so the notifier sends it at
the configured rate and every order notice or alert goes before it. Customers
who blocked the bot, or whom an admin blocked, are left out and counted.

Each row is closed *before* its send (``claim``): however often the bot is
stopped mid-broadcast, no customer gets two copies. The price is that a
message on the wire when the process dies counts as sent and may never arrive;
for a broadcast, a rare missing copy is better than a duplicate.

``BroadcastWatcher`` runs next to the notifier: every couple of seconds it
shows each unfinished broadcast's counts to its admin (``show``, injected: this
module knows nothing of aiogram) when they changed, and once nothing is pending
it closes the broadcast and queues the final summary to the admin through the
outbox in the same transaction, so the summary survives a restart and is sent once.
It reads its work from the database, so after a restart it resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from storage import broadcasts as store
from storage.broadcasts import Broadcast, Counts, NoRecipients
from storage.db import Database

log = logging.getLogger(__name__)

MAX_TEXT = 4096     # Telegram's limit of a message's visible characters
MAX_CAPTION = 1024  # ... and of a photo's caption
AUDIENCES = ("all", "active")
PROGRESS_INTERVAL = 2.0

__all__ = ["AUDIENCES", "Broadcast", "BroadcastWatcher", "Broadcasts", "Counts", "Draft",
           "DraftProblem", "NoRecipients", "check_draft"]


class DraftProblem(Enum):
    EMPTY = "empty"
    TEXT_TOO_LONG = "text_too_long"
    CAPTION_TOO_LONG = "caption_too_long"


@dataclass(frozen=True, slots=True)
class Draft:
    """What the admin composed: Telegram HTML, and a photo's file_id when it is one."""

    html: str
    visible_length: int  # characters as Telegram counts them
    photo: str | None = None


def check_draft(draft: Draft) -> DraftProblem | None:
    """Why Telegram would refuse to send ``draft``, or None."""
    if draft.photo is None and not draft.html.strip():
        return DraftProblem.EMPTY
    if draft.photo is None and draft.visible_length > MAX_TEXT:
        return DraftProblem.TEXT_TOO_LONG
    if draft.photo is not None and draft.visible_length > MAX_CAPTION:
        return DraftProblem.CAPTION_TOO_LONG
    return None


class Broadcasts:
    """This shop's broadcasts: queued, counted, stopped, and each copy claimed before
    its send. Bound to the database once at start-up, so the admin screens and the
    Telegram sender never hold it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def audience_sizes(self, exclude: Iterable[int]) -> dict[str, tuple[int, int]]:
        """Each audience's (reachable, skipped) customers now."""
        excluded = list(exclude)
        return {name: await store.audience_sizes(self.db, name, excluded) for name in AUDIENCES}

    async def create(self, *, admin_id: int, token: str, draft: Draft, audience: str,
                     exclude: Iterable[int], progress_chat_id: int,
                     progress_message_id: int) -> tuple[Broadcast, bool]:
        """Queue ``draft`` to ``audience`` (less ``exclude``: the admins) once per ``token``;
        returns the broadcast and whether this call made it (a second Confirm does not).
        ``NoRecipients`` when nobody in the audience can get it: nothing is sent, no
        broadcast is recorded."""
        if audience not in AUDIENCES:
            raise ValueError(f"unknown audience {audience!r}")
        problem = check_draft(draft)
        if problem is not None:
            raise ValueError(problem.value)
        return await store.create(
            self.db, admin_id=admin_id, token=token, text=draft.html, photo=draft.photo,
            audience=audience, exclude=exclude, progress_chat_id=progress_chat_id,
            progress_message_id=progress_message_id, note=draft.html[:100])

    async def cancel(self, broadcast_id: int, admin_id: int) -> int | None:
        """Stop a running broadcast; how many copies will not be sent (None: not running)."""
        return await store.cancel(self.db, broadcast_id, admin_id)

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await store.get(self.db, broadcast_id)

    async def recent(self, limit: int = 5) -> list[Broadcast]:
        return await store.recent(self.db, limit)

    async def counts(self, broadcast: Broadcast) -> Counts:
        return await store.counts(self.db, broadcast)

    async def claim(self, row_id: int) -> bool:
        """Close a copy's outbox row before its send, so no restart sends it twice;
        False when it is no longer pending (the broadcast was canceled)."""
        return await store.claim(self.db, row_id)

    async def release(self, row_id: int) -> None:
        """Telegram refused the copy before it reached anyone: pending again, for the
        notifier to retry or drop."""
        await store.release(self.db, row_id)


# ``show(broadcast, counts, finished)``: edit the admin's progress message.
Show = Callable[[Broadcast, Counts, bool], Awaitable[None]]


class BroadcastWatcher:
    def __init__(self, db: Database, show: Show, wake: Callable[[], None], *,
                 interval: float = PROGRESS_INTERVAL) -> None:
        self.db = db
        self._show = show
        self._wake = wake
        self.interval = interval

    async def run(self) -> None:
        """Watch until cancelled; a failing step is logged and the next one tried."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast progress step failed")
            await asyncio.sleep(self.interval)

    async def step(self) -> None:
        for broadcast in await store.unfinished(self.db):
            tally = await store.counts(self.db, broadcast)
            if tally.pending == 0:
                if await store.finish(self.db, broadcast.id, broadcast.admin_id):
                    self._wake()
                    finished = await store.get(self.db, broadcast.id) or broadcast
                    await self._safe_show(finished, tally, True)
                continue
            if tally.key() != broadcast.shown:
                await self._safe_show(broadcast, tally, False)
                await store.set_shown(self.db, broadcast.id, tally.key())

    async def _safe_show(self, broadcast: Broadcast, tally: Counts, finished: bool) -> None:
        try:
            await self._show(broadcast, tally, finished)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("broadcast %d: the progress message could not be edited", broadcast.id)
