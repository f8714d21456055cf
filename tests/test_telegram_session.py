"""aiogram's ``Response[T]`` classes are built once per return type, not once per call.

pydantic caches parametrised generics only weakly; the bot's session keeps them
alive (bot/app/telegram_session.py). Here the garbage collector runs before every
tap, as it does now and then under load: without the kept classes every Bot API
call after a collection builds its response class again.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from aiogram.methods.base import Response

from tests.e2e import Shop

pytestmark = pytest.mark.timeout(90)

ROUNDS = 15


@pytest.fixture
def response_classes_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every ``Response[...]`` class pydantic creates while the test runs
    (names only: holding the classes would keep them alive)."""
    built: list[str] = []
    original = Response.__pydantic_init_subclass__

    def counting(cls: type, **kwargs: Any) -> None:
        built.append(cls.__name__)
        original(**kwargs)

    # pydantic calls the parent's hook with the new parametrised class as ``cls``.
    monkeypatch.setattr(Response, "__pydantic_init_subclass__", classmethod(counting))
    return built


async def test_bot_api_answers_do_not_rebuild_their_class(
        shop: Shop, response_classes_built: list[str]) -> None:
    customer = shop.user(4242, "Rae")
    await customer.send("/start")  # the first of each return type is built here at most
    first = len(response_classes_built)
    for _ in range(ROUNDS):
        gc.collect()
        await customer.tap("Balance")
        assert "Your balance" in customer.last().text
        gc.collect()
        await customer.send("/start")
    rebuilt = response_classes_built[first:]
    assert len(rebuilt) <= 3, (  # a return type seen for the first time, not per call
        f"{len(rebuilt)} Response classes built in {2 * ROUNDS} taps: {rebuilt[:5]}")
