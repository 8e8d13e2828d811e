"""Prometheus metrics, one registry per application."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def watch_pool(self, in_use: Callable[[], float]) -> None:
        self.pool_in_use.set_function(in_use)

    def render(self) -> bytes:
        return generate_latest(self.registry)
