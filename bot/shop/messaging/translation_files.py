"""Where the shipped translations are, and their compiled ``.mo`` files.

Kept apart from the i18n middleware (handlers/middlewares/i18n.py, which needs
aiogram) so start-up can compile them, and say a read-only folder is a problem,
before aiogram is imported (bot/app/preflight.py).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parents[3] / "locales"  # beside handlers/ and bot/
DOMAIN = "messages"


def compile_locales(path: Path = LOCALES_DIR) -> list[str]:
    """Compile every ``.po`` newer than its ``.mo``; returns the languages found.
    ``OSError`` when a ``.mo`` can't be written."""
    languages = []
    for po_path in sorted(path.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists() or mo_path.stat().st_mtime < po_path.stat().st_mtime:
            with po_path.open("rb") as source:
                catalog = read_po(source)
            # Written beside it and moved into place: another process starting at the
            # same moment (a second bot on the same install, the test workers on a
            # fresh clone) reads the old file or the whole new one, never a half.
            partial = mo_path.with_name(f".{mo_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            try:
                with partial.open("wb") as target:
                    write_mo(target, catalog)
                os.replace(partial, mo_path)
            finally:
                partial.unlink(missing_ok=True)
            log.info("compiled translations %s", po_path.parent.parent.name)
        languages.append(po_path.parent.parent.name)
    return languages
