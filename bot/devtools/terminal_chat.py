"""A Telegram chat in the terminal: the bot's messages as a person sees them.

It shows one private chat of the Bot API emulator (bot/devtools/emulator.py) and acts in
it as its user:

* each message the bot sends is printed with its Telegram HTML rendered
  (bold, italic, code as terminal styles when the output is a terminal, plain
  text when it is not) and its inline buttons as ``[N] label``, numbered from 1
  across every row; an edited message is printed again, marked ``(edited)``;
  a photo shows its caption, an invoice its price and how to pay;
* typing a number N taps button N of the newest message with buttons (``'5``
  sends the text ``5``); anything else is sent as a message, commands included;
  ``/pay`` pays the newest unpaid invoice (a Telegram Stars stand-in),
  ``/wait [seconds] [text]`` waits that long, or until a message with that text
  arrives (scripts use it), ``/quit`` leaves;
* messages the bot sends on its own (status notices, refunds, alerts) are printed
  as they arrive, between prompts: on a terminal the line being typed is drawn
  again below them, so typing is never garbled.

Input is read by a daemon thread, so Ctrl-C and the end of input leave at once;
with a pipe for input there is no prompt and output is flushed per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser
from typing import Any, TextIO

from bot.devtools.emulator import BotApiEmulator, ChatMessage, ScriptedUser

PROMPT = "you › "
REPLY_TIMEOUT = 15.0  # seconds to wait for the bot's answer before the next input line

_STYLES = {"b": "1", "strong": "1", "i": "3", "em": "3", "u": "4", "ins": "4", "s": "9",
           "strike": "9", "del": "9", "code": "36", "pre": "36", "a": "4;34",
           "tg-spoiler": "2", "blockquote": "3"}


class _Renderer(HTMLParser):
    def __init__(self, styled: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.styled = styled
        self.parts: list[str] = []
        self.stack: list[str] = []
        self.links: list[str] = []

    def _restyle(self) -> None:
        if self.styled:
            codes = ";".join(_STYLES[tag] for tag in self.stack if tag in _STYLES)
            self.parts.append("\033[0m" + (f"\033[{codes}m" if codes else ""))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.links.append(dict(attrs).get("href") or "" if tag == "a" else "")
        self._restyle()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            index = len(self.stack) - 1 - self.stack[::-1].index(tag)
            href = self.links[index]
            del self.stack[index], self.links[index]
            self._restyle()
            if href:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def render_html(raw: str, styled: bool) -> str:
    """Telegram HTML as terminal text; tags the bot should not send are shown as text."""
    renderer = _Renderer(styled)
    try:
        renderer.feed(raw)
        renderer.close()
    except Exception:  # a malformed message is shown as it came
        return unescape(raw)
    return "".join(renderer.parts) + ("\033[0m" if styled else "")


def callback_buttons(message: ChatMessage) -> list[dict[str, Any]]:
    """The message's buttons in reading order (numbered from 1 when shown)."""
    return [button for row in (message.markup or {}).get("inline_keyboard", []) for button in row]


def format_message(message: ChatMessage, *, styled: bool, edited: bool = False) -> str:
    bold = (lambda text: f"\033[1m{text}\033[0m") if styled else (lambda text: text)
    head = bold("bot") + (" (edited)" if edited else "")
    if message.invoice is not None:
        invoice = message.invoice
        total = invoice.get("total_amount", 0)
        body = (f"🧾 {invoice.get('title', '')}\n{invoice.get('description', '')}\n"
                f"Total: {total} ⭐" + ("  (paid)" if message.paid_charge_id else
                                         "  — type /pay to pay it"))
    else:
        body = render_html(message.raw_text or message.text, styled)
        if message.photo is not None:
            body = "[photo] " + body
    indent = " " * (len("bot: ") + (len(" (edited)") if edited else 0))
    lines = [f"{head}: " + body.replace("\n", "\n" + indent)]
    number = 0
    for row in (message.markup or {}).get("inline_keyboard", []):
        labels = []
        for button in row:
            number += 1
            labels.append(f"[{number}] {button.get('text', '')}")
        lines.append(indent + "   ".join(labels))
    return "\n".join(lines)


