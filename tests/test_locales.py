"""Every catalog is complete and safe to format: checked against the code itself.

The messages are extracted from bot/ and handlers/ as ``make locales`` does (so a
string added to the code and not translated fails here, even before the template
is refreshed). For each language's ``.po``: every message is there, translated,
not fuzzy; each translation has the same ``{placeholders}`` and the same HTML
tags as its source, formats without error, and has as many plural forms as the
language has (Russian three, Turkish two). The safety check is the bot's own
(bot/shop/messaging/translation_check.py), which drops what fails it at start-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from hypothesis import assume, given
from hypothesis import strategies as st

from bot.shop.messaging.translation_check import (
    catalog_problems,
    placeholders,
    served_problems,
    tags,
    translation_problems,
)

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "N_": None}  # as the Makefile's `-k _ -k N_`
CATALOGS = sorted(LOCALES.glob("*/LC_MESSAGES/messages.po"))


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


def load(path: Path) -> Catalog:
    with path.open("rb") as source:
        return read_po(source)


def test_there_are_catalogs_to_check() -> None:
    assert {p.parent.parent.name for p in CATALOGS} >= {"ru", "tr"}


def test_the_code_has_messages_and_plurals() -> None:
    messages = code_messages()
    assert len(messages) > 300
    assert any(plural for plural in messages.values())


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_every_message_is_translated_safely(path: Path) -> None:
    problems = [str(problem) for problem in catalog_problems(load(path), code_messages())]
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
    problems = [str(problem) for problem in catalog_problems(catalog, messages)]
    assert len(problems) == 6, problems
    for fault in ("placeholders", "HTML tags", "2 plural forms, not 3", "missing: 'Gone'",
                  "fuzzy: 'Fuzzy'", "does not format"):
        assert any(fault in problem for problem in problems), fault
    assert not catalog_problems(catalog, {good: None})


def test_the_start_up_check_drops_only_what_is_unsafe_to_show() -> None:
    """What the bot checks at start-up (served_problems, on what gettext would serve):
    a wrong placeholder, a lost tag, missing plural forms, broken braces. Not what
    is fuzzy or untranslated: those are not compiled, so already English."""
    catalog = Catalog(locale="ru")
    catalog.add("Hello", "Привет")
    catalog.add("Hi, {name}!", "Привет, {имя}!")
    catalog.add("<b>Top</b>", "Топ")
    catalog.add(("{count} order", "{count} orders"), ("{count} заказ", "{count} заказа"))
    catalog.add("Braces", "{")
    catalog.add("Fuzzy", "{нечто}", flags=["fuzzy"])
    catalog.add("Untranslated {x}", "")
    problems = served_problems(catalog)
    assert {p.msgid for p in problems} == {"Hi, {name}!", "<b>Top</b>", "{count} order",
                                           "Braces"}, problems


# --- the check itself, on made-up texts -------------------------------------------------

WORDS = st.text(st.characters(codec="utf-8", exclude_characters="{}<>",
                              exclude_categories=["Cs"]), min_size=1, max_size=12)
NAMES = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)
TAGS = st.sampled_from(["b", "i", "code", "u", "s"])


@st.composite
def english(draw: st.DrawFn) -> list[str]:
    """A source text as pieces: words, {placeholders} and <tag>words</tag>."""
    pieces: list[str] = []
    for kind in draw(st.lists(st.sampled_from(["word", "name", "tag"]), min_size=1,
                              max_size=8)):
        if kind == "word":
            pieces.append(draw(WORDS))
        elif kind == "name":
            pieces.append("{" + draw(NAMES) + "}")
        else:
            tag = draw(TAGS)
            pieces.append(f"<{tag}>{draw(WORDS)}</{tag}>")
    return pieces


def translated(pieces: list[str], data: st.DataObject) -> str:
    """The same placeholders and tags in another order, the words replaced."""
    kept = [p if p.startswith(("{", "<")) else data.draw(WORDS) for p in pieces]
    return " ".join(data.draw(st.permutations(kept)))


@given(english(), st.data())
def test_a_faithful_translation_passes(pieces: list[str], data: st.DataObject) -> None:
    msgid = " ".join(pieces)
    assert translation_problems(msgid, None, [translated(pieces, data)]) == []


@given(english(), st.data())
def test_a_misspelt_placeholder_is_caught(pieces: list[str], data: st.DataObject) -> None:
    names = [p for p in pieces if p.startswith("{")]
    assume(names)
    wrong = data.draw(NAMES)
    assume("{" + wrong + "}" not in names)
    text = translated(pieces, data).replace(data.draw(st.sampled_from(names)),
                                            "{" + wrong + "}", 1)
    problems = translation_problems(" ".join(pieces), None, [text])
    assert any(p.startswith("placeholders") for p in problems), problems


@given(english(), st.data())
def test_a_lost_or_extra_tag_is_caught(pieces: list[str], data: st.DataObject) -> None:
    text = translated(pieces, data)
    tagged = [p for p in pieces if p.startswith("<")]
    if tagged and data.draw(st.booleans()):
        lost = data.draw(st.sampled_from(tagged))
        text = text.replace(lost, lost[lost.index(">") + 1:], 1)  # the opening tag lost
    else:
        text += f" <{data.draw(TAGS)}>"
    problems = translation_problems(" ".join(pieces), None, [text])
    assert any(p.startswith("HTML tags") for p in problems), problems


@given(english(), st.integers(1, 6), st.integers(1, 6), st.data())
def test_plural_forms_must_number_as_the_language_has(pieces: list[str], forms: int,
                                                      language_has: int,
                                                      data: st.DataObject) -> None:
    msgid = " ".join(pieces)
    texts = [translated(pieces, data) for _ in range(forms)]
    problems = translation_problems(msgid, msgid + " more", texts, language_has)
    assert any("plural forms" in p for p in problems) == (forms != language_has), problems


@given(english(), st.lists(st.one_of(WORDS, st.sampled_from(["{", "}", "{}", "{0}", "<b>",
                                                              "</b>", "{x!r}", "{y:>3}"]),
                                     NAMES.map(lambda n: "{" + n + "}")), max_size=8))
def test_what_passes_formats_with_the_english_arguments(pieces: list[str],
                                                         text_pieces: list[str]) -> None:
    """Whatever the text: the check never raises, and what it lets through formats
    with the arguments the English is given and keeps its tags."""
    msgid, text = " ".join(pieces), "".join(text_pieces)
    if not translation_problems(msgid, None, [text]):
        text.format(**{name: 1 for name in placeholders(msgid)})
        assert tags(text) == tags(msgid)


def test_a_catalog_compiled_while_another_process_reads_it_is_never_half_there(
        tmp_path: Path) -> None:
    """Processes starting together on a fresh install (the suite's workers did) each
    compile the ``.mo`` files; one reading while another writes saw a truncated file."""
    import gettext
    import os
    import shutil
    import threading

    from bot.shop.messaging.translation_files import LOCALES_DIR, compile_locales

    target = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, target, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    compile_locales(target)
    russian = target / "ru" / "LC_MESSAGES"
    done = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        while not done.is_set():
            try:
                with (russian / "messages.mo").open("rb") as compiled:
                    gettext.GNUTranslations(compiled)
            except Exception as exc:  # a half-written file
                failures.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(30):  # each time newer than its .mo, so compiled again
            os.utime(russian / "messages.po", (n + 2e9, n + 2e9))
            compile_locales(target)
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert sorted(p.name for p in russian.iterdir()) == ["messages.mo", "messages.po"]
