"""aiogram routers, one per area of the conversation.

Every update walks the routers in this order until one handles it, and each
router passed costs aiogram's whole propagation machinery, so the busiest
come first: the language choice (/language works in any state; it lets
nothing else through), payments (a successful payment must reach its handler
in any state), the order form
(its states and buttons), browsing, the menu, my orders, the balance and
top-ups, the admin panel (its menu and commands first, then one router per
area), and last the catch-all answers. Callback buttons
never overlap between routers; messages are told apart by state (form, search,
attach) and command. An admin command sent in the middle of an order form gets
the form's "finish or /cancel first" answer, like any other command there.
"""

from __future__ import annotations

import importlib
import sys

from aiogram import Router

_MODULES = ("handlers.customer.language", "handlers.customer.payments",
            "handlers.customer.order_form", "handlers.customer.browse", "handlers.customer.menu",
            "handlers.customer.my_orders", "handlers.customer.balance", "handlers.admin.home",
            "handlers.admin.dashboard", "handlers.admin.catalog", "handlers.admin.customers",
            "handlers.admin.orders", "handlers.admin.broadcast", "handlers.customer.fallback")


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
