"""One i18n layer for every user-facing text: gettext through ``aiogram.utils.i18n``.

Why gettext (with Babel) rather than Fluent: it is built into aiogram, its
``.po`` files are what translators and tools (Poedit, Weblate, Crowdin) know,
and English source strings double as message ids, so English is complete by
construction. A new language is a folder ``locales/<lang>/LC_MESSAGES/
messages.po``: ``compile_locales`` (bot/shop/messaging/translation_files.py) turns
it into ``.mo`` at start-up, so adding one needs no code change and no build step.

Each compiled catalog is checked as it is loaded (bot/shop/messaging/translation_check.py): a
translation whose placeholders, HTML tags or plural forms do not match its English
would raise or be refused by Telegram, so it is dropped, and that message is
shown in English. It is logged then, and the admins are told once
(``report_broken_translations``).
"""

from __future__ import annotations

import gettext
import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, SimpleI18nMiddleware
from babel import Locale, UnknownLocaleError
from babel.messages.mofile import read_mo

from bot.config import compiled_translations
from bot.shop.messaging.alerts import AdminAlerts
from bot.shop.messaging.languages import LanguageChoices
from bot.shop.messaging.translation_check import Problem, served_problems
from bot.shop.messaging.translation_files import DOMAIN, LOCALES_DIR

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "en"
SHOWN_IN_LOG = 5  # broken messages named in the start-up log line; the rest are counted

Dropped = dict[str, list[Problem]]  # per language, the unsafe translations shown in English


def build_i18n(path: Path = LOCALES_DIR) -> I18n:
    """The translations in ``path`` (``LOCALES_DIR``), compiled when needed."""
    return checked_i18n(path)[0]


def checked_i18n(path: Path = LOCALES_DIR) -> tuple[I18n, Dropped]:
    """``build_i18n``, with what it dropped (for ``report_broken_translations``).

    A folder that is not there is an error, not created: a typo in LOCALES_DIR
    would otherwise give a shop in English only, without a word.
    """
    languages = compiled_translations(path)
    if not languages:
        log.warning("no translations in %s (<lang>/LC_MESSAGES/%s.po): the shop speaks English only",
                    path, DOMAIN)
    i18n = I18n(path=path, default_locale=DEFAULT_LOCALE, domain=DOMAIN)
    dropped = unsafe_translations(i18n)
    for locale, problems in dropped.items():
        msgids = sorted({problem.msgid for problem in problems})
        _drop(i18n.locales[locale], set(msgids))
        log.warning("translations %s: %d message(s) shown in English, their translation is"
                    " unsafe (placeholders, HTML tags or plural forms differ): %s", locale,
                    len(msgids), _named(msgids))
    return i18n, dropped


def unsafe_translations(i18n: I18n) -> Dropped:
    """Per language, what is wrong in its compiled catalog (bot/shop/messaging/translation_check.py).

    The ``.mo`` is what is checked, as it is what gettext serves (a folder may
    hold a ``.mo`` without its ``.po``), read from the files.
    """
    found: Dropped = {}
    for locale in sorted(i18n.locales):
        compiled = i18n.path / locale / "LC_MESSAGES" / f"{i18n.domain}.mo"
        stat = compiled.stat()
        problems = _problems_in(compiled, stat.st_mtime_ns, stat.st_size)
        if problems:
            found[locale] = list(problems)
    return found


@lru_cache(maxsize=64)
def _problems_in(compiled: Path, _mtime_ns: int, _size: int) -> tuple[Problem, ...]:
    """A compiled catalog's problems, checked once per version of the file (60 ms a
    start, for every bot a test process starts; a changed file is checked again)."""
    with compiled.open("rb") as source:
        return tuple(served_problems(read_mo(source)))


def _drop(translation: gettext.GNUTranslations, msgids: set[str]) -> None:
    """Forget the translations of ``msgids``: gettext returns their English."""
    # GNUTranslations keeps a singular under its msgid and each plural form under
    # (msgid, n). The same private dict Django merges catalogs through; unchanged
    # since Python 2.
    catalog = translation._catalog  # type: ignore[attr-defined]
    for key in [key for key in catalog
                if (key[0] if isinstance(key, tuple) else key) in msgids]:
        del catalog[key]


def _named(msgids: list[str]) -> str:
    """A few msgids, each cut short, for one log line."""
    shown = ", ".join(repr(msgid if len(msgid) <= 40 else msgid[:39] + "…")
                      for msgid in msgids[:SHOWN_IN_LOG])
    more = len(msgids) - SHOWN_IN_LOG
    return shown + (f" and {more} more" if more > 0 else "")


async def report_broken_translations(broken: Dropped, alerts: AdminAlerts) -> None:
    """Tell the admins which translations ``checked_i18n`` dropped (shown in
    English): once per set of broken messages, not at every start (the alert's
    key is their hash)."""
    if not broken:
        return
    counts = "; ".join(f"{locale}: {len({p.msgid for p in problems})} messages"
                       for locale, problems in broken.items())
    details = "\n".join(f"{locale}: {problem.msgid!r}: {problem.what}"
                         for locale, problems in broken.items() for problem in problems)
    digest = hashlib.sha256(details.encode()).hexdigest()[:16]
    await alerts.send_once(
        f"🌐 Broken translations, shown in English until their .po is fixed ({counts})."
        " Each needs the same {placeholders} and HTML tags as its English; fix them and"
        " restart the bot.", details=details, key=f"🌐 broken translations {digest}")


class UserLanguageMiddleware(SimpleI18nMiddleware):
    """The language the user chose (/language), else their Telegram language when
    the shop has it, else English (bot/shop/messaging/languages.py).

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


def language_name(locale: str, in_locale: str | None = None) -> str:
    """A language's name, capitalised: in itself (``Русский``, ``Türkçe``: the
    language picker), or in ``in_locale`` (an admin reading a customer's card:
    ``Турецкий`` for a Russian admin)."""
    try:
        name = Locale.parse(locale).get_display_name(in_locale or locale) or locale
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
