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
  as they arrive: on a terminal the line being typed is drawn again below them,
  so typing is never garbled.

Typing is never garbled because one writer draws everything, under one lock, a
whole piece at a time: the messages, the prompt and the echo of each key. On a
terminal the chat reads keys itself (the terminal's own echo and line editing
off, Ctrl-C still Ctrl-C) and edits the line: Backspace, Ctrl-U, Ctrl-W, ↑/↓ for
earlier lines. (readline could not be used: it draws the prompt and echoes keys
from the input thread, outside any lock, which interleaved with the messages.)
``interactive=True`` does the same through pipes, which is how it is tested.

Input is read by a daemon thread, so Ctrl-C and the end of input leave at once;
with a pipe for input (not interactive) there is no prompt, lines are read as
they are, and output is flushed per message.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import sys
import threading
import unicodedata
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


def cells(text: str) -> int:
    """Terminal columns ``text`` takes: wide characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or char in "\u200d\ufe0e\ufe0f":
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


class LineEditor:
    """The line being typed, one key at a time (a terminal's line editing, kept small).

    ``key`` takes one character and says what happened: ``"line"`` (Enter: the
    line is in ``entered``), ``"eof"`` (Ctrl-D on an empty line), ``"typed"`` (one
    character added at the end, to echo as it is), ``"changed"`` (the line must be
    drawn again) or ``""`` (nothing to show).
    """

    def __init__(self) -> None:
        self.text = ""
        self.entered = ""
        self.history: list[str] = []
        self._recalled = 0  # how far back ↑ went (0: the line being typed)
        self._escape = ""  # an escape sequence (an arrow key) being read
        self._after_return = False  # "\r\n" from a pipe is one Enter

    def key(self, char: str) -> str:
        after_return, self._after_return = self._after_return, char == "\r"
        if self._escape:
            self._escape += char
            if len(self._escape) == 2 and char in "[O":
                return ""
            sequence, self._escape = self._escape, ""
            return self._recall({"A": 1, "B": -1}.get(sequence[-1], 0))
        if char == "\x1b":
            self._escape = char
            return ""
        if char in "\r\n":
            if char == "\n" and after_return:
                return ""
            self.entered, self.text, self._recalled = self.text, "", 0
            if self.entered.strip() and self.history[-1:] != [self.entered]:
                self.history.append(self.entered)
            return "line"
        if char == "\x04":
            return "eof" if not self.text else ""
        if char in "\x7f\x08":
            self.text = self.text[:-1]
        elif char == "\x15":  # Ctrl-U: the whole line
            self.text = ""
        elif char == "\x17":  # Ctrl-W: the last word
            self.text = self.text.rstrip()
            self.text = self.text[:len(self.text) - len(self.text.split(" ")[-1])]
        elif char.isprintable():
            self.text += char
            return "typed"
        else:
            return ""
        return "changed"

    def _recall(self, step: int) -> str:
        """↑ (1) or ↓ (-1) through the lines entered before."""
        wanted = min(max(self._recalled + step, 0), len(self.history))
        if not step or wanted == self._recalled:
            return ""
        self._recalled = wanted
        self.text = self.history[-wanted] if wanted else ""
        return "changed"


class TerminalChat:
    def __init__(self, emulator: BotApiEmulator, user: ScriptedUser, *,
                 output: TextIO | None = None, source: TextIO | None = None,
                 interactive: bool | None = None, styled: bool | None = None) -> None:
        self.emulator = emulator
        self.user = user
        self.output = output = output or sys.stdout
        self.source = source = source or sys.stdin
        tty = output.isatty()
        if interactive is None:
            interactive = source.isatty() and tty and _terminal_state(source) is not None
        self.interactive = interactive
        self.styled = tty if styled is None else styled
        self._shown: dict[int, tuple[str, Any, int, str | None]] = {}
        # Everything written goes through _write, holding this lock: no two writers.
        self._write_lock = threading.Lock()
        self._line = LineEditor()
        self._prompting = False  # the prompt and the line being typed are on screen

    # ------------------------------------------------------------ output

    def _write(self, text: str) -> None:
        """One piece of output, whole (the caller holds the lock)."""
        self.output.write(text)
        self.output.flush()

    def _erase_line(self) -> str:
        """What takes the cursor back over the prompt and the typed line (wrapped over
        several rows on a narrow terminal) and clears it."""
        width = max(shutil.get_terminal_size((80, 24)).columns, 1)
        rows = (cells(PROMPT + self._line.text) - 1) // width
        return "\r" + (f"\033[{rows}A" if rows else "") + "\033[J"

    def say(self, text: str) -> None:
        """Print between prompts: the line being typed is drawn again below."""
        with self._write_lock:
            if not self._prompting:
                self._write(text + "\n")
                return
            self._write(self._erase_line() + text + "\n" + PROMPT + self._line.text)

    def _show_prompt(self, shown: bool) -> None:
        with self._write_lock:
            if shown != self._prompting:
                self._prompting = shown
                self._write(PROMPT + self._line.text if shown else self._erase_line())

    def _key(self, char: str) -> str:
        """One key from the terminal: the line edited and echoed, under the lock."""
        with self._write_lock:
            before = self._line.text
            happened = self._line.key(char)
            if happened == "typed":
                self._write(char)
            elif happened == "changed":
                self._write(self._redraw_from(before))
            elif happened == "line":
                self._write("\n" + PROMPT)  # the line stays; a fresh prompt below it
            elif happened == "eof":
                self._prompting = False
                self._write("\n")
            return happened

    def _redraw_from(self, before: str) -> str:
        text, self._line.text = self._line.text, before
        erase = self._erase_line()
        self._line.text = text
        return erase + PROMPT + text

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

    def _read_keys(self, put: Callable[[str | None], None]) -> None:
        """The input thread on a terminal: key by key into the line editor."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        fd = self.source.fileno()
        while True:
            try:
                data = os.read(fd, 1024)
            except OSError:
                data = b""
            if not data:
                put(None)
                return
            for char in decoder.decode(data):
                happened = self._key(char)
                if happened == "line":
                    put(self._line.entered)
                elif happened == "eof":
                    put(None)
                    return

    def _read_lines(self, put: Callable[[str | None], None]) -> None:
        """The input thread for a pipe: line by line."""
        while True:
            try:
                line = self.source.readline()
            except (OSError, ValueError):  # a closed stream
                line = ""
            if line == "":
                put(None)
                return
            put(line)

    async def run(self) -> None:
        """Until /quit, the end of input, or cancellation."""
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def put(line: str | None) -> None:
            # The input thread outlives the chat: a line (or the end of input) that
            # comes after the chat ended and its loop closed has nowhere to go.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lines.put_nowait, line)

        saved = _keys_one_by_one(self.source) if self.interactive else None
        reader = self._read_keys if self.interactive else self._read_lines
        # A daemon thread: it never keeps the process alive.
        threading.Thread(target=reader, args=(put,), name="terminal-input", daemon=True).start()
        watcher = asyncio.create_task(self.watch())
        if self.interactive:
            self._show_prompt(True)
        try:
            while (line := await lines.get()) is not None:
                if not await self.handle(line):
                    break
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.show_changes()
            self._show_prompt(False)
            if saved is not None:
                _restore_terminal(self.source, saved)


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def _terminal_state(source: TextIO) -> list[Any] | None:
    """The terminal's settings (echo, line mode), or ``None`` when ``source`` is no
    terminal (or the platform has no termios: then it is read line by line)."""
    try:
        import termios
    except ImportError:
        return None
    try:
        return termios.tcgetattr(source.fileno())
    except (termios.error, OSError, ValueError):
        return None


def _keys_one_by_one(source: TextIO) -> list[Any] | None:
    """The terminal's echo and line editing off (the chat does both, under its lock),
    signals kept (Ctrl-C); the settings before, to put back at exit."""
    saved = _terminal_state(source)
    if saved is None:
        return None
    import termios

    keys = termios.tcgetattr(source.fileno())
    keys[3] &= ~(termios.ICANON | termios.ECHO)
    keys[6][termios.VMIN], keys[6][termios.VTIME] = 1, 0
    with contextlib.suppress(termios.error, OSError, ValueError):
        termios.tcsetattr(source.fileno(), termios.TCSANOW, keys)
    return saved


def _restore_terminal(source: TextIO, saved: list[Any]) -> None:
    import termios

    with contextlib.suppress(termios.error, OSError, ValueError):
        termios.tcsetattr(source.fileno(), termios.TCSADRAIN, saved)
