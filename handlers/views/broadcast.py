"""Broadcasts' texts: a received message (an admin's draft) as Telegram HTML that
renders as it was sent, the progress message and the final summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from aiogram.types import InlineKeyboardMarkup, MessageEntity
from aiogram.utils.i18n import gettext as _
from aiogram.utils.text_decorations import HtmlDecoration

from bot.shop.messaging.broadcasts import Broadcast, Counts
from handlers.callbacks import AdminBroadcastCb
from handlers.views.keyboards import button, keyboard
from handlers.views.text import number


class _QuotedAttributes(HtmlDecoration):
    """aiogram's HTML for a message's entities, with every attribute value escaped.

    aiogram (3.31 at least) writes a link's URL, a pre block's language and a
    custom emoji's id into ``attr="..."`` as they are: a URL holding ``">`` ended
    the attribute and opened markup of its own (Telegram refused the message, or
    showed other formatting). Each value here is escaped with ``quote=True``
    (``"`` ``'`` ``<`` ``>`` ``&``), which Telegram decodes back. A pre block's
    language goes where Telegram reads it, ``<code class="language-...">``
    (aiogram writes a ``language`` attribute Telegram ignores).
    """

    def link(self, value: str, link: str) -> str:
        return f'<a href="{escape(link)}">{value}</a>'

    def pre_language(self, value: str, language: str) -> str:
        return f'<pre><code class="language-{escape(language)}">{value}</code></pre>'

    def custom_emoji(self, value: str, custom_emoji_id: str) -> str:
        return f'<tg-emoji emoji-id="{escape(custom_emoji_id)}">{value}</tg-emoji>'

    def date_time(self, value: str, unix_time: int | datetime,
                  date_time_format: str | None = None) -> str:
        if isinstance(unix_time, datetime):
            unix_time = int(unix_time.timestamp())
        shown = f' format="{escape(date_time_format)}"' if date_time_format else ""
        return f'<tg-time unix="{int(unix_time)}"{shown}>{value}</tg-time>'


_MESSAGE_HTML = _QuotedAttributes()


def message_html(text: str, entities: Sequence[MessageEntity] | None) -> str:
    """A received message (an admin's broadcast draft) as Telegram HTML that
    renders exactly as it was sent: its text escaped, its formatting kept."""
    return _MESSAGE_HTML.unparse(text, list(entities) if entities else None)


def state_word(broadcast: Broadcast, finished: bool) -> str:
    if broadcast.state == "canceled":
        return _("canceled")
    if finished or broadcast.state == "done":
        return _("done")
    return _("sending…")


def progress_text(broadcast: Broadcast, counts: Counts, finished: bool = False) -> str:
    lines = [_("<b>📣 Broadcast #{id}</b> · {state}").format(
                 id=broadcast.id, state=state_word(broadcast, finished)),
             _("Queued: {n}").format(n=number(counts.queued)),
             _("Sent: {n}").format(n=number(counts.sent)),
             _("Failed: {n}").format(n=number(counts.failed)),
             _("Blocked the bot: {n}").format(n=number(counts.blocked))]
    if counts.canceled:
        lines.append(_("Not sent (canceled): {n}").format(n=number(counts.canceled)))
    if counts.pending:
        lines.append(_("Waiting: {n}").format(n=number(counts.pending)))
    return "\n".join(lines)


def progress_keyboard(broadcast: Broadcast, finished: bool) -> InlineKeyboardMarkup | None:
    if finished or broadcast.state != "running":
        return None
    return keyboard([button(_("⛔ Cancel broadcast"),
                            AdminBroadcastCb(action="cancel", id=broadcast.id))])


def summary_text(broadcast: Broadcast, counts: Counts) -> str:
    """The final summary, sent to the admin through the outbox (handlers/outbound/notices.py)."""
    if broadcast.state == "canceled":
        head = _("📣 Broadcast #{id} was canceled.").format(id=broadcast.id)
    else:
        head = _("📣 Broadcast #{id} is done.").format(id=broadcast.id)
    tally = (_("{sent} sent, {failed} failed, {blocked} blocked the bot, {canceled} not sent "
               "(canceled); {queued} queued.") if counts.canceled else
             _("{sent} sent, {failed} failed, {blocked} blocked the bot; {queued} queued."))
    return "\n".join([head, tally.format(
        sent=number(counts.sent), failed=number(counts.failed), blocked=number(counts.blocked),
        canceled=number(counts.canceled), queued=number(counts.queued))])
