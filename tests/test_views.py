"""Times on the screens are in the shop's time zone (SHOP_TIMEZONE), which the
handlers pass to the views: there is no zone held by the views themselves."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from bot.shop.money import formatting
from handlers.middlewares.i18n import build_i18n
from handlers.views.text import day_of, when
from tests.conftest import SandboxFactory
from tests.e2e import running_shop
from tests.test_storefront import CUSTOMER

# UTC+14 all year: a stored time is never shown as it would be in UTC.
FAR_EAST = "Pacific/Kiritimati"


def test_dates_are_shown_in_the_zone_given() -> None:
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("en"):
        stored = "2024-03-01T23:30:00Z"
        assert when(stored, ZoneInfo("UTC")) != when(stored, ZoneInfo(FAR_EAST))
        assert when(stored, ZoneInfo(FAR_EAST)) == formatting.stored_moment(
            stored, "en", ZoneInfo(FAR_EAST))
        assert (day_of(stored, ZoneInfo("UTC")), day_of(stored, ZoneInfo(FAR_EAST))) == (
            "Mar 1, 2024", "Mar 2, 2024")
        assert when(None, ZoneInfo(FAR_EAST)) == day_of(None, ZoneInfo(FAR_EAST)) == "—"


async def test_the_shops_time_zone_reaches_the_customer_and_admin_screens(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, shop_timezone=FAR_EAST) as shop:
        await shop.credit(CUSTOMER, 1_000)
        [(credited_at,)] = await shop.query("SELECT created_at FROM ledger")
        shop_time = formatting.stored_moment(credited_at, "en", ZoneInfo(FAR_EAST))
        utc_time = formatting.stored_moment(credited_at, "en", ZoneInfo("UTC"))
        assert shop_time != utc_time

        customer = shop.user(CUSTOMER)
        await customer.send("/start")
        await customer.tap("Balance")
        assert shop_time in customer.text and utc_time not in customer.text

        admin = shop.admin
        await admin.send("/admin")
        await admin.tap("Customers")
        await admin.send(str(CUSTOMER))
        await admin.tap(f"{CUSTOMER}")
        assert shop_time in admin.text and utc_time not in admin.text
