"""What an adversarial pass over the hardening (issue 9) found: each test failed on
the code it was written against, and its docstring says what went wrong then."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from aiohttp import web

from bot.devtools.sandbox.server import DEFAULT_KEY
from bot.panel import PanelError, Service
from bot.panel.client import RetryPolicy
from tests.conftest import ClientFactory
from tests.e2e import Shop
from tests.test_storefront import CUSTOMER, _to_confirmation, open_service, order_until_completed

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------- refund on a guess

@pytest.mark.parametrize("status", [401, 403, 429])
async def test_an_add_answered_with_an_order_id_is_never_refunded(shop: Shop,
                                                                 status: int) -> None:
    """A panel that answers ``add`` with its order id but an auth/rate-limit HTTP status
    (a WAF in front that rewrites the status, a misconfigured PHP ``http_response_code``)
    has processed the order. The client classifies 401/403/407/429 as "refused before
    processing" without looking at the body, so the order is failed and refunded while
    the panel delivers it (the shop pays the panel, the customer gets it free)."""
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await _to_confirmation(customer, shop, "https://instagram.com/p/taken")
    shop.sandbox.panel.inject("rewrite", action="add",
                              rewrite=lambda body: (status, json.dumps(body)))
    await customer.tap("Confirm")
    [(state, _panel_id)] = await shop.query("SELECT state, panel_order_id FROM orders")
    assert len(shop.sandbox.panel.orders) == 1  # the panel has it
    assert state in ("pending", "unknown"), (state, customer.text)
    assert await shop.balance(CUSTOMER) == (10_000 - 156, 10_000 - 156)


# ---------------------------------------------------------------- slow-drip stall

async def _drip_server(serve_app) -> str:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"order": 1, "status": "In progress", "remains": "')
        try:
            while True:  # one byte well inside the read timeout, forever
                await asyncio.sleep(0.2)
                await response.write(b"0")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    app = web.Application()
    app.router.add_post("/api/v2", drip)
    return await serve_app(app) + "/api/v2"


@pytest.mark.parametrize("action", ["status", "add"])
async def test_a_slow_drip_answer_is_bounded_in_time(serve_app, make_client: ClientFactory,
                                                     action: str) -> None:
    """httpx's timeout is per read, so a panel that sends a byte every 0.2 s never times
    out (the 32 MB cap is ~80 days away at that pace). ``status`` stalls the panel's whole
    tracking loop (the cycle awaits every chunk); ``add`` holds a debited order in
    ``submitting`` and the customer's Confirm spinner forever. The call should end in a
    ``PanelError`` within a few timeouts."""
    from bot.panel.order_types import get_order_type

    url = await _drip_server(serve_app)
    client = make_client(url, timeout=1.0, retry=RetryPolicy(attempts=1))
    call = (client.status("1") if action == "status" else
            client.add("1", get_order_type("Default"),
                       {"link": "https://instagram.com/p/x", "quantity": "100"}))
    try:
        await asyncio.wait_for(call, timeout=8)
    except PanelError:
        return
    except TimeoutError:
        pytest.fail(f"{action} was still reading the drip after 8 s (timeout=1 s)")
    pytest.fail("a drip answer was read as a result")


# ---------------------------------------------------------------- stale Confirm

async def test_confirm_on_an_older_confirmation_charges_what_that_message_shows(
        shop: Shop) -> None:
    """Confirm carries no draft token, so Confirm on an older confirmation message places
    whatever draft is current: the customer taps a message that says 1,000 for $1.56 and
    is charged $15.60 for 10,000 (another form filled since, from an older service card)."""
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)
    old_card = customer.last()  # a service card left in the chat
    await _to_confirmation(customer, shop, "https://instagram.com/p/small")
    small = customer.last()
    assert "Price: $1.56" in small.text
    await customer.tap_data(old_card.button("🛒 Order")["callback_data"], old_card)  # type: ignore[index]
    await customer.send("https://instagram.com/p/big")
    await customer.send("10000")
    await customer.tap("Skip")
    assert "Price: $15.60" in customer.text
    answer = await customer.tap_data(small.button("Confirm")["callback_data"], small)  # type: ignore[index]
    assert await shop.query("SELECT price_minor, quantity FROM orders") == []
    assert answer["text"] == "That confirmation was out of date."
    tapped = customer.chat.messages[small.message_id]  # edited: the draft, shown again
    assert "This is your order as it is now" in tapped.text and "Price: $15.60" in tapped.text
    await customer.tap_data(tapped.button("Confirm")["callback_data"], tapped)  # type: ignore[index]
    assert await shop.query("SELECT price_minor, quantity FROM orders") == [(1560, 10_000)]


# ---------------------------------------------------------------- ids carry the key

async def test_a_refill_id_echoing_the_key_never_reaches_the_customer(shop: Shop) -> None:
    """Ids from a panel go through ``to_id`` (bounded, no control characters) but are
    never redacted: a panel answering ``{"refill": "<its key>"}`` puts the key in the
    refills table and in the customer's order card ("Refill <key>: waiting for the supplier")."""
    key = DEFAULT_KEY  # the key the shop is configured with (tests/e2e.py)
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await order_until_completed(customer, shop)
    shop.sandbox.panel.inject("raw", action="refill", body=json.dumps({"refill": key}))
    await customer.tap("Refill")
    assert key not in customer.text
    assert await shop.query("SELECT COUNT(*) FROM refills WHERE panel_refill_id = ?",
                            (key,)) == [(0,)]


