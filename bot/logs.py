"""Logging set-up with a redactor: no secret value can reach a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TextIO

from bot import redaction


class RedactSecrets(logging.Filter):
    """Masks every registered secret (bot/redaction.py) in a record's message and traceback.

    The filter keeps no list of its own: it asks the one redaction at every record,
    so a secret registered after logging began (the Bot's token, a panel client's
    key) is masked too. ``secrets`` given here are registered there.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        redaction.register(*secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not redaction.registered():
            return True
        message = record.getMessage()
        text = redaction.redact(message)
        if text != message:
            record.msg, record.args = text, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redaction.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redaction.redact(record.stack_info)
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (),
                  stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep the noise (and any URL) out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