class TerminalChat:
    def __init__(self, emulator: BotApiEmulator, user: ScriptedUser, *,
                 output: TextIO = sys.stdout, interactive: bool | None = None,
                 styled: bool | None = None) -> None:
        self.emulator = emulator
        self.user = user
        self.output = output
        tty = output.isatty()
        self.interactive = sys.stdin.isatty() and tty if interactive is None else interactive
        self.styled = tty if styled is None else styled
        self._shown: dict[int, tuple[str, Any, int, str | None]] = {}
        self._write_lock = threading.Lock()
        self._line_buffer: Callable[[], str] = lambda: ""
        self._prompting = False  # the input thread is inside input(), its prompt shown

    # ------------------------------------------------------------ output

    def say(self, text: str) -> None:
        """Print between prompts: the line being typed is drawn again below."""
        with self._write_lock:
            if self.interactive:
                self.output.write("\r\033[K")
            self.output.write(text + "\n")
            if self.interactive and self._prompting:  # input() is waiting: draw it again
                self.output.write(PROMPT + self._line_buffer())
            self.output.flush()

    def show_changes(self) -> None:
        """Print every bot message that is new or changed since the last call."""
        for message_id, message in sorted(self.user.chat.messages.items()):
            if not message.from_bot or message.deleted:
                continue
            key = (message.raw_text or message.text, message.markup, message.edits,
                   message.paid_charge_id)
            before = self._shown.get(message_id)
            if before == key:
                continue
            self._shown[message_id] = key
            self.say(format_message(message, styled=self.styled, edited=before is not None))

    async def watch(self) -> None:
        """Print what the bot says, as it says it, until cancelled."""
        chat = self.user.chat
        while True:
            seen = chat.events
            self.show_changes()
            with contextlib.suppress(TimeoutError):
                await self.emulator.wait_for(lambda seen=seen: chat.events != seen, 1.0)

    # ------------------------------------------------------------ input

    def _tappable(self) -> ChatMessage | None:
        """The bot's newest message, when it has buttons: a number taps one of them.
        (An older message's buttons are not reached by a bare number: the newest
        message is the one the customer is answering.)"""
        messages = self.user.bot_messages
        if messages and callback_buttons(messages[-1]):
            return messages[-1]
        return None

    async def handle(self, line: str) -> bool:
        """Act on one line the user typed; False when they leave."""
        text = line.strip()
        if not text:
            return True
        if not self.interactive:  # a transcript shows what was typed
            self.say(f"you: {text}")
        if text in ("/quit", "/exit"):
            return False
        if text.split()[0] == "/wait":
            await self._wait(text.split()[1:])
            return True
        if text == "/pay":
            await self._pay()
            return True
        message = self._tappable()
        if message is not None and text.isascii() and text.isdigit() and len(text) <= 3:
            buttons = callback_buttons(message)
            if 1 <= int(text) <= len(buttons):
                button = buttons[int(text) - 1]
                self.say(f"  (tapped [{text}] {button.get('text', '')}; '{text} sends the text"
                         f" {text})")
                await self._tap(message, button)
                return True
        await self._send(text.removeprefix("'") if text.startswith("'") else text)
        return True

    async def _wait(self, words: list[str]) -> None:
        """``/wait [seconds] [text]``: until a message with ``text`` arrives (any new
        message when none is given), or the seconds (default 5) pass."""
        seconds = min(float(words[0]), 600.0) if words and _is_number(words[0]) else 5.0
        wanted = " ".join(words[1:] if words and _is_number(words[0]) else words)
        chat, before = self.user.chat, self.user.chat.events

        def arrived() -> bool:
            if not wanted:
                return chat.events != before
            return any(wanted in m.text for m in self.user.bot_messages)

        with contextlib.suppress(TimeoutError):
            await self.emulator.wait_for(arrived if wanted else lambda: False, seconds)
        self.show_changes()

    async def _send(self, text: str) -> None:
        with contextlib.suppress(TimeoutError, AssertionError):
            await self.user.send(text, timeout=REPLY_TIMEOUT)
        self.show_changes()

    async def _tap(self, message: ChatMessage, button: dict[str, Any]) -> None:
        if "callback_data" not in button:
            self.say(f"(this button opens {button.get('url', 'a link')})")
            return
        try:
            answer = await self.user.tap_data(button["callback_data"], message,
                                              timeout=REPLY_TIMEOUT)
        except TimeoutError:
            answer = {}
        self.show_changes()
        if answer.get("text"):
            self.say(f"  ⓘ {answer['text']}")

    async def _pay(self) -> None:
        unpaid = [m for m in self.user.invoices() if m.paid_charge_id is None]
        if not unpaid:
            self.say("(there is no invoice to pay)")
            return
        try:
            result = await self.user.pay(unpaid[-1], timeout=REPLY_TIMEOUT)
        except (TimeoutError, AssertionError) as exc:
            self.say(f"(the payment did not go through: {exc})")
            return
        self.show_changes()
        if not result.ok:
            self.say(f"(payment refused: {result.error_message or 'no answer'})")

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Until /quit, the end of input, or cancellation."""
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:  # a daemon thread: it never keeps the process alive
            readline_buffer = None
            if self.interactive:
                with contextlib.suppress(ImportError):
                    import readline

                    readline_buffer = readline.get_line_buffer
            if readline_buffer is not None:
                self._line_buffer = readline_buffer
            while True:
                try:
                    if self.interactive:
                        self._prompting = True
                        line: str | None = input(PROMPT)
                    else:
                        line = sys.stdin.readline()
                except (EOFError, OSError, ValueError):  # Ctrl-D, a closed stream
                    line = None
                finally:
                    self._prompting = False
                if line is None or (not self.interactive and line == ""):
                    loop.call_soon_threadsafe(lines.put_nowait, None)
                    return
                loop.call_soon_threadsafe(lines.put_nowait, line)

        saved = _terminal_state() if self.interactive else None
        threading.Thread(target=read, name="terminal-input", daemon=True).start()
        watcher = asyncio.create_task(self.watch())
        try:
            while (line := await lines.get()) is not None:
                if not await self.handle(line):
                    break
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.show_changes()
            if saved is not None:  # readline's input() is still waiting in its thread
                self._prompting = False
                _restore_terminal(saved)
                self.output.write("\r\033[K")
                self.output.flush()


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def _terminal_state() -> list[Any] | None:
    """The terminal's settings (echo, line mode), to put back at exit: the input
    thread leaves readline's own settings behind when the process ends inside it."""
    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno())
    except (ImportError, OSError, ValueError):
        return None


def _restore_terminal(saved: list[Any]) -> None:
    with contextlib.suppress(ImportError, OSError, ValueError):
        import termios

        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
