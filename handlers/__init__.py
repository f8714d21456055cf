"""aiogram routers, one per area of the conversation.

Order matters: the form and search routers match on their states first; the
menu router holds the catch-all answers and comes last.
"""

from __future__ import annotations

from aiogram import Router


def routers() -> list[Router]:
    from handlers import admin, catalog, menu, my_orders, order_form

    return [admin.router, order_form.router, catalog.router, my_orders.router, menu.router]
