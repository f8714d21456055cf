"""The shop in Russian and Turkish, end to end: a customer per language walks the shop
through the emulator and every word the bot says is theirs.

Buttons are tapped by their callback data (labels change with the language). Each
message (and each toast) the customer receives is checked: no English sentence
of the bot's own is left in it (panel-supplied names and descriptions are English
in the sandbox and are allowed), Russian messages are written in Cyrillic, and
money, numbers and dates are in the customer's format.
"""

from __future__ import annotations

import re
import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.devtools.emulator import ChatMessage, ScriptedUser
from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG
from handlers.callbacks import (
    CategoryCb,
    FormCb,
    LanguageCb,
    MenuCb,
    OrderCb,
    OrdersCb,
    OrderStartCb,
    PlatformCb,
    ServiceCb,
)
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, Shop, running_shop

pytestmark = pytest.mark.timeout(120)

LOCALES = Path(__file__).resolve().parent.parent / "locales"
PANEL_TEXTS = sorted({t for e in DEFAULT_CATALOG for t in (e.name, e.category, e.description)
                      if t}, key=len, reverse=True)
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@cache
def english_fragments(lang: str) -> tuple[str, ...]:
    """Pieces of the bot's English sentences that a translation must not keep: the
    literal text between placeholders and tags, three words or more."""
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    pieces = set()
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        for msgid in ids:
            literal = "".join(text for text, *_ in string.Formatter().parse(msgid))
            for piece in re.split(r"<[^>]+>|[\n{}]", literal):
                piece = piece.strip(" .,:;!?()“”—·")
                if len(piece.split()) >= 3:
                    pieces.add(piece)
    return tuple(sorted(pieces))


def bot_words(text: str) -> str:
    """The message without what the panel and the customer supplied."""
    for panel_text in PANEL_TEXTS:
        text = text.replace(panel_text, "")
    return re.sub(r"https?://\S+", "", text)


def assert_in_language(lang: str, text: str) -> None:
    if lang == "en":
        return  # the source language
    words = bot_words(text)
    leftovers = [piece for piece in english_fragments(lang) if piece in words]
    assert not leftovers, f"untranslated in {lang}: {leftovers} in {text!r}"
    if lang == "ru" and re.search(r"[A-Za-zА-Яа-я]{3}", words):
        assert CYRILLIC.search(words), f"not Russian: {text!r}"


class Walk:
    """A customer of one language; every message and toast they get is checked."""

    def __init__(self, user: ScriptedUser, lang: str) -> None:
        self.user, self.lang = user, lang
        self.checked = 0

    def check_new(self) -> None:
        for message in self.user.bot_messages[self.checked:]:
            assert_in_language(self.lang, message.text)
        self.checked = len(self.user.bot_messages)
        assert_in_language(self.lang, self.user.text)  # an edited message too

    async def send(self, text: str) -> str:
        await self.user.send(text)
        self.check_new()
        return self.user.text

    async def tap(self, data: str, message: ChatMessage | None = None) -> str:
        answer = await self.user.tap_data(data, message)
        if answer.get("text"):
            assert_in_language(self.lang, answer["text"])
        self.check_new()
        return self.user.text

    async def tap_prefix(self, prefix: str) -> str:
        for message in reversed(self.user.bot_messages):
            for row in (message.markup or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("callback_data", "").startswith(prefix):
                        return await self.tap(button["callback_data"], message)
        raise AssertionError(f"no button with data {prefix!r}")


async def ids(shop: Shop, service_id: int) -> tuple[int, int]:
    [(ref, category)] = await shop.query(
        "SELECT id, category_id FROM services WHERE service_id = ?", (str(service_id),))
    return int(ref), int(category)


PRICE = {"ru": "0,33\u00a0$", "tr": "$0,33"}  # 1000 likes of service 103, as each writes it
GROUPED = {"ru": "50\u00a0000", "tr": "50.000"}  # the service's maximum


@pytest.mark.parametrize("lang", ["ru", "tr"])
async def test_a_customer_shops_in_their_language(make_sandbox: SandboxFactory, tmp_path: Path,
                                                  lang: str) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, track_interval=1) as shop:
        await shop.credit(42, 5_000)
        walk = Walk(shop.user(42, "Alex", language_code=lang), lang)
        ref, category = await ids(shop, 103)

        await walk.send("/start")
        await walk.send("hello?")  # not understood: the menu again, in their words
        await walk.tap(MenuCb(action="shop").pack())
        await walk.tap(PlatformCb(slug="instagram").pack())
        await walk.tap(CategoryCb(id=category).pack())
        card = await walk.tap(ServiceCb(ref=ref).pack())
        assert PRICE[lang] in card

        # The form, with a wrong answer at each step.
        await walk.tap(OrderStartCb(ref=ref).pack())
        await walk.send("not a link")
        assert "⚠️" in walk.user.text
        await walk.user.send_sticker()
        walk.check_new()
        await walk.send("https://instagram.com/p/lang" + lang)
        for wrong in ("abc", "10", "99999999"):
            assert "⚠️" in await walk.send(wrong)
        assert GROUPED[lang] in walk.user.text  # the maximum, grouped their way
        await walk.send("1000")
        await walk.send("🙂")  # drip-feed runs: optional, a number
        confirmation = await walk.tap(FormCb(action="skip").pack())
        assert PRICE[lang] in confirmation
        await walk.tap_prefix(FormCb(action="confirm").pack())
        [(order_id, panel_id)] = await shop.query("SELECT id, panel_order_id FROM orders")
        sandbox.panel.orders[int(panel_id)].fate = "partial"
        sandbox.panel.advance(sandbox.panel.pace * 4)
        await walk.user.expect(f"#{order_id}", timeout=15)
        await shop.emulator.wait_for(lambda: any(
            "💸" in m.text for m in walk.user.bot_messages), timeout=15)
        walk.check_new()

        await walk.tap(OrdersCb(page=0).pack())
        card = await walk.tap(OrderCb(id=order_id).pack())
        assert re.search(r"\d{1,2}\.\d{2}\.\d{4}", card)  # a date as ru and tr write it
        await walk.send("/balance")
        await walk.send("/help")
        await walk.send("/paysupport")
        await walk.send("/cancel")


