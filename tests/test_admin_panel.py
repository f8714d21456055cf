"""The admin panel end to end: the menu, customers, orders, the audit log, and
that nobody outside ADMIN_IDS can use any of it."""

from __future__ import annotations

import itertools
import pkgutil
import sys
import typing
from collections.abc import Iterator

from aiogram import Router
from aiogram.filters import Command

from bot.devtools.emulator import ScriptedUser
from handlers import admin as admin_package
from handlers import callbacks, routers
from handlers.filters import IsAdmin
from tests.e2e import ADMIN_ID, Shop
from tests.test_storefront import CUSTOMER, _to_confirmation


async def _admin_menu(shop: Shop) -> ScriptedUser:
    admin = shop.admin
    await admin.send("/admin")
    assert "🛠 Admin" in admin.text
    return admin


async def test_every_admin_area_opens_and_comes_back(shop: Shop) -> None:
    admin = await _admin_menu(shop)
    menu_id = admin.last().message_id
    for area in ("Dashboard", "Catalog", "Customers", "Orders", "Broadcast", "Audit log"):
        await admin.tap(area)
        assert admin.last().message_id == menu_id or admin.last().photo is not None
        await admin.tap("⬅ Admin")
        assert "Run the shop from here" in admin.text
    await admin.tap("🏠 Menu")
    assert "New order" in str(admin.last().buttons)


async def test_find_a_customer_credit_debit_with_reasons_and_the_audit_log(shop: Shop) -> None:
    customer = shop.user(CUSTOMER, "Ann", username="ann_smm")
    await customer.send("/start")
    admin = await _admin_menu(shop)
    await admin.tap("Customers")
    for query in ("@ann_smm", "ann", str(CUSTOMER), "@ANN_SMM"):
        await admin.send(query)
        assert f"{CUSTOMER}" in str(admin.last().buttons), query
    for wrong in ("x", "@", "a" * 5000, "@bad name!", "99999999999999999999999"):
        await admin.send(wrong)
        assert "No customer" in admin.text or "Send an id" in admin.text, wrong
    await admin.send_sticker()
    assert "as text" in admin.text
    await admin.send("@ann_smm")
    await admin.tap(f"{CUSTOMER}")
    assert f"Customer {CUSTOMER}" in admin.text and "Balance: $0.00" in admin.text

    await admin.tap("➕ Credit")
    await admin.send("12.50")  # no reason
    assert "a reason" in admin.text
    await admin.send("abc welcome")
    assert "not an amount" in admin.text
    await admin.send("12.50 welcome bonus")
    assert admin.saying("Credited $12.50 to 42. New balance: $12.50.")
    assert "Balance: $12.50" in admin.text and "welcome bonus" in admin.text  # the card again
    await admin.tap("➖ Debit")
    await admin.send("20 too much")
    assert "can't go below zero" in admin.text
    await admin.send("/cancel")
    assert "Nothing changed" in admin.text
    assert await shop.balance(CUSTOMER) == (1250, 1250)

    await admin.tap("Audit log")
    assert "credit" in admin.text and "welcome bonus" in admin.text and "$0.00 → $12.50" in admin.text
    rows = await shop.query("SELECT admin_id, action, target_kind, target_id, note FROM audit_log")
    assert rows == [(ADMIN_ID, "credit", "user", str(CUSTOMER), "welcome bonus")]


