"""Reading /metrics the way Prometheus does, for tests that count."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

Client = TestClient[web.Request, web.Application]


async def scrape(client: Client) -> dict[str, float]:
    """Every sample as `name{label="value",...}` (labels sorted) → value."""
    response = await client.get("/metrics")
    assert response.status == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def moved(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    """The samples starting with `prefix` that changed, by how much."""
    return {
        name: after[name] - before.get(name, 0.0)
        for name in after
        if name.startswith(prefix) and after[name] != before.get(name, 0.0)
    }
