"""The service card's Backups screen end to end: the unmodified bot, the emulator, two
sandbox panels (PANEL_URL and a second one in PANELS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.sandbox.server import DEFAULT_KEY
from handlers.callbacks import AdminRoutesCb
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, running_shop
from tests.test_admin_catalog import open_card, ref_of
from tests.test_storefront import CUSTOMER

pytestmark = pytest.mark.timeout(120)


async def test_link_a_suggested_backup_list_it_and_unlink_it(make_sandbox: SandboxFactory,
                                                             tmp_path: Path) -> None:
    main, spare = await make_sandbox(), await make_sandbox("smmsofia")
    panels = f'[{{"name": "spare", "url": "{spare.url}", "key": "{DEFAULT_KEY}", "rate_limit": 0}}]'
    async with running_shop(main, tmp_path, panel_timeout=1, panels=panels) as shop:
        admin, customer = shop.admin, shop.user(CUSTOMER)
        [(ref,)] = await shop.query(
            "SELECT id FROM services WHERE panel = 'main' AND service_id = '101'")
        [(twin,)] = await shop.query(
            "SELECT id FROM services WHERE panel = 'spare' AND service_id = '101'")
        await admin.send("/start")
        await admin.tap("🛠 Admin")
        await admin.tap("Catalog")
        await admin.tap("Find a service")
        await admin.send("Instagram Followers [Real")
        await admin.tap(f"#{ref} ")
        await admin.tap("🔀 Backups")
        text = admin.text
        assert "No backup yet" in text and "Suggested" in text
        assert "Its panel: main #101 · cost $1.20 per 1000" in text
        labels = [label for row in admin.last().buttons for label in row]
        suggested = [label for label in labels if label.startswith("➕")]
        assert suggested and suggested[0].startswith("➕ spare:101 ")  # its twin, best first
        assert 1 <= len(suggested) <= 5

        # A customer forging the link button: nothing happens.
        await customer.send("/start")
        forged = AdminRoutesCb(action="link", id=ref, backup=twin).pack()
        answer = await customer.tap_data(forged, customer.last())
        assert "no longer valid" in (answer.get("text") or "")
        assert await shop.query("SELECT * FROM service_routes") == []

        answer = await admin.tap("➕ spare:101 ")
        assert "Linked" in answer["text"]
        assert "1. spare #101 · Instagram Followers [Real, 30 days refill] · cost $1.20 per 1000" \
            in admin.text
        assert "➕ spare:101 " not in str(admin.last().buttons)  # linked: no longer suggested
        assert await shop.query("SELECT service_ref, backup_ref, position, created_by"
                                " FROM service_routes") == [(ref, twin, 1, ADMIN_ID)]
        # Customers see one service now: the backup is not listed on its own.
        await customer.send("/search Instagram Followers [Real")
        assert len([row for row in customer.last().buttons if "[Real" in row[0]]) == 1

        answer = await admin.tap("✖ spare:101")
        assert answer["text"] == "Unlinked."
        assert "No backup yet" in admin.text
        assert await shop.query("SELECT * FROM service_routes") == []
        await customer.send("/search Instagram Followers [Real")  # both panels' again
        assert len([row for row in customer.last().buttons if "[Real" in row[0]]) == 2
        assert await shop.query(
            "SELECT admin_id, action, target_id, before, after FROM audit_log"
            " WHERE action LIKE 'route_%' ORDER BY id") == [
            (ADMIN_ID, "route_link", str(ref), "", "spare:101"),
            (ADMIN_ID, "route_unlink", str(ref), "spare:101", "")]
        # A stale unlink button says why and changes nothing.
        stale = AdminRoutesCb(action="unlink", id=ref, backup=twin).pack()
        answer = await admin.tap_data(stale, admin.last())
        assert answer["text"] == "spare:101 is not a backup of main:101."



async def test_with_one_panel_the_screen_says_a_second_is_needed(shop) -> None:
    admin = shop.admin
    await open_card(admin, shop, 101)
    await admin.tap("🔀 Backups")
    assert "Backups need a second panel: add one to PANELS" in admin.text
    assert not any(label.startswith("➕") for row in admin.last().buttons for label in row)
    ref, _ = await ref_of(shop, 101)
    answer = await admin.tap_data(AdminRoutesCb(action="link", id=ref, backup=ref).pack())
    assert answer["text"] == "A service can't be its own backup."
