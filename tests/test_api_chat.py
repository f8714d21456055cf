"""The wholesale API's chat side (issue 23, "Keys"), end to end: the customer's /api
screen and key, the owner's switch on the customer card and the 🔌 API customers
list, in English, Russian and Turkish. The unmodified bot polls the Bot API
emulator; everything is read back from the real SQLite file."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.emulator import ChatMessage, ScriptedUser
from bot.shop.wholesale.keys import ApiAccessOff, ApiKeys
from handlers.callbacks import AdminCb, AdminCustomerCb, ApiCb, MenuCb
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, Shop, running_shop
from tests.test_languages import Walk
from tests.test_webhook import free_port

pytestmark = pytest.mark.timeout(120)

CUSTOMER = 42
SUPPORT = "@shop_help"


def api_settings(**extra: object) -> dict[str, object]:
    # In polling mode the API needs a port of its own (or HEALTH_PORT's server).
    return {"api_enabled": True, "api_port": free_port(), "support_contact": SUPPORT,
            "panel_timeout": 1, **extra}


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **api_settings()) as running:
        yield running


def code_texts(message: ChatMessage) -> list[str]:
    """The text of each <code> entity of a message (offsets are in UTF-16 units)."""
    units = message.text.encode("utf-16-le")
    return [units[2 * e["offset"]:2 * (e["offset"] + e["length"])].decode("utf-16-le")
            for e in message.entities if e["type"] == "code"]


def key_in(message: ChatMessage) -> str:
    """The key a key message shows, read from its one <code> entity."""
    [key] = code_texts(message)
    assert len(key) >= 32 and key.replace("-", "").replace("_", "").isalnum(), key
    return key


def key_messages(user: ScriptedUser) -> list[ChatMessage]:
    return user.saying("Your API key")


def screen(user: ScriptedUser) -> ChatMessage:
    """The bot's latest message but for key messages (a new key comes in a message of
    its own, below the screen, which buttons then edit in place)."""
    return [m for m in user.bot_messages if "Your API key" not in m.text][-1]


async def stored(shop: Shop) -> tuple:
    [row] = await shop.query("SELECT key_hash, key_hint, notify, disabled_at FROM api_access"
                             " WHERE user_id = ?", (CUSTOMER,))
    return row


def database_bytes(shop: Shop) -> bytes:
    files = [shop.database_path, *shop.database_path.parent.glob(f"{shop.database_path.name}-*")]
    return b"".join(path.read_bytes() for path in files if path.exists())


async def first_key(shop: Shop, customer: ScriptedUser) -> str:
    await customer.send("/api")
    [message] = key_messages(customer)
    return key_in(message)


async def test_api_makes_a_key_shown_once_in_code_and_the_database_keeps_only_its_hash(
        shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await customer.send("/api")  # the customer's first message: the account is made too
    screen, key_message = customer.bot_messages[-2:]
    key = key_in(key_message)
    assert "Keep it secret: anyone with it can spend your balance" in key_message.text
    assert "shown only now" in key_message.text
    assert key_message.markup is None  # nothing on it to tap: it is never edited away
    assert "🔌 API" in screen.text and "any SMM panel client" in screen.text
    assert f"Your key: …{key[-4:]}, made " in screen.text and key not in screen.text
    assert "Requests so far: 0" in screen.text
    assert "Limit: 60 requests a minute." in screen.text
    assert "send no notices to this chat" in screen.text
    # Polling with API_PORT and no API_PUBLIC_URL: the address is not known.
    assert "has not set the API address yet" in screen.text
    assert screen.buttons == [["🔄 New key", "🗑 Revoke"], ["🔕 Order notices in chat: off"],
                              ["⬅ Back", "🏠 Menu"]]

    key_hash, hint, notify, disabled = await stored(shop)
    assert key_hash == hashlib.sha256(key.encode()).hexdigest() and hint == key[-4:]
    assert (notify, disabled) == (0, None)
    assert key.encode() not in database_bytes(shop)
    assert await shop.query("SELECT admin_id, action, target_id, after FROM audit_log") == [
        (CUSTOMER, "api_key_create", str(CUSTOMER), f"…{key[-4:]}")]

    # /api again shows the screen: the same key, never shown again.
    again = await customer.send("/api")
    assert f"…{key[-4:]}" in again.text and len(key_messages(customer)) == 1
    assert sum(key in m.text for m in customer.bot_messages) == 1
    # The balance screen's 🔌 API opens it too; moving around never touches the key message.
    await customer.send("/balance")
    await customer.tap("🔌 API")
    assert f"…{key[-4:]}" in customer.text
    await customer.tap("⬅ Back")
    assert "Your balance" in customer.text
    assert key_message.edits == 0 and not key_message.deleted and key in key_message.text
    assert (await stored(shop))[0] == key_hash


async def test_a_new_key_is_asked_for_first_and_the_old_one_stops_at_once(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    old = await first_key(shop, customer)
    old_hash = (await stored(shop))[0]
    await customer.tap("🔄 New key")
    assert "The old key stops working at once" in screen(customer).text
    await customer.tap("✖ Cancel")
    assert f"…{old[-4:]}" in screen(customer).text and (await stored(shop))[0] == old_hash
    await customer.tap("🔄 New key")
    answer = await customer.tap("✅ Yes, a new key")
    assert "in the message below" in answer["text"]
    new = key_in(key_messages(customer)[-1])
    assert new != old and customer.last() is key_messages(customer)[-1]
    new_hash, hint, *_ = await stored(shop)
    assert new_hash == hashlib.sha256(new.encode()).hexdigest() and hint == new[-4:]
    assert await shop.query("SELECT 1 FROM api_access WHERE key_hash = ?", (old_hash,)) == []
    keys = ApiKeys(await shop.db(), {ADMIN_ID}, enabled=True, url=None)
    try:
        assert await keys.find(old) is None
        holder = await keys.find(new)
        assert holder is not None and holder.user_id == CUSTOMER
        await keys.count_use(CUSTOMER)  # a request made with it
    finally:
        await keys.db.close()
    assert [row[0] for row in await shop.query("SELECT action FROM audit_log ORDER BY id")] == [
        "api_key_create", "api_key_rotate"]
    # The screen above the new key shows its end, and the request just made.
    await customer.send("/api")
    assert f"…{new[-4:]}" in screen(customer).text and "Requests so far: 1" in screen(customer).text


async def test_revoke_asks_first_then_there_is_no_key_until_one_is_created(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    key = await first_key(shop, customer)
    await customer.tap("🗑 Revoke")
    assert "Revoke your key?" in screen(customer).text and "stops working at once" in screen(customer).text
    answer = await customer.tap("✅ Yes, revoke it")
    assert "Key revoked" in answer["text"]
    assert "You have no key now" in screen(customer).text
    assert screen(customer).buttons[0] == ["🔑 Create key"]
    assert (await stored(shop))[:2] == (None, key[-4:])
    # A confirmation tapped twice (or from an old message) revokes nothing more.
    answer = await customer.tap_data(ApiCb(action="revoke_ok").pack(), screen(customer))
    assert "You have no key now" in answer["text"]
    await customer.tap("🔑 Create key")
    new = key_in(key_messages(customer)[-1])
    assert new != key and f"…{new[-4:]}" in customer.with_button("🔄 New key").text
    # An old 🔑 Create key never replaces the key unasked.
    answer = await customer.tap_data(ApiCb(action="create").pack(), screen(customer))
    assert "You have a key already" in answer["text"] and len(key_messages(customer)) == 2
    assert (await stored(shop))[0] == hashlib.sha256(new.encode()).hexdigest()
    assert [row[0] for row in await shop.query("SELECT action FROM audit_log ORDER BY id")] == [
        "api_key_create", "api_key_revoke", "api_key_create"]


async def test_order_notices_toggle(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await first_key(shop, customer)
    answer = await customer.tap("🔕 Order notices in chat: off")
    assert "will come to this chat" in answer["text"]
    assert "🔔 Order notices in chat: on" in str(screen(customer).buttons)
    assert "come to this chat" in screen(customer).text and (await stored(shop))[2] == 1
    await customer.tap("🔔 Order notices in chat: on")
    assert "🔕 Order notices in chat: off" in str(screen(customer).buttons)
    assert (await stored(shop))[2] == 0


async def test_wrong_input_on_the_screen_gets_the_usual_answers(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await first_key(shop, customer)
    for typed in ("my key please", "🙂", "x" * 5000, "/api@storefront_bot extra"):
        await customer.send(typed)
        if typed.startswith("/api"):
            assert "🔌 API" in customer.text
        else:
            assert "I didn't get that" in customer.text, typed
    await customer.send_sticker()
    assert "I didn't get that" in customer.text
    await customer.send("/cancel")
    assert "nothing to cancel" in customer.text
    await customer.send("/start")
    assert "Hi, Alex" in customer.text
    assert len(key_messages(customer)) == 1


async def test_the_api_address_is_shown_when_set_and_api_is_in_the_commands(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    url = "https://shop.example.com/api/v2"
    async with running_shop(sandbox, tmp_path, **api_settings(api_public_url=url,
                                                              api_rate_limit=1)) as shop:
        customer = shop.user(CUSTOMER)
        await customer.send("/api")
        screen = customer.bot_messages[-2]
        assert f"Address: {url}" in screen.text and url in code_texts(screen)
        assert "Limit: 1 request a minute." in screen.text
        assert "api" in {c["command"] for c in shop.emulator.commands}
        await customer.send("/help")
        assert "/api" in customer.text


async def test_without_the_api_the_shop_says_so_politely(shop_without_api: Shop) -> None:
    customer = shop_without_api.user(CUSTOMER)
    await customer.send("/api")
    assert "does not offer an API" in customer.text
    assert "I didn't get that" not in customer.text
    await customer.send("/balance")
    assert "API" not in str(customer.last().buttons)
    answer = await customer.tap_data(ApiCb(action="create").pack())
    assert "does not offer an API" in answer["text"]
    assert await shop_without_api.query("SELECT * FROM api_access") == []
    assert "api" not in {c["command"] for c in shop_without_api.emulator.commands}
    await shop_without_api.admin.send("/admin")
    assert "API customers" not in str(shop_without_api.admin.last().buttons)


@pytest.fixture
async def shop_without_api(make_sandbox: SandboxFactory,
                           tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1) as running:
        yield running


async def open_card_from_the_api_list(shop: Shop) -> ScriptedUser:
    admin = shop.admin
    await admin.send("/admin")
    await admin.tap("🔌 API customers")
    await admin.tap(f"Alex · {CUSTOMER}")
    assert f"Customer {CUSTOMER}" in admin.text
    return admin


async def test_the_owner_turns_a_customers_access_off_and_on(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    key = await first_key(shop, customer)
    old_screen = customer.with_button("🔄 New key")
    admin = shop.admin
    await admin.send("/admin")
    await admin.tap("🔌 API customers")
    assert f"Alex · {CUSTOMER} · key …{key[-4:]}, 0 requests, last used —" in admin.text
    await admin.tap(f"Alex · {CUSTOMER}")
    assert f"API: key …{key[-4:]}, 0 requests, last used —" in admin.text
    answer = await admin.tap("🔌 Turn API off")
    assert "their key stops working now" in answer["text"]
    assert "Their API access is turned off" in admin.text
    assert "🔌 Turn API on" in str(admin.last().buttons)
    assert (await stored(shop))[3] is not None

    # The customer's screen says so, with the support contact, and offers no key.
    screen = await customer.send("/api")
    assert "turned API access off for your account" in screen.text and SUPPORT in screen.text
    assert screen.buttons == [["⬅ Back", "🏠 Menu"]] and len(key_messages(customer)) == 1
    # Buttons of the screen from before refuse, and change nothing.
    for action in ("rotate_ok", "create", "revoke_ok", "notify_on"):
        answer = await customer.tap_data(ApiCb(action=action).pack(), old_screen)  # type: ignore[arg-type]
        assert answer["text"] == "API access is turned off for your account.", action
        assert answer["show_alert"] in (True, "true")
    assert len(key_messages(customer)) == 1
    key_hash, _hint, notify, _off = await stored(shop)
    assert key_hash == hashlib.sha256(key.encode()).hexdigest() and notify == 0
    keys = ApiKeys(await shop.db(), {ADMIN_ID}, enabled=True, url=None)
    try:
        with pytest.raises(ApiAccessOff):
            await keys.new_key(CUSTOMER)
    finally:
        await keys.db.close()

    # The list shows it; the audit log records it.
    await admin.tap("⬅ Admin")
    await admin.tap("🔌 API customers")
    assert "⛔ turned off" in admin.text
    await admin.tap(f"Alex · {CUSTOMER}")
    answer = await admin.tap("🔌 Turn API on")
    assert "on again" in answer["text"]
    assert "🔌 Turn API off" in str(admin.last().buttons)
    screen = await customer.send("/api")
    assert f"…{key[-4:]}" in screen.text and len(key_messages(customer)) == 1
    await admin.tap("⬅ Admin")
    await admin.tap("Audit log")
    assert "API access off" in admin.text and "API access on" in admin.text
    assert "API key created" in admin.text
    assert await shop.query("SELECT admin_id, action, before, after FROM audit_log"
                            " WHERE action LIKE 'api_o%' ORDER BY id") == [
        (ADMIN_ID, "api_off", "on", "off"), (ADMIN_ID, "api_on", "off", "on")]


async def test_access_turned_off_before_any_key_makes_none(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    admin = shop.admin
    await admin.send("/admin")
    await admin.tap("Customers")
    await admin.send(str(CUSTOMER))
    await admin.tap(str(CUSTOMER))
    assert "API: no key" in admin.text
    await admin.tap("🔌 Turn API off")
    assert "Their API access is turned off" in admin.text
    screen = await customer.send("/api")
    assert "turned API access off" in screen.text and key_messages(customer) == []
    assert (await stored(shop))[0] is None
    # The list shows customers whose access is off, even with no key.
    await admin.tap("⬅ Admin")
    await admin.tap("🔌 API customers")
    assert f"Alex · {CUSTOMER} · no key · ⛔ turned off" in admin.text


async def test_the_api_list_pages_the_latest_used_first(shop: Shop) -> None:
    keys = ApiKeys(await shop.db(), {ADMIN_ID}, enabled=True, url=None)
    try:
        for user_id in range(100, 112):
            await shop.credit(user_id, 1)
            made = await keys.new_key(user_id)
            if user_id in (103, 107):
                assert await keys.find(made.key) is not None
                await keys.count_use(user_id)  # used
        await keys.db.write("UPDATE api_access SET last_used_at = '2000-01-01T00:00:00.000Z'"
                            " WHERE user_id = 103")
    finally:
        await keys.db.close()
    admin = shop.admin
    await admin.send("/admin")
    await admin.tap("🔌 API customers")
    assert "(12, the latest used first)" in admin.text
    lines = [line for line in admin.text.splitlines() if " · key …" in line]
    assert [int(line.split(" · ")[1]) for line in lines[:2]] == [107, 103]
    assert len(lines) == 8 and "page 1/2" in str(admin.last().buttons)
    await admin.tap("▶")
    assert len([line for line in admin.text.splitlines() if " · key …" in line]) == 4


async def test_a_customer_can_not_reach_the_owners_switch(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    key = await first_key(shop, customer)
    for forged in (AdminCustomerCb(action="api_off", id=CUSTOMER).pack(),
                   AdminCb(area="api").pack(), MenuCb(action="admin").pack()):
        answer = await customer.tap_data(forged)
        assert "no longer valid" in answer["text"], forged
    assert "API customers" not in customer.text
    key_hash, _hint, _notify, disabled = await stored(shop)
    assert disabled is None and key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert [row[0] for row in await shop.query("SELECT action FROM audit_log")] == [
        "api_key_create"]


@pytest.mark.parametrize("lang", ["ru", "tr"])
async def test_every_api_screen_in_russian_and_turkish(make_sandbox: SandboxFactory,
                                                       tmp_path: Path, lang: str) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **api_settings()) as shop:
        walk = Walk(shop.user(CUSTOMER, language_code=lang), lang)
        await walk.send("/api")
        assert "60" in walk.user.bot_messages[-2].text
        await walk.tap(MenuCb(action="balance").pack())
        await walk.tap_prefix("w:show")
        for action in ("notify_on", "notify_off", "rotate", "show", "rotate", "rotate_ok",
                       "create", "revoke", "revoke_ok", "revoke_ok", "show", "create"):
            await walk.tap(ApiCb(action=action).pack())  # type: ignore[arg-type]

        boss = Walk(shop.emulator.user(ADMIN_ID, "Boss", language_code=lang), lang)
        await boss.send("/admin")
        await boss.tap(AdminCb(area="api").pack())
        await boss.tap(AdminCustomerCb(action="card", id=CUSTOMER).pack())
        await boss.tap(AdminCustomerCb(action="api_off", id=CUSTOMER).pack())
        await walk.send("/api")
        await walk.tap(ApiCb(action="rotate_ok").pack())
        await boss.tap(AdminCustomerCb(action="api_on", id=CUSTOMER).pack())
        await boss.tap(AdminCb(area="api").pack())
        await boss.tap(AdminCb(area="audit").pack())
        assert len(await shop.query("SELECT * FROM audit_log")) == 6
