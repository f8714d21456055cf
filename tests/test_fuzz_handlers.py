"""Anything a Telegram client can send, in any state, gets an answer and never an error.

The real dispatcher (every router, middleware and service, a real SQLite file,
the sandbox panel) talks to the loopback Bot API emulator; updates are fed to it
one at a time so each example is judged on its own. Hypothesis sends random and
hostile text to every message handler in every conversation state, and random
callback data to every callback factory; an unhandled error would show as the
error handler's apology in the chat.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app.bootstrap import Runtime, build_bot, build_dispatcher, start_runtime
from bot.config import load_settings
from bot.devtools.emulator import BotApiEmulator, RunningEmulator, start_emulator
from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox, SandboxPanel, start_sandbox
from bot.shop.orders.form import Draft
from handlers import callbacks
from tests.e2e import ADMIN_ID, TOKEN

pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")
APOLOGY = "something went wrong"
SCREEN = "fuzzscrn"  # the confirmation screen the "confirm" state shows

NASTY = [
    "https://[::1", "[x", "https://a.b/[x", "http://[::1]:99999/", "/start s²", "/start s" + "9" * 30,
    "/start s-1", "/start s0", "/credit 42 1,000", "/credit 42 1e30", "/credit ² 5",
    "/credit 12345678901234567890123 5", "/credit 42 92233720368547758.07", "/debit 42 -5",
    "/credit 42 NaN", "/credit 42 Infinity", "/debit", "/unresolved", "/search", "/search x",
    "/search " + "x" * 500, "/cancel", "/start", "/help", "/balance", "1e500000", "1e-500000",
    "\x00", "🙂", "²", "١٢٣", "  ", "<b>", "&amp;", "0", "-1", "9" * 40, "31/02/2030", "1k",
    "2.5m", "1,00", "NaN", "US", "us", "ZZ", "@a", "@" + "a" * 40, "t.me/" + "a" * 3000,
    "a\nb\nc", "\n" * 50, "x" * 5000, "🙂" * 3000, "/" + "a" * 200, "/start@storefront_bot",
    "/promo", "/promo x", "/promo " + "A" * 33, "/promo_new SPRING10 discount 10 min=1 000",
    "/promo_new X balance 1e30", "/promo_off", "/promo_off 🙂", "SPRING10 discount 10",
]
TEXTS = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=60),
    st.text(max_size=20).map(lambda t: "/" + t),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(3_000, 5_000)),
)
_FIELD = st.one_of(st.integers(-2**70, 2**70).map(str),
                   st.text(alphabet=st.characters(blacklist_characters=":"), max_size=12),
                   st.sampled_from(["show", "refresh", "refill", "cancel", "confirm", "choice",
                                    "skip", "back", "edit", "home", "shop", "admin", "attach",
                                    "refund", "instagram", "", "0", "1", "fuzzscrn"]))
FIELD_COUNTS = {factory.__prefix__: len(factory.model_fields)
                for factory in vars(callbacks).values()
                if isinstance(factory, type) and issubclass(factory, callbacks.CallbackData)
                and factory is not callbacks.CallbackData}
PREFIXES = sorted(FIELD_COUNTS)
CALLBACK_DATA = st.one_of(
    st.builds(lambda prefix, fields: ":".join([prefix, *fields]), st.sampled_from(PREFIXES),
              st.lists(_FIELD, max_size=3)),
    st.text(max_size=64),
)


@dataclass(frozen=True)
class Template:
    """A conversation state a customer (or admin) can be in."""

    name: str
    state: str | None = None
    data: dict[str, Any] | None = None
    admin: bool = False


class Harness:
    """The bot's dispatcher, the emulator and the sandbox on an event loop of their own,
    so that Hypothesis (which is synchronous) can drive them example by example."""

    def __init__(self, database: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.user_ids = itertools.count(5_000_000)
        self.update_ids = itertools.count(1)
        self.database = database

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def start(self) -> None:
        self.sandbox: RunningSandbox = await start_sandbox(SandboxPanel(pace=60))
        self.emulator = BotApiEmulator()
        self.running: RunningEmulator = await start_emulator(self.emulator)
        settings = load_settings(
            bot_token=TOKEN, telegram_api_url=self.running.url, panel_url=self.sandbox.url,
            panel_key=DEFAULT_KEY, panel_rate_limit=0, database_path=self.database,
            admin_ids=str(ADMIN_ID), panel_timeout=2, stars_per_unit="50")
        self.runtime: Runtime = await start_runtime(settings)
        self.bot: Bot = build_bot(settings)
        self.dispatcher: Dispatcher = build_dispatcher(self.runtime, self.bot, "storefront_bot")
        refs = {row[1]: int(row[0]) for row in await self.runtime.db.fetchall(
            "SELECT id, service_id FROM services")}
        self.templates = self._templates(refs)

    async def stop(self) -> None:
        await self.dispatcher.fsm.close()  # the writes behind, as the bot's stop does
        await self.dispatcher["services"]["customers"].close()
        await self.bot.session.close()
        await self.runtime.close()
        await self.running.stop()
        await self.sandbox.stop()

    @staticmethod
    def _templates(refs: dict[str, int]) -> list[Template]:
        def form(service: str, step: str = "field", shown: int | None = None,
                 **values: str) -> dict[str, Any]:
            draft = Draft(refs[service], values=dict(values), history=list(values),
                          shown_price=shown, screen=SCREEN if shown is not None else "")
            return draft.to_data()

        link = "https://instagram.com/p/fuzz"
        return [
            Template("idle"),
            Template("admin idle", admin=True),
            Template("search", "Search:query"),
            Template("link", "OrderForm:field", form("101")),
            Template("quantity", "OrderForm:field", form("101", link=link)),
            Template("runs", "OrderForm:field", form("101", link=link, quantity="1000")),
            Template("interval", "OrderForm:field",
                     form("101", link=link, quantity="1000", runs="4")),
            Template("lines", "OrderForm:field", form("106", link=link)),
            Template("subscription username", "OrderForm:field", form("116")),
            Template("subscription expiry", "OrderForm:field", form(
                "116", username="alice", min="100", max="200", posts="3", old_posts="",
                delay="30")),
            Template("country", "OrderForm:field", form(
                "801", link="https://example.com", quantity="1000", runs="")),
            Template("device (a choice, typed)", "OrderForm:field", form(
                "801", link="https://example.com", quantity="1000", runs="", country="US")),
            Template("confirm", "OrderForm:confirm",
                     form("101", shown=156, link=link, quantity="1000", runs="")),
            Template("attach panel id", "AdminAttach:panel_order_id", {"order_id": 1}, admin=True),
            Template("top-up amount", "TopUp:amount"),
            Template("admin customer search", "AdminCustomers:find", admin=True),
            Template("admin credit", "AdminCustomers:amount", {"user_id": 5_000_000, "sign": 1},
                     admin=True),
            Template("admin order number", "AdminOrders:number", admin=True),
            Template("promo code", "PromoInput:code", {"after_promo": None}),
            Template("admin new promo code", "AdminPromo:new", admin=True),
        ]

    async def enter(self, template: Template) -> int:
        """A fresh person in ``template``'s state, with the bot's menu on screen."""
        user_id = ADMIN_ID if template.admin else next(self.user_ids)
        self.emulator.user(user_id, "Fuzz")
        context = self.dispatcher.fsm.get_context(self.bot, chat_id=user_id, user_id=user_id)
        if template.admin:
            await context.clear()
        await self.feed({"message": self._message(user_id, "/start")})
        await context.set_state(template.state)
        await context.set_data(template.data or {})
        return user_id

    def _message(self, user_id: int, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": self.emulator.new_message_id(), "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Fuzz"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Fuzz",
                     "language_code": "en"},
            "text": text}
        if text.startswith("/"):
            command = text.split()[0] if text.split() else text
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return body

    async def feed(self, update: dict[str, Any]) -> None:
        update = {"update_id": next(self.update_ids), **update}
        await self.dispatcher.feed_update(self.bot, Update.model_validate(
            update, context={"bot": self.bot}))

    async def send_text(self, template: Template, text: str) -> list[str]:
        user_id = await self.enter(template)
        before = len(self.emulator.chats[user_id].messages)
        await self.feed({"message": self._message(user_id, text)})
        return [m.text for m in list(self.emulator.chats[user_id].messages.values())[before:]]

    async def tap(self, template: Template, data: str) -> tuple[list[str], bool]:
        user_id = await self.enter(template)  # its /start left a menu to tap on
        chat = self.emulator.chats[user_id]
        menu = max(chat.messages.values(), key=lambda m: m.message_id)
        before = len(chat.messages)
        query_id = self.emulator.new_query_id()
        await self.feed({"callback_query": {
            "id": query_id, "from": {"id": user_id, "is_bot": False, "first_name": "Fuzz"},
            "chat_instance": "fuzz", "data": data,
            "message": self.emulator._message_object(chat, menu)}})
        said = [m.text for m in list(chat.messages.values())[before:]]
        return said, query_id in self.emulator.callback_answers


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    running = Harness(str(tmp_path_factory.mktemp("fuzz") / "shop.sqlite3"))
    running.call(running.start())
    yield running
    running.call(running.stop())
    running.loop.call_soon_threadsafe(running.loop.stop)
    running.thread.join(timeout=10)


TEMPLATE_NAMES = ["idle", "admin idle", "search", "link", "quantity", "runs", "interval", "lines",
                  "subscription username", "subscription expiry", "country",
                  "device (a choice, typed)", "confirm", "attach panel id", "top-up amount",
                  "admin customer search", "admin credit", "admin order number", "promo code",
                  "admin new promo code"]


def _template(harness: Harness, name: str) -> Template:
    return next(t for t in harness.templates if t.name == name)


def _no_error(said: list[str]) -> bool:
    return not [t for t in said if APOLOGY in t]


def test_every_state_is_fuzzed(harness: Harness) -> None:
    assert [t.name for t in harness.templates] == TEMPLATE_NAMES


@pytest.mark.parametrize("state", TEMPLATE_NAMES)
def test_every_hostile_text_in_every_state_gets_an_answer_and_no_error(harness: Harness,
                                                                       state: str) -> None:
    template = _template(harness, state)
    for text in NASTY:
        said = harness.call(harness.send_text(template, text))
        assert said, f"no answer to {text[:80]!r} in {state}"
        assert _no_error(said), (state, text[:200])


@pytest.mark.parametrize("state", TEMPLATE_NAMES)
@settings(max_examples=25)
@given(text=TEXTS)
def test_any_text_in_any_state_gets_an_answer_and_no_error(harness: Harness, state: str,
                                                           text: str) -> None:
    said = harness.call(harness.send_text(_template(harness, state), text))
    assert said, f"no answer to {text[:80]!r} in {state}"
    assert _no_error(said), (state, text[:200])


HOSTILE_FIELDS = [str(2**60), str(2**70), "-1", "0", "", "x" * 30, "²", "show", "confirm", SCREEN]


def hostile_field_lists(count: int) -> list[tuple[str, ...]]:
    """For a factory of ``count`` fields: every pair of hostile values in every two of
    its fields (the others holding the first value; every value in every field when it
    has one), and each value in all of one field too few and one too many (aiogram
    refuses a wrong count whatever the values, so one list per value is enough)."""
    lists: list[tuple[str, ...]] = []
    for positions in itertools.combinations(range(count), min(count, 2)):
        for values in itertools.product(HOSTILE_FIELDS, repeat=len(positions)):
            fields = [HOSTILE_FIELDS[0]] * count
            for position, value in zip(positions, values, strict=True):
                fields[position] = value
            lists.append(tuple(fields))
    for wrong in (count - 1, count + 1):
        lists.extend((value,) * wrong for value in HOSTILE_FIELDS)
    return list(dict.fromkeys(lists))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_hostile_fields_of_every_callback_factory(harness: Harness, prefix: str) -> None:
    combinations = hostile_field_lists(FIELD_COUNTS[prefix])
    for state in ("idle", "link", "confirm"):
        for fields in combinations:
            data = ":".join([prefix, *fields])[:64]
            said, answered = harness.call(harness.tap(_template(harness, state), data))
            assert answered, f"the query {data!r} was never answered in {state}"
            assert _no_error(said), (state, data)


@pytest.mark.parametrize("state", TEMPLATE_NAMES)
@settings(max_examples=25)
@given(callback=CALLBACK_DATA)
def test_any_callback_data_gets_an_answer_and_no_error(harness: Harness, state: str,
                                                       callback: str) -> None:
    said, answered = harness.call(harness.tap(_template(harness, state), callback))
    assert answered, f"the query {callback!r} was never answered in {state}"
    assert _no_error(said), (state, callback)


def test_a_confirmation_saved_without_its_name_is_shown_again(harness: Harness) -> None:
    """A form saved at the confirmation by an earlier version has neither the price
    shown nor the screen's name on record: Confirm shows the confirmation (and its
    price) again and charges nothing."""
    confirm = _template(harness, "confirm")
    assert confirm.data is not None
    legacy = Template("legacy confirm", confirm.state,
                      {k: v for k, v in confirm.data.items() if k not in ("shown_price", "screen")})
    orders_before = harness.call(harness.runtime.db.fetchone("SELECT COUNT(*) FROM orders"))
    said, answered = harness.call(harness.tap(legacy, "f:confirm:"))
    assert answered and said == []  # the message is edited in place
    user_id = max(harness.emulator.chats)
    screen = max(harness.emulator.chats[user_id].messages.values(), key=lambda m: m.message_id)
    assert "This is your order as it is now" in screen.text and "Price: $1.56" in screen.text
    assert harness.call(harness.runtime.db.fetchone("SELECT COUNT(*) FROM orders")) == orders_before


@pytest.mark.parametrize("data", ["m:shop", "f:confirm:", "oc:1:show", "ol:0"])
def test_a_button_on_a_message_the_bot_cannot_see_any_more(harness: Harness, data: str) -> None:
    """Telegram sends an "inaccessible message" (date 0) for a deleted or too old one."""
    user_id = harness.call(harness.enter(_template(harness, "idle")))
    query_id = harness.emulator.new_query_id()
    before = len(harness.emulator.chats[user_id].messages)
    harness.call(harness.feed({"callback_query": {
        "id": query_id, "from": {"id": user_id, "is_bot": False, "first_name": "Fuzz"},
        "chat_instance": "fuzz", "data": data,
        "message": {"chat": {"id": user_id, "type": "private", "first_name": "Fuzz"},
                    "message_id": 1, "date": 0}}}))
    assert harness.emulator.callback_answers[query_id]["text"].startswith(
        "This button is no longer valid")
    said = [m.text for m in list(harness.emulator.chats[user_id].messages.values())[before:]]
    assert _no_error(said)
