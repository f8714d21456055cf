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


# --- every line of the admin's screens ---------------------------------------------

# A word all in English letters ("İngilizce" is one Turkish word, not "ngilizce").
LATIN_WORD = re.compile(r"(?<![^\W\d_])[A-Za-z]+(?![^\W\d_])")
# What a line may hold in Latin letters besides the words the translator wrote: the
# people and panel of this test, and the keywords an admin types as shown
# (/promo_new CODE balance AMOUNT [uses=N]…).
# Codes, ids and currency codes are upper case and pass too.
ADMIN_TOKENS = {"Boss", "Alex", "Alice", "Bob", "main", "balance", "discount", "uses",
                "per", "user", "days", "min"}
ENGLISH_MONEY = re.compile(r"\$\d{1,3}(?:,\d{3})*\.\d{2}(?!\d)")  # $1,059.67
# 0.25 or 1.5: no locale here writes a decimal point (Turkish groups thousands with
# one: 50.000, so three digits after it are a grouping).
ENGLISH_DECIMAL = re.compile(r"(?<![\d.,])\d+\.(?:\d{1,2}|\d{4,})(?![\d.,])")
ENGLISH_PERCENT = {"ru": re.compile(r"\d+(?:[.,]\d+)?%"),  # Russian: 30 %
                   "tr": re.compile(r"\d+(?:[.,]\d+)?\s?%")}  # Turkish: %30


@cache
def translated_words(lang: str) -> frozenset[str]:
    """Every Latin-letter word the translations of ``lang`` use (Telegram, API, Stars…)."""
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    words: set[str] = set()
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple | list) else (
            message.string,)
        for text in strings:
            text = re.sub(r"\{[^}]*\}|<[^>]+>", " ", text or "")
            words.update(word.lower() for word in LATIN_WORD.findall(text))
    return frozenset(words)


def english_left(lang: str, text: str, *, ids: tuple[str, ...] = ()) -> list[str]:
    """What in an admin's message is not in ``lang``: words no translation uses, and
    money, decimals and percents written the English way; line by line."""
    found = []
    known = translated_words(lang)
    for line in bot_words(text).splitlines():
        for other in ids:
            line = line.replace(other, "")
        line = re.sub(r"[/@]\w+", " ", line)  # commands and usernames
        found += [word for word in LATIN_WORD.findall(line) if not word.isupper()
                  and word.lower() not in known and word not in ADMIN_TOKENS]
        for pattern in (ENGLISH_MONEY, ENGLISH_DECIMAL, ENGLISH_PERCENT[lang]):
            found += pattern.findall(line)
    return found


def test_the_admin_check_finds_english_words_and_formats() -> None:
    """The check below can fail: English words, amounts and percents are found in a
    line; the translated line passes."""
    assert english_left("ru", "наценка магазин markup · 30 % → 50 %") == ["markup"]
    assert english_left("ru", "рассылка 1 · → all: 0 queued, 0 skipped") == [
        "all", "queued", "skipped"]
    assert english_left("ru", "кредит · $1,059.67 → $1,062.17") == ["$1,059.67", "$1,062.17"]
    assert english_left("ru", "Цена панели: 0.25 USD за 1000") == ["0.25"]
    assert english_left("tr", "kâr oranı · 30 % → 50 %") == ["30 %", "50 %"]
    assert english_left("tr", "Boss · /credit USER_ID AMOUNT [reason]") == ["reason"]
    assert english_left("tr", "Boss · /credit MÜŞTERİ_ID TUTAR [sebep] · 50.000 · 02.12.2026") == []
    assert english_left("tr", "Dil: İngilizce") == []
    assert english_left("ru", "Имя: Alex · 1 059,67 $ · 30 % · 0,25 $") == []


