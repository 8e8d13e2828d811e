"""A local Stripe-compatible HTTP server for the real `stripe` SDK, and webhook signing."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.test_utils import TestServer

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


@dataclass
class FakeStripe:
    """The objects created through it, the requests seen, and switches for failures."""

    url: str = ""
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: int | None = None  # answer every request with this status

    def reset(self) -> None:
        self.customers.clear()
        self.intents.clear()
        self.sessions.clear()
        self.refunds.clear()
        self.requests.clear()
        self.idempotent.clear()
        self.fail_with = None

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, request.path, key))
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if self.fail_with is not None:
            return _error(self.fail_with, "api_error", "Injected failure")
        params = nested(parse_qsl(await request.text(), keep_blank_values=True))
        if key is not None and key in self.idempotent:
            return web.json_response(self.idempotent[key])
        route = {
            "/v1/customers": self._customer,
            "/v1/payment_intents": self._intent,
            "/v1/checkout/sessions": self._session,
            "/v1/refunds": self._refund,
        }.get(request.path)
        if request.method != "POST" or route is None:
            return _error(404, "invalid_request_error", "Unrecognized request URL")
        body = route(params)
        if "error" in body:
            return web.json_response(body, status=400)
        if key is not None:
            self.idempotent[key] = body
        return web.json_response(body)

    def _customer(self, p: dict[str, Any]) -> dict[str, Any]:
        obj = {
            "id": f"cus_{uuid.uuid4().hex[:14]}",
            "object": "customer",
            "email": p.get("email"),
            "metadata": p.get("metadata", {}),
        }
        self.customers[obj["id"]] = obj
        return obj

    def _intent(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("customer") not in self.customers:
            return {"error": {"type": "invalid_request_error", "message": "No such customer"}}
        pi = f"pi_{uuid.uuid4().hex[:20]}"
        obj = {
            "id": pi,
            "object": "payment_intent",
            "amount": int(p["amount"]),
            "currency": p["currency"],
            "customer": p["customer"],
            "client_secret": f"{pi}_secret_{uuid.uuid4().hex[:10]}",
            "status": "requires_payment_method",
            "metadata": p.get("metadata", {}),
        }
        self.intents[pi] = obj
        return obj

    def _session(self, p: dict[str, Any]) -> dict[str, Any]:
        cs = f"cs_test_{uuid.uuid4().hex[:20]}"
        item = p["line_items"][0]
        obj = {
            "id": cs,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.test/c/pay/{cs}",
            "amount_total": int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
            "currency": item["price_data"]["currency"],
            "customer": p.get("customer"),
            "payment_status": "unpaid",
            "payment_intent": None,
            "metadata": p.get("metadata", {}),
            "payment_intent_data": p.get("payment_intent_data", {}),
        }
        self.sessions[cs] = obj
        return obj

    def _refund(self, p: dict[str, Any]) -> dict[str, Any]:
        """A refund of what is left of a PaymentIntent's amount (or `amount` of it)."""
        intent = self.intents.get(p.get("payment_intent", ""))
        if intent is None:
            return {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
        done = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        amount = int(p.get("amount", intent["amount"] - done))
        if amount <= 0 or done + amount > intent["amount"]:
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded",
                    "message": "Charge has already been refunded.",
                }
            }
        obj = {
            "id": f"re_{uuid.uuid4().hex[:20]}",
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "reason": p.get("reason"),
            "status": "succeeded",
            "metadata": p.get("metadata", {}),
        }
        self.refunds[obj["id"]] = obj
        return obj


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)


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


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    body = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    return json.dumps(body).encode()


def succeeded(intent: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return intent | {"status": "succeeded"} | changes


def charge(intent_id: str, amount: int, refunded: int) -> dict[str, Any]:
    return {
        "id": f"ch_{uuid.uuid4().hex[:20]}",
        "object": "charge",
        "payment_intent": intent_id,
        "amount": amount,
        "amount_refunded": refunded,
        "currency": "eur",
    }


def dispute(intent_id: str, amount: int) -> dict[str, Any]:
    return {
        "id": f"dp_{uuid.uuid4().hex[:20]}",
        "object": "dispute",
        "payment_intent": intent_id,
        "amount": amount,
        "currency": "eur",
    }
