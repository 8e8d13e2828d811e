"""Prometheus metrics, one registry per application.

Business counters listen to the core's events (`mana_credits_core.events`), which are
emitted after commit and once per thing that happened, so they count what happened
whatever triggered it: a request, a webhook, or a background job of this process.
Every counter is per process: see docs/operations.md for scraping several workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from mana_credits_core.events import Event, EventKind

PURCHASE_EVENTS = {
    EventKind.PURCHASE_CREATED: "created",
    EventKind.PURCHASE_COMPLETED: "completed",
    EventKind.PURCHASE_FAILED: "failed",
    EventKind.PURCHASE_CLAWED_BACK: "clawed_back",
    EventKind.PURCHASE_REINSTATED: "reinstated",
}
GIFT_EVENTS = {
    EventKind.GIFT_CREATED: "created",
    EventKind.GIFT_REDEEMED: "redeemed",
    EventKind.GIFT_CANCELLED: "cancelled",
    EventKind.GIFT_EXPIRED: "expired",
}
SYNC_EVENTS = {
    EventKind.SYNC_ACTIVATED: "activated",
    EventKind.SYNC_CHARGED: "charged",
    EventKind.SYNC_PAUSED: "paused",
    EventKind.SYNC_GIFTED: "gifted",
}


class Metrics:
    def __init__(self) -> None:
        # No `*_created` timestamp series: `mana_credits_purchases_created` would read
        # as a count of created purchases beside our `event="created"` label. The switch
        # is the library's, process-wide.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds, start time...
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)  # python_info
        self.requests = Counter(
            "mana_credits_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mana_credits_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "mana_credits_http_connections_closed",
            "Connections closed by the server: too_many_connections (refused, the client "
            "held its cap) and request_timeout (a request not received in time).",
            ["reason"],
            registry=self.registry,
        )
        self.debits = Counter("mana_credits_debits", "Debits applied.", registry=self.registry)
        self.insufficient = Counter(
            "mana_credits_insufficient_credits",
            "Debits and holds refused for insufficient credits.",
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "mana_credits_db_pool_in_use",
            "Database connections checked out of the pool.",
            registry=self.registry,
        )
        self.purchases = Counter(
            "mana_credits_purchases",
            "Purchases created, completed (credited), failed, clawed back "
            "(refund or dispute; each clawback counts once) and reinstated "
            "(clawed-back credits given back: a refund failed, a dispute was won).",
            ["event"],
            registry=self.registry,
        )
        self.purchase_credits = Counter(
            "mana_credits_purchase_credits",
            "Credits of those purchases; for clawed_back, the credits taken back; for "
            "reinstated, the credits given back.",
            ["event"],
            registry=self.registry,
        )
        self.purchase_euro_cents = Counter(
            "mana_credits_purchase_euro_cents",
            "Prices of purchases created, completed (paid) and failed, in euro cents.",
            ["event"],
            registry=self.registry,
        )
        self.grants = Counter(
            "mana_credits_grants",
            "Grants applied: operator grants and rewards (each reference once).",
            registry=self.registry,
        )
        self.granted_credits = Counter(
            "mana_credits_granted_credits",
            "Credits granted by operators and as rewards.",
            registry=self.registry,
        )
        self.gifts = Counter(
            "mana_credits_gifts",
            "Gift codes created, redeemed, cancelled and expired.",
            ["event"],
            registry=self.registry,
        )
        self.gift_credits = Counter(
            "mana_credits_gift_credits",
            "Credits of those gifts (moved into the gift, to the redeemer, or back).",
            ["event"],
            registry=self.registry,
        )
        self.sync = Counter(
            "mana_credits_sync",
            "Cloud Sync activations, periods charged (at activation or by the billing "
            "run), pauses for lack of credits, and admin gifts.",
            ["event"],
            registry=self.registry,
        )
        # Every series exists from the start, so rate() sees the first increment.
        for name in PURCHASE_EVENTS.values():
            self.purchases.labels(name)
            self.purchase_credits.labels(name)
            if name not in ("clawed_back", "reinstated"):
                self.purchase_euro_cents.labels(name)
        for name in GIFT_EVENTS.values():
            self.gifts.labels(name)
            self.gift_credits.labels(name)
        for name in SYNC_EVENTS.values():
            self.sync.labels(name)
        for reason in ("too_many_connections", "request_timeout"):
            self.connections_closed.labels(reason)
        # The series of each route, method and status met so far: `labels()` checks and
        # converts its arguments and takes a lock on every call; a dict look-up does not.
        # As many entries as the series themselves, which route templates keep bounded.
        self._request_series: dict[tuple[str, str, int], Any] = {}
        self._latency_series: dict[str, Any] = {}

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (seconds) under its route template."""
        series = self._request_series.get((route, method, status))
        if series is None:
            series = self.requests.labels(route, method, str(status))
            self._request_series[(route, method, status)] = series
        series.inc()
        latency = self._latency_series.get(route)
        if latency is None:
            latency = self._latency_series[route] = self.latency.labels(route)
        latency.observe(seconds)

    def watch_pool(self, in_use: Callable[[], float]) -> None:
        self.pool_in_use.set_function(in_use)

    def observe(self, event: Event) -> None:
        """Count one of the core's events (a listener for `Services.events`)."""
        if event.kind in PURCHASE_EVENTS:
            name = PURCHASE_EVENTS[event.kind]
            self.purchases.labels(name).inc()
            self.purchase_credits.labels(name).inc(event.credits)
            if name not in ("clawed_back", "reinstated"):
                self.purchase_euro_cents.labels(name).inc(event.euro_cents)
        elif event.kind in GIFT_EVENTS:
            name = GIFT_EVENTS[event.kind]
            self.gifts.labels(name).inc()
            self.gift_credits.labels(name).inc(event.credits)
        elif event.kind in SYNC_EVENTS:
            self.sync.labels(SYNC_EVENTS[event.kind]).inc()
        elif event.kind == EventKind.GRANT:
            self.grants.inc()
            self.granted_credits.inc(event.credits)

    def render(self) -> bytes:
        return generate_latest(self.registry)
