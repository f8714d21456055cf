"""aiogram routers, one per area of the conversation.

Order matters: the admin router checks its filter first, the form and search
routers match on their states, and the menu router holds the catch-all answers.
"""

from __future__ import annotations

import importlib
import sys

from aiogram import Router

_MODULES = ("handlers.admin", "handlers.order_form", "handlers.catalog", "handlers.my_orders",
            "handlers.menu")


def routers() -> list[Router]:
    """Fresh routers for a new dispatcher.

    An aiogram router can be attached to one dispatcher only, so when one process
    builds a second dispatcher (the bot restarted in-process by the tests, the
    benchmarks) the modules are re-executed to declare new routers.
    """
    modules = []
    for name in _MODULES:
        module = sys.modules.get(name)
        needs_fresh = module is not None and module.router.parent_router is not None
        modules.append(importlib.reload(module) if needs_fresh else importlib.import_module(name))
    return [module.router for module in modules]