class AdminWalk(Walk):
    """An admin of one language: every line of every message and toast they get has no
    English left (``ids``: random ids in the texts, a payment's charge id)."""

    def __init__(self, user: ScriptedUser, lang: str) -> None:
        super().__init__(user, lang)
        self.ids: tuple[str, ...] = ()

    def assert_in_language(self, text: str) -> None:
        left = english_left(self.lang, text, ids=self.ids)
        assert not left, f"English in {self.lang}: {left} in {text!r}"

    def check_new(self) -> None:
        for message in self.user.bot_messages[self.checked:]:
            self.assert_in_language(message.text)
        self.checked = len(self.user.bot_messages)
        self.assert_in_language(self.user.text)

    async def tap(self, data: str, message: ChatMessage | None = None) -> str:
        answer = await self.user.tap_data(data, message)
        if answer.get("text"):
            self.assert_in_language(answer["text"])
        self.check_new()
        return self.user.text


@pytest.mark.timeout(240)
@pytest.mark.parametrize("lang", ["ru", "tr"])
async def test_every_admin_screen_speaks_the_admins_language(
        make_sandbox: SandboxFactory, tmp_path: Path, lang: str) -> None:
    """An admin does what a first day holds (credits, markups, hiding, blocking, a
    broadcast, a promo code, a Stars refund taking a referral reward back, a catalog
    refresh) and walks every admin screen, the audit log last: every line is theirs."""
    from handlers.callbacks import (
        AdminBroadcastCb,
        AdminCatalogCb,
        AdminCb,
        AdminCustomerCb,
        AdminOrderCb,
        AdminPromoCb,
        AdminReferralsCb,
        DashboardCb,
    )
    from tests.test_referrals import REFERRALS, invited
    from tests.test_stars import bought_stars

    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, **REFERRALS) as shop:
        admin = AdminWalk(shop.emulator.user(ADMIN_ID, "Boss", language_code=lang), lang)
        await admin.send("/start")
        alice = shop.user(101, "Alice")
        await alice.send("/start")
        bob = await invited(shop, alice, "Bob", 102)
        charge = await bought_stars(bob, "$10.00 · 500 ⭐")
        await alice.expect("You earned $1.00")
        admin.ids = (charge,)
        customer = shop.user(42, "Alex")
        await customer.send("/start")
        await shop.credit(42, 2_000)
        ref, _category = await ids(shop, 103)
        await customer.tap_data(ServiceCb(ref=ref).pack())
        await customer.tap_data(OrderStartCb(ref=ref).pack())
        await customer.send("https://instagram.com/p/admin" + lang)
        await customer.send("1000")
        await customer.tap_data(FormCb(action="skip").pack())
        await customer.tap("Confirm")
        [(order_id,)] = await shop.query("SELECT id FROM orders")
        # The customer's refresh finds it under way: a history row from "refresh".
        sandbox.panel.advance(sandbox.panel.pace * 1.5)
        await customer.tap_data(OrderCb(id=order_id, action="refresh").pack())
        admin.ids += ("In progress", "Pending")  # the panel's own words, shown as it sent them

        # What a first day holds, each leaving its audit row.
        await admin.send(f"/refund_stars {charge}")  # Alice's reward is taken back
        await admin.send("/credit 42 1000")
        await admin.send("/debit 42 1 " + ("ошибка" if lang == "ru" else "hata"))
        await admin.send("/promo_new WELCOME5 balance 5 uses=100 days=30")
        await admin.send("/promo_new SPRING10 discount 10 min=5")
        await admin.send("/promo_off SPRING10")
        await admin.send("/admin")
        await admin.tap(AdminCb(area="catalog").pack())
        await admin.tap(AdminCatalogCb(action="global").pack())
        await admin.send("50")
        await admin.tap(AdminCatalogCb(action="save").pack())
        await admin.tap(AdminCatalogCb(action="card", id=ref).pack())
        await admin.tap(AdminCatalogCb(action="mk_s", id=ref).pack())
        await admin.send("12.5")
        await admin.tap(AdminCatalogCb(action="save").pack())
        await admin.tap(AdminCatalogCb(action="clear_s", id=ref).pack())
        await admin.tap(AdminCatalogCb(action="hide_s", id=ref).pack())
        await admin.tap(AdminCatalogCb(action="show_s", id=ref).pack())
        await admin.tap(AdminCatalogCb(action="backups", id=ref).pack())
        await admin.tap(AdminCatalogCb(action="refresh").pack())
        await admin.tap(AdminCustomerCb(action="block", id=42).pack())
        await admin.tap(AdminCustomerCb(action="unblock", id=42).pack())
        await admin.tap(AdminCustomerCb(action="referrals_off", id=101).pack())
        await admin.tap(AdminBroadcastCb(action="new").pack())
        await admin.send("Привет" if lang == "ru" else "Merhaba")
        await admin.tap(AdminBroadcastCb(action="confirm").pack())
        summary = await admin.user.expect("завершена" if lang == "ru" else "tamamlandı",
                                          timeout=30)
        assert ("(отмена)" if lang == "ru" else "(iptal)") not in summary.text  # none canceled

        # Every screen, then the audit log's every page.
        for area in ("dashboard", "catalog", "orders", "broadcast", "promo", "referrals"):
            await admin.tap(AdminCb(area=area).pack())
        for period in ("7d", "all"):
            await admin.tap(AdminReferralsCb(period=period).pack())
        card = await admin.tap(AdminOrderCb(action="show", id=order_id).pack())
        assert {"ru": "обновление клиентом", "tr": "müşterinin yenilemesi"}[lang] in card
        await admin.tap(AdminPromoCb(action="card", id=1).pack())
        await admin.tap(AdminPromoCb(action="card", id=2).pack())
        cards = [await admin.tap(AdminCustomerCb(action="card", id=user_id).pack())
                 for user_id in (42, 101, 102)]
        # The customer's language named in the admin's: not "English".
        assert {"ru": "Английский", "tr": "İngilizce"}[lang] in cards[0]
        home = await admin.tap(AdminCb(area="home").pack())  # the command list's arguments
        assert not {"USER_ID", "CHARGE_ID", "PERCENT"} & set(re.findall(r"\w+", home))
        assert {"ru": "ID_КЛИЕНТА", "tr": "MÜŞTERİ_ID"}[lang] in home
        await admin.tap(AdminCb(area="customers").pack())
        await admin.send("Alex")
        [(rows,)] = await shop.query("SELECT COUNT(*) FROM audit_log")
        pages = [await admin.tap(AdminCb(area="audit", page=page).pack())
                 for page in range((rows + 9) // 10)]
        log = "\n".join(pages)
        assert {"ru": "1\u00a0019,67\u00a0$", "tr": "$1.019,67"}[lang] in log  # /credit's
        assert {"ru": "30\u00a0% → 50\u00a0%", "tr": "%30 → %50"}[lang] in log
        assert {action for (action,) in await shop.query(
            "SELECT DISTINCT action FROM audit_log")} >= {
            "credit", "debit", "markup", "hide", "show", "block", "unblock", "referrals_off",
            "broadcast", "promo_new", "promo_off", "refund_stars", "referral_clawback",
            "catalog_refresh"}
        # The 30-day chart last (a photo: the screens above are edited in place): its
        # picture has no words; its caption names the colours.
        await admin.tap(DashboardCb(action="chart").pack())
        assert {"ru": "🟦 оборот", "tr": "🟦 ciro"}[lang] in admin.user.last().text
        admin.check_new()


@pytest.mark.parametrize("lang", ["ru", "tr"])
def test_every_refill_state_and_history_source_is_said_in_the_readers_language(
        lang: str) -> None:
    """Refill states reach customers and admins (the order card), history sources the
    admin's order card: stored in English, never shown so."""
    from bot.panel import RefillState
    from handlers.admin.orders import history_source
    from handlers.middlewares.i18n import build_i18n
    from handlers.views.orders import refill_word

    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(lang):
        for state in RefillState:
            assert not english_left(lang, refill_word(state.value)), state
        for source in ("tracker", "refresh", "admin"):
            assert not english_left(lang, history_source(source)), source
