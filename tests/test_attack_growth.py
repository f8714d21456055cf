"""An adversarial pass over the growth features (issue 21): referrals, promo codes and
discounts attacked as a hostile customer, a careless admin or a flaky Telegram would.
The unmodified bot against the Bot API emulator and the sandbox panel where a user
would notice; the services alone otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import SandboxFactory
from tests.e2e import Shop, running_shop, start_bot, stop_bot, wait_ready
from tests.test_referrals import ALICE, CAROL, REFERRALS, code_of, referred_by

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def shop(make_sandbox: SandboxFactory, tmp_path: Path) -> AsyncIterator[Shop]:
    sandbox = await make_sandbox()
    async with running_shop(sandbox, tmp_path, panel_timeout=1, **REFERRALS) as running:
        yield running


async def test_a_customer_who_used_the_bot_before_any_start_is_not_referred_later(
        shop: Shop) -> None:
    """Carol never pressed Start: she typed /balance and topped up. A friend's link
    sent to her later is not what brought her, so it earns the friend nothing."""
    alice = shop.user(ALICE, "Alice")
    await alice.send("/start")
    code = await code_of(alice)
    carol = shop.user(CAROL, "Carol")
    await carol.send("/balance")
    await carol.tap("Top up")
    await carol.tap("$5.00 · 250 ⭐")
    assert (await carol.pay()).ok
    assert "Hi, Carol!" in (await carol.send(f"/start {code}")).text
    assert await referred_by(shop, CAROL) is None
    await carol.send("/balance")
    await carol.tap("Top up")
    await carol.tap("$5.00 · 250 ⭐")
    assert (await carol.pay()).ok
    assert await shop.balance(ALICE) == (0, 0)


async def test_a_promo_code_replayed_after_a_restart_credits_once(shop: Shop) -> None:
    """The process died after /promo's credit was committed but before its update was
    marked handled (the answer was on its way): the next start replays the update.
    The replay answers as the first time and credits nothing more, even for a code a
    customer may use twice."""
    await shop.admin.send("/promo_new TWICE balance 5 per_user=2")
    customer = shop.user(CAROL, "Carol")
    await customer.send("/promo twice")
    assert "$5.00 added to your balance" in customer.text
    await stop_bot(shop.task)
    database = await shop.db()
    try:  # what a kill between the credit and the handled mark leaves behind
        await database.write("UPDATE inbox SET handled_at = NULL WHERE body LIKE '%/promo twice%'")
    finally:
        await database.close()
    shop.emulator.calls.clear()
    answers = len(customer.saying("added to your balance"))
    shop.task = await start_bot(shop.emulator_url, shop.sandbox, shop.database_path,
                                **shop.settings_overrides)
    await wait_ready(shop.emulator, shop.task)
    await shop.emulator.wait_for(
        lambda: len(customer.saying("added to your balance")) == answers + 1)
    assert "Your balance is now $5.00" in customer.text
    assert await shop.balance(CAROL) == (500, 500)
    assert await shop.query("SELECT uses FROM promo_codes") == [(1,)]
    await customer.send("/promo TWICE")  # the second use is still theirs
    assert "Your balance is now $10.00" in customer.text
