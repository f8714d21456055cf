"""`python -m bot demo` driven through a pipe, as a script would: the real process with
the sandbox panel, the emulator, the bot and the terminal chat, on a fresh database."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.devtools.emulator import ChatMessage
from bot.devtools.terminal_chat import format_message, render_html
from tests.test_startup import imported_aiogram, said_before_aiogram

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
# The catalog's order: platforms (Instagram first), Instagram's categories sorted by
# name (Likes is the fourth), its services (Likes [Instant] first), then the form.
ORDER = ["1", "1", "4", "1", "1", "https://instagram.com/p/demo", "1000", "1", "1"]


def demo(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bot", "demo", "--fresh", "--pace", "0.3",
            "--data", str(tmp_path / "demo.sqlite3"), *extra]


def clean_env() -> dict[str, str]:
    """No shop setting leaks in from the machine (the demo must not read any)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOT_", "PANEL", "TELEGRAM", "DATABASE", "ADMIN"))}
    env["BOT_TOKEN"] = "1:real-token-that-must-not-be-used"  # even a set one is ignored
    return env


def run_script(tmp_path: Path, lines: list[str], *extra: str,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(demo(tmp_path, *extra), input="\n".join(lines) + "\n", cwd=ROOT,
                          env=env or clean_env(), capture_output=True, text=True, timeout=110,
                          check=False)


def test_an_order_is_placed_and_its_final_notice_arrives(tmp_path: Path) -> None:
    done = run_script(tmp_path, [*ORDER, "/wait 60 Order #1 is", "/admin", "1", "/quit",
                                 "never read"])
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in out + done.stderr
    assert "Nothing is real" in out.splitlines()[1]  # the opening screen
    assert "[1] 🛒 New order" in out
    assert "✅ Order #1 placed!" in out
    assert any(notice in out for notice in ("Order #1 is complete", "Order #1 was partly",
                                            "Order #1 was canceled"))
    assert "📊 Dashboard" in out and "Today: 1 order" in out  # the owner's view
    assert "never read" not in out  # /quit left at once
    assert "\033[" not in out  # a pipe gets plain text
    assert (tmp_path / "demo.log").exists()  # the bot's log is not in the chat


def test_the_end_of_input_leaves_cleanly_and_the_balance_is_kept(tmp_path: Path) -> None:
    first = run_script(tmp_path, ["/balance"])
    assert first.returncode == 0 and "Traceback" not in first.stdout + first.stderr
    assert "$50.00" in first.stdout
    again = subprocess.run([a for a in demo(tmp_path) if a != "--fresh"], input="/balance\n",
                           cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                           timeout=110, check=False)  # without --fresh: the same shop
    assert again.returncode == 0 and "$50.00" in again.stdout


def ctrl_c_as_in_a_terminal() -> None:
    """In the child: Ctrl+C (SIGINT) does what it does in a terminal, even when the suite
    itself was started as a background job, whose children inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_leaves_cleanly(tmp_path: Path) -> None:
    with subprocess.Popen(demo(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ROOT, env=clean_env(), text=True,
                          preexec_fn=ctrl_c_as_in_a_terminal) as process:
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.extend(process.stdout or []), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while not any("New order" in line for line in seen) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert any("New order" in line for line in seen), seen
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
        finally:
            # A demo still running would hang Popen's exit, which closes stdout under the
            # reader thread (blocked on it, holding its lock) before it waits: the whole
            # worker stuck, past the test's timeout. Killed, it fails as a test.
            if process.poll() is None:
                process.kill()
        reader.join(timeout=10)
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")


def test_wrong_options_say_so_in_one_line_before_the_seconds_of_imports(tmp_path: Path) -> None:
    env = clean_env() | {"PYTHONPROFILEIMPORTTIME": "1"}  # -X importtime: what was imported
    for options, word in ((["--dialect", "nope"], "--dialect"), (["--pace", "0"], "--pace")):
        done = run_script(tmp_path, ["/quit"], *options, env=env)
        said = said_before_aiogram(done)
        assert done.returncode == 2 and len(said) == 1 and word in said[0], said
        assert not imported_aiogram(done)


def test_messages_render_as_a_person_sees_them() -> None:
    html = 'Pay <b>$1.00</b> for <a href="https://t.me/x">this</a> &amp; <code>x</code>'
    assert render_html(html, styled=False) == "Pay $1.00 for this (https://t.me/x) & x"
    styled = render_html(html, styled=True)
    assert "\033[1m$1.00" in styled and styled.endswith("\033[0m")
    message = ChatMessage(1, True, "Hi", {"inline_keyboard": [
        [{"text": "A", "callback_data": "a"}, {"text": "B", "callback_data": "b"}],
        [{"text": "C", "url": "https://x"}]]}, raw_text="<i>Hi</i>\nthere")
    shown = format_message(message, styled=False, edited=True)
    assert shown.splitlines()[0] == "bot (edited): Hi"
    assert "[1] A   [2] B" in shown and "[3] C" in shown


async def test_a_number_taps_only_the_newest_message_and_only_ascii_digits() -> None:
    from bot.devtools.emulator import BotApiEmulator
    from bot.devtools.terminal_chat import TerminalChat

    emulator = BotApiEmulator()
    user = emulator.user(1, "Alex")
    chat = TerminalChat(emulator, user, output=io.StringIO(), interactive=False)
    done: list[tuple[str, str]] = []

    async def tap(message: ChatMessage, button: dict) -> None:
        done.append(("tap", button["text"]))

    async def send(text: str) -> None:
        done.append(("send", text))

    chat._tap, chat._send = tap, send  # type: ignore[method-assign]
    buttons = {"inline_keyboard": [[{"text": "Back", "callback_data": "b"},
                                    {"text": "Cancel", "callback_data": "c"}]]}
    user.chat.messages[1] = ChatMessage(1, True, "Pick", buttons, raw_text="Pick")
    for typed in ("2", "'2", "9", "²", "٣", "9" * 5000, "hello"):
        await chat.handle(typed)
    user.chat.messages[2] = ChatMessage(2, True, "Send the number", None, raw_text="Send")
    await chat.handle("1")  # the newest message has no buttons: it is an answer
    assert done == [("tap", "Cancel"), ("send", "2"), ("send", "9"), ("send", "²"),
                    ("send", "٣"), ("send", "9" * 5000), ("send", "hello"), ("send", "1")]
