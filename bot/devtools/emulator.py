"""A loopback Telegram Bot API emulator and a scripted user to drive the bot with.

The bot runs unmodified against it (``TELEGRAM_API_URL``), in polling mode. The
emulator answers the methods the storefront uses with objects shaped like real
Bot API objects, and enforces the rules that catch real bugs: HTML that
Telegram would refuse, messages over 4096 characters, callback data over 64
bytes, edits that change nothing, unknown chats and messages, stale callback
queries.

For the notifier it can also enforce Telegram's flood limits (``limits``: more
than 30 sendMessage calls in a second, or too many to one chat, get a 429 with
``retry_after``) and answer chosen calls with an error (``inject``: 429, 403,
5xx, or ``MALFORMED``: a garbled HTTP answer, which aiohttp reports with the
request's URL, token included, in the exception's text). Callback queries can
be given Telegram's answer deadline (``query_timeout``): answered later, they
fail with "query is too old".

Telegram Stars payments: ``sendInvoice`` (validated as Telegram validates an
``XTR`` invoice), ``answerPreCheckoutQuery`` (with Telegram's 10 s deadline,
``pre_checkout_timeout``), ``refundStarPayment`` and ``getStarTransactions``; the
user side is ``ScriptedUser.pay`` (tap Pay on an invoice), ``pre_checkout`` (a
forged query) and ``deliver_payment`` (a ``successful_payment`` as is, e.g. twice).
What can go wrong on Telegram's side: ``drop_refund_calls`` (a refund whose answer
never arrives, made or not), ``affiliate`` (payments through an affiliate program:
the bot's share in the transaction, the affiliate's in ``AffiliateInfo``, negative
on a refund), ``earn_affiliate_commission`` (the bot's own commission from another
bot's program) and ``add_unreadable_transaction`` (one aiogram cannot parse).

``ScriptedUser`` is the test-side person: ``send`` text (or a sticker, a photo),
``tap`` a button by its label, read ``chat`` as they see it (edits applied). Each
action returns once the bot has finished with it: when the bot runs in this process
(the tests, the demo), once the task dispatching that update has ended, so a handler
that answers in two messages with slow work between them is read after both
(``BotApiEmulator.handled``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import CodeType
from typing import Any

from aiohttp import web

from bot.devtools.loopback import serve

MAX_TEXT = 4096
MAX_CAPTION = 1024  # visible characters of a photo's caption
MAX_CALLBACK_DATA = 64
MALFORMED = 0  # ``inject`` code: answer with bytes that are not valid HTTP
STARS = "XTR"  # the currency code of Telegram Stars
MAX_INVOICE_TITLE = 32  # characters
MAX_INVOICE_DESCRIPTION = 255  # characters
MAX_INVOICE_PAYLOAD = 128  # bytes, UTF-8
PRE_CHECKOUT_TIMEOUT = 10.0  # seconds Telegram waits for answerPreCheckoutQuery
QUERY_EXPIRED = ("Bad Request: query is too old and response timeout expired or query ID is "
                 "invalid")
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
                 "tg-spoiler", "span", "blockquote", "tg-emoji"}


class NoAnswer(TimeoutError):
    """The bot finished handling a callback query without a (timely) answer to it.

    A ``TimeoutError``: before the emulator could see handlers end, this was a wait
    running out, and callers that expect no answer still catch it as one."""


def _dispatch_codes() -> frozenset[CodeType]:
    """The code of aiogram's ``Dispatcher`` methods that hold one update from its taking
    to the end of its handling: a coroutine frame running one of them, with an
    ``update`` local, is that update being handled (or, in a polling task not yet
    started, about to be)."""
    try:
        from aiogram import Dispatcher
    except ImportError:  # the emulator used without aiogram: nothing to look for
        return frozenset()
    codes = set()
    for name in ("_process_update", "feed_update", "feed_raw_update", "_feed_webhook_update",
                 "feed_webhook_update"):
        function = getattr(Dispatcher, name, None)
        if function is not None:
            codes.add(inspect.unwrap(function).__code__)
    return frozenset(codes)


_DISPATCH_CODES = _dispatch_codes()


def _update_id_of(update: Any) -> int | None:
    """The id of an aiogram ``Update`` or of a raw update dict; None for anything else."""
    value = (update.get("update_id") if isinstance(update, dict)
             else getattr(update, "update_id", None))
    return value if isinstance(value, int) else None


def updates_being_handled() -> set[int]:
    """The ids of the updates some task of this process is dispatching (aiogram in this
    process: the tests' bot, the demo's). Empty when the bot runs in another process.

    Each task's chain of awaited coroutines is walked from its root; the first frame of
    a dispatching method names the update (deeper ones are the same update)."""
    found: set[int] = set()
    for task in asyncio.all_tasks():
        awaitable: Any = task.get_coro()
        while awaitable is not None:
            frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
            if frame is not None and frame.f_code in _DISPATCH_CODES:
                update_id = _update_id_of(frame.f_locals.get("update"))
                if update_id is not None:
                    found.add(update_id)
                    break
            awaitable = (getattr(awaitable, "cr_await", None)
                         or getattr(awaitable, "gi_yieldfrom", None))
    return found


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class SendLimits:
    """Telegram's flood limits on sendMessage, enforced with 429 + retry_after."""

    per_second: int = 30  # the whole bot, in any rolling second
    per_chat_per_second: int | None = None  # one chat; Telegram advises 1


@dataclass
class Fault:
    method: str  # lower-case Bot API method
    code: int  # 429, 403, 500, 502...
    times: int = 1
    retry_after: int | None = None


class _Malformed(Exception):
    """Answer this call with a broken HTTP response instead of JSON."""


# Telegram HTML tags and the entity each one makes (tags with attributes below).
_SIMPLE_ENTITIES = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic",
                    "u": "underline", "ins": "underline", "s": "strikethrough",
                    "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
                    "code": "code", "pre": "pre"}


