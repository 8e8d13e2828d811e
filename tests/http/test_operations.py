"""Operations: health, readiness, metrics, OpenAPI, dev mode, production refusal, sweep."""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from mana_credits_adapters.bootstrap import bootstrap, build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_cli.main import app as cli
from mana_credits_core import ReservationStatus, TransactionType
from mana_credits_core.services import Services
from mana_credits_http import ROUTES, create_app

from ..processes import run
from .conftest import Jwks, bearer, service

Client = TestClient[web.Request, web.Application]
ROOT = Path(__file__).resolve().parents[2]


async def test_health_and_readiness(client: Client) -> None:
    health = await client.get("/health")
    body = await health.json()
    assert (body["status"], body["service"]) == ("ok", "mana-credits")
    assert body["timestamp"].endswith("Z")
    ready = await client.get("/health/ready")
    assert (ready.status, await ready.json()) == (200, {"status": "ready"})
    assert health.headers["X-Request-Id"]
    traced = await client.get("/health", headers={"X-Request-Id": "trace-me"})
    assert traced.headers["X-Request-Id"] == "trace-me"


async def test_readiness_is_503_when_the_database_is_down(
    http_settings: Settings, jwks: Jwks, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlStore(create_engine("postgresql+psycopg://x@127.0.0.1:1/none", pool_timeout=1))
    services = build_services(store, http_settings)
    async with TestClient(TestServer(create_app(http_settings, services=services))) as client:
        ready = await client.get("/health/ready")
        assert ready.status == 503
        body = await ready.json()
        assert body["code"] == "store_unavailable"
        assert "Traceback" not in str(body)
        for _ in range(3):
            debit = await client.get("/api/v1/credits/balance", headers=bearer(jwks.token()))
            assert debit.status == 503
    await store.close()
    # Said in the log with the driver's words, once for the burst (not once a request).
    said = [r for r in caplog.records if r.getMessage().startswith("store unavailable")]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert "127.0.0.1" in said[0].getMessage() or "connect" in said[0].getMessage().lower()


async def test_metrics_count_requests_and_debits(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await app_services.credits.credit("alice", 10, TransactionType.GRANT, "funds")
    body = {"amount": 4, "appId": "chat", "description": "x"}
    for _ in range(3):
        await client.post("/api/v1/credits/use", json=body, headers=bearer(jwks.token()))
    text = await (await client.get("/metrics")).text()
    assert "mana_credits_debits_total 2.0" in text
    assert "mana_credits_insufficient_credits_total 1.0" in text
    labels = 'method="POST",route="/api/v1/credits/use",status="402"'
    assert f"mana_credits_http_requests_total{{{labels}}} 1.0" in text
    assert "mana_credits_http_request_duration_seconds_bucket" in text
    assert "mana_credits_db_pool_in_use" in text


async def test_openapi_lists_every_route(client: Client) -> None:
    document: dict[str, Any] = await (await client.get("/openapi.json")).json()
    listed = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = str(info.get("path") or info.get("formatter") or info.get("prefix"))
        if path.startswith("/docs/assets"):  # Swagger UI's own files
            continue
        if path == "/console":  # the operator console's pages: not the API (console.md)
            continue
        for route in resource:
            if route.method != "HEAD":
                served.add((route.method, path))
    assert served == listed
    # /openapi.json, /docs, /docs/init.js, and (no STRIPE_SECRET_KEY) the dev checkout page
    assert len(listed) == len(ROUTES) + 3 + 2
    assert ("POST", "/dev/checkout/{purchase_id}") in listed
    assert (
        document["info"]["version"]
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    )
    page = document["paths"]["/g/{code}"]["get"]["responses"]["200"]
    assert "text/html" in page["content"]
    use = document["paths"]["/api/v1/credits/use"]["post"]
    schema_ref = use["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    # amount (with appId and description) or operation, never both.
    assert "required" not in schema
    amount, operation = schema["oneOf"]
    assert (amount["required"], operation["required"]) == (
        ["amount", "appId", "description"],
        ["operation"],
    )
    internal = document["components"]["schemas"]["InternalUseCreditsBody"]
    assert (internal["required"], internal["oneOf"]) == (["userId"], schema["oneOf"])


async def test_dev_mode_accepts_tokens_minted_by_the_cli(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MANA_CREDITS_HOME", str(tmp_path))
    for name in ("DATABASE_URL", "MANA_AUTH_URL", "MANA_SERVICE_KEY"):
        monkeypatch.delenv(name, raising=False)
    minted = CliRunner().invoke(cli, ["dev", "token", "--user", "alice", "--role", "admin"])
    assert minted.exit_code == 0, minted.output
    token = minted.output.strip()
    settings = Settings()
    assert settings.dev_identity
    async with TestClient(TestServer(create_app(settings))) as client:
        balance = await client.get("/api/v1/credits/balance", headers=bearer(token))
        assert balance.status == 200
        assert (await balance.json())["balance"] == 0
        internal = await client.post(
            "/api/v1/internal/credits/refund",
            json={"userId": "alice", "amount": 25, "description": "welcome"},
            headers=service(key="dev-service-key"),
        )
        assert internal.status == 200
        jwks = await (await client.get("/api/auth/jwks")).json()
        assert jwks["keys"][0]["crv"] == "Ed25519"
        assert "d" not in jwks["keys"][0]
        # The embedded default documents its helpers too.
        paths = (await (await client.get("/openapi.json")).json())["paths"]
        assert "get" in paths["/api/auth/jwks"]
        checkout = paths["/dev/checkout/{purchase_id}"]
        assert set(checkout) == {"get", "post"}
        assert "text/html" in checkout["get"]["responses"]["200"]["content"]
    assert (tmp_path / "credits.db").exists()


def test_production_mode_refuses_to_start_without_keys(monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://mana@127.0.0.1:1/mana_credits")
    monkeypatch.delenv("MANA_AUTH_URL", raising=False)
    monkeypatch.setenv("MANA_SERVICE_KEY", "dev-service-key")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "MANA_SERVICE_KEY is the public development key" in result.output
    assert "MANA_AUTH_URL is not set" in result.output
    monkeypatch.delenv("MANA_SERVICE_KEY")
    result = CliRunner().invoke(cli, ["serve"])
    assert "MANA_SERVICE_KEY is not set" in result.output


async def test_the_server_sweeps_expired_reservations(tmp_path: Path, jwks: Jwks) -> None:
    settings = Settings(
        MANA_CREDITS_HOME=tmp_path,
        MANA_AUTH_URL=jwks.url,
        MANA_CREDITS_SWEEP_INTERVAL=0.05,
        MANA_CREDITS_RESERVATION_TTL=60,
    )
    clock = ManualClock()
    services = build_services(MemoryStore(), settings, clock=clock)
    await services.credits.credit("alice", 10, TransactionType.GRANT, "funds")
    held = await services.reservations.reserve("alice", 10, "stuck")
    async with TestClient(TestServer(create_app(settings, services=services))):
        clock.advance(services.reservations.ttl * 2)
        for _ in range(100):
            await asyncio.sleep(0.02)
            found = await services.reservations.get(held.reservation.id)
            if found.status == ReservationStatus.EXPIRED:
                break
        assert found.status == ReservationStatus.EXPIRED
    assert (await services.credits.balance("alice")).balance == 10


async def test_dev_checkout_page_pays_through_the_same_path(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MANA_CREDITS_HOME", str(tmp_path))
    for name in ("DATABASE_URL", "MANA_AUTH_URL", "MANA_SERVICE_KEY", "STRIPE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    token = CliRunner().invoke(cli, ["dev", "token", "--user", "carol"]).output.strip()
    async with TestClient(TestServer(create_app(settings))) as client:
        packages = await (await client.get("/api/v1/credits/packages")).json()
        assert len(packages) == 4  # the default catalogue of the embedded default
        started = await client.post(
            "/api/v1/credits/purchase",
            json={
                "packageId": packages[0]["id"],
                "successUrl": "http://localhost:5173/ok",
                "cancelUrl": "http://localhost:5173/cancel",
            },
            headers=bearer(token),
        )
        url = (await started.json())["checkoutUrl"]
        path = url.split("3061", 1)[1]
        page = await client.get(path)
        text = await page.text()
        assert '<b id="status">pending</b>' in text
        assert "<button>Pay" in text
        assert 'href="http://localhost:5173/cancel"' in text
        paid = await client.post(path, allow_redirects=False)
        # back to the app's successUrl, as Stripe Checkout does after paying
        assert (paid.status, paid.headers["Location"]) == (303, "http://localhost:5173/ok")
        done = await (await client.get(path)).text()
        assert '<b id="status">completed</b>' in done
        assert "<button" not in done  # nothing left to pay
        assert 'href="http://localhost:5173/ok"' in done
        again = await client.post(path.split("?")[0])
        assert "duplicate" in await again.text()
        balance = await client.get("/api/v1/credits/balance", headers=bearer(token))
        assert (await balance.json())["balance"] == packages[0]["credits"]
        # a query that is not an http(s) URL is never followed
        hostile = await client.get(path.split("?")[0] + "?success=javascript:alert(1)")
        assert "javascript:" not in await hostile.text()


def test_dev_pay_from_the_cli(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MANA_CREDITS_HOME", str(tmp_path))
    for name in ("DATABASE_URL", "STRIPE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)

    async def start() -> str:
        async with bootstrap(Settings()) as services:
            package = (await services.purchases.packages())[1]
            started = await services.purchases.start("dave", package.id)
            return started.purchase.id

    purchase_id = asyncio.run(start())
    runner = CliRunner()
    first = runner.invoke(cli, ["dev", "pay", purchase_id])
    assert first.exit_code == 0
    assert "credited" in first.output
    second = runner.invoke(cli, ["dev", "pay", purchase_id])
    assert "duplicate event" in second.output
    unknown = runner.invoke(cli, ["dev", "pay", "no-such-purchase"])
    assert unknown.exit_code == 1
    assert "error: purchase_not_found" in unknown.output
    listed = runner.invoke(cli, ["packages", "list", "--json"])
    assert len(json.loads(listed.output)) == 4


def test_library_warnings_are_json_lines_too() -> None:
    # In a child process: configuring the root logger here would take over pytest's own.
    script = (
        "import logging\n"
        "from mana_credits_http.observability import configure_logging\n"
        "configure_logging('INFO')\n"
        "logging.getLogger('psycopg').warning('connection lost')\n"
        "logging.getLogger('psycopg').info('chatter')\n"
    )
    done = run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    entry = json.loads(lines[0])
    assert (entry["logger"], entry["level"], entry["message"]) == (
        "psycopg",
        "warning",
        "connection lost",
    )
