"""Every catalog is complete and safe to format: checked against the code itself.

The messages are extracted from bot/ and handlers/ as ``make locales`` does (so a
string added to the code and not translated fails here, even before the template
is refreshed). For each language's ``.po``: every message is there, translated,
not fuzzy; each translation has the same ``{placeholders}`` and the same HTML
tags as its source, formats without error, and has as many plural forms as the
language has (Russian three, Turkish two).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "N_": None}  # as the Makefile's `-k _ -k N_`
CATALOGS = sorted(LOCALES.glob("*/LC_MESSAGES/messages.po"))
TAG = re.compile(r"</?([a-zA-Z]+)[^>]*>")


def code_messages() -> dict[str, str | None]:
    """msgid -> msgid_plural (None for a singular message), from the source."""
    found: dict[str, str | None] = {}
    for folder in ("bot", "handlers"):
        for _file, _line, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS):
            if isinstance(message, tuple):
                found[message[0]] = message[1]
            elif message:
                found.setdefault(message, None)
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def tags(text: str) -> Counter[str]:
    return Counter(tag.lower() for tag in TAG.findall(text))


def load(path: Path) -> Catalog:
    with path.open("rb") as source:
        return read_po(source)


def test_there_are_catalogs_to_check() -> None:
    assert {p.parent.parent.name for p in CATALOGS} >= {"ru", "tr"}


def test_the_code_has_messages_and_plurals() -> None:
    messages = code_messages()
    assert len(messages) > 300
    assert any(plural for plural in messages.values())


def catalog_problems(catalog: Catalog, messages: dict[str, str | None]) -> list[str]:
    problems: list[str] = []
    for msgid, plural in messages.items():
        entry = catalog.get(msgid)
        if entry is None:
            problems.append(f"missing: {msgid!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        forms = list(entry.string) if isinstance(entry.string, tuple | list) else [entry.string]
        if plural is not None:
            if not isinstance(entry.id, tuple | list):
                problems.append(f"not a plural entry: {msgid!r}")
                continue
            if len(forms) != catalog.num_plurals:
                problems.append(f"{len(forms)} plural forms, not {catalog.num_plurals}: {msgid!r}")
        sources = [msgid] if plural is None else [msgid, plural]
        wanted = set().union(*(placeholders(s) for s in sources))
        for form in forms:
            if not form:
                problems.append(f"empty: {msgid!r}")
                continue
            try:
                have = placeholders(form)
                form.format(**{name: "x" for name in have})
            except (ValueError, KeyError, IndexError) as exc:
                problems.append(f"does not format ({exc}): {form!r}")
                continue
            if have != wanted:
                problems.append(f"placeholders {sorted(have)} not {sorted(wanted)}: {form!r}")
            if tags(form) != tags(msgid):
                problems.append(f"HTML tags differ: {msgid!r} -> {form!r}")
    return problems


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_every_message_is_translated_safely(path: Path) -> None:
    problems = catalog_problems(load(path), code_messages())
    assert not problems, f"{path.parent.parent.name}: {len(problems)} problems:\n" + "\n".join(
        problems[:40])


def test_each_kind_of_fault_is_caught() -> None:
    """The check above can fail: a catalog with each kind of fault is reported."""
    good, placeholder, tag, plural = "Hello", "Hi, {name}!", "<b>Top</b>", "{count} order"
    messages = {good: None, placeholder: None, tag: None, plural: "{count} orders",
                "Gone": None, "Fuzzy": None, "Braces": None}
    catalog = Catalog(locale="ru")
    catalog.add(good, "Привет")
    catalog.add(placeholder, "Привет, {имя}!")
    catalog.add(tag, "Топ")
    catalog.add((plural, "{count} orders"), ("{count} заказ", "{count} заказа"))
    catalog.add("Fuzzy", "Нечто", flags=["fuzzy"])
    catalog.add("Braces", "{")
    problems = catalog_problems(catalog, messages)
    assert len(problems) == 6, problems
    for fault in ("placeholders", "HTML tags", "2 plural forms, not 3", "missing: 'Gone'",
                  "fuzzy: 'Fuzzy'", "does not format"):
        assert any(fault in problem for problem in problems), fault
    assert not catalog_problems(catalog, {good: None})
