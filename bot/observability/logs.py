"""Logging set-up with a redactor: no secret value can reach a log line.

Two formats (``LOG_FORMAT``): ``text``, a line a person reads, and ``json``,
one object a line for a log collector::

    {"time": "2025-01-31T12:00:00.123Z", "level": "ERROR", "logger": "bot.shop.orders.service",
     "message": "order 7: outcome unknown at panel main: ...", "order_id": 7}

``exc`` holds the traceback when there is one; ``update_id`` is the Telegram
update being handled (handlers/middlewares/metrics.py sets ``current_update_id``) and
``order_id`` the order a line is about (``extra={"order_id": ...}``), each only
when known.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from bot.observability import redaction

# The update the current task is handling; set by the update middleware.
current_update_id: ContextVar[int | None] = ContextVar("current_update_id", default=None)
CONTEXT_FIELDS = ("update_id", "order_id")
# aiogram's loggers whose INFO lines are one (or two) per update.
PER_UPDATE_LOGGERS = ("aiogram.event", "aiogram.middlewares")


# The wholesale API's customers' keys are many and kept only as hashes, so they
# can't be registered; yet the web server quotes a request line it can't read
# (too long, a garbled method) in its log line, query string and key included.
# In a log line the value of any key= field is masked.
_KEY_FIELD = re.compile(r"([?&]key=)[^&\s'\"\\]+", re.IGNORECASE)


def redact_line(text: str) -> str:
    """``text`` as a log line may carry it: registered secrets and key= values masked."""
    return _KEY_FIELD.sub(r"\g<1>" + redaction.MASK, redaction.redact(text))


class RedactSecrets(logging.Filter):
    """Masks every registered secret (bot/observability/redaction.py), and every key=
    field's value, in a record's message and traceback.

    The filter keeps no list of its own: it asks the one redaction at every record,
    so a secret registered after logging began (the Bot's token, a panel client's
    key) is masked too. ``secrets`` given here are registered there.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        redaction.register(*secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        text = redact_line(message)
        if text != message:
            record.msg, record.args = text, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_line(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_line(record.stack_info)
        return True


class UpdateContext(logging.Filter):
    """Puts the update being handled on each record (as ``update_id``), unless the
    line named one itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "update_id", None) is None:
            update_id = current_update_id.get()
            if update_id is not None:
                record.update_id = update_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, and
    ``exc``, ``update_id``, ``order_id`` when there are any.

    Every text is redacted here as well as in ``RedactSecrets``: the formatter may
    be given a record no filter saw, and the extra fields are not the filter's.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_line(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        exc = "\n".join(part for part in (record.exc_text, record.stack_info) if part)
        if exc:
            entry["exc"] = redact_line(exc)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value if isinstance(value, int) else redact_line(str(value))
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (),
                  stream: TextIO | None = None, log_format: str = "text") -> None:
    """The root logger writes to ``stream`` (stderr) in ``log_format``: text or json."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    handler.addFilter(UpdateContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep the noise (and any URL) out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiogram writes two INFO lines for every update ("Update id=... is handled",
    # "Answer to callback query"): per-update detail, so shown at DEBUG only; their
    # warnings and errors still pass.
    per_update = logging.NOTSET if root.getEffectiveLevel() <= logging.DEBUG else logging.WARNING
    for name in PER_UPDATE_LOGGERS:
        logging.getLogger(name).setLevel(per_update)
