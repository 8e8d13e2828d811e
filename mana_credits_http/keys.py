"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from mana_credits_adapters.schema import SchemaGate
from mana_credits_adapters.settings import Settings
from mana_credits_core.ports import IdentityVerifier, Principal
from mana_credits_core.services import Services

from .connections import ConnectionGuard
from .metrics import Metrics
from .ratelimit import FailureLimiter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
IDENTITY = web.AppKey("identity", IdentityVerifier)
METRICS = web.AppKey("metrics", Metrics)
GIFT_LIMITER = web.AppKey("gift_limiter", FailureLimiter)
CONNECTIONS = web.AppKey("connections", ConnectionGuard)
SCHEMA = web.AppKey("schema", SchemaGate)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