async def test_a_blocked_customer_is_refused_politely_and_keeps_their_orders(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/blocked")
    await customer.tap("Confirm")
    [(order_id,)] = await shop.query("SELECT id FROM orders")

    admin = await _admin_menu(shop)
    await admin.tap("Customers")
    await admin.send(str(CUSTOMER))
    await admin.tap(str(CUSTOMER))
    await admin.tap("🚫 Block")
    assert "blocked by an admin" in admin.text

    await customer.send("/start")
    assert "not available to you" in customer.text
    answer = await customer.tap_data(callbacks.MenuCb(action="shop").pack())
    assert "not available to you" in answer["text"]
    await customer.send_sticker()
    assert "not available to you" in customer.text
    assert await shop.query("SELECT balance_minor FROM users WHERE id = ?", (CUSTOMER,)) == [
        (10_000 - 156,)]

    # Status notices of the order already placed still reach them.
    shop.sandbox.panel.advance(shop.sandbox.panel.pace * 4)
    await customer.expect(f"Order #{order_id}", timeout=20)

    await admin.tap("✅ Unblock")
    await customer.send("/start")
    assert "Hi," in customer.text
    actions = await shop.query("SELECT action FROM audit_log ORDER BY id")
    assert actions == [("block",), ("unblock",)]


async def test_an_admin_can_not_be_blocked(shop: Shop) -> None:
    admin = await _admin_menu(shop)
    answer = await admin.tap_data(callbacks.AdminCustomerCb(action="block", id=ADMIN_ID).pack())
    assert "can't be blocked" in answer["text"]
    await admin.send("/start")
    assert "Hi," in admin.text


async def test_open_any_order_by_number_with_its_history(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/look")
    await customer.tap("Confirm")
    [(order_id, panel_id)] = await shop.query("SELECT id, panel_order_id FROM orders")
    admin = await _admin_menu(shop)
    await admin.tap("Orders")
    await admin.tap("Open order by number")
    for wrong in ("abc", "0", "99999", "9" * 40, "🙂"):
        await admin.send(wrong)
        assert "order" in admin.text.lower(), wrong
    await admin.send(f"#{order_id}")
    assert f"Order #{order_id}" in admin.text and f"Panel order id: {panel_id}" in admin.text
    assert f"Customer: {CUSTOMER}" in admin.text
    await admin.tap(f"Customer {CUSTOMER}")
    assert f"Customer {CUSTOMER}" in admin.text
    await admin.tap("⬅ Admin")
    await admin.tap("Orders")
    await admin.tap("Being checked (0)")
    assert "No orders need checking" in admin.text


# ------------------------------------------------------------------ nobody else


def _admin_factories() -> list[type[callbacks.CallbackData]]:
    return [factory for factory in vars(callbacks).values()
            if isinstance(factory, type) and issubclass(factory, callbacks.CallbackData)
            and factory is not callbacks.CallbackData and factory.__prefix__.startswith("a")]


def _samples(factory: type[callbacks.CallbackData]) -> list[str]:
    """Data for every value of each Literal field, with a customer's own ids."""
    choices: list[list[tuple[str, object]]] = []
    for name, field in factory.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal:
            values: list[object] = list(typing.get_args(field.annotation))
        elif field.annotation in (int, "int") or "int" in str(field.annotation):
            values = [1, CUSTOMER]
        else:
            values = ["1", "x"]
        choices.append([(name, value) for value in values])
    return [factory(**dict(combo)).pack() for combo in itertools.product(*choices)]


def _tree(router: Router) -> Iterator[Router]:
    yield router
    for sub in router.sub_routers:
        yield from _tree(sub)


def _admin_panel(top: list[Router]) -> Router:
    [panel] = [router for router in top if router.name == "admin_panel"]
    return panel


def _admin_commands() -> set[str]:
    found = set()
    for router in _tree(_admin_panel(routers())):
        for handler in router.message.handlers:
            for flt in handler.filters or []:
                if isinstance(flt.callback, Command):
                    found |= {str(c) for c in flt.callback.commands}
    return found


def _checks_admin_ids(router: Router) -> bool:
    """IsAdmin on the router's own messages and callback queries (checked as each
    update arrives, before any of its handlers or sub-routers), or on a router it is in."""
    if all(any(isinstance(f.callback, IsAdmin) for f in observer._handler.filters or [])
           for observer in (router.message, router.callback_query)):
        return True
    return router.parent_router is not None and _checks_admin_ids(router.parent_router)


def test_every_admin_router_checks_admin_ids() -> None:
    top = routers()
    panel = _admin_panel(top)
    assert _checks_admin_ids(panel) and panel.parent_router is None
    everywhere = [router for root in top for router in _tree(root)]
    admin_routers = [router for router in everywhere if router.name.startswith("admin")]
    assert len(admin_routers) == len(admin_package.SCREENS) + 1
    for router in admin_routers:
        assert _checks_admin_ids(router), router.name
    # Every module of the admin package is a screen inside the panel (none left out, unrouted).
    screens = list(_tree(panel))
    for module in pkgutil.iter_modules(admin_package.__path__):
        assert sys.modules[f"handlers.admin.{module.name}"].router in screens, module.name


async def _snapshot(shop: Shop) -> list:
    tables = ["users", "ledger", "orders", "audit_log", "markups", "shop_settings", "services",
              "categories", "outbox", "topups"]
    return [await shop.query(f"SELECT * FROM {table} ORDER BY 1") for table in tables]  # noqa: S608


async def test_a_customer_sending_every_admin_button_and_command_changes_nothing(
        shop: Shop) -> None:
    await shop.credit(CUSTOMER, 5_000)
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    before = await _snapshot(shop)
    data = [d for factory in _admin_factories() for d in _samples(factory)]
    data.append(callbacks.MenuCb(action="admin").pack())
    assert len(data) > 30 and any(d.startswith("ak:") for d in data)
    for item in data:
        answer = await customer.tap_data(item, customer.bot_messages[0])
        assert "no longer valid" in (answer.get("text") or ""), item
        assert "Admin" not in customer.text and "Customer 42" not in customer.text, item
    commands = _admin_commands() - {"cancel", "start"}  # everyone's, answered in admin input too
    assert {"admin", "credit", "debit", "unresolved", "refund_stars"} <= commands
    for command in sorted(commands):
        for args in ("", f" {CUSTOMER} 5 gift", " 1"):
            await customer.send(f"/{command}{args}")
            assert "I didn't get that" in customer.text, command
            assert "🛠 Admin" not in str(customer.last().buttons)
    after = await _snapshot(shop)

    def kept(rows: list) -> list:  # a user's row but for when they were last seen
        return [(*row[:7], row[8]) for row in rows]

    assert kept(after[0]) == kept(before[0])
    assert after[1:] == before[1:]
