"""Failed-attempt limits per client, against guessing gift codes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from mana_credits_core.errors import RateLimited


class FailureLimiter:
    """At most `allowed` failures per client in a sliding `window` (seconds).

    Only failures count, so honest users are never slowed; a client over the limit
    is refused before the lookup runs. Kept per process: with N processes a client
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
