"""A reseller's translation with mistakes in it, end to end: the unmodified bot on a
locales folder (LOCALES_DIR) whose Russian catalog has a misspelt placeholder and
a lost HTML tag, driven through the Bot API emulator.

The broken messages are shown in English, every other one in Russian; the
customer never gets an apology for them, their order notices arrive, and the
admins are told once (not again at the next start).
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.emulator import BotApiEmulator, ScriptedUser, start_emulator
from bot.devtools.sandbox.server import RunningSandbox
from handlers.callbacks import FormCb, OrderStartCb, ServiceCb
from storage import ledger, users
from storage.db import Database
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, eventually, start_bot, stop_bot, wait_ready

pytestmark = pytest.mark.timeout(120)

LOCALES = Path(__file__).resolve().parent.parent / "locales"
# (msgstr as shipped, as a careless translator left it): one placeholder misspelt,
# one closing tag lost, and an order notice's placeholder translated.
MISTAKES = [
    ('msgstr "Ваш баланс: <b>{balance}</b>"', 'msgstr "Ваш баланс: <b>{balanse}</b>"'),
    ('msgstr "<b>История</b> (сначала новые):"', 'msgstr "<b>История (сначала новые):"'),
    ('msgstr "✅ Заказ #{id} выполнен."', 'msgstr "✅ Заказ #{номер} выполнен."'),
]
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
APOLOGY = ("Sorry, something went wrong", "Извините")


def broken_locales(tmp_path: Path) -> Path:
    """The shipped .po files, copied, with the Russian one broken as in MISTAKES."""
    target = tmp_path / "locales"
    shutil.copytree(LOCALES, target, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    russian = target / "ru" / "LC_MESSAGES" / "messages.po"
    text = russian.read_text(encoding="utf-8")
    for shipped, broken in MISTAKES:
        assert text.count(shipped) == 1, shipped
        text = text.replace(shipped, broken)
    russian.write_text(text, encoding="utf-8")
    return target


class Bot:
    """The bot on the broken locales, with the admin's chat there before it starts
    (the start-up alert is sent at once)."""

    def __init__(self, sandbox: RunningSandbox, tmp_path: Path) -> None:
        self.sandbox, self.tmp_path = sandbox, tmp_path
        self.emulator = BotApiEmulator()
        self.admin = self.emulator.user(ADMIN_ID, "Boss")
        self.database_path = tmp_path / "shop.sqlite3"
        self.settings = {"locales_dir": broken_locales(tmp_path), "panel_timeout": 1,
                         "track_interval": 1}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        running = await start_emulator(self.emulator)
        try:
            task = await start_bot(running.url, self.sandbox, self.database_path, **self.settings)
            try:
                await wait_ready(self.emulator, task)
                yield
            finally:
                await stop_bot(task)
        finally:
            await running.stop()

    async def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        database = await Database(self.database_path).open()
        try:
            return [tuple(row) for row in await database.fetchall(sql, params)]
        finally:
            await database.close()

    async def credit(self, user_id: int) -> None:
        """$50.00 on the customer's balance."""
        database = await Database(self.database_path).open()
        try:
            await users.upsert_user(database, user_id, first_name="Саша", language="ru")
            async with database.transaction() as conn:
                await ledger.post(conn, user_id=user_id, amount_minor=5_000, kind="credit",
                                  key=f"test:{user_id}")
        finally:
            await database.close()

    async def translation_alerts(self) -> list[tuple]:
        """The admin alerts about broken translations ever queued."""
        return await self.query("SELECT chat_id, payload FROM outbox WHERE kind = 'alert'"
                                " AND payload LIKE '%translation%'")


def assert_no_apology(user: ScriptedUser) -> None:
    for message in user.bot_messages:
        assert not any(words in message.text for words in APOLOGY), message.text


async def test_a_broken_translation_is_english_on_the_customers_screen(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    bot = Bot(await make_sandbox(), tmp_path)
    async with bot.running():
        await bot.credit(42)
        customer = bot.emulator.user(42, "Саша", language_code="ru")
        menu = await customer.send("/start")
        assert menu.text.startswith("Здравствуйте, Саша!")  # the rest of the catalog still serves

        balance = await customer.send("/balance")
        assert "Your balance: 50,00\u00a0$" in balance.text  # English words, Russian money
        assert "History (newest first):" in balance.text
        assert CYRILLIC.search(" ".join(label for row in balance.buttons for label in row))
        assert_no_apology(customer)

        alert = await bot.admin.expect("translation")
        assert "ru: 3 messages" in alert.text, alert.text
        for msgid in ("Your balance: <b>{balance}</b>", "<b>History</b> (newest first):",
                      "✅ Order #{id} is complete."):
            assert msgid in alert.text, alert.text
        assert len(bot.admin.saying("translation")) == 1


async def test_a_broken_order_notice_arrives_in_english_and_the_admins_are_told_once(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    bot = Bot(sandbox, tmp_path)
    async with bot.running():
        await bot.credit(42)
        customer = bot.emulator.user(42, "Саша", language_code="ru")
        [(ref,)] = await bot.query("SELECT id FROM services WHERE service_id = '103'")
        await customer.send("/start")
        await customer.tap_data(ServiceCb(ref=int(ref)).pack())
        await customer.tap_data(OrderStartCb(ref=int(ref)).pack())
        await customer.send("https://instagram.com/p/broken")
        await customer.send("1000")
        await customer.tap_data(FormCb(action="skip").pack())
        confirm = next(button["callback_data"] for message in reversed(customer.bot_messages)
                       for row in (message.markup or {}).get("inline_keyboard", [])
                       for button in row
                       if button.get("callback_data", "").startswith(FormCb(action="confirm")
                                                                     .pack()))
        await customer.tap_data(confirm)
        [(order_id, panel_id)] = await bot.query("SELECT id, panel_order_id FROM orders")
        sandbox.panel.orders[int(panel_id)].fate = "completed"
        sandbox.panel.advance(sandbox.panel.pace * 4)

        notice = await customer.expect(f"✅ Order #{order_id} is complete.", timeout=20)
        assert f"Открыть заказ #{order_id}" in str(notice.buttons)  # its button in Russian
        async def completed() -> list[tuple]:
            return await bot.query(
                "SELECT state, attempts, last_error FROM outbox WHERE kind = 'order'"
                " AND order_id = ? AND payload LIKE '%completed%'", (order_id,))

        async def marked() -> bool:  # once Telegram has answered: after the chat has it
            return all(state != "pending" for state, *_ in await completed())

        await eventually(marked)
        assert await completed() == [("sent", 1, None)]  # sent at the first attempt, not retried
        assert_no_apology(customer)
        await bot.admin.expect("translation")
    assert len(await bot.translation_alerts()) == 1

    bot.emulator.calls.clear()
    async with bot.running():  # the same broken catalog at the next start: no second alert
        assert len(await bot.translation_alerts()) == 1
        customer = bot.emulator.user(42, "Саша", language_code="ru")
        assert "Your balance:" in (await customer.send("/balance")).text
    assert len(bot.admin.saying("translation")) == 1
