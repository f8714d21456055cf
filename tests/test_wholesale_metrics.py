"""/metrics counts the wholesale API's requests by action and result, read as Prometheus
reads it: over HTTP from the unmodified bot's HEALTH_PORT server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SandboxFactory
from tests.e2e import free_port, running_shop

pytestmark = pytest.mark.timeout(60)

LIMIT = 10  # API_RATE_LIMIT of this shop


async def api_counts(http: httpx.AsyncClient, metrics_url: str) -> Counter[tuple[str, str]]:
    """storefront_api_requests_total by (action, result), as /metrics shows it now."""
    page = await http.get(metrics_url)
    assert page.status_code == 200
    counts: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(page.text):
        if family.name == "storefront_api_requests":
            for sample in family.samples:
                if sample.name == "storefront_api_requests_total":
                    counts[sample.labels["action"], sample.labels["result"]] = int(sample.value)
    return counts


async def test_metrics_count_api_requests_by_action_and_result(make_sandbox: SandboxFactory,
                                                               tmp_path: Path) -> None:
    sandbox = await make_sandbox()
    health_port = free_port()
    async with running_shop(sandbox, tmp_path, api_enabled=True, api_port=free_port(),
                            health_port=health_port, api_rate_limit=LIMIT) as shop:
        key, busy = await shop.api_key(7001), await shop.api_key(7002)
        await shop.credit(7001, 10_000)
        [(ref,)] = await shop.query("SELECT id FROM services WHERE service_id = '102'")
        metrics_url = f"http://127.0.0.1:{health_port}/metrics"
        async with httpx.AsyncClient(timeout=30) as http:
            before = await api_counts(http, metrics_url)

            async def call(**fields: str) -> httpx.Response:
                return await http.post(shop.api_url, data=fields)

            await call(key=key, action="services")
            await call(key=key, action="balance")
            order = (await call(key=key, action="add", service=str(ref), quantity="1000",
                                link="https://instagram.com/p/counted")).json()["order"]
            await call(key=key, action="add", service="999999", quantity="1000",
                       link="https://instagram.com/p/nowhere")
            await call(key=key, action="status", order=str(order))
            await call(key=key, action="status", order="999999")
            await call(key=key, action="refill", order=str(order))  # not completed yet
            await call(key=key, action="DANCE")  # any unknown action is one label
            await call(key="not-a-key", action="balance")
            await http.post(shop.api_url, content=b"{broken",
                            headers={"Content-Type": "application/json"})
            for _ in range(LIMIT + 2):  # the last two are over the limit
                await call(key=busy, action="Balance ")  # read as "balance"

            delta = await api_counts(http, metrics_url) - before
        assert delta == Counter({
            ("services", "ok"): 1, ("balance", "ok"): 1 + LIMIT, ("add", "ok"): 1,
            ("add", "error"): 1, ("status", "ok"): 1, ("status", "error"): 1,
            ("refill", "error"): 1, ("other", "error"): 1, ("balance", "bad_key"): 1,
            ("other", "malformed"): 1, ("balance", "rate_limited"): 2,
        })