def _units(text: str) -> int:
    """Telegram's offsets and lengths are in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class _Dropped(Exception):
    """Close the connection with no answer at all (a timeout, a dropped link)."""


@dataclass
class Affiliate:
    """An affiliate program the payments come through: ``commission_per_mille`` of
    each payment goes to ``user`` (a bot or a person), the rest to this bot."""

    user: dict[str, Any]
    commission_per_mille: int


NANO = 1_000_000_000  # nanostars in a Star


class _HtmlText(HTMLParser):
    """Checks Telegram-flavoured HTML and yields the text a user sees and its
    entities, as Telegram makes them (attribute values unescaped: ``&quot;``,
    ``&amp;``, numeric references)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []
        self.length = 0  # UTF-16 units of text so far
        self.entities: list[dict[str, Any]] = []
        self._started: list[tuple[int, dict[str, Any] | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        self.open.append(tag)
        self._started.append((self.length, self._entity(tag, dict(attrs))))

    def _entity(self, tag: str, attrs: dict[str, str | None]) -> dict[str, Any] | None:
        if tag == "a":
            return {"type": "text_link", "url": attrs.get("href") or ""}
        if tag == "tg-emoji":
            return {"type": "custom_emoji", "custom_emoji_id": attrs.get("emoji-id") or ""}
        if tag == "span":
            return {"type": "spoiler"} if attrs.get("class") == "tg-spoiler" else None
        if tag == "blockquote":
            return {"type": "expandable_blockquote" if "expandable" in attrs else "blockquote"}
        css = attrs.get("class") or ""
        if tag == "code" and self.open[:-1] and self.open[-2] == "pre" \
                and css.startswith("language-"):
            # <pre><code class="language-x">: one pre entity with its language.
            pre = self._started[-1][1]
            if pre is not None:
                pre["language"] = css.removeprefix("language-")
            return None
        return {"type": _SIMPLE_ENTITIES[tag]} if tag in _SIMPLE_ENTITIES else None

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unexpected end tag "{tag}"')
        self.open.pop()
        offset, entity = self._started.pop()
        if entity is not None and self.length > offset:
            self.entities.append({**entity, "offset": offset, "length": self.length - offset})

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += _units(data)


def parse_html(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The text a user sees and its entities (sorted by offset, outer first), or
    raises ``ApiError`` as Telegram refuses what it cannot parse."""
    if (parse_mode or "").upper() != "HTML":
        return text, []
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise ApiError(400, f"Bad Request: can't parse entities: Can't find end tag "
                            f'corresponding to start tag "{parser.open[-1]}"')
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities


def visible_text(text: str, parse_mode: str | None) -> str:
    return parse_html(text, parse_mode)[0]


@dataclass
class ChatMessage:
    message_id: int
    from_bot: bool
    text: str  # as the user sees it
    markup: dict[str, Any] | None = None
    edits: int = 0
    deleted: bool = False
    raw_text: str = ""
    sender: dict[str, Any] | None = None  # who wrote it in a group (the chat's user otherwise)
    # An invoice message (sendInvoice): the Bot API ``Invoice`` object, and the payload,
    # which Telegram never shows the user but puts in the pre-checkout and the payment.
    invoice: dict[str, Any] | None = None
    invoice_payload: str = ""
    paid_charge_id: str | None = None  # set once the user has paid this invoice
    # A photo message (sendPhoto): its file_id (an uploaded file is given a new one)
    # and the number of bytes uploaded (0 when sent by file_id). ``text`` is the caption.
    photo: str | None = None
    photo_bytes: int = 0
    # The formatting of ``text`` as Telegram gives it to clients (from the bot's HTML).
    entities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def buttons(self) -> list[list[str]]:
        rows = (self.markup or {}).get("inline_keyboard", [])
        return [[button["text"] for button in row] for row in rows]

    def button(self, label: str) -> dict[str, Any] | None:
        for row in (self.markup or {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == label or label in button["text"]:
                    return button
        return None


@dataclass
class Chat:
    user: dict[str, Any]  # the person of a private chat; a group's title and id
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    events: int = 0  # bumps whenever the bot does something visible here
    blocked: bool = False
    kind: str = "private"  # or "group"

    @property
    def id(self) -> int:
        return int(self.user["id"])

    def as_object(self) -> dict[str, Any]:
        """The Bot API ``Chat`` object."""
        if self.kind == "private":
            return {"id": self.id, "type": "private", "first_name": self.user["first_name"]}
        return {"id": self.id, "type": self.kind, "title": self.user["first_name"]}


@dataclass
class PreCheckoutAnswer:
    """How the bot answered one pre_checkout_query (``answerPreCheckoutQuery``)."""

    query_id: str
    ok: bool
    error_message: str | None
    elapsed: float  # seconds from the query's push to the answer reaching the emulator
    accepted: bool = True  # False: it came after ``pre_checkout_timeout`` and was refused


@dataclass
class PayResult:
    """What ``ScriptedUser.pay`` saw: the bot's answer and, when it said ok, the payment."""

    query_id: str
    answer: PreCheckoutAnswer | None  # None: the bot never answered
    charge_id: str | None = None  # telegram_payment_charge_id of the completed payment
    payment: dict[str, Any] | None = None  # the Message update carrying successful_payment
    reply: ChatMessage | None = None  # the bot's latest message after the payment

    @property
    def ok(self) -> bool:
        """The payment went through (the bot said ok in time)."""
        return self.charge_id is not None

    @property
    def error_message(self) -> str | None:
        """What the user was shown when the bot refused the checkout."""
        return self.answer.error_message if self.answer is not None else None


def _flag(params: dict[str, Any], name: str) -> bool | None:
    """A Boolean parameter as Telegram reads it: JSON true/false, or the strings aiogram
    sends in form data ("true"/"false"; "1"/"0" also work). None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ApiError(400, f'Bad Request: invalid value of parameter "{name}"')


def _number(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise ApiError(400, f'Bad Request: invalid value of parameter "{name}"')
    try:
        return int(str(raw))
    except ValueError:
        raise ApiError(400, f'Bad Request: invalid value of parameter "{name}"') from None


class BotApiEmulator:
    def __init__(self, *, bot_id: int = 7_000_000_001, username: str = "storefront_bot") -> None:
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Storefront",
                         "username": username, "can_join_groups": False,
                         "can_read_all_group_messages": False, "supports_inline_queries": True}
        self.chats: dict[int, Chat] = {}
        self.pending: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []  # every update ever pushed, in order
        self.webhook: dict[str, Any] | None = None  # setWebhook's url, secret, allowed_updates
        self.webhook_routes: dict[str, str] = {}
        self.webhook_answers: list[int] = []  # the HTTP status of every delivery try
        # Called with each delivered update and the bot's HTTP status, the moment it
        # comes (a test kills the bot there: "right after the webhook answered 200").
        self.on_webhook_answer: Callable[[dict[str, Any], int], None] | None = None
        self._deliverer: asyncio.Task[None] | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.inline_answers: dict[str, list[dict[str, Any]]] = {}
        self.commands: list[dict[str, Any]] = []  # the default (no language_code) list
        self.commands_by_language: dict[str, list[dict[str, Any]]] = {}  # "" is the default
        self.profile: dict[tuple[str, str], str] = {}  # (field, language_code) -> text
        self.in_flight = 0
        self.last_activity = time.monotonic()
        self.limits: SendLimits | None = None
        self.faults: list[Fault] = []
        self.throttled = 0  # 429 answers given
        self.sent_times: list[float] = []  # every accepted sendMessage, for rate checks
        self.sent_by_chat: dict[int, list[float]] = {}  # when each chat got a sendMessage
        self._recent: collections.deque[tuple[float, int]] = collections.deque()
        # Telegram never numbers two updates alike (within a week): a new emulator, like
        # the demo's next run on the same database, goes on from where time has got to.
        self._update_ids = itertools.count(1 + int(time.time() * 1000) % 1_000_000_000)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._open_queries: dict[str, float] = {}  # query id -> when it was sent
        self.query_timeout: float | None = None  # Telegram's is about 15 s
        # Stars payments
        self.pre_checkout_timeout: float = PRE_CHECKOUT_TIMEOUT  # shrink it in tests
        self.pre_checkout_answers: dict[str, PreCheckoutAnswer] = {}
        self.star_transactions: list[dict[str, Any]] = []  # Bot API StarTransaction, newest last
        self.max_star_amount: int | None = None  # a per-invoice cap, if a test wants one
        self.announce_refunds = True  # push the refunded_payment service message on a refund
        # One entry per coming refundStarPayment call whose answer is lost: True, the
        # refund is made first; False, the call never reached "Telegram".
        self.dropped_refunds: collections.deque[bool] = collections.deque()
        self.affiliate: Affiliate | None = None  # payments from now on come through it
        self._paid_totals: dict[str, int] = {}  # charge id -> the Stars the payer paid
        self._open_checkouts: dict[str, float] = {}  # pre_checkout_query id -> when pushed
        self._charge_ids = itertools.count(1)

    # ------------------------------------------------------------ server

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(await request.post())
        if not params and request.can_read_body:
            try:
                params = await request.json()
            except ValueError:
                params = {}
        if method.lower() != "getupdates":
            self.in_flight += 1
        try:
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            self.calls.append((method, params))
            await self._notify()
            self._check_faults(method.lower(), params)
            result = await handler(params)
            body = {"ok": True, "result": result}
            status = 200
        except _Malformed:
            # A status line aiohttp's parser rejects; what a broken proxy might send.
            assert request.transport is not None
            request.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}")
            request.transport.close()
            return web.Response()
        except _Dropped:
            assert request.transport is not None
            request.transport.close()  # the client sees the server disconnect, no answer
            return web.Response()
        except ApiError as error:
            body = {"ok": False, "error_code": error.code, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
                self.throttled += 1
            status = error.code
        finally:
            if method.lower() != "getupdates":
                self.in_flight -= 1
                self.last_activity = time.monotonic()
                await self._notify()
        return web.json_response(body, status=status)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until ``predicate()`` holds; woken by every API call, and re-checked often
        so conditions outside the emulator (a task ending) are seen too."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the bot did not do what was expected in time")
            async with self._changed:
                # asyncio.timeout, not wait_for: on 3.11 wait_for returns the inner result
                # when a cancellation lands as the condition fires, losing the cancel (a
                # Ctrl-C in the demo, a test's task.cancel()).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(0.05, remaining)):
                        await self._changed.wait()

    def taken(self, update_id: int) -> bool:
        """The bot has taken update ``update_id``: acknowledged by a later getUpdates (aiogram
        has started a task for each update of a batch before it asks for the next), or
        answered 2xx by the webhook (which starts its task before answering)."""
        return all(update["update_id"] != update_id for update in self.pending)

    async def handled(self, update_id: int, timeout: float = 10.0) -> bool:
        """Wait until the bot has taken update ``update_id`` and no task of this process
        is handling it any more: whatever the handler said, it has said. Returns whether
        a handler was seen at all; False means the bot is in another process (or the
        handler made no call at all), and then this waited only for the taking.

        Every Bot API call of the handler wakes this while the handler is still waiting
        for the call's answer, so a handler that says anything is seen."""
        seen = False

        def finished() -> bool:
            nonlocal seen
            if update_id in updates_being_handled():
                seen = True
                return False
            return self.taken(update_id)

        await self.wait_for(finished, timeout)
        return seen

    async def settle(self, quiet: float = 0.05, timeout: float = 10.0) -> None:
        """Wait until the bot has no request in flight and has been quiet a moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle = time.monotonic() - self.last_activity
            if self.in_flight == 0 and idle >= quiet:
                return
            await asyncio.sleep(quiet / 2)
        raise TimeoutError("the bot did not settle")

    # ------------------------------------------------------------ faults and limits

    def inject(self, method: str, code: int, *, times: int = 1,
               retry_after: int | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` with an error ``code``."""
        if code == 429 and retry_after is None:
            retry_after = 1
        self.faults.append(Fault(method.lower(), code, times, retry_after))

    def _check_faults(self, method: str, params: dict[str, Any]) -> None:
        for fault in self.faults:
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                if fault.code == MALFORMED:
                    raise _Malformed
                description = {429: f"Too Many Requests: retry after {fault.retry_after}",
                               403: "Forbidden: bot was blocked by the user",
                               400: "Bad Request: chat not found"}.get(
                                   fault.code, "Internal Server Error")
                raise ApiError(fault.code, description, fault.retry_after)
        if method == "sendmessage" and self.limits is not None:
            self._check_rate(params)

    def _check_rate(self, params: dict[str, Any]) -> None:
        now = time.monotonic()
        while self._recent and self._recent[0][0] <= now - 1.0:
            self._recent.popleft()
        chat_id = int(params.get("chat_id") or 0)
        assert self.limits is not None
        limit_chat = self.limits.per_chat_per_second
        busy = len(self._recent) >= self.limits.per_second or (
            limit_chat is not None
            and sum(1 for _, chat in self._recent if chat == chat_id) >= limit_chat)
        if busy:
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        self._recent.append((now, chat_id))
        self.sent_times.append(now)

    # ------------------------------------------------------------ helpers

    def _chat(self, params: dict[str, Any]) -> Chat:
        try:
            chat_id = int(params.get("chat_id", ""))
        except ValueError:
            raise ApiError(400, "Bad Request: chat not found") from None
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
        raw = params.get("reply_markup")
        if raw in (None, ""):
            return None
        markup = json.loads(raw) if isinstance(raw, str) else raw
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline "
                                        "keyboard")
                data = button.get("callback_data")
                if data is not None and len(data.encode()) > MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    @staticmethod
    def _text(params: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
        raw = str(params.get("text", ""))
        shown, entities = parse_html(raw, params.get("parse_mode"))
        if not shown.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(shown) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return raw, shown, entities

    def _message_object(self, chat: Chat, message: ChatMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": message.message_id, "date": int(time.time()),
            "chat": chat.as_object(),
        }
        if message.invoice is not None:
            body["invoice"] = message.invoice  # an invoice message has no text
        elif message.photo is not None:
            body["photo"] = [{"file_id": message.photo, "file_unique_id": message.photo[-12:],
                              "width": 800, "height": 600}]
            if message.text:
                body["caption"] = message.text
            if message.entities:
                body["caption_entities"] = message.entities
        else:
            body["text"] = message.text
            if message.entities:
                body["entities"] = message.entities
        body["from"] = self.bot_user if message.from_bot else message.sender or chat.user
        if message.markup:
            body["reply_markup"] = message.markup
        if message.edits:
            body["edit_date"] = int(time.time())
        return body

    # ------------------------------------------------------------ methods

    async def _m_getme(self, _params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if _flag(params, "drop_pending_updates"):
            self.pending.clear()
        return True

    async def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        """Deliver every update by POST to ``url`` (through ``webhook_routes``, since the
        bot listens on loopback behind the public https address), with the secret header."""
        url = str(params.get("url") or "")
        if not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for"
                                " webhook")
        secret = params.get("secret_token")
        if secret is not None and not (1 <= len(str(secret)) <= 256):
            raise ApiError(400, "Bad Request: secret token is invalid")
        raw = params.get("allowed_updates")
        allowed = json.loads(raw) if isinstance(raw, str) else raw
        if _flag(params, "drop_pending_updates"):
            self.pending.clear()
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        if self._deliverer is None or self._deliverer.done():
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver_webhook())
        return True

    def route_webhook(self, public_prefix: str, local_base: str) -> None:
        """Calls to ``public_prefix...`` go to ``local_base...`` (the bot's loopback server)."""
        self.webhook_routes[public_prefix] = local_base

    async def _deliver_webhook(self) -> None:
        """Like Telegram: one update at a time, in order, retried until answered 2xx."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            while self.webhook is not None:
                if not self.pending:
                    with contextlib.suppress(TimeoutError):
                        await self.wait_for(lambda: bool(self.pending) or self.webhook is None,
                                            timeout=1.0)
                    continue
                hook, update = self.webhook, self.pending[0]
                url = hook["url"]
                for prefix, local in self.webhook_routes.items():
                    if url.startswith(prefix):
                        url = local + url[len(prefix):]
                headers = ({"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]}
                           if hook["secret_token"] else {})
                try:
                    async with session.post(url, json=update, headers=headers) as answer:
                        status = answer.status
                except aiohttp.ClientError:
                    status = 0
                self.webhook_answers.append(status)
                if self.on_webhook_answer is not None:
                    self.on_webhook_answer(update, status)
                if 200 <= status < 300:
                    if self.pending and self.pending[0] is update:
                        self.pending.pop(0)
                else:
                    await asyncio.sleep(0.2)  # Telegram waits longer; tests want it quick

    async def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        raw = params.get("commands", "[]")
        commands = json.loads(raw) if isinstance(raw, str) else raw
        for command in commands:
            if not (1 <= len(command.get("command", "")) <= 32
                    and 1 <= len(command.get("description", "")) <= 256):
                raise ApiError(400, "Bad Request: command or description is invalid")
        language = params.get("language_code") or ""
        self.commands_by_language[language] = commands
        if not language:
            self.commands = commands
        return True

    async def _m_setmydescription(self, params: dict[str, Any]) -> bool:
        return self._profile_text(params, "description", 512)

    async def _m_setmyshortdescription(self, params: dict[str, Any]) -> bool:
        return self._profile_text(params, "short_description", 120)

    def _profile_text(self, params: dict[str, Any], field: str, limit: int) -> bool:
        text = str(params.get(field) or "")
        if len(text) > limit:
            raise ApiError(400, f"Bad Request: {field} is too long")
        self.profile[(field, params.get("language_code") or "")] = text
        return True

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        if not self.pending and timeout > 0:
            try:
                await self.wait_for(lambda: bool(self.pending), timeout=timeout)
            except TimeoutError:
                return []
        return self.pending[:limit]

    async def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        raw, shown, entities = self._text(params)
        message = ChatMessage(next(self._message_ids), True, shown, self._markup(params),
                              raw_text=raw, entities=entities)
        chat.messages[message.message_id] = message
        chat.events += 1
        self.sent_by_chat.setdefault(int(chat.user["id"]), []).append(time.monotonic())
        return self._message_object(chat, message)

    async def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        """A photo by file_id or uploaded (multipart); the caption is HTML like a text."""
        chat = self._chat(params)
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):  # how aiogram uploads
            photo = params.get(photo.removeprefix("attach://"))
        if isinstance(photo, web.FileField):
            size = len(photo.file.read())
            if not size:
                raise ApiError(400, "Bad Request: file must be non-empty")
            file_id, uploaded = f"AgAC{uuid.uuid4().hex}", size
        elif isinstance(photo, str) and photo.strip():
            file_id, uploaded = photo, 0
        else:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        raw = str(params.get("caption", ""))
        shown, entities = parse_html(raw, params.get("parse_mode")) if raw else ("", [])
        if len(shown) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        message = ChatMessage(next(self._message_ids), True, shown, self._markup(params),
                              raw_text=raw, photo=file_id, photo_bytes=uploaded,
                              entities=entities)
        chat.messages[message.message_id] = message
        chat.events += 1
        self.sent_by_chat.setdefault(int(chat.user["id"]), []).append(time.monotonic())
        return self._message_object(chat, message)

    def _editable(self, params: dict[str, Any]) -> tuple[Chat, ChatMessage]:
        chat = self._chat(params)
        message = chat.messages.get(int(params.get("message_id") or 0))
        if message is None or message.deleted or not message.from_bot:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat, message

    async def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        if message.invoice is not None or message.photo is not None:
            # Telegram cannot turn an invoice or a photo into text; a bot that tries has a bug.
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        raw, shown, entities = self._text(params)
        markup = self._markup(params)
        if shown == message.text and entities == message.entities and markup == message.markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        message.text, message.raw_text, message.markup = shown, raw, markup
        message.entities = entities
        message.edits += 1
        chat.events += 1
        return self._message_object(chat, message)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        markup = self._markup(params)
        if markup == message.markup:
            raise ApiError(400, "Bad Request: message is not modified")
        message.markup = markup
        message.edits += 1
        chat.events += 1
        return self._message_object(chat, message)

    async def _m_deletemessage(self, params: dict[str, Any]) -> bool:
        chat, message = self._editable(params)
        message.deleted = True
        chat.events += 1
        return True

    def _close_query(self, query_id: str) -> None:
        """A callback or inline query can be answered once."""
        sent_at = self._open_queries.pop(query_id, None)
        too_late = (sent_at is not None and self.query_timeout is not None
                    and time.monotonic() - sent_at > self.query_timeout)
        if sent_at is None or too_late:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                "query ID is invalid")

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        self._close_query(query_id)
        self.callback_answers[query_id] = {"text": params.get("text"),
                                           "show_alert": params.get("show_alert")}
        return True

    async def _m_answerinlinequery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("inline_query_id", ""))
        self._close_query(query_id)
        raw = params.get("results", "[]")
        results = json.loads(raw) if isinstance(raw, str) else raw
        if len(results) > 50:
            raise ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        self.inline_answers[query_id] = results
        return True

    # ------------------------------------------------------------ Stars payments

    @staticmethod
    def _invoice_markup(markup: dict[str, Any] | None) -> None:
        """An invoice's keyboard, when it has one, must start with the Pay button."""
        if markup is None:
            return
        rows = markup.get("inline_keyboard") or []
        if not rows or not rows[0] or not rows[0][0].get("pay"):
            raise ApiError(400, "Bad Request: the first button of an invoice's inline "
                                "keyboard must be a Pay button")

    async def _m_sendinvoice(self, params: dict[str, Any]) -> dict[str, Any]:
        """A Stars invoice, refused where Telegram refuses one."""
        chat = self._chat(params)
        title = str(params.get("title") or "")
        description = str(params.get("description") or "")
        payload = str(params.get("payload") or "")
        currency = str(params.get("currency") or "")
        if not 1 <= len(title) <= MAX_INVOICE_TITLE:
            raise ApiError(400, "Bad Request: invoice title must be 1-32 characters")
        if not 1 <= len(description) <= MAX_INVOICE_DESCRIPTION:
            raise ApiError(400, "Bad Request: invoice description must be 1-255 characters")
        if not 1 <= len(payload.encode()) <= MAX_INVOICE_PAYLOAD:
            raise ApiError(400, "Bad Request: INVOICE_PAYLOAD_INVALID")
        # Only Stars here: another currency needs a provider this emulator does not have,
        # and a Stars invoice takes no provider token (aiogram omits an empty one).
        if currency != STARS or params.get("provider_token"):
            raise ApiError(400, "Bad Request: PAYMENT_PROVIDER_INVALID")
        raw_prices = params.get("prices")
        try:
            prices = json.loads(raw_prices) if isinstance(raw_prices, str) else raw_prices
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse prices JSON object") from None
        if not isinstance(prices, list) or len(prices) != 1:
            raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")  # exactly one price
        price = prices[0]
        amount = price.get("amount") if isinstance(price, dict) else None
        if not isinstance(price, dict) or not price.get("label"):
            raise ApiError(400, "Bad Request: LABELED_PRICE_INVALID")
        # Whole Stars: a positive integer (JSON 1.0 or "5" is not one).
        if (not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0
                or (self.max_star_amount is not None and amount > self.max_star_amount)):
            raise ApiError(400, "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID")
        for name in ("max_tip_amount", "suggested_tip_amounts"):
            if params.get(name) not in (None, "", "0", 0, "[]", []):
                raise ApiError(400, "Bad Request: tips are not supported for Stars payments")
        markup = self._markup(params)
        self._invoice_markup(markup)
        invoice = {"title": title, "description": description,
                   "start_parameter": str(params.get("start_parameter") or ""),
                   "currency": currency, "total_amount": amount}
        message = ChatMessage(next(self._message_ids), True, f"{title}\n{description}", markup,
                              raw_text=title, invoice=invoice, invoice_payload=payload)
        chat.messages[message.message_id] = message
        chat.events += 1
        return self._message_object(chat, message)

    async def _m_answerprecheckoutquery(self, params: dict[str, Any]) -> bool:
        """Recorded once per query, with how long the bot took; too late is refused."""
        query_id = str(params.get("pre_checkout_query_id", ""))
        ok = _flag(params, "ok")
        if ok is None:
            raise ApiError(400, 'Bad Request: parameter "ok" is required')
        error_message = params.get("error_message") or None
        if not ok and not error_message:
            raise ApiError(400, "Bad Request: ERROR_MESSAGE_EMPTY")
        sent_at = self._open_checkouts.pop(query_id, None)
        if sent_at is None:  # unknown, or answered already
            raise ApiError(400, QUERY_EXPIRED)
        elapsed = time.monotonic() - sent_at
        accepted = elapsed <= self.pre_checkout_timeout
        self.pre_checkout_answers[query_id] = PreCheckoutAnswer(
            query_id, ok, None if ok else str(error_message), elapsed, accepted)
        if not accepted:
            raise ApiError(400, QUERY_EXPIRED)
        return True

    def _payment(self, charge_id: str) -> dict[str, Any] | None:
        """A user's payment with this charge id (not an affiliate commission, not a
        transaction aiogram could not read)."""
        for transaction in self.star_transactions:
            source = transaction.get("source")
            if (transaction["id"] == charge_id and isinstance(source, dict)
                    and source.get("type") == "user"):
                return transaction
        return None

    def drop_refund_calls(self, *, refunded: bool, times: int = 1) -> None:
        """The next ``times`` refundStarPayment calls get no answer: the connection is
        closed. ``refunded``: the refund is made (as when the answer is lost on the
        way back); else nothing happens (the request never arrived)."""
        self.dropped_refunds.extend([refunded] * times)

    @property
    def refunds(self) -> list[dict[str, Any]]:
        """The refund transactions (a ``receiver``, the payment's id), oldest first."""
        return [t for t in self.star_transactions if "receiver" in t]

    async def _m_refundstarpayment(self, params: dict[str, Any]) -> bool:
        if not self.dropped_refunds:
            return self._refund(params)
        if self.dropped_refunds.popleft():
            with contextlib.suppress(ApiError):  # a refusal is lost the same way
                self._refund(params)
        raise _Dropped

    def _refund(self, params: dict[str, Any]) -> bool:
        user_id = _number(params, "user_id")
        charge_id = str(params.get("telegram_payment_charge_id") or "")
        if user_id is None:
            raise ApiError(400, "Bad Request: USER_ID_INVALID")
        payment = self._payment(charge_id)
        if payment is None or payment["source"]["user"]["id"] != user_id:
            raise ApiError(400, "Bad Request: CHARGE_NOT_FOUND")
        if any(t["id"] == charge_id for t in self.refunds):
            raise ApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        user = payment["source"]["user"]
        refund: dict[str, Any] = {
            "id": charge_id, "amount": payment["amount"], "date": int(time.time()),
            "receiver": {"type": "user", "transaction_type": "invoice_payment", "user": user}}
        if "nanostar_amount" in payment:
            refund["nanostar_amount"] = payment["nanostar_amount"]
        affiliate = payment["source"].get("affiliate")
        if affiliate is not None:  # the affiliate gives its commission back
            refund["receiver"]["affiliate"] = {
                **affiliate, "amount": -affiliate["amount"],
                **({"nanostar_amount": -affiliate["nanostar_amount"]}
                   if "nanostar_amount" in affiliate else {})}
        self.star_transactions.append(refund)
        if self.announce_refunds and user_id in self.chats:
            # Telegram posts a refunded_payment service message in the user's chat.
            chat = self.chats[user_id]
            self.push({"message": {
                "message_id": self.new_message_id(), "date": int(time.time()),
                "chat": chat.as_object(), "from": chat.user,
                "refunded_payment": {
                    "currency": STARS,
                    "total_amount": self._paid_totals.get(charge_id, payment["amount"]),
                    "invoice_payload": payment["source"].get("invoice_payload", ""),
                    "telegram_payment_charge_id": charge_id}}})
        return True

    async def _m_getstartransactions(self, params: dict[str, Any]) -> dict[str, Any]:
        offset = _number(params, "offset", 0)
        limit = _number(params, "limit", 100)
        assert offset is not None and limit is not None
        if offset < 0:
            raise ApiError(400, "Bad Request: OFFSET_INVALID")
        if not 1 <= limit <= 100:
            raise ApiError(400, "Bad Request: LIMIT_INVALID")
        newest_first = self.star_transactions[::-1]
        return {"transactions": newest_first[offset:offset + limit]}

    def new_pre_checkout_id(self) -> str:
        """A pre_checkout_query id, open for ``pre_checkout_timeout`` from now."""
        query_id = str(next(self._query_ids) + 8_000_000_000)
        self._open_checkouts[query_id] = time.monotonic()
        return query_id

    def complete_payment(self, user: dict[str, Any], total_amount: int, payload: str) -> str:
        """Telegram's side of a completed payment: the Star transaction and its charge id."""
        charge_id = f"stxEMU{next(self._charge_ids):06d}{uuid.uuid4().hex[:16]}"
        transaction: dict[str, Any] = {
            "id": charge_id, "amount": total_amount, "date": int(time.time()),
            "source": {"type": "user", "transaction_type": "invoice_payment", "user": user,
                       "invoice_payload": payload}}
        if self.affiliate is not None:
            # The bot's transaction holds its share; the affiliate's is in AffiliateInfo
            # (whole Stars rounded towards zero, the rest in nanostars).
            commission = total_amount * NANO * self.affiliate.commission_per_mille // 1000
            share = total_amount * NANO - commission
            transaction["amount"] = share // NANO
            if share % NANO:
                transaction["nanostar_amount"] = share % NANO
            affiliate: dict[str, Any] = {
                "affiliate_user": self.affiliate.user, "amount": commission // NANO,
                "commission_per_mille": self.affiliate.commission_per_mille}
            if commission % NANO:
                affiliate["nanostar_amount"] = commission % NANO
            transaction["source"]["affiliate"] = affiliate
        self._paid_totals[charge_id] = total_amount
        self.star_transactions.append(transaction)
        return charge_id

    def earn_affiliate_commission(self, sponsor: dict[str, Any], stars: int,
                                  commission_per_mille: int = 200) -> str:
        """The bot's own commission from another bot's affiliate program: an incoming
        transaction from ``affiliate_program``, neither a payment nor a refund."""
        transaction_id = f"stxAFF{next(self._charge_ids):06d}{uuid.uuid4().hex[:16]}"
        self.star_transactions.append({
            "id": transaction_id, "amount": stars, "date": int(time.time()),
            "source": {"type": "affiliate_program", "sponsor_user": sponsor,
                       "commission_per_mille": commission_per_mille}})
        return transaction_id

    def add_unreadable_transaction(self, transaction_id: str | None = None, *,
                                   outgoing: bool = False) -> str:
        """A transaction aiogram cannot parse: a partner type it does not know (one
        Telegram may add tomorrow). ``outgoing``: a ``receiver``, as a refund has."""
        transaction_id = transaction_id or f"stxNEW{next(self._charge_ids):06d}"
        side = "receiver" if outgoing else "source"
        self.star_transactions.append({
            "id": transaction_id, "amount": 1, "date": int(time.time()),
            side: {"type": "partner_from_the_future", "user": {"id": 1}}})
        return transaction_id

    # ------------------------------------------------------------ users

    def user(self, user_id: int, first_name: str = "Alex", *, language_code: str = "en",
             username: str | None = None) -> ScriptedUser:
        profile = {"id": user_id, "is_bot": False, "first_name": first_name,
                   "language_code": language_code}
        if username:
            profile["username"] = username
        chat = self.chats.setdefault(user_id, Chat(profile))
        return ScriptedUser(self, chat)

    def in_group(self, member: ScriptedUser, group_id: int = -1_001_234,
                 title: str = "Friends") -> ScriptedUser:
        """``member`` speaking in a group chat the bot is in."""
        chat = self.chats.setdefault(group_id, Chat({"id": group_id, "first_name": title},
                                                    kind="group"))
        return ScriptedUser(self, chat, sender=member.sender)

    def push(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self.pending.append({"update_id": update_id, **update})
        self.pushed.append(self.pending[-1])
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    def new_message_id(self) -> int:
        return next(self._message_ids)

    def new_query_id(self) -> str:
        query_id = str(next(self._query_ids) + 9_000_000_000)
        self._open_queries[query_id] = time.monotonic()
        return query_id


class ScriptedUser:
    """A person in a private chat with the bot (or, ``in_group``, in a group)."""

    def __init__(self, emulator: BotApiEmulator, chat: Chat,
                 sender: dict[str, Any] | None = None) -> None:
        self.emulator = emulator
        self.chat = chat
        self.sender = sender or chat.user
        self.id = int(self.sender["id"])

    # reading --------------------------------------------------------------

    @property
    def bot_messages(self) -> list[ChatMessage]:
        return [m for _, m in sorted(self.chat.messages.items())
                if m.from_bot and not m.deleted]

    def last(self) -> ChatMessage:
        messages = self.bot_messages
        if not messages:
            raise AssertionError("the bot has said nothing in this chat")
        return messages[-1]

    @property
    def text(self) -> str:
        """The text of the bot's latest message."""
        return self.last().text

    def with_button(self, label: str) -> ChatMessage:
        for message in reversed(self.bot_messages):
            if message.button(label) is not None:
                return message
        shown = [m.buttons for m in self.bot_messages[-3:]]
        raise AssertionError(f"no button {label!r}; the latest buttons are {shown}")

    def saying(self, fragment: str) -> list[ChatMessage]:
        """The bot's messages here that contain ``fragment``."""
        return [m for m in self.bot_messages if fragment in m.text]

    async def expect(self, fragment: str, *, timeout: float = 10.0) -> ChatMessage:
        """Wait until one of the bot's messages here contains ``fragment`` (the bot
        may say it on its own: a notification); returns that message."""
        await self.emulator.wait_for(lambda: bool(self.saying(fragment)), timeout)
        return self.saying(fragment)[-1]

    # acting ---------------------------------------------------------------

    async def _await_reply(self, before: int, update_id: int, timeout: float) -> ChatMessage:
        """The bot's latest message once it has answered update ``update_id`` in full.

        The first message only starts the answer: a handler may send a second one after
        a database write or a panel call, so this waits for the handler to end too (a
        quiet moment alone is not enough on a loaded machine)."""
        await self.emulator.wait_for(lambda: self.chat.events > before, timeout)
        await self.emulator.handled(update_id, timeout)
        await self.emulator.settle()
        return self.last()

    async def send(self, text: str, *, entities: list[dict[str, Any]] | None = None,
                   timeout: float = 10.0) -> ChatMessage:
        """Send text (with formatting ``entities``, as Telegram gives them: offsets in
        UTF-16 units) and wait for the bot's answer; returns its latest message."""
        message_id = self.emulator.new_message_id()
        body: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                "chat": self.chat.as_object(), "from": self.sender,
                                "text": text}
        if text.startswith("/"):
            command = text.split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if entities:
            body["entities"] = entities
        self.chat.messages[message_id] = ChatMessage(message_id, False, text, sender=self.sender)
        return await self._deliver({"message": body}, timeout)

    async def send_sticker(self, *, timeout: float = 10.0) -> ChatMessage:
        return await self._deliver({"message": self._media({"sticker": {
            "file_id": "CAACAgIAAxkBAAE", "file_unique_id": "AgADsticker", "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False,
            "emoji": "😀"}})}, timeout)

    async def send_photo(self, caption: str = "", *, file_id: str = "AgACAgIAAxkBAAE",
                         entities: list[dict[str, Any]] | None = None,
                         timeout: float = 10.0) -> ChatMessage:
        """Send a photo, optionally with a caption (and its formatting ``entities``)."""
        content: dict[str, Any] = {"photo": [
            {"file_id": file_id, "file_unique_id": "AQADphoto", "width": 90, "height": 90}]}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return await self._deliver({"message": self._media(content)}, timeout)

    def _media(self, content: dict[str, Any]) -> dict[str, Any]:
        return {"message_id": self.emulator.new_message_id(), "date": int(time.time()),
                "chat": self.chat.as_object(), "from": self.sender, **content}

    async def _deliver(self, update: dict[str, Any], timeout: float) -> ChatMessage:
        before = self.chat.events
        update_id = self.emulator.push(update)
        return await self._await_reply(before, update_id, timeout)

    async def tap(self, label: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Tap the newest button whose label contains ``label``; returns the callback answer."""
        message = self.with_button(label)
        button = message.button(label)
        assert button is not None
        if "callback_data" not in button:
            raise AssertionError(f"button {label!r} is not a callback button: {button}")
        return await self.tap_data(button["callback_data"], message, timeout=timeout)

    async def tap_data(self, data: str, message: ChatMessage | None = None, *,
                       timeout: float = 10.0) -> dict[str, Any]:
        """Send a callback query with any data (forged ones included); returns the bot's
        answer once the bot has finished with the tap (the edit or message that may
        follow the answer included). Raises ``NoAnswer`` (a ``TimeoutError``) when the
        bot gave no accepted answer: at once when it ran in this process and its
        handler ended, else after ``timeout``."""
        emulator = self.emulator
        message = message or self.last()
        query_id = emulator.new_query_id()
        update_id = emulator.push({"callback_query": {
            "id": query_id, "from": self.sender, "chat_instance": f"ci{self.chat.id}",
            "data": data,
            "message": emulator._message_object(self.chat, message),
        }})
        seen = False

        def answered_or_over() -> bool:
            nonlocal seen
            if query_id in emulator.callback_answers:
                return True
            if update_id in updates_being_handled():
                seen = True
                return False
            return seen and emulator.taken(update_id)  # handled, and never answered

        try:
            await emulator.wait_for(answered_or_over, timeout)
        except TimeoutError:
            raise NoAnswer("the bot did not answer the callback query in time") from None
        if query_id not in emulator.callback_answers:
            raise NoAnswer("the bot handled the callback query without an accepted answer")
        await emulator.handled(update_id, timeout)
        await emulator.settle()
        return emulator.callback_answers[query_id]

    # paying ---------------------------------------------------------------

    def invoices(self) -> list[ChatMessage]:
        """The bot's invoice messages here, oldest first."""
        return [m for m in self.bot_messages if m.invoice is not None]

    async def _ask_pre_checkout(self, payload: str, total_amount: int, currency: str,
                                timeout: float) -> tuple[str, PreCheckoutAnswer | None]:
        """Push a pre_checkout_query; the bot's answer, late ones included, or None when it
        gave none within ``timeout``. With an answer, returns once the bot's handler of
        the query has ended (it may say more after answering)."""
        emulator = self.emulator
        query_id = emulator.new_pre_checkout_id()
        update_id = emulator.push({"pre_checkout_query": {
            "id": query_id, "from": self.sender, "currency": currency,
            "total_amount": total_amount, "invoice_payload": payload}})
        with contextlib.suppress(TimeoutError):
            await emulator.wait_for(lambda: query_id in emulator.pre_checkout_answers, timeout)
        answer = emulator.pre_checkout_answers.get(query_id)
        if answer is not None:
            await emulator.handled(update_id, timeout)
        return query_id, answer

    def _payment_message(self, payload: str, total_amount: int, charge_id: str,
                         currency: str) -> dict[str, Any]:
        return {"message_id": self.emulator.new_message_id(), "date": int(time.time()),
                "chat": self.chat.as_object(), "from": self.sender,
                "successful_payment": {
                    "currency": currency, "total_amount": total_amount,
                    "invoice_payload": payload, "telegram_payment_charge_id": charge_id,
                    # Stars have no payment provider, so no provider charge id.
                    "provider_payment_charge_id": ""}}

    async def pay(self, message: ChatMessage | None = None, *,
                  timeout: float = 10.0) -> PayResult:
        """Tap Pay on the newest invoice here (or ``message``), as Telegram runs it: the
        pre_checkout_query for exactly what the invoice says, and only after the bot's
        ok in time, a new Star transaction and the successful_payment message; then
        the bot's reply is awaited as ``send`` does. A refusal (or no answer, or a late
        one) returns with no payment: ``result.ok`` is False, ``error_message`` what the
        user saw."""
        if message is None:
            invoices = self.invoices()
            if not invoices:
                raise AssertionError("the bot has sent no invoice in this chat")
            message = invoices[-1]
        invoice = message.invoice
        if invoice is None or message.deleted:
            raise AssertionError(f"message {message.message_id} is not an invoice here")
        if message.paid_charge_id is not None:
            raise AssertionError("this invoice is paid already (Telegram shows a receipt); "
                                 "use pre_checkout() to forge a second checkout")
        emulator = self.emulator
        # Telegram stops waiting at its deadline; a little longer shows a late answer.
        wait = min(timeout, emulator.pre_checkout_timeout + 1.0)
        query_id, answer = await self._ask_pre_checkout(
            message.invoice_payload, invoice["total_amount"], invoice["currency"], wait)
        result = PayResult(query_id, answer)
        if answer is None or not answer.ok or not answer.accepted:
            await emulator.settle()
            return result
        charge_id = emulator.complete_payment(self.sender, invoice["total_amount"],
                                              message.invoice_payload)
        message.paid_charge_id = charge_id
        result.charge_id = charge_id
        result.payment = self._payment_message(message.invoice_payload,
                                               invoice["total_amount"], charge_id,
                                               invoice["currency"])
        result.reply = await self._deliver({"message": result.payment}, timeout)
        return result

    async def pre_checkout(self, payload: str, total_amount: int, currency: str = STARS, *,
                           timeout: float = 10.0) -> PreCheckoutAnswer:
        """A pre_checkout_query for anything (another user's payload, a wrong amount...);
        returns the bot's answer (``accepted`` False when it came too late). No payment
        follows, whatever the answer."""
        _, answer = await self._ask_pre_checkout(payload, total_amount, currency, timeout)
        if answer is None:
            raise TimeoutError("the bot did not answer the pre_checkout_query")
        await self.emulator.settle()
        return answer

    async def deliver_payment(self, payload: str, total_amount: int, charge_id: str,
                              currency: str = STARS, *, quiet: float = 0.3,
                              timeout: float = 10.0) -> ChatMessage | None:
        """Push a successful_payment message as is (a duplicate delivery, a payment the
        bot never approved). Records no transaction. Waits for the bot to take the update
        and finish with it; saying nothing is allowed: returns None then, else the bot's
        latest message. ``quiet`` is only for a bot in another process, whose handler
        cannot be seen ending: seconds to wait for a message before deciding it said
        nothing."""
        emulator = self.emulator
        before = self.chat.events
        update_id = emulator.push({"message": self._payment_message(
            payload, total_amount, charge_id, currency)})
        if not await emulator.handled(update_id, timeout):
            with contextlib.suppress(TimeoutError):
                await emulator.wait_for(lambda: self.chat.events > before, quiet)
        await emulator.settle(timeout=timeout)
        return self.last() if self.chat.events > before else None

    async def inline(self, query: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        query_id = self.emulator.new_query_id()
        self.emulator.push({"inline_query": {"id": query_id, "from": self.sender,
                                             "query": query, "offset": ""}})
        await self.emulator.wait_for(lambda: query_id in self.emulator.inline_answers, timeout)
        return self.emulator.inline_answers[query_id]


@dataclass
class RunningEmulator:
    emulator: BotApiEmulator
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        if self.emulator._deliverer is not None:
            self.emulator._deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.emulator._deliverer
        await self.runner.cleanup()


async def start_emulator(emulator: BotApiEmulator | None = None, *, host: str = "127.0.0.1",
                         port: int = 0) -> RunningEmulator:
    emulator = emulator or BotApiEmulator()
    runner, bound = await serve(emulator.app(), host, port)
    return RunningEmulator(emulator, runner, f"http://{host}:{bound}")
