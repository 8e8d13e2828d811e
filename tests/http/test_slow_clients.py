"""Slow and greedy clients against the server as `serve` runs it (`serving`: aiohttp's
runner on a `GuardedSite`), over raw sockets on loopback: a request must arrive within
MANA_CREDITS_REQUEST_READ_TIMEOUT, one address holds at most
MANA_CREDITS_MAX_CONNECTIONS_PER_CLIENT connections, a client hanging up is no error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_http import create_app
from mana_credits_http.keys import METRICS
from mana_credits_http.metrics import Metrics
from mana_credits_http.server import serving

from .raw_http import BOUND, answer, one_response, trickle, unanswered
from .test_process import until

READ_TIMEOUT = 1.0  # seconds: the bound under test, short so the tests stay short
HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
# A route anyone may send a body to: the webhook reads it before it checks anything.
WEBHOOK = (
    b"POST /api/v1/webhooks/stripe HTTP/1.1\r\nHost: test\r\nStripe-Signature: t=1,v1=00\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)


@dataclass
class Server:
    host: str
    port: int
    metrics: Metrics

    async def connect(
        self, source: str = "127.0.0.1"
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=(source, 0)), BOUND
        )

    def closed(self, reason: str) -> float:
        return total(self.metrics.connections_closed, "reason", reason)

    def requests(self, status: str) -> float:
        return total(self.metrics.requests, "status", status)


def total(counter: Counter, label: str, value: str) -> float:
    """The sum of `counter`'s series whose `label` is `value`."""
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get(label) == value
    )


Serve = Callable[..., AbstractAsyncContextManager[Server]]


@pytest.fixture
def serve(tmp_path: Path) -> Serve:
    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[Server]:
        settings = Settings(
            MANA_CREDITS_HOME=tmp_path,
            MANA_CREDITS_REQUEST_READ_TIMEOUT=READ_TIMEOUT,
            MANA_CREDITS_BILLING_ENABLED=False,
            **overrides,
        )
        services = build_services(MemoryStore(), settings, clock=TickingClock())
        app = create_app(settings, services=services)
        async with serving(app, "127.0.0.1", 0, shutdown_timeout=1.0) as site:
            yield Server("127.0.0.1", site.port, app[METRICS])

    return serve


async def served_meanwhile(server: Server) -> bytes:
    reader, writer = await server.connect()
    writer.write(HEALTH)
    try:
        return await one_response(reader)
    finally:
        writer.close()


async def test_a_trickled_body_gets_408_and_its_connection_closed(serve: Serve) -> None:
    body = b'{"id": "' + b"x" * 70 + b'"}'
    async with serve() as server:
        reader, writer = await server.connect()
        writer.write(WEBHOOK % len(body))
        # The whole body would take 80 pauses of 0.2 s: the bound cuts it off long before.
        sending = asyncio.create_task(trickle(writer, body, 0.2))
        # Another client on another connection is served while the trickler waits.
        assert (await served_meanwhile(server)).startswith(b"HTTP/1.1 200")
        received = await answer(reader)
        sent = await asyncio.wait_for(sending, BOUND)
        writer.close()
        assert received.startswith(b"HTTP/1.1 408"), received
        assert json.loads(received.partition(b"\r\n\r\n")[2])["code"] == "request_timeout"
        assert sent < len(body)
        assert server.requests("408") == 1
        assert server.closed("request_timeout") == 1
        assert server.requests("500") == 0


async def test_trickled_headers_get_408_and_the_connection_closed(serve: Serve) -> None:
    async with serve() as server:
        reader, writer = await server.connect()
        head = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"y" * 100 + b"\r\n\r\n"
        sending = asyncio.create_task(trickle(writer, head, 0.2))
        assert (await served_meanwhile(server)).startswith(b"HTTP/1.1 200")
        received = await answer(reader)
        sent = await asyncio.wait_for(sending, BOUND)
        writer.close()
        assert received.startswith(b"HTTP/1.1 408 Request Timeout"), received
        assert b"request_timeout" in received
        assert sent < len(head)
        assert server.closed("request_timeout") == 1


async def test_a_connection_that_sends_nothing_is_closed(serve: Serve) -> None:
    async with serve() as server:
        reader, writer = await server.connect()
        assert await answer(reader) == b""  # closed without a word: nothing was asked
        writer.close()


