"""The admin panel: one router that lets only ADMIN_IDS through, with each
screen's router inside it.

``IsAdmin`` is the panel router's filter on messages and callback queries,
checked against ``ADMIN_IDS`` as each update arrives, before any screen is
tried. For anyone else the whole panel is passed over and the update falls
through to the ordinary answers ("I didn't get that" with the customer menu, or
"this button is no longer valid"), with no hint that these exist and nothing
changed. A new screen is a module here with a ``router``, listed in ``SCREENS``:
it is then behind ``IsAdmin`` like the others.
"""

from __future__ import annotations

from aiogram import Router

from handlers.filters import IsAdmin
from handlers.routing import AreaRouter, fresh_routers

# In the order an update tries them: home first (the menu, the admin commands,
# and commands typed in any admin input state), then one screen per area.
SCREENS = ("handlers.admin.home", "handlers.admin.dashboard", "handlers.admin.catalog",
           "handlers.admin.customers", "handlers.admin.orders", "handlers.admin.broadcast",
           "handlers.admin.promo",
           "handlers.admin.referrals", "handlers.admin.api")


def admin_panel() -> Router:
    """A new panel router with fresh screen routers, for one dispatcher."""
    panel = AreaRouter(name="admin_panel")
    panel.message.filter(IsAdmin())
    panel.callback_query.filter(IsAdmin())
    panel.include_routers(*fresh_routers(SCREENS))
    return panel
