"""The durable inbox: no update Telegram delivered is lost at a stop or a crash.

Every update takes one way in, ``UpdateFeed.take``: it is committed to the
``inbox`` table (storage/inbox.py) *before* Telegram is told it arrived (the
webhook's 200; in polling mode, the next ``getUpdates`` whose offset passes it),
then handled as a task, and marked handled when its handler is done. A handler
that fails is marked handled too (the errors router has alerted; trying it again
would fail again). Only a handler cut off by the stop (cancelled past
``SHUTDOWN_GRACE``) or a killed process leaves its row unhandled, and

* at the next start ``replay`` hands those rows to the dispatcher first, in
  arrival order, before any new update is taken: each chat's updates keep their
  order, since the per-chat lock (aiogram's events isolation) is taken in the
  order the tasks start;
* a second delivery of a stored update (Telegram repeats what it was not sure we
  got: the same update_id and content) is dropped, so nothing is handled twice
  because Telegram sent it twice;
* a row tried at ``MAX_ATTEMPTS`` starts is given up, with an alert (an update
  that takes the process down with it must not do so at every start);
* pre-checkout and inline queries are not replayed: Telegram gives them seconds,
  and by the next start it has cancelled the checkout or dropped the query.

What a replay may do twice is a screen (a menu sent again). Where money or orders
move the handlers are keyed: a payment is credited once per charge id, an order
once per form token, an admin credit once per message, so a replay never places,
credits or refunds twice.

Polling is done here too (``poll``), with the raw ``getUpdates`` answer: each
update is parsed on its own, so one that cannot be read is logged and passed
over rather than stopping the bot's polling for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from pydantic import ValidationError

from storage import inbox as inbox_store
from storage.behind import WriteBehind
from storage.db import Database

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 200  # updates handled at once (each is small; past it, updates wait at Telegram)
MAX_ATTEMPTS = 3  # starts that may try one unhandled update
NOT_REPLAYED = ("pre_checkout_query", "inline_query")  # answerable for seconds only
CLOSE_TIMEOUT = 10.0  # seconds the last handled marks may take at a stop
POLL_TIMEOUT = 10  # seconds a getUpdates long poll waits at Telegram
POLL_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)

Alert = Callable[..., Awaitable[None]]


def canonical(raw: dict[str, Any]) -> str:
    """An update's JSON in one form, however it came (webhook text, polling): a
    repeat delivery is recognised by its content."""
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class UpdatesAsJson(GetUpdates):
    """``getUpdates`` with its updates left as JSON: aiogram validates a whole answer at
    once, so one update it cannot read would fail every poll; each is read alone."""

    __returning__ = list[dict[str, Any]]


class UpdateFeed:
    """Stores updates, hands them to the dispatcher as tasks, marks them handled."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, db: Database, *,
                 limit: int = MAX_IN_FLIGHT, alert: Alert | None = None) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.db = db
        self.limit = limit
        self._alert = alert
        self.tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()
        self._to_store: list[tuple[list[tuple[Update, dict[str, Any]]],
                                   asyncio.Future[list[asyncio.Task[None]]]]] = []
        self._storing: asyncio.Task[None] | None = None
        self._marks = WriteBehind(self._write_marks, "inbox marks")  # of handled updates

    @property
    def count(self) -> int:
        """Updates taken and not yet handled."""
        return len(self.tasks)

    @property
    def full(self) -> bool:
        return len(self.tasks) >= self.limit

    def parse(self, raw: Any) -> Update:
        """An update from Telegram's JSON; ``ValueError`` when it is not one."""
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        try:
            return Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError as exc:
            raise ValueError(str(exc)[:200]) from None

    async def take(self, updates: list[tuple[Update, dict[str, Any]]]) -> list[asyncio.Task[None]]:
        """Commit ``(update, its JSON object)`` pairs, then start handling the new ones
        (a repeat delivery of a stored update is not new); returns their tasks.

        Returns once they are committed: only then may Telegram be told they
        arrived. A database error is raised before anything is acknowledged.
        Updates taken while a commit is under way wait for the next one, and go
        in it together (webhook calls come many at once: one commit each would
        queue them all in the database thread).
        """
        taken: asyncio.Future[list[asyncio.Task[None]]] = \
            asyncio.get_running_loop().create_future()
        self._to_store.append((updates, taken))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_waiting())
        return await taken

    async def _store_waiting(self) -> None:
        while self._to_store:
            waiting, self._to_store = self._to_store, []
            rows = [(u.update_id, canonical(raw)) for updates, _ in waiting for u, raw in updates]
            try:
                seqs = iter(await inbox_store.store(self.db, rows))
            except BaseException as exc:
                for _, taken in waiting:
                    if not taken.done():
                        taken.set_exception(exc if isinstance(exc, Exception)
                                            else RuntimeError("the inbox stopped"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for updates, taken in waiting:
                started = []
                for update, _ in updates:
                    seq = next(seqs)
                    if seq is not None:
                        started.append(self._start(update, seq))
                if not taken.done():  # its caller may have gone (a cancelled webhook call)
                    taken.set_result(started)

    async def replay(self) -> int:
        """Start the updates a previous run left unhandled; returns how many."""
        rows = await inbox_store.take_unhandled(self.db)
        given_up: list[int] = []
        started = 0
        for row in rows:
            try:
                update = self.parse(json.loads(row.body))
            except (ValueError, RecursionError):
                log.error("inbox: update %d cannot be read again; passed over", row.update_id)
                given_up.append(row.seq)
                continue
            if row.attempts > MAX_ATTEMPTS:
                log.error("inbox: update %d was tried at %d starts; given up", row.update_id,
                          MAX_ATTEMPTS)
                if self._alert is not None:
                    await self._alert(
                        f"📥 Update {row.update_id} was being handled when the bot stopped, at"
                        f" {MAX_ATTEMPTS} starts in a row; it was given up so the shop can run."
                        " Check the log around those stops.", key=f"inbox-given-up:{row.seq}")
                given_up.append(row.seq)
                continue
            if update.event_type in NOT_REPLAYED:
                given_up.append(row.seq)
                continue
            self._start(update, row.seq)
            started += 1
        if given_up:
            await inbox_store.mark_handled(self.db, given_up)
        if rows:
            log.warning("inbox: %d update(s) left unhandled by the last run: %d handled again now",
                        len(rows), started)
        return started

    async def room(self) -> None:
        """Until fewer than ``limit`` updates are being handled."""
        await self._room.wait()

    def _start(self, update: Update, seq: int) -> asyncio.Task[None]:
        task = asyncio.create_task(self._handle(update, seq))
        self.tasks.add(task)
        self._idle.clear()
        if self.full:
            self._room.clear()
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.full:
            self._room.set()
        if not self.tasks:
            self._idle.set()

    async def _handle(self, update: Update, seq: int) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:  # the errors router alerted already; the next update goes on
            log.exception("update %s failed", update.update_id)
        # Cancelled (the stop, past its grace): not marked, so handled at the next start.
        self._marks.note(seq)

    async def _write_marks(self, seqs: list[int]) -> None:
        """Marks of the updates done meanwhile, in one statement: under a burst, many.
        One not written (the database failing to the end) is handled again at the
        next start."""
        await inbox_store.mark_handled(self.db, seqs)

    async def drain(self, timeout: float) -> bool:
        """Wait until no update is being handled (True), or ``timeout`` seconds (False)."""
        if self._idle.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        return False

    async def cancel_rest(self) -> None:
        """Past the grace: stop what still runs before the panels and the database close
        under it. Its rows stay unhandled and are handled at the next start; an order
        cut off while at its panel stays ``submitting``, which the next start turns
        into ``unknown`` for an admin (never lost, never doubled)."""
        rest = list(self.tasks)
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=5)

    async def close(self) -> None:
        """Write the last handled marks (call once nothing is being handled)."""
        await self._marks.close(CLOSE_TIMEOUT)


async def poll(feed: UpdateFeed, bot: Bot, allowed_updates: list[str],
               stop: asyncio.Event) -> None:
    """Long-poll Telegram into ``feed`` until ``stop`` is set.

    The offset that confirms a batch to Telegram is sent only after the batch is
    committed; a batch whose commit failed is asked for again. Network and
    Telegram errors are retried with a growing pause, as aiogram's polling does.
    """
    offset: int | None = None
    backoff = Backoff(POLL_BACKOFF)
    failing = False
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            await _first(feed.room(), stopping)
            if stop.is_set():
                break
            request = UpdatesAsJson(offset=offset, timeout=POLL_TIMEOUT,
                                 allowed_updates=allowed_updates)
            timeout = int((bot.session.timeout or 60) + POLL_TIMEOUT)
            try:
                answer = await _first(bot(request, request_timeout=timeout), stopping)
                if answer is None:
                    break
                batch = _readable(feed, answer)
                await feed.take(batch)
            except Exception as exc:
                if not failing:
                    log.error("polling: updates could not be taken (%s: %s); retrying",
                              type(exc).__name__, str(exc)[:200])
                failing = True
                await _first(backoff.asleep(), stopping)
                continue
            if failing:
                log.info("polling: updates are taken again")
                backoff.reset()
                failing = False
            if answer:
                offset = max(_update_id(raw) for raw in answer) + 1
    finally:
        stopping.cancel()


def _update_id(raw: Any) -> int:
    update_id = raw.get("update_id") if isinstance(raw, dict) else None
    return update_id if isinstance(update_id, int) and not isinstance(update_id, bool) else -1


def _readable(feed: UpdateFeed,
              answer: list[dict[str, Any]]) -> list[tuple[Update, dict[str, Any]]]:
    """The updates of a getUpdates answer that can be read; the others are logged."""
    batch = []
    for raw in answer:
        try:
            update = feed.parse(raw)
        except ValueError as exc:
            log.error("polling: update %s cannot be read (%s); passed over", _update_id(raw), exc)
            continue
        batch.append((update, raw))
    return batch


async def _first(work: Awaitable[Any], stopping: asyncio.Task[Any]) -> Any:
    """``work``'s result, or None (``work`` cancelled) when ``stopping`` ends first."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
