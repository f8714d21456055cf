"""The demo's chat as a person at a terminal sees it: typing is never garbled, however
the bot's messages arrive. Driven through pipes (keys in, the screen's bytes out,
drawn by a small terminal model) and through a real pseudo-terminal with the demo."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.devtools.emulator import BotApiEmulator, start_emulator
from bot.devtools.terminal_chat import PROMPT, LineEditor, TerminalChat, cells

pytestmark = pytest.mark.timeout(120)

TOKEN = "123456789:AAEmulatorEmulatorEmulatorEmulator00"
USER = 7


class Screen:
    """What a terminal shows for the bytes it was sent: the few controls the chat
    writes (carriage return, newline, backspace, cursor up, clear to the end)."""

    def __init__(self, width: int = 80) -> None:
        self.width = width
        self.rows: list[str] = [""]
        self.row = self.col = 0

    def feed(self, text: str) -> None:
        for match in re.finditer(r"\033\[(\d*)([AJK])|\033\[[\d;]*m|\r|\n|\x08|[^\033\r\n\x08]",
                                 text):
            piece = match.group(0)
            if piece.endswith("m") and piece.startswith("\033"):
                continue  # a style: no place on the screen
            if piece == "\r":
                self.col = 0
            elif piece == "\n":
                self.row, self.col = self.row + 1, 0
            elif piece == "\x08":
                self.col = max(self.col - 1, 0)
            elif match.group(2) == "A":
                self.row = max(self.row - int(match.group(1) or 1), 0)
            elif match.group(2) in ("J", "K"):
                self._ensure()
                self.rows[self.row] = self.rows[self.row][:self.col]
                if match.group(2) == "J":
                    del self.rows[self.row + 1:]
            else:
                self._put(piece)

    def _ensure(self) -> None:
        while len(self.rows) <= self.row:
            self.rows.append("")

    def _put(self, char: str) -> None:
        if self.col + cells(char) > self.width:  # wraps onto the next row
            self.row, self.col = self.row + 1, 0
        self._ensure()
        line = self.rows[self.row].ljust(self.col)
        self.rows[self.row] = line[:self.col] + char + line[self.col + 1:]
        self.col += cells(char)

    @property
    def lines(self) -> list[str]:
        return [row.rstrip() for row in self.rows]


async def test_messages_arriving_while_typing_never_garble_the_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through pipes for the process's own input and output, as on a terminal
    (interactive): the bot's 40 messages arrive while a person types a line key by key.
    The screen shows every message whole, on its own line and in order, and below them
    the prompt with exactly what was typed. (Before, the prompt was written by input()
    outside the output lock and the typed line was echoed by readline or the terminal,
    never by the chat: what was typed went missing or was cut by the messages.)"""
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    user = emulator.user(USER, "Alex")
    keys_in, keys_out = os.pipe()
    screen_in, screen_out = os.pipe()
    source = os.fdopen(keys_in, "r", encoding="utf-8")
    output = os.fdopen(screen_out, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", source)
    monkeypatch.setattr(sys, "stdout", output)
    chat = TerminalChat(emulator, user, output=output, interactive=True, styled=False)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(iter(
        lambda: os.read(screen_in, 65536), b"")), daemon=True)
    reader.start()
    typed = "https://instagram.com/p/naïve›🙂"
    try:
        session = asyncio.create_task(chat.run())

        def type_slowly() -> None:
            for char in typed + "x\x7f":  # one key more, taken back with Backspace
                os.write(keys_out, char.encode())
                time.sleep(0.004)

        typist = threading.Thread(target=type_slowly)
        typist.start()
        async with httpx.AsyncClient(base_url=f"{running.url}/bot{TOKEN}") as bot:
            for number in range(40):
                answer = await bot.post("/sendMessage", json={
                    "chat_id": USER, "text": f"notice {number} › order #{number} is complete"})
                assert answer.json()["ok"]
        typist.join()

        def shown() -> Screen:
            screen = Screen()
            screen.feed(b"".join(received).decode("utf-8", "replace"))
            return screen

        try:
            await emulator.wait_for(lambda: shown().lines[-1:] == [PROMPT + typed]
                                    and "notice 39" in "\n".join(shown().lines), timeout=20)
        finally:
            lines = shown().lines
            print("\n".join(lines[-50:]))
        notices = [line for line in lines if "notice" in line]
        assert notices == [f"bot: notice {n} › order #{n} is complete" for n in range(40)], lines
        assert lines[-1] == PROMPT + typed
        assert sum(line.startswith(PROMPT) for line in lines) == 1  # one prompt, at the bottom
        assert "\ufffd" not in b"".join(received).decode("utf-8", "replace")  # no split ›

        os.write(keys_out, b"\x15/quit\n")  # Ctrl-U clears the line; /quit leaves
        await asyncio.wait_for(session, 10)
        # What the chat wrote last is read from the pipe by the reader thread: waited for,
        # not read before it arrived.
        await emulator.wait_for(
            lambda: not any(line.startswith(PROMPT) for line in shown().lines[-1:]), timeout=10)
    finally:
        os.close(keys_out)
        output.close()
        source.close()
        reader.join(timeout=5)
        os.close(screen_in)
        await running.stop()


