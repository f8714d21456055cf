"""aiogram routers, one per area of the conversation.

Every update walks the routers in this order until one handles it, and each
router passed costs aiogram's whole propagation machinery, so the busiest
come first: the language choice and the invite screen (/language and
/invite work in any state; they let nothing else through), payments (a
successful payment must reach its handler in any state), the order form
(its states and buttons), browsing, the menu, my orders, the balance and
top-ups, the API key screen, promo codes, the admin panel (one router that
lets only ADMIN_IDS in, holding its menu and commands first, then one router
per area), and last the catch-all answers. Callback buttons
never overlap between routers; messages are told apart by state (form, search,
attach) and command. An admin command sent in the middle of an order form gets
the form's "finish or /cancel first" answer, like any other command there.
"""

from __future__ import annotations

from aiogram import Router

from handlers.admin import admin_panel
from handlers.routing import fresh_routers

# The customer's routers, before the admin panel, busiest first.
_CUSTOMER = ("handlers.customer.language", "handlers.customer.referrals",
             "handlers.customer.payments",
             "handlers.customer.order_form", "handlers.customer.browse", "handlers.customer.menu",
             "handlers.customer.my_orders", "handlers.customer.balance", "handlers.customer.api",
             "handlers.customer.promo")
# Last, the catch-all answers: what nothing above handled (a customer's admin command too).
_FALLBACK = ("handlers.customer.fallback",)


def routers() -> list[Router]:
    """Fresh routers for a new dispatcher, in the order every update tries them:
    the customer's, the admin panel (its screens are listed in
    handlers/admin/__init__.py), the catch-all answers."""
    return [*fresh_routers(_CUSTOMER), admin_panel(), *fresh_routers(_FALLBACK)]