async def test_language_can_change_in_the_middle_of_a_form(make_sandbox: SandboxFactory,
                                                           tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        await shop.credit(42, 5_000)
        walk = Walk(shop.user(42, "Alex", language_code="ru"), "ru")
        ref, _ = await ids(shop, 103)
        await walk.send("/start")
        await walk.tap(ServiceCb(ref=ref).pack())
        await walk.tap(OrderStartCb(ref=ref).pack())
        await walk.send("https://instagram.com/p/switch")
        await walk.send("/language")
        labels = [label for row in walk.user.last().buttons for label in row]
        assert {"English", "✅ Русский", "Türkçe"} <= set(labels), labels
        walk.lang = "tr"
        await walk.tap(LanguageCb(code="tr").pack())
        assert "⚠️" in await walk.send("abc")  # the form goes on, in Turkish
        await walk.send("1000")
        await walk.tap(FormCb(action="skip").pack())
        assert "$" in walk.user.text and "0,33" in walk.user.text
        assert await shop.query("SELECT chosen_language FROM users WHERE id = 42") == [("tr",)]

        # The choice wins over Telegram's language, and survives a restart of the bot.
        walk.lang = "en"
        await walk.tap_prefix(FormCb(action="cancel").pack())
        await walk.send("/start")
        await walk.tap(LanguageCb(code="list").pack())
        await walk.tap(LanguageCb(code="en").pack())
        assert "Hi, Alex!" in walk.user.text
        assert "🛒 New order" in [label for row in walk.user.last().buttons for label in row]
        forged = await walk.user.tap_data("lg:xx")  # a language the shop does not have
        assert await shop.query("SELECT chosen_language FROM users WHERE id = 42") == [("en",)]
        assert "not available" in (forged.get("text") or "")


@pytest.mark.parametrize("lang", ["ru", "tr"])
async def test_the_admin_panel_speaks_the_admins_language(make_sandbox: SandboxFactory,
                                                          tmp_path: Path, lang: str) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path) as shop:
        admin = Walk(shop.emulator.user(ADMIN_ID, "Boss", language_code=lang), lang)
        await admin.send("/start")
        await admin.send("/admin")
        from handlers.callbacks import AdminCb

        for area in ("dashboard", "catalog", "customers", "orders", "broadcast", "audit"):
            await admin.tap(AdminCb(area=area).pack())
            await admin.tap(AdminCb(area="home").pack())
        commands = shop.emulator.commands_by_language[lang]
        assert {c["command"] for c in commands} >= {"start", "language", "cancel"}
        for command in commands:
            assert_in_language(lang, command["description"])
        assert_in_language(lang, shop.emulator.profile[("description", lang)])


async def test_a_refused_bot_profile_does_not_stop_the_shop(make_sandbox: SandboxFactory,
                                                            tmp_path: Path) -> None:
    """setMyDescription under flood control (or any refusal) is logged and skipped."""
    from bot.devtools.emulator import BotApiEmulator, start_emulator
    from tests.e2e import start_bot, stop_bot, wait_ready

    sandbox = await make_sandbox()
    emulator = BotApiEmulator()
    emulator.inject("setMyDescription", 429, times=10)
    running = await start_emulator(emulator)
    try:
        task = await start_bot(running.url, sandbox, tmp_path / "shop.sqlite3")
        await wait_ready(emulator, task)
        assert not task.done()
        assert (await emulator.user(42).send("/start")).text.startswith("Hi, ")
        assert emulator.commands_by_language.get("ru")  # the other calls went through
        assert ("description", "ru") not in emulator.profile  # refused, and skipped
        await stop_bot(task)
    finally:
        await running.stop()
