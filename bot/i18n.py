"""One i18n layer for every user-facing text: gettext through ``aiogram.utils.i18n``.

Why gettext (with Babel) rather than Fluent: it is built into aiogram, its
``.po`` files are what translators and tools (Poedit, Weblate, Crowdin) know,
and English source strings double as message ids, so English is complete by
construction. A new language is a folder ``locales/<lang>/LC_MESSAGES/
messages.po``: ``compile_locales`` turns it into ``.mo`` at start-up, so adding
one needs no code change and no build step.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, SimpleI18nMiddleware
from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.config import ConfigError
from bot.languages import LanguageChoices

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
DEFAULT_LOCALE = "en"


def compile_locales(path: Path = LOCALES_DIR) -> list[str]:
    """Compile every ``.po`` newer than its ``.mo``; returns the languages found."""
    languages = []
    for po_path in sorted(path.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists() or mo_path.stat().st_mtime < po_path.stat().st_mtime:
            with po_path.open("rb") as source:
                catalog = read_po(source)
            with mo_path.open("wb") as target:
                write_mo(target, catalog)
            log.info("compiled translations %s", po_path.parent.parent.name)
        languages.append(po_path.parent.parent.name)
    return languages


def build_i18n(path: Path = LOCALES_DIR) -> I18n:
    """The translations in ``path`` (``LOCALES_DIR``), compiled when needed.

    A folder that is not there is an error, not created: a typo in LOCALES_DIR
    would otherwise give a shop in English only, without a word.
    """
    if not path.is_dir():
        raise ConfigError(f"configuration error: LOCALES_DIR: no folder {str(path)!r}: point it at"
                          " a folder of <lang>/LC_MESSAGES/messages.po, or leave it empty for the"
                          " shipped translations")
    try:
        languages = compile_locales(path)
    except OSError as exc:  # a read-only install: the .mo files cannot be written next to the .po
        raise ConfigError(f"configuration error: LOCALES_DIR: cannot compile the translations in"
                          f" {path} ({exc.strerror or exc}): make the folder writable, or copy it"
                          " somewhere writable and point LOCALES_DIR there") from None
    if not languages:
        log.warning("no translations in %s (<lang>/LC_MESSAGES/%s.po): the shop speaks English only",
                    path, DOMAIN)
    return I18n(path=path, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


class UserLanguageMiddleware(SimpleI18nMiddleware):
    """The language the user chose (/language), else their Telegram language when
    the shop has it, else English (bot/languages.py).

    The same as aiogram's SimpleI18nMiddleware, with the language code's
    resolution cached: Babel's locale parsing was a measurable cost per update.
    """

    def __init__(self, i18n: I18n, choices: LanguageChoices) -> None:
        super().__init__(i18n)
        self.choices = choices

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user = data.get("event_from_user")
        if user is None:
            return self.i18n.default_locale
        chosen = await self.choices.chosen(user.id)
        return locale_for(self.i18n, chosen or user.language_code)


def language_name(locale: str) -> str:
    """A language's name in itself, capitalised (``Русский``, ``Türkçe``, ``English``)."""
    try:
        name = Locale.parse(locale).get_display_name(locale) or locale
    except (UnknownLocaleError, ValueError):
        return locale
    return name[:1].upper() + name[1:]


def locale_for(i18n: I18n, language_code: str | None) -> str:
    """The shop's locale for a Telegram language code (``pt-BR`` -> ``pt_BR`` or ``pt``)."""
    if not language_code:
        return i18n.default_locale
    return _resolve(language_code, i18n.available_locales, i18n.default_locale)


@lru_cache(maxsize=256)
def _resolve(code: str, available: tuple[str, ...], default: str) -> str:
    candidates = [code.replace("-", "_"), code.split("-")[0].split("_")[0]]
    for candidate in candidates:
        for locale in available:
            if locale.lower() == candidate.lower():
                return locale
    return default
