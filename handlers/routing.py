"""Routers declared afresh for each dispatcher.

An aiogram router can be attached to one parent only (a dispatcher or another
router), so when one process builds a second dispatcher (the bot restarted
in-process by the tests, the benchmarks) each module whose router is already
attached is executed again to declare a new one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

from aiogram import Router


def fresh_routers(module_names: Iterable[str]) -> list[Router]:
    """The ``router`` of each module, in order, each one not yet attached anywhere."""
    routers = []
    for name in module_names:
        module = sys.modules.get(name)
        needs_fresh = module is not None and module.router.parent_router is not None
        module = importlib.reload(module) if needs_fresh else importlib.import_module(name)
        routers.append(module.router)
    return routers
