"""Stars reconciliation: Telegram's transactions (the emulator's getStarTransactions)
against the ledger, every kind of difference reported once, nothing changed
(uncertain refunds, which it settles: tests/test_uncertain_refunds.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.shop.money import reconcile
from handlers.outbound.star_transactions import telegram_transactions
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, TOKEN, Shop, running_shop
from tests.test_stars import STARS, bought_stars

pytestmark = pytest.mark.timeout(120)


def age(shop: Shop, charge_id: str) -> None:
    """Date a Telegram transaction an hour back."""
    for transaction in shop.emulator.star_transactions:
        if transaction["id"] == charge_id:
            transaction["date"] -= 3600


class Alerts:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str, *, details: str = "", key: str | None = None) -> None:
        self.texts.append(text)


async def test_every_difference_is_reported_once_and_nothing_changes(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **STARS) as shop:
        customer = shop.user(42)
        await customer.send("/start")
        kept = await bought_stars(customer)
        changed = await bought_stars(customer, "$10.00 · 500 ⭐")
        refunded = await bought_stars(customer, "$25.00 · 1,250 ⭐")
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(
            shop.emulator_url)))
        try:
            db = await shop.db()
            alerts = Alerts()
            fetch = telegram_transactions(bot)
            assert (await reconcile.reconcile(db, fetch, alerts)).differences == []  # agree

            unseen = shop.emulator.complete_payment(customer.sender, 100, "never-delivered")
            age(shop, unseen)  # old enough not to be on its way to the bot any more
            await db.write("UPDATE topups SET stars = 499 WHERE charge_id = ?", (changed,))
            await db.write(
                "INSERT INTO topups (payload, user_id, amount_minor, currency, stars, state,"
                " charge_id, expires_at) VALUES ('p', 42, 100, 'USD', 50, 'paid', 'ghost', 0)")
            await bot.refund_star_payment(42, refunded)  # outside the bot's /refund_stars
            balance_before = await shop.balance(42)

            found = (await reconcile.reconcile(db, fetch, alerts)).differences
            assert {(d.kind, d.charge_id) for d in found} == {
                ("uncredited", unseen), ("amount", changed), ("unknown_credit", "ghost"),
                ("unbooked_refund", refunded)}
            assert len(alerts.texts) == 4 and kept not in " ".join(alerts.texts)
            again = await reconcile.reconcile(db, fetch, alerts)
            assert again.differences == found  # still there...
            assert len(alerts.texts) == 4  # ...but told once
            assert await shop.balance(42) == balance_before  # nothing changed
            await db.close()
        finally:
            await bot.session.close()


async def test_the_command_lists_the_differences(make_sandbox: SandboxFactory,
                                                 tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, **STARS) as shop:
        customer = shop.user(42)
        await customer.send("/start")
        await bought_stars(customer)
        unseen = shop.emulator.complete_payment(customer.sender, 100, "never-delivered")
        age(shop, unseen)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PANEL", "BOT_"))}
        env.update(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=shop.emulator_url,
                   DATABASE_PATH=str(shop.database_path), ADMIN_IDS=str(ADMIN_ID),
                   LOG_LEVEL="ERROR")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "stars", "reconcile", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 1, err.decode()
        assert f"uncredited\t{unseen}" in out.decode() and "1 difference(s)" in out.decode()
        assert TOKEN not in out.decode() + err.decode()
