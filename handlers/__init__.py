"""aiogram routers, one per area of the conversation."""

from __future__ import annotations

from aiogram import Router


def routers() -> list[Router]:
    from handlers import start

    return [start.router]
