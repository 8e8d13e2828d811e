"""Credentials and hostile input: the safe answer every time, nothing changed."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_core import TransactionType
from mana_credits_core.services import Services

from .conftest import ORIGIN, SERVICE_KEYS, Jwks, b64, bearer, service

Client = TestClient[web.Request, web.Application]
BALANCE = "/api/v1/credits/balance"


def claims(jwks: Jwks, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "iss": jwks.url, "aud": "mana", "exp": now + 600, "iat": now}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def sign(jwks: Jwks, payload: dict[str, Any], kid: str | None = None) -> str:
    private = jwks.key._private
    return jwt.encode(payload, private, algorithm="EdDSA", headers={"kid": kid or jwks.key.kid})


async def status_of(client: Client, token: str) -> int:
    response = await client.get(BALANCE, headers=bearer(token))
    if response.status == 401:
        body = await response.json()
        assert body["statusCode"] == 401
        assert body["code"] == "unauthenticated"
    return response.status


async def test_a_good_token_works(client: Client, jwks: Jwks) -> None:
    assert await status_of(client, sign(jwks, claims(jwks))) == 200


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer not.a.jwt", "Bearer " + "a" * 8100],
)
async def test_missing_or_malformed_authorization(client: Client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.get(BALANCE, headers=headers)
    assert response.status == 401
    assert (await response.json())["message"] in (
        "Missing or invalid Authorization header",
        "Invalid or expired token",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "other"},
        {"iss": "https://evil.example"},
        {"exp": None},
        {"sub": None},
        {"sub": ""},
        {"sub": "a" * 256},
        {"sub": "ali\nce"},
        {"sub": "ali\x00ce"},
        {"sub": "ali\ud800ce"},
        {"sub": "alice\x85"},
        {"sub": 42},
        {"aud": None},
        {"exp": str(int(time.time()) + 600)},
        {"exp": True},
        {"nbf": str(int(time.time()) - 60)},
        {"iat": "yesterday"},
    ],
    ids=[
        "expired",
        "aud",
        "iss",
        "no-exp",
        "no-sub",
        "empty-sub",
        "long-sub",
        "newline-sub",
        "nul-sub",
        "surrogate-sub",
        "c1-sub",
        "number-sub",
        "no-aud",
        "string-exp",
        "bool-exp",
        "string-nbf",
        "string-iat",
    ],
)
async def test_bad_claims_are_refused(client: Client, jwks: Jwks, change: dict[str, Any]) -> None:
    assert await status_of(client, sign(jwks, claims(jwks, **change))) == 401


async def test_alg_none_is_refused(client: Client, jwks: Jwks) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': jwks.key.kid})}.{b64(claims(jwks))}."
    assert await status_of(client, token) == 401


async def test_hs256_keyed_with_the_public_key_is_refused(client: Client, jwks: Jwks) -> None:
    import hashlib
    import hmac

    header = b64({"alg": "HS256", "typ": "JWT", "kid": jwks.key.kid})
    payload = b64(claims(jwks))
    secret = jwks.key.public_x.encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    import base64

    token = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    assert await status_of(client, token) == 401


async def test_tampered_signature_and_payload_are_refused(client: Client, jwks: Jwks) -> None:
    token = sign(jwks, claims(jwks))
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert await status_of(client, f"{head}.{payload}.{flipped}") == 401
    forged = b64(claims(jwks, sub="mallory"))
    assert await status_of(client, f"{head}.{forged}.{signature}") == 401


async def test_a_token_from_another_key_is_refused(client: Client, jwks: Jwks) -> None:
    stranger = SigningKey.generate()
    token = stranger.mint("alice", issuer=jwks.url)
    assert await status_of(client, token) == 401


async def test_unknown_kids_refetch_at_most_once_per_cooldown(client: Client, jwks: Jwks) -> None:
    assert await status_of(client, sign(jwks, claims(jwks))) == 200
    fetched = jwks.fetches
    for kid in ("hostile-1", "../../etc/passwd", "http://evil.example/jwks", "x" * 300):
        assert await status_of(client, sign(jwks, claims(jwks), kid=kid)) == 401
    assert jwks.fetches - fetched <= 1


async def test_every_key_of_the_jwks_is_accepted(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    # The JWKS may hold several keys (during a rotation): any of them verifies.
    rotated = SigningKey.generate()
    jwks.extra_keys.append(rotated.jwks()["keys"][0])
    token = rotated.mint("alice", issuer=jwks.url)
    assert await status_of(client, token) == 200


async def test_cached_keys_keep_working_while_jwks_is_down(client: Client, jwks: Jwks) -> None:
    assert await status_of(client, sign(jwks, claims(jwks))) == 200
    jwks.down = True
    assert await status_of(client, sign(jwks, claims(jwks, sub="bob"))) == 200
    assert await status_of(client, sign(jwks, claims(jwks), kid="unknown")) == 401


async def test_admin_routes_need_the_admin_role(client: Client, jwks: Jwks) -> None:
    user = await client.get("/api/v1/admin/sync/alice", headers=bearer(jwks.token()))
    assert user.status == 403
    assert await user.json() == {"error": "Forbidden", "message": "Admin access required"}
    anonymous = await client.get("/api/v1/admin/sync/alice")
    assert anonymous.status == 401
    admin = await client.get("/api/v1/admin/sync/alice", headers=bearer(jwks.token(role="admin")))
    assert admin.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Service-Key": ""},
        {"X-Service-Key": "wrong"},
        {"X-Service-Key": SERVICE_KEYS[0] + "x"},
        {"X-Service-Key": SERVICE_KEYS[0][:-1]},
        {"X-Service-Key": "Bearer " + SERVICE_KEYS[0]},
    ],
)
async def test_bad_service_keys_are_401(client: Client, headers: dict[str, str]) -> None:
    response = await client.get("/api/v1/internal/credits/balance/alice", headers=headers)
    assert response.status == 401
    assert (await response.json())["message"] == "Invalid or missing service key"


async def test_non_ascii_service_key_is_401(client: Client) -> None:
    response = await client.get(
        "/api/v1/internal/credits/balance/alice",
        headers={"X-Service-Key": "schlüssel".encode().decode("latin-1")},
    )
    assert response.status == 401


async def test_every_configured_service_key_is_accepted(client: Client) -> None:
    for key in SERVICE_KEYS:
        response = await client.get("/api/v1/internal/credits/balance/a", headers=service(key=key))
        assert response.status == 200


async def test_each_route_family_takes_only_its_own_credential(client: Client, jwks: Jwks) -> None:
    internal = await client.get(
        "/api/v1/internal/credits/balance/alice", headers=bearer(jwks.token())
    )
    assert internal.status == 401
    personal = await client.get(BALANCE, headers=service())
    assert personal.status == 401


BAD_BODIES: list[tuple[str, bytes]] = [
    ("zero", b'{"amount": 0, "appId": "a", "description": "d"}'),
    ("negative", b'{"amount": -5, "appId": "a", "description": "d"}'),
    ("fraction", b'{"amount": 1.5, "appId": "a", "description": "d"}'),
    ("string", b'{"amount": "10", "appId": "a", "description": "d"}'),
    ("bool", b'{"amount": true, "appId": "a", "description": "d"}'),
    ("null", b'{"amount": null, "appId": "a", "description": "d"}'),
    ("nan", b'{"amount": NaN, "appId": "a", "description": "d"}'),
    ("infinity", b'{"amount": Infinity, "appId": "a", "description": "d"}'),
    ("1e400", b'{"amount": 1e400, "appId": "a", "description": "d"}'),
    ("2**63", b'{"amount": 9223372036854775808, "appId": "a", "description": "d"}'),
    ("5000 digits", b'{"amount": ' + b"9" * 5000 + b', "appId": "a", "description": "d"}'),
    ("list", b'{"amount": [10], "appId": "a", "description": "d"}'),
    ("missing", b'{"appId": "a", "description": "d"}'),
    ("duplicate key", b'{"amount": 1, "amount": 2, "appId": "a", "description": "d"}'),
    ("malformed", b'{"amount": 1,'),
    ("not an object", b"[1, 2]"),
    ("empty", b""),
    ("nul in text", b'{"amount": 1, "appId": "a", "description": "x\\u0000y"}'),
    ("control char", b'{"amount": 1, "appId": "a", "description": "x\\u0007y"}'),
    ("empty app", b'{"amount": 1, "appId": "", "description": "d"}'),
    ("long text", b'{"amount": 1, "appId": "a", "description": "' + b"x" * 600 + b'"}'),
    ("metadata list", b'{"amount": 1, "appId": "a", "description": "d", "metadata": [1]}'),
    ("invalid utf-8", b'{"amount": 1, "appId": "\xff", "description": "d"}'),
]


@pytest.mark.parametrize(("name", "raw"), BAD_BODIES, ids=[n for n, _ in BAD_BODIES])
async def test_bad_bodies_are_400_and_change_nothing(
    client: Client, jwks: Jwks, app_services: Services, name: str, raw: bytes
) -> None:
    await app_services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    response = await client.post(
        "/api/v1/credits/use",
        data=raw,
        headers=bearer(jwks.token()) | {"Content-Type": "application/json"},
    )
    assert response.status == 400, name
    body = await response.json()
    assert (body["statusCode"], body["code"]) == (400, "invalid_input")
    assert (await app_services.credits.balance("alice")).balance == 100


async def test_wrong_content_type_and_huge_bodies(client: Client, jwks: Jwks) -> None:
    form = await client.post(
        "/api/v1/credits/use",
        data="amount=1",
        headers=bearer(jwks.token()) | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 400
    huge = await client.post(
        "/api/v1/credits/use",
        data=b'{"amount": 1, "appId": "a", "description": "' + b"x" * 100_000 + b'"}',
        headers=bearer(jwks.token()) | {"Content-Type": "application/json"},
    )
    assert huge.status == 413
    assert (await huge.json())["statusCode"] == 413


async def test_malformed_path_ids_are_client_errors(client: Client) -> None:
    response = await client.get("/api/v1/internal/credits/balance/%00bad", headers=service())
    assert response.status == 400


async def test_unknown_routes_and_methods(client: Client) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status == 404
    assert (await missing.json())["statusCode"] == 404
    wrong = await client.delete("/api/v1/credits/balance")
    assert wrong.status == 405
    assert (await wrong.json())["statusCode"] == 405


async def test_sync_routes_check_their_credentials(client: Client, jwks: Jwks) -> None:
    assert (await client.get("/api/v1/sync/status")).status == 401
    assert (await client.get("/api/v1/sync/status", headers=service())).status == 401
    assert (await client.get("/api/v1/sync/status", headers=bearer(jwks.token()))).status == 200
    charge = "/api/v1/internal/sync/charge-recurring"
    assert (await client.post(charge)).status == 401
    assert (await client.post(charge, headers=bearer(jwks.token(role="admin")))).status == 401
    assert (await client.post(charge, headers=service())).status == 200


async def test_cors_for_configured_origins_only(client: Client) -> None:
    preflight = await client.options(
        BALANCE,
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    plain = await client.get("/health", headers={"Origin": ORIGIN})
    assert plain.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = await client.options(
        BALANCE,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert await refused.json() == {
        "statusCode": 403,
        "message": "Origin not allowed (CORS_ORIGINS)",
        "code": "forbidden",
    }


def test_ed25519_helper_keys_are_real() -> None:
    # The test key is a real Ed25519 key, not a stand-in.
    key = SigningKey.generate()
    pem = key._private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert isinstance(serialization.load_pem_private_key(pem, None), Ed25519PrivateKey)


async def test_key_location_headers_in_a_token_are_never_fetched(
    client: Client, jwks: Jwks
) -> None:
    # jku / x5u / x5c name where to get the key: an attacker's server here. Only the
    # configured JWKS is ever asked.
    visits: list[str] = []

    async def trap(request: web.Request) -> web.Response:
        visits.append(request.path)
        return web.json_response(jwks.key.jwks())

    app = web.Application()
    app.router.add_get("/{tail:.*}", trap)
    evil = TestServer(app, host="127.0.0.1")
    await evil.start_server()
    try:
        where = {"jku": str(evil.make_url("/jwks")), "x5u": str(evil.make_url("/cert"))}
        payload = claims(jwks)
        private = jwks.key._private
        good = jwt.encode(payload, private, algorithm="EdDSA",
                          headers={"kid": jwks.key.kid, **where})  # fmt: skip
        assert await status_of(client, good) == 200  # the headers are ignored
        stranger = SigningKey.generate()
        forged = jwt.encode(payload, stranger._private, algorithm="EdDSA",
                            headers={"kid": "attacker", **where})  # fmt: skip
        assert await status_of(client, forged) == 401
        assert visits == []
    finally:
        await evil.close()
