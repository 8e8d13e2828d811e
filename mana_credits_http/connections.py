"""What a client may hold of the server: how long its request may take to arrive, and how
many connections it may keep open at once.

aiohttp bounds idle keep-alive connections (`keepalive_timeout`) and body sizes
(`client_max_size`) but has no bound on the time a request takes to arrive: a client
sending one byte every few seconds holds its connection, and the handler waiting for its
body, forever. `ConnectionGuard` wraps each of aiohttp's connection protocols
(`GuardedSite` listens with it) and together with the `receive` middleware
(`mana_credits_http/receive.py`) gives every request `request_timeout` seconds from its
first byte (or from the connection's opening, for the first request) until its last body
byte: headers not complete by then get a 408 and the connection is closed; a body not
complete by then gets a 408 from the middleware. The time a handler takes is not
counted: that is the server's own work, not the client's.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from mana_credits_adapters.networks import Network

from .jsonout import dumps
from .metrics import Metrics
from .ratelimit import client_key, trusted_proxy

log = logging.getLogger("mana_credits.http")

TIMED_OUT = "Request not received in time"
_TIMEOUT_BODY = dumps({"statusCode": 408, "message": TIMED_OUT, "code": "request_timeout"})
# Sent when the headers did not arrive in time, before aiohttp has a request to answer.
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class Phase(enum.Enum):
    RECEIVING = "receiving"  # headers on their way: the guard's own timer runs
    BODY = "body"  # the `receive` middleware reads the body, under the same deadline
    HANDLING = "handling"  # received whole; the handler runs (no client clock)
    IDLE = "idle"  # answered; the next byte starts the next request's clock
    EXPIRED = "expired"  # answered 408 for a late body: closed at the client's next byte


class ConnectionGuard:
    """Per-process bookkeeping of open connections, shared by all of an app's sites.

    `request_timeout`: seconds a request may take to arrive, headers and body.
    `max_per_client`: connections one client address may hold at once (an IPv6 address
    counts as its /64, as for the gift-guessing limit); 0 for no cap. Connections from
    `trusted_proxies` are not capped: a proxy carries every client's requests, so only
    the proxy can tell its clients apart and cap them.
    """

    def __init__(
        self,
        request_timeout: float,
        max_per_client: int,
        trusted_proxies: Sequence[Network],
        metrics: Metrics | None = None,
    ) -> None:
        self.request_timeout = request_timeout
        self.max_per_client = max_per_client
        self.trusted_proxies = trusted_proxies
        self._metrics = metrics
        self._open: Counter[str] = Counter()
        self._refusing: set[str] = set()  # clients at the cap, already logged
        self._protocols: dict[object, GuardedProtocol] = {}

    def protocol_factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], Any]:
        """A protocol factory for `loop.create_server`, wrapping `make`'s protocols (an
        aiohttp `web.Server`, called for each accepted connection)."""
        return lambda: GuardedProtocol(self, make)

    def body_deadline(self, request: web.BaseRequest) -> float:
        """The loop time by which `request`'s body must be in; the guard's timer stops
        and the caller enforces it. Without a guarded connection (a test server, or a
        request that waited behind another on its connection): `request_timeout` from
        now."""
        guarded = self._protocols.get(request.protocol)
        deadline = guarded.start_body() if guarded is not None else None
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.request_timeout
        return deadline

    def body_received(self, request: web.BaseRequest) -> None:
        guarded = self._protocols.get(request.protocol)
        if guarded is not None:
            guarded.phase = Phase.HANDLING

    def body_timed_out(self, request: web.BaseRequest) -> None:
        """After a 408 for a late body: the connection closes at the client's next byte
        (or when aiohttp's lingering read of the rest gives up)."""
        self.count("request_timeout")
        guarded = self._protocols.get(request.protocol)
        if guarded is not None:
            guarded.phase = Phase.EXPIRED

    def answered(self, request: web.BaseRequest) -> None:
        """A response to `request` is going out: the client's next byte is a new request."""
        guarded = self._protocols.get(request.protocol)
        if guarded is not None:
            guarded.answered()

    def count(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.connections_closed.labels(reason).inc()

    def capped(self, peer: str | None) -> str | None:
        """Whom a connection from address `peer` counts against: None when there is no
        cap or `peer` is a trusted proxy."""
        if not self.max_per_client or trusted_proxy(peer, self.trusted_proxies):
            return None
        return client_key(peer, (), ())

    def admit(self, client: str) -> bool:
        """Count a new connection of `client` unless it is at the cap (False)."""
        if self._open[client] >= self.max_per_client:
            self.count("too_many_connections")
            if client not in self._refusing:  # once per episode, not once per connection
                self._refusing.add(client)
                log.warning(
                    "client at its connection cap: further connections are closed",
                    extra={"fields": {"client": client, "cap": self.max_per_client}},
                )
            return False
        self._open[client] += 1
        return True

    def release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]
        if self._open[client] < self.max_per_client:
            self._refusing.discard(client)

    def register(self, inner: object, guarded: GuardedProtocol) -> None:
        self._protocols[inner] = guarded

    def unregister(self, inner: object) -> None:
        self._protocols.pop(inner, None)


class GuardedProtocol(asyncio.Protocol):
    """One connection: aiohttp's protocol behind the cap and the request clock."""

    def __init__(self, guard: ConnectionGuard, make: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._client: str | None = None  # counted against the cap
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._bytes_seen = False  # of the request being received
        self._peer = "unknown"
        self.phase = Phase.RECEIVING

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peername = transport.get_extra_info("peername")
        host = peername[0] if isinstance(peername, tuple) and peername else None
        self._peer = str(host) if host is not None else "unknown"
        client = self._guard.capped(host)
        if client is not None and not self._guard.admit(client):
            transport.close()  # nothing read, nothing answered: the client sees it closed
            return
        self._client, self._transport = client, transport
        self._inner = self._make()
        self._guard.register(self._inner, self)
        self._inner.connection_made(transport)
        # A new connection must bring its first request within the bound; a client that
        # connects and sends nothing would otherwise hold it for `keepalive_timeout`.
        self._start_clock()

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self.phase is Phase.EXPIRED:
            if self._transport is not None:
                self._transport.close()
            return
        if self.phase is Phase.IDLE:
            self._start_clock()
        if self.phase is Phase.RECEIVING:
            self._bytes_seen = True
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        if self._inner is None:
            return  # refused: never counted, never handed on
        if self._client is not None:
            self._guard.release(self._client)
        self._guard.unregister(self._inner)
        self._inner.connection_lost(exc)

    def start_body(self) -> float | None:
        """The middleware takes over the clock of the request being received."""
        # A request that waited behind another on its connection had no clock of its own.
        deadline = self._deadline if self.phase is Phase.RECEIVING else None
        self._stop_clock()
        self.phase = Phase.BODY
        return deadline

    def answered(self) -> None:
        if self.phase is not Phase.EXPIRED:
            self._stop_clock()
            self.phase = Phase.IDLE

    def _start_clock(self) -> None:
        loop = asyncio.get_running_loop()
        self.phase = Phase.RECEIVING
        self._bytes_seen = False
        self._deadline = loop.time() + self._guard.request_timeout
        self._stop_clock()
        self._timer = loop.call_at(self._deadline, self._expire)

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if self.phase is not Phase.RECEIVING or transport is None or transport.is_closing():
            return
        self.phase = Phase.EXPIRED
        if self._bytes_seen:
            # Part of a request came, not all of it: say why before closing.
            self._guard.count("request_timeout")
            log.info(
                "request not received in time: connection closed",
                extra={
                    "fields": {
                        "client": self._peer,
                        "part": "headers",
                        "seconds": self._guard.request_timeout,
                    }
                },
            )
            transport.write(TIMEOUT_RESPONSE)
        transport.close()  # buffered bytes are sent first


class GuardedSite(web.BaseSite):
    """A TCP site, as aiohttp's `TCPSite`, whose connections pass through `guard`."""

    __slots__ = ("_bound_port", "_guard", "_host", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._guard = guard
        self._host = host
        self._port = port
        self._bound_port: int | None = None
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        """The port listened on (the one picked when 0 was asked for, once started)."""
        return self._bound_port if self._bound_port is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() comes first"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
