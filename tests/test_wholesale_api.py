"""The wholesale API: the shop's own API v2, driven over HTTP by the project's panel client
and by raw requests, against the unmodified bot on the sandbox panel."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from bot.panel import OrderState, PanelClient, PanelRejected, RejectReason
from tests.conftest import ClientFactory
from tests.e2e import Shop

RESELLER = 7001


async def reseller(shop: Shop, make_client: ClientFactory, minor: int = 10_000) -> PanelClient:
    key = await shop.api_key(RESELLER)
    await shop.credit(RESELLER, minor)
    return make_client(shop.api_url, key)


async def test_services_balance_add_status_through_the_panel_client(
        api_shop: Shop, make_client: ClientFactory) -> None:
    client = await reseller(api_shop, make_client)
    services = await client.services()
    assert services
    balance = await client.balance()
    assert (balance.amount, balance.currency) == (Decimal("100.00"), "USD")
    followers = next(s for s in services if s.type == "Default" and "Instagram" in s.name)
    assert followers.order_type is not None
    order_id = await client.add(followers.id, followers.order_type,
                                {"link": "https://instagram.com/p/x", "quantity": str(followers.min)})
    status = await client.status(order_id)
    assert status.status in (OrderState.PENDING, OrderState.IN_PROGRESS)
    charged = Decimal(10_000 - (await api_shop.balance(RESELLER))[0]) / 100
    assert status.charge == charged
    assert charged <= followers.rate * followers.min / 1000 + Decimal("0.01")


async def test_bad_key_and_unknown_action(api_shop: Shop) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(api_shop.api_url, data={"key": "nope", "action": "balance"})
        assert answer.status_code == 200 and answer.json() == {"error": "Invalid API key"}
        key = await api_shop.api_key(RESELLER)
        answer = await http.post(api_shop.api_url, data={"key": key, "action": "dance"})
        assert answer.json()["error"].startswith("Incorrect request")
        answer = await http.post(api_shop.api_url, content=b"{not json",
                                 headers={"Content-Type": "application/json"})
        assert answer.status_code == 400


async def test_not_enough_balance_is_refused_by_the_client_as_funds(
        api_shop: Shop, make_client: ClientFactory) -> None:
    client = await reseller(api_shop, make_client, minor=1)
    service = next(s for s in await client.services() if s.type == "Default")
    with pytest.raises(PanelRejected) as info:
        await client.add(service.id, service.order_type,  # type: ignore[arg-type]
                         {"link": "https://instagram.com/p/y", "quantity": str(service.max)})
    assert info.value.reason is RejectReason.NOT_ENOUGH_FUNDS


# --- settings: where the API is served, and the address customers are shown ---------------

def test_api_settings_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import ConfigError, load_settings, startup_warnings

    monkeypatch.setenv("API_ENABLED", "true")
    with pytest.raises(ConfigError, match="API_ENABLED needs a port in polling mode"):
        load_settings()
    with pytest.raises(ConfigError, match="API_PORT 9100 is the port"):
        load_settings(health_port=9100, api_port=9100)
    settings = load_settings(health_port=9100)
    assert settings.api_url is None
    assert any("API_PUBLIC_URL" in line for line in startup_warnings(settings))
    settings = load_settings(webhook_url="https://shop.example.com/tg")
    assert settings.api_url == "https://shop.example.com/api/v2"
    with pytest.raises(ConfigError, match="API_PATH is WEBHOOK_URL's path"):
        load_settings(webhook_url="https://shop.example.com/api/v2")
    settings = load_settings(api_port=9200, api_public_url="https://api.example.com/v2")
    assert settings.api_url == "https://api.example.com/v2"
    with pytest.raises(ConfigError, match="API_PATH"):
        load_settings(api_port=9200, api_path="/metrics")
