"""What the panels did, end to end: the unmodified bot, the emulator, the sandbox.
A service that would sell at a loss is neither browsed, searched nor ordered; the
admins' digest reaches each admin in their own language, once, restarts included."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from bot.devtools.emulator import ScriptedUser
from bot.shop.money import formatting
from storage import routes
from tests.conftest import SandboxFactory
from tests.e2e import ADMIN_ID, restart, running_shop
from tests.test_admin_catalog import open_card, ref_of
from tests.test_storefront import CUSTOMER, open_service

pytestmark = pytest.mark.timeout(120)

RU_ADMIN, TR_ADMIN = 1_000_002, 1_000_003
RU_HEAD = "Изменилась стоимость связанной услуги"
TR_HEAD = "Bağlantılı bir hizmetin maliyeti değişti"


def said(user: ScriptedUser, words: str) -> list[str]:
    return [m.text for m in user.bot_messages if words in m.text]


async def test_loss_hides_and_the_digest_speaks_each_admins_language(
        make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    admins = f"{ADMIN_ID},{RU_ADMIN},{TR_ADMIN}"
    async with running_shop(sandbox, tmp_path, admin_ids=admins) as shop:
        admin, customer = shop.admin, shop.user(CUSTOMER)
        russian = shop.user(RU_ADMIN, "Борис", language_code="ru")
        turkish = shop.user(TR_ADMIN, "Ayşe", language_code="tr")
        for reader in (russian, turkish):
            await reader.send("/start")

        # A service whose markup makes it sell below cost: hidden from customers.
        ref, _category = await ref_of(shop, 101)
        await open_service(customer, shop, 101)
        old_card = customer.last()
        await open_card(admin, shop, 101)
        await admin.tap("Service markup")
        await admin.send("-20")
        await admin.tap("Save")
        await admin.tap("Yes, save and hide them")
        answer = await customer.tap_data(f"o:{ref}", old_card)  # 🛒 Order on the old card
        assert answer["text"] == "That service is no longer available."
        await customer.send("/search 101")
        assert "Nothing found" in customer.text
        await customer.send("/start")
        await customer.tap("New order")
        await customer.tap("Instagram")
        await customer.tap("Instagram Followers")
        labels = [label for row in customer.last().buttons for label in row]
        assert not any("[Real" in label for label in labels), labels
        await open_card(admin, shop, 101)
        assert "hidden by the shop" in admin.text

        # A linked service's cost moves: the digest goes out at the refresh.
        likes, backup = await ref_of(shop, 103), await ref_of(shop, 105)
        db = await shop.db()
        try:
            await routes.link(db, likes[0], backup[0])
        finally:
            await db.close()
        catalog = sandbox.panel.catalog
        catalog[103] = dataclasses.replace(catalog[103], rate=Decimal("0.40"))  # 0.25: +60 %
        await admin.tap("⬅ Catalog")
        await admin.tap("Refresh now")
        await shop.emulator.wait_for(lambda: bool(said(russian, RU_HEAD) and said(turkish,
                                                                                  TR_HEAD)))
        [ru_text], [tr_text] = said(russian, RU_HEAD), said(turkish, TR_HEAD)
        for lang, text in (("ru", ru_text), ("tr", tr_text)):
            old = formatting.amount(Decimal("0.25"), "USD", lang)
            new = formatting.amount(Decimal("0.40"), "USD", lang)
            assert f"{old} → {new}" in text, text
            assert "+" + formatting.percent(Decimal(60), lang) in text, text
        assert "Подорожали: 1" in ru_text and "ниже себестоимости: 1" in ru_text
        assert "Maliyeti artan: 1" in tr_text and "maliyetinin altında satılacaktı: 1" in tr_text
        assert "+%60" in tr_text

        # A restart queues and sends nothing again.
        await restart(shop, shop.emulator_url)
        for reader in (russian, turkish):
            await reader.send("/start")
        rows = await shop.query("SELECT chat_id, state FROM outbox"
                                " WHERE payload LIKE '%catalog_digest%'")
        assert sorted(r[0] for r in rows) == sorted([ADMIN_ID, RU_ADMIN, TR_ADMIN])
        assert len(said(russian, RU_HEAD)) == 1 and len(said(turkish, TR_HEAD)) == 1
        untold = await shop.query("SELECT COUNT(*) FROM catalog_changes WHERE told_at IS NULL")
        assert untold == [(0,)]
