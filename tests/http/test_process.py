"""The real `mana-credits serve` process: starts on the embedded default, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings

from ..postgres import free_port


async def test_serve_embedded_default_then_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MANA_AUTH_URL")}
    env |= {"MANA_CREDITS_HOME": str(tmp_path), "PORT": str(port), "MANA_SERVICE_KEY": ""}
    cli = [sys.executable, "-m", "mana_credits_cli"]
    server = await asyncio.create_subprocess_exec(
        *cli, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(base + "/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            minting = await asyncio.create_subprocess_exec(
                *cli, "dev", "token", "--user", "alice", env=env, stdout=subprocess.PIPE
            )
            token = (await minting.communicate())[0].decode().strip()
            assert minting.returncode == 0
            headers = {"X-Service-Key": "dev-service-key"}
            grant = {"userId": "alice", "amount": 50, "description": "welcome"}
            async with http.post(
                base + "/api/v1/internal/credits/refund", json=grant, headers=headers
            ) as response:
                assert response.status == 200
            use = {"amount": 20, "appId": "chat", "description": "hello", "idempotencyKey": "k"}
            async with http.post(
                base + "/api/v1/credits/use",
                json=use,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["newBalance"]["balance"] == 30
        server.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(server.communicate(), timeout=20))[0].decode()
        assert server.returncode == 0, output
        assert "embedded default" in output
    finally:
        if server.returncode is None:
            server.kill()
            await server.communicate()
    settings = Settings(MANA_CREDITS_HOME=tmp_path)
    async with bootstrap(settings) as services:
        assert (await services.credits.balance("alice")).balance == 30
        assert (await services.reconcile.run()).ok


async def test_serve_with_two_workers_shares_one_port(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MANA_AUTH_URL")}
    env |= {"MANA_CREDITS_HOME": str(tmp_path), "MANA_SERVICE_KEY": ""}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mana_credits_cli", "serve", "--port", str(port), "--workers", "2",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        ok = 0
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(base + "/api/v1/credits/packages") as response:
                        ok += response.status == 200
                        if ok >= 20:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        assert ok >= 20
        server.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(server.communicate(), timeout=30))[0].decode()
        assert server.returncode == 0, output
        assert "Traceback" not in output
    finally:
        if server.returncode is None:
            server.kill()
            await server.communicate()
    async with bootstrap(Settings(MANA_CREDITS_HOME=tmp_path)) as services:
        # Prepared once before the workers started: one catalogue, not one per worker.
        assert len(await services.purchases.packages()) == 4