# ---------------------------------------------------------------- silently dropped ids

async def test_an_order_the_panel_leaves_out_of_its_answers_is_flagged(
        db, make_sandbox, make_client) -> None:
    """The tracker counts "Incorrect order ID" items, but an id the panel simply leaves out
    of the multi-id answer (or answers under another spelling, "0012" for "12") is never
    counted: the order stays pending for good, paid for, with no alert and no refund."""
    from bot.shop.orders.tracking import MISSING_POLLS, Tracker
    from tests.test_tracker import order_on, shop_on

    sandbox = await make_sandbox()
    client = make_client(sandbox)
    client.name = "sb"
    service = await shop_on(db, {"sb": client})
    await order_on(db, service, "sb", "https://instagram.com/p/kept")
    lost = await order_on(db, service, "sb", "https://instagram.com/p/lost")
    [(lost_panel_id,)] = await db.fetchall("SELECT panel_order_id FROM orders WHERE id = ?",
                                           (lost,))
    alerts: list[str] = []

    async def alert(text: str, *, details: str = "", key: str | None = None) -> None:
        alerts.append(text)

    tracker = Tracker(db, {"sb": client}, interval=1, alert=alert)
    sandbox.panel.inject("rewrite", action="status", times=100, rewrite=lambda body: json.dumps(
        {k: v for k, v in body.items() if k != str(lost_panel_id)}))
    for _ in range(MISSING_POLLS + 2):
        await tracker.poll("sb")
    assert any(f"#{lost}" in a for a in alerts), alerts


# ---------------------------------------------------------------- subscription quantity

async def test_a_subscription_partial_refunds_the_undelivered_share_only(db) -> None:
    """A subscription's price is rate × max × (posts + old_posts) / 1000, so a Partial's
    remains are measured against every post's worth: 200 undelivered of 2,000 paid for
    (10 posts × 200) refunds a tenth (it refunded the whole price)."""
    from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG
    from bot.shop.catalog.pricing import Pricer
    from bot.shop.orders.service import refund_for
    from storage.catalog import StoredService

    entry = next(e for e in DEFAULT_CATALOG if e.type == "Subscriptions")
    service = Service(str(entry.id), entry.name, entry.type, entry.category, Decimal(1000),
                      entry.min, entry.max)
    stored = StoredService(1, "p", 1, "instagram", "USD", True, service)
    values = {"username": "alice", "min": "100", "max": "200", "posts": "10", "delay": "0"}
    quote = await Pricer(db, "USD", Decimal(0), {}).quote(stored, values)
    assert quote.quantity == 2000 and quote.price_minor == 200_000  # $2,000: 1 per unit
    order = SimpleNamespace(price_minor=quote.price_minor, quantity=quote.quantity)
    assert refund_for(order, "partial", 200) == 20_000  # type: ignore[arg-type]
