"""The one redaction of secrets, for every text that leaves the process or is stored.

The bot token and every panel key are registered here when they are first used
(``register``); ``redact`` then replaces each of them, in any of the forms it
can take in a URL or a form body, with ``***``. Log lines, admin alerts, outbox
rows, ``orders.error`` and audit rows all pass through ``redact``, so a library
that puts a URL with the token into an exception's text (aiohttp does), or a
panel that echoes its key in an error body, cannot carry a secret anywhere.

Redact before cutting a text short: a cut can leave half a secret that no
longer matches.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(*values: str | SecretStr | None) -> None:
    """Remember secrets to hide from now on (empty and very short values are ignored)."""
    global _pattern
    with _lock:
        before = len(_secrets)
        for value in values:
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not raw or len(raw) < MIN_SECRET:
                continue
            _secrets.update({raw, quote(raw, safe=""), quote_plus(raw)})
        if len(_secrets) != before:
            # Longest first, so a secret that contains another is masked whole.
            alternatives = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(map(re.escape, alternatives)))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)
