"""A local Stripe-compatible HTTP server for the real `stripe` SDK, and webhook signing.

It serves the records of `StripeModel`: what the SDK creates (customers, PaymentIntents,
Checkout Sessions, refunds), retrieves (with `expand`) and lists (refunds and disputes
by PaymentIntent or charge, page by page), and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.test_utils import TestServer

from .stripe_model import NotFound, Refused, StripeModel

SECRET_KEY = "sk_test_fake_mana_credits"
WEBHOOK_SECRET = "whsec_test_fake_mana_credits"


def nested(form: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in form:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    result: dict[str, Any] = _lists(root)
    return result


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


ROUTES = {
    "customers": "customers",
    "payment_intents": "intents",
    "charges": "charges",
    "checkout/sessions": "sessions",
    "refunds": "refunds",
    "disputes": "disputes",
}
PATH = re.compile(r"^/v1/(checkout/sessions|[a-z_]+)(?:/([A-Za-z0-9_]+))?$")


@dataclass
class FakeStripe(StripeModel):
    """Stripe's records served over HTTP: the requests seen, and switches for failures."""

    url: str = ""
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: int | None = None  # answer every request with this status
    hang: asyncio.Event | None = None  # when set: every request waits for it (a hung API)

    def reset(self) -> None:
        super().reset()
        self.requests.clear()
        self.idempotent.clear()
        self.fail_with = None
        self.hang = None

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, request.path, key))
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if self.fail_with is not None:
            return _error(self.fail_with, "api_error", "Injected failure")
        if self.hang is not None:
            await self.hang.wait()
        matched = PATH.match(request.path)
        table = None if matched is None else ROUTES.get(matched.group(1))
        if matched is None or table is None:
            return _error(404, "invalid_request_error", "Unrecognized request URL")
        try:
            if request.method == "GET":
                query = nested(parse_qsl(request.query_string, keep_blank_values=True))
                return web.json_response(self._get(table, matched.group(2), query))
            params = nested(parse_qsl(await request.text(), keep_blank_values=True))
            if key is not None and key in self.idempotent:
                return web.json_response(self.idempotent[key])
            body = self._post(table, matched.group(2), params)
        except NotFound as exc:
            return _error(
                404, "invalid_request_error", f"No such object: {exc}", "resource_missing"
            )
        except Refused as exc:
            return _error(400, "invalid_request_error", str(exc), exc.code)
        if key is not None:
            self.idempotent[key] = body
        return web.json_response(body)

    def _get(self, table: str, object_id: str | None, query: dict[str, Any]) -> dict[str, Any]:
        objects: dict[str, dict[str, Any]] = getattr(self, table)
        if object_id is not None:
            return self.retrieve(objects, object_id, list(query.get("expand", [])))
        found = self.listed(objects, query)
        after = query.get("starting_after")
        if after is not None:
            ids = [o["id"] for o in found]
            found = found[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit", 10))
        return {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": f"/v1/{table}",
        }

    def _post(self, table: str, object_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        create = {
            "customers": self.create_customer,
            "intents": self.create_intent,
            "sessions": self.create_session,
            "refunds": self.create_refund,
        }.get(table)
        if object_id is not None or create is None:
            raise NotFound(table)
        return create(params)


def _error(status: int, kind: str, message: str, code: str | None = None) -> web.Response:
    error = {"type": kind, "message": message} | ({"code": code} if code else {})
    return web.json_response({"error": error}, status=status)


async def start_fake_stripe() -> tuple[FakeStripe, TestServer]:
    fake = FakeStripe()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    return fake, server


# Webhooks, signed with Stripe's scheme: HMAC-SHA256 over "<timestamp>.<raw body>".


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def payload(published: dict[str, Any]) -> bytes:
    """An event as Stripe posts it to the webhook endpoint."""
    return json.dumps(published).encode()


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """An event of any type about any object (for events no action publishes)."""
    published = StripeModel().publish(kind, obj)
    if event_id is not None:
        published["id"] = event_id
    return payload(published)


def paid(fake: StripeModel, intent: dict[str, Any]) -> bytes:
    """The buyer pays `intent` (one of the fake's PaymentIntents): the
    `payment_intent.succeeded` event Stripe then posts."""
    published = fake.pay(intent["id"])
    return payload(next(e for e in published if e["type"] == "payment_intent.succeeded"))