async def test_an_idle_keep_alive_connection_is_not_a_slow_request(serve: Serve) -> None:
    """Between requests the clock stops: a client keeping its connection for the next
    request is not cut off (aiohttp's keep-alive timeout governs idle connections)."""
    async with serve() as server:
        reader, writer = await server.connect()
        writer.write(HEALTH)
        assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(READ_TIMEOUT * 2)
        writer.write(HEALTH)
        assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
        writer.close()
        assert server.closed("request_timeout") == 0


async def test_an_address_holds_at_most_its_cap_of_connections(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mana_credits")
    async with serve(MANA_CREDITS_MAX_CONNECTIONS_PER_CLIENT=3) as server:
        held = [await server.connect() for _ in range(3)]
        for reader, writer in held:  # each one accepted and working
            writer.write(HEALTH)
            assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
        for _ in range(2):
            reader, writer = await server.connect()
            writer.write(HEALTH)
            assert await unanswered(reader)
            writer.close()
        assert server.closed("too_many_connections") == 2
        warnings = [r for r in caplog.records if "connection cap" in r.getMessage()]
        assert len(warnings) == 1  # once for the episode, not once per connection
        # Another address is not affected.
        assert (await served_meanwhile_from(server, "127.0.0.2")).startswith(b"HTTP/1.1 200")
        # One of the three gone, the address may connect again.
        held[0][1].close()
        await held[0][1].wait_closed()
        assert await until(lambda: server.closed("too_many_connections") == 2, BOUND)
        assert await eventually_served(server)
        for _, writer in held[1:]:
            writer.close()


async def served_meanwhile_from(server: Server, source: str) -> bytes:
    reader, writer = await server.connect(source)
    writer.write(HEALTH)
    try:
        return await one_response(reader)
    finally:
        writer.close()


async def eventually_served(server: Server) -> bool:
    """The server sees a closed connection a moment after the client closes it."""
    for _ in range(int(BOUND / 0.1)):
        reader, writer = await server.connect()
        writer.write(HEALTH)
        try:
            if (await answer_or_response(reader)).startswith(b"HTTP/1.1 200"):
                return True
        finally:
            writer.close()
        await asyncio.sleep(0.1)
    return False


async def answer_or_response(reader: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionResetError):
        return await one_response(reader)
    return b""


@pytest.mark.parametrize(("cap", "proxies"), [(2, "127.0.0.1"), (0, "")])
async def test_a_trusted_proxy_is_not_capped_nor_anyone_without_a_cap(
    serve: Serve, cap: int, proxies: str
) -> None:
    """Every client behind a proxy reaches us on the proxy's connections: capping them
    would cap everyone at once. The proxy caps its own clients."""
    async with serve(
        MANA_CREDITS_MAX_CONNECTIONS_PER_CLIENT=cap, MANA_CREDITS_TRUSTED_PROXIES=proxies
    ) as server:
        held = [await server.connect() for _ in range(4)]
        for reader, writer in held:
            writer.write(HEALTH)
            assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
            writer.close()
        assert server.closed("too_many_connections") == 0


async def test_a_client_hanging_up_mid_body_is_logged_as_such(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serve() as server:
        _reader, writer = await server.connect()
        writer.write(WEBHOOK % 100 + b'{"id": "evt_')
        await writer.drain()
        await asyncio.sleep(0.2)  # the handler is waiting for the rest
        writer.close()
        await writer.wait_closed()
        assert await until(lambda: server.requests("499") == 1, BOUND)
        assert (await served_meanwhile(server)).startswith(b"HTTP/1.1 200")
    gone = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in gone] == [(logging.INFO, None)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert server.requests("500") == 0


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["long-header", "long-url", "nul-in-method", "bad-chunk"],
)
async def test_a_request_the_parser_refuses_is_a_400_and_one_info_line(
    serve: Serve, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    caplog.set_level(logging.INFO)
    async with serve() as server:
        reader, writer = await server.connect()
        writer.write(request_bytes)
        await writer.drain()
        answered = await asyncio.wait_for(reader.read(200), BOUND)
        writer.close()
        assert b" 400 " in answered.split(b"\r\n", 1)[0]
        assert (await served_meanwhile(server)).startswith(b"HTTP/1.1 200")
    # aiohttp logs most of these (some parsers refuse a few silently): never worse
    # than one INFO line without a traceback.
    refused = [r for r in caplog.records if "unparsable request" in r.getMessage()]
    assert {(r.levelno, r.exc_info) for r in refused} <= {(logging.INFO, None)}
    assert len(refused) <= 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
