"""What ``ScriptedUser`` waits for: the bot's whole answer, not its first message.

A tiny aiogram bot polls the emulator; its handlers pause between two messages (as the
storefront does around a database write or a panel call). Before the harness waited
for the handler's end, a pause longer than the 50 ms of quiet it waited for made a
test read the chat after the first message only: the flakes of a loaded machine.
The pause here is far longer than that quiet, so the old wait fails every time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.devtools.emulator import (
    BotApiEmulator,
    NoAnswer,
    ScriptedUser,
    start_emulator,
    updates_being_handled,
)
from tests.e2e import TOKEN

pytestmark = pytest.mark.timeout(60)

PAUSE = 0.4  # seconds between a handler's two messages: eight times the old quiet window
KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[
    [InlineKeyboardButton(text="Go", callback_data="go")],
    [InlineKeyboardButton(text="Mute", callback_data="mute")]])


def pausing_router() -> Router:
    router = Router()

    @router.message(F.text == "two")
    async def two_messages(message: Message) -> None:
        await message.answer("preview")
        await asyncio.sleep(PAUSE)  # a slow write between the preview and its controls
        await message.answer("controls", reply_markup=KEYBOARD)

    @router.callback_query(F.data == "go")
    async def answer_then_edit(query: CallbackQuery) -> None:
        await query.answer("working")
        await asyncio.sleep(PAUSE)
        assert isinstance(query.message, Message)
        await query.message.edit_text("done")

    @router.callback_query(F.data == "mute")
    async def never_answers(query: CallbackQuery) -> None:
        await asyncio.sleep(PAUSE)
        assert isinstance(query.message, Message)
        await query.message.edit_text("muted")

    return router


@pytest.fixture
async def user() -> AsyncIterator[ScriptedUser]:
    emulator = BotApiEmulator()
    running = await start_emulator(emulator)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(running.url)))
    dispatcher = Dispatcher()
    dispatcher.include_router(pausing_router())
    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False,
                                                           polling_timeout=1))
    yield emulator.user(77)
    with contextlib.suppress(RuntimeError):  # already stopped
        await dispatcher.stop_polling()
    await asyncio.wait_for(polling, 10)
    await bot.session.close()
    await running.stop()


async def test_send_returns_after_the_handlers_last_message(user: ScriptedUser) -> None:
    reply = await user.send("two")
    assert reply.text == "controls" and reply.buttons == [["Go"], ["Mute"]]
    assert [m.text for m in user.bot_messages] == ["preview", "controls"]
    assert not updates_being_handled()


async def test_tap_returns_after_the_edit_that_follows_the_answer(user: ScriptedUser) -> None:
    await user.send("two")
    answer = await user.tap("Go")
    assert answer["text"] == "working"
    assert user.text == "done"


async def test_a_tap_never_answered_fails_when_its_handler_ends_not_at_the_timeout(
        user: ScriptedUser) -> None:
    await user.send("two")
    # "without an accepted answer": the handler's end; the 20 s timeout says "in time".
    with pytest.raises(NoAnswer, match="without an accepted answer"):
        await user.tap("Mute", timeout=20)
    assert user.text == "muted"  # and what it did is there to read
