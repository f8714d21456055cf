"""Is a translation safe to show? One check, for the start-up (handlers/middlewares/i18n.py drops what
fails it) and for the build (tests/test_locales.py fails on it).

A translation is safe when it has the same ``{placeholders}`` as its English
(for a plural message: as its singular and plural together), the same HTML tags
(names and counts: Telegram refuses a message whose tags do not match), formats
without error, and, for a plural message, has as many forms as its language.
Anything else would raise in ``str.format`` or be refused by Telegram: the
customer would get an apology, or a notice would never leave.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from babel.messages.catalog import Catalog, Message

TAG = re.compile(r"</?([a-zA-Z]+)[^>]*>")


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one message of a catalog."""

    msgid: str
    what: str

    def __str__(self) -> str:
        return self.what


def placeholders(text: str) -> set[str]:
    """The ``{names}`` in ``text``; ValueError when its braces do not parse."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def tags(text: str) -> Counter[str]:
    """How many of each HTML tag (opening and closing) ``text`` has."""
    return Counter(tag.lower() for tag in TAG.findall(text))


def translation_problems(msgid: str, msgid_plural: str | None, forms: Sequence[str],
                         num_plurals: int | None = None) -> list[str]:
    """What is wrong with the translation ``forms`` of ``msgid`` (one form for a
    singular message); empty when it is safe to show. ``num_plurals``: how many
    forms the language has, when known."""
    problems: list[str] = []
    if msgid_plural is not None and num_plurals is not None and len(forms) != num_plurals:
        problems.append(f"{len(forms)} plural forms, not {num_plurals}: {msgid!r}")
    sources = [msgid] if msgid_plural is None else [msgid, msgid_plural]
    try:
        wanted = set().union(*(placeholders(source) for source in sources))
    except ValueError:
        wanted = set()  # the English itself is not a format string: nothing to compare
    for form in forms:
        if not form:
            problems.append(f"empty: {msgid!r}")
            continue
        try:
            have = placeholders(form)
            form.format(**{name: "x" for name in have})
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            problems.append(f"does not format ({exc}): {form!r}")
            continue
        if have != wanted:
            problems.append(f"placeholders {sorted(have)} not {sorted(wanted)}: {form!r}")
        if tags(form) != tags(msgid):
            problems.append(f"HTML tags differ: {msgid!r} -> {form!r}")
    return problems


def _forms(message: Message) -> list[str]:
    string_ = message.string
    if isinstance(string_, tuple | list):
        return [str(form or "") for form in string_]
    return [str(string_ or "")]


def served_problems(catalog: Catalog) -> list[Problem]:
    """The problems of every entry the bot would show: translated (not empty) and
    not fuzzy, as ``write_mo`` compiles them."""
    problems: list[Problem] = []
    # The header's Plural-Forms, else the locale's (CLDR), else 2: what the compiled
    # catalog's plural rule will pick from, so always known.
    plurals = catalog.num_plurals
    for message in catalog:
        if not message.id or message.fuzzy or not any(_forms(message)):
            continue  # the header; or not compiled, so English already
        if isinstance(message.id, tuple | list):
            msgid, plural = str(message.id[0]), str(message.id[1])
        else:
            msgid, plural = str(message.id), None
        problems += [Problem(msgid, what)
                     for what in translation_problems(msgid, plural, _forms(message), plurals)]
    return problems


def catalog_problems(catalog: Catalog, messages: Mapping[str, str | None]) -> list[Problem]:
    """Everything wrong in ``catalog`` for the code's ``messages`` (msgid -> msgid_plural,
    None for a singular): what is missing, fuzzy or empty as well as what is unsafe."""
    problems: list[Problem] = []
    for msgid, plural in messages.items():
        entry = catalog.get(msgid)
        if entry is None:
            problems.append(Problem(msgid, f"missing: {msgid!r}"))
            continue
        if entry.fuzzy:
            problems.append(Problem(msgid, f"fuzzy: {msgid!r}"))
        if plural is not None and not isinstance(entry.id, tuple | list):
            problems.append(Problem(msgid, f"not a plural entry: {msgid!r}"))
            continue
        problems += [Problem(msgid, what) for what in translation_problems(
            msgid, plural, _forms(entry), catalog.num_plurals)]
    return problems
