"""The real `serve` process: links follow the port it serves, and a second SIGTERM
during shutdown is ignored with one log line, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.settings import Settings

from ..postgres import free_port
from ..processes import reap, spawn
from .test_process import CLI, EXIT, embedded_env, wait_ready


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_links_follow_the_port_served(workers: str, tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(tmp_path)  # no BASE_URL, no PORT: only --port says where
    server = await spawn(
        *CLI, "serve", "--port", str(port), "--workers", workers,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base + "/health/ready", server)
            # Minted as `dev token` does, without the port: the server still takes it.
            issuer = Settings(MANA_CREDITS_HOME=tmp_path).issuer
            token = SigningKey.load_or_create(tmp_path).mint("alice", issuer=issuer)
            async with http.get(base + "/api/v1/credits/packages") as response:
                package = (await response.json())[0]["id"]
            purchase = {
                "packageId": package,
                "successUrl": "http://localhost:5173/ok",
                "cancelUrl": "http://localhost:5173/cancel",
            }
            async with http.post(
                base + "/api/v1/credits/purchase",
                json=purchase,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 200, await response.text()
                checkout = (await response.json())["checkoutUrl"]
        assert checkout.startswith(f"http://localhost:{port}/dev/checkout/")
    finally:
        await reap(server)


@pytest.mark.parametrize("pause", [0.0, 0.02, 0.1])
async def test_a_second_sigterm_during_shutdown_is_ignored(pause: float, tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(tmp_path) | {"PORT": str(port)}
    server = await spawn(*CLI, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base + "/health/ready", server)
            for _ in range(5):  # connections in the pool, for the shutdown to close
                async with http.get(base + "/api/v1/credits/packages") as response:
                    assert response.status == 200
        server.send_signal(signal.SIGTERM)
        await asyncio.sleep(pause)
        with contextlib.suppress(ProcessLookupError):
            server.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(server.communicate(), timeout=EXIT))[0].decode()
    finally:
        await reap(server)
    assert server.returncode == 0, output
    assert "Traceback" not in output
    assert "CancelledError" not in output
    assert '"level": "error"' not in output
    assert output.count("already stopping") <= 1
