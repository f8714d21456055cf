"""A received message (an admin's broadcast draft) as Telegram HTML that renders
as it was sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from aiogram.types import MessageEntity
from aiogram.utils.text_decorations import HtmlDecoration


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
