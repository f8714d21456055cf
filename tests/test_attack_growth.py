"""An adversarial pass over the growth features (issue 21): referrals, promo codes and
discounts attacked as a hostile customer, a careless admin or a flaky Telegram would.
The unmodified bot against the Bot API emulator and the sandbox panel where a user
would notice; the services alone otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import SandboxFactory
from tests.e2e import Shop, running_shop
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