def test_the_line_editor_keys() -> None:
    editor = LineEditor()
    for char in "hello world":
        assert editor.key(char) == "typed"
    assert editor.key("\x17") == "changed" and editor.text == "hello "  # Ctrl-W: a word
    assert editor.key("\x7f") == "changed" and editor.text == "hello"  # Backspace
    assert editor.key("\r") == "line" and editor.entered == "hello"
    assert editor.key("\n") == ""  # \r\n is one Enter
    for char in "/quit":
        editor.key(char)
    assert editor.key("\x15") == "changed" and editor.text == ""  # Ctrl-U
    assert [editor.key(c) for c in "\x1b[A"] == ["", "", "changed"]  # ↑: the line before
    assert editor.text == "hello"
    assert [editor.key(c) for c in "\x1b[B"][-1] == "changed" and editor.text == ""  # ↓
    assert editor.key("\x04") == "eof"  # Ctrl-D on an empty line
    editor.key("a")
    assert editor.key("\x04") == "" and editor.key("\x07") == ""  # ignored keys


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
def test_the_demo_on_a_terminal_keeps_the_typed_line_whole(tmp_path: Path) -> None:
    """The real demo on a pseudo-terminal: its prompt, the echo of each key and the
    bot's answers never interleave (``yoyou › u ›`` was seen before)."""
    import pty

    root = Path(__file__).resolve().parent.parent
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOT_", "PANEL", "TELEGRAM", "DATABASE", "ADMIN"))}
    env.update(COLUMNS="100", TERM="xterm")
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--fresh", "--pace", "0.3", "--data",
         str(tmp_path / "demo.sqlite3")], stdin=follower, stdout=follower, stderr=follower,
        cwd=root, env=env, start_new_session=True)
    os.close(follower)
    received: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                return
            if not data:
                return
            received.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def screen() -> list[str]:
        shown = Screen(100)
        shown.feed(b"".join(received).decode("utf-8", "replace"))
        return shown.lines

    def wait_until(check, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not check() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert check(), "\n".join(screen()[-30:])

    empty = PROMPT.rstrip()  # the prompt with nothing typed, as the screen ends
    try:
        wait_until(lambda: screen()[-1:] == [empty] and any("New order" in x for x in screen()))
        for line in ("1", "1", "4", "1", "1", "https://instagram.com/p/tty", "1000", "1", "1"):
            for char in line:
                os.write(leader, char.encode())
                time.sleep(0.01)
            os.write(leader, b"\r")
            wait_until(lambda line=line: PROMPT + line in screen() and screen()[-1] == empty)
        wait_until(lambda: any("Order #1 placed" in x for x in screen()))
        for char in "typing while the notices come":
            os.write(leader, char.encode())
            time.sleep(0.02)
        wait_until(lambda: screen()[-1] == PROMPT + "typing while the notices come")
        lines = screen()
        assert not any(line.count("you ›") > 1 for line in lines), lines
        assert "\ufffd" not in b"".join(received).decode("utf-8", "replace")
        os.write(leader, b"\x15/quit\r")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
        reader.join(timeout=5)


def test_input_after_the_chat_ended_is_dropped_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The input thread outlives the chat: a line typed (or the end of input) after
    /quit, when the chat's event loop is closed, prints no traceback at the exit."""
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, encoding="utf-8") as source, os.fdopen(write_fd, "w") as sink:
        emulator = BotApiEmulator()
        chat = TerminalChat(emulator, emulator.user(1, "Alex"), output=io.StringIO(),
                            source=source, interactive=False)
        sink.write("/quit\n")
        sink.flush()
        before = set(threading.enumerate())  # other chats' readers may still be about
        asyncio.run(chat.run())  # ends at /quit and closes its loop
        [reader] = [t for t in set(threading.enumerate()) - before if t.name == "terminal-input"]
        sink.write("typed too late\n")
        sink.flush()
        sink.close()  # then the end of input
        reader.join(timeout=10)
        assert not reader.is_alive()
    assert failures == []
