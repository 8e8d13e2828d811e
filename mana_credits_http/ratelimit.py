"""Failed-attempt limits per client, against guessing gift codes."""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from mana_credits_adapters.networks import Network
from mana_credits_core.errors import RateLimited

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str | None) -> Address | None:
    """An address as peers and proxies write it: bare, `[v6]:port` or `v4:port`."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def trusted_proxy(peer: str | None, proxies: Sequence[Network]) -> bool:
    """Whether the connection's address `peer` is one of `proxies`."""
    address = _address(peer)
    return address is not None and _trusted(address, proxies)


def client_key(peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """Whom a request's failures count against.

    `peer` is the connection's address, `forwarded_for` the X-Forwarded-For header
    values in order. The header is believed only when the peer is one of `proxies`:
    then the client is the rightmost address in it that is not a trusted proxy (each
    proxy appends the address it received from, so entries to the left of that one
    may be forged by the client). An IPv6 client counts as its /64, the block one
    subscriber usually holds, so hopping between its addresses gains no guesses.
    """
    client = _address(peer)
    if client is None:
        return peer or "unknown"
    if proxies and _trusted(client, proxies):
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # nothing a trusted proxy wrote: keep the last address it vouched for
            client = address
            if not _trusted(address, proxies):
                break
    if isinstance(client, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((client, 64), strict=False))
    return str(client)


class FailureLimiter:
    """At most `allowed` failures per client in a sliding `window` (seconds).

    Only failures count, so honest users are never slowed; a client over the limit
    is refused before the lookup runs, whatever the code (a valid answer would let the
    guessing go on: a hit would show itself). Kept per process: with N processes a client
    gets at most N * `allowed` guesses per window, which docs/gifts.md accounts for.
    """

    def __init__(
        self,
        allowed: int,
        window: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.allowed = allowed
        self.window = window
        self._monotonic = monotonic
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        seen = self._recent(client)
        if seen is not None and len(seen) >= self.allowed:
            raise RateLimited()

    def failed(self, client: str) -> None:
        if len(self._failures) >= self._max_clients:
            self._failures.pop(next(iter(self._failures)))  # forget the oldest client
        self._failures.setdefault(client, deque()).append(self._monotonic())

    def _recent(self, client: str) -> deque[float] | None:
        seen = self._failures.get(client)
        if seen is None:
            return None
        cutoff = self._monotonic() - self.window
        while seen and seen[0] <= cutoff:
            seen.popleft()
        if not seen:
            del self._failures[client]
            return None
        return seen
