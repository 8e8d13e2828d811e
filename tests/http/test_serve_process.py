"""The real `serve` process: links follow the port it serves, and a second SIGTERM
during shutdown is ignored with one log line, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.settings import Settings

from ..postgres import free_port
from ..processes import reap, spawn
from .raw_http import trickle, unanswered
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


async def test_slow_greedy_and_vanishing_clients(tmp_path: Path) -> None:
    """`serve` itself: a trickled request is cut off at MANA_CREDITS_REQUEST_READ_TIMEOUT
    while others are served, connections over MANA_CREDITS_MAX_CONNECTIONS_PER_CLIENT are
    closed, and a client hanging up mid-body is one INFO line, no error."""
    port = free_port()
    env = embedded_env(tmp_path) | {
        "PORT": str(port),
        "MANA_CREDITS_REQUEST_READ_TIMEOUT": "1",
        "MANA_CREDITS_MAX_CONNECTIONS_PER_CLIENT": "3",
    }
    server = await spawn(*CLI, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, f"http://127.0.0.1:{port}/health", server)
        open_ = functools.partial(asyncio.open_connection, "127.0.0.1", port)
        webhook = (
            b"POST /api/v1/webhooks/stripe HTTP/1.1\r\nHost: test\r\nStripe-Signature: t=1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        # A trickler: it would need 100 pauses of 0.2 s, and is cut off at the bound.
        reader, writer = await asyncio.wait_for(open_(), EXIT)
        writer.write(webhook)
        sending = asyncio.create_task(trickle(writer, b"x" * 100, 0.2))
        other_reader, other_writer = await asyncio.wait_for(open_(), EXIT)
        other_writer.write(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (await asyncio.wait_for(other_reader.read(12), EXIT)) == b"HTTP/1.1 200"
        other_writer.close()
        assert (await asyncio.wait_for(reader.read(), EXIT)).startswith(b"HTTP/1.1 408")
        assert await asyncio.wait_for(sending, EXIT) < 100
        writer.close()
        # A client hanging up mid-body.
        reader, writer = await asyncio.wait_for(open_(), EXIT)
        writer.write(webhook + b'{"id"')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        # Three connections held; a fourth is closed unanswered.
        held = [await asyncio.wait_for(open_(), EXIT) for _ in range(3)]
        await asyncio.sleep(0.5)  # the closed ones above are gone from the count by then
        extra_reader, extra_writer = await asyncio.wait_for(open_(), EXIT)
        extra_writer.write(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert await unanswered(extra_reader, EXIT)
        extra_writer.close()
        for _, held_writer in held:
            held_writer.close()
        server.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(server.communicate(), timeout=EXIT))[0].decode()
    finally:
        await reap(server)
    assert server.returncode == 0, output
    assert "request not received in time" in output
    assert "connection cap" in output
    gone = [line for line in output.splitlines() if "client disconnected" in line]
    assert len(gone) == 1, output
    assert '"level": "info"' in gone[0]
    assert '"status": 500' not in output
    assert '"level": "error"' not in output
    assert "Traceback" not in output
