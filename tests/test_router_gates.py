"""Routers' gates (handlers/routing.py ``AreaRouter``): an update that is not a
router's business passes it by, as aiogram's root filters would let it, and
one that is reaches its handler."""

from __future__ import annotations

import time
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message, Update
from hypothesis import given
from hypothesis import strategies as st

from handlers.filters import CallbackPrefix, CommandText
from handlers.routing import AreaRouter

TOKEN = "123456789:AAGateGateGateGateGateGateGateGateGat"


class ACb(CallbackData, prefix="a"):
    n: int


class BCb(CallbackData, prefix="b"):
    n: int


def _message(text: str) -> Message:
    return Message.model_validate({"message_id": 1, "date": int(time.time()),
                                   "chat": {"id": 5, "type": "private"}, "text": text})


@given(st.text(max_size=30))
def test_unless_admits_exactly_what_the_command_gate_refuses(text: str) -> None:
    message = _message(text)
    assert CommandText("/start", "/promo", unless=True).admits(message) != \
        CommandText("/start", "/promo").admits(message)


def test_a_command_is_named_with_or_without_the_bots_name_or_arguments() -> None:
    gate = CommandText("/language")
    for text in ("/language", "/language@shop_bot", "/language ru", "/language\nru"):
        assert gate.admits(_message(text)), text
    for text in ("/languages", "language", " /language", "/lang", ""):
        assert not gate.admits(_message(text)), text


def _dispatcher(taken: list[str]) -> Dispatcher:
    first = AreaRouter(name="first", callbacks=CallbackPrefix(ACb),
                       messages=CommandText("/first"))
    second = AreaRouter(name="second", callbacks=CallbackPrefix(BCb),
                        messages=CommandText("/first", unless=True))
    silent = AreaRouter(name="silent")  # no handler for anything
    last = AreaRouter(name="last")

    def record(name: str) -> Any:
        async def handler(event: Message | CallbackQuery) -> None:
            taken.append(name)
        return handler

    first.message()(record("first"))
    first.callback_query()(record("first"))
    second.message()(record("second"))
    second.callback_query()(record("second"))
    last.callback_query()(record("last"))
    dispatcher = Dispatcher()
    dispatcher.include_routers(first, silent, second, last)
    return dispatcher


async def test_each_update_reaches_the_router_whose_gate_admits_it() -> None:
    taken: list[str] = []
    dispatcher = _dispatcher(taken)
    bot = Bot(TOKEN)
    user = {"id": 5, "is_bot": False, "first_name": "U"}

    async def feed(update: dict[str, Any]) -> None:
        await dispatcher.feed_update(bot, Update.model_validate(
            {"update_id": 1, **update}, context={"bot": bot}))

    def tap(data: str) -> dict[str, Any]:
        return {"callback_query": {"id": "1", "chat_instance": "x", "data": data, "from": user}}

    def text(value: str) -> dict[str, Any]:
        return {"message": {"message_id": 1, "date": int(time.time()), "from": user,
                            "chat": {"id": 5, "type": "private"}, "text": value}}

    for update in (tap(ACb(n=1).pack()), tap(BCb(n=2).pack()), tap("z:3"),
                   text("/first"), text("/first@shop_bot x"), text("hello")):
        await feed(update)
    assert taken == ["first", "second", "last", "first", "first", "second"]
    await bot.session.close()
