"""A token's `iss` must be exactly the issuer: never a part of it, never more, whatever
the PyJWT release installed (2.10.0 took any part of the issuer: CVE-2024-53861)."""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from packaging.requirements import Requirement

from .conftest import Jwks, bearer
from .deep_json import deep_arrays

Client = TestClient[web.Request, web.Application]
BALANCE = "/api/v1/credits/balance"
ROOT = Path(__file__).resolve().parents[2]


def pyjwt_2_10_0_issuer_check(self: Any, payload: dict[str, Any], issuer: Any) -> None:
    """`PyJWT._validate_iss` as 2.10.0 shipped it: a string issuer was tested with `in`,
    so any part of it passed."""
    if issuer is None:
        return
    if "iss" not in payload:
        raise jwt.MissingRequiredClaimError("iss")
    if payload["iss"] not in issuer:
        raise jwt.InvalidIssuerError("Invalid issuer")


# Ways to be close to the issuer `http://127.0.0.1:<port>` without being it.
NEAR_MISSES: dict[str, Callable[[str], str]] = {
    "empty": lambda url: "",
    "prefix": lambda url: url[:-1],
    "scheme-only": lambda url: url[:4],
    "suffix": lambda url: url[len("http://") :],
    "inner-part": lambda url: url[3:-2],
    "plus-path": lambda url: url + "/",
    "plus-host": lambda url: url + ".evil.example",
    "other-case": lambda url: url.upper(),
}


@pytest.fixture(params=["installed", "2.10.0"])
def pyjwt_release(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The installed PyJWT, then the same with 2.10.0's issuer check."""
    if request.param == "2.10.0":
        monkeypatch.setattr(jwt.api_jwt.PyJWT, "_validate_iss", pyjwt_2_10_0_issuer_check)
    return str(request.param)


@pytest.mark.parametrize("near_miss", sorted(NEAR_MISSES))
async def test_an_issuer_that_is_not_exactly_ours_is_refused(
    client: Client, jwks: Jwks, pyjwt_release: str, near_miss: str
) -> None:
    token = jwks.token(issuer=NEAR_MISSES[near_miss](jwks.url))
    response = await client.get(BALANCE, headers=bearer(token))
    assert response.status == 401
    body = await response.json()
    assert (body["code"], body["message"]) == ("unauthenticated", "Invalid or expired token")


async def test_our_issuer_is_accepted(client: Client, jwks: Jwks, pyjwt_release: str) -> None:
    response = await client.get(BALANCE, headers=bearer(jwks.token(issuer=jwks.url)))
    assert response.status == 200


def test_the_pyjwt_floor_excludes_the_release_that_took_part_of_the_issuer() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [Requirement(line) for line in project["project"]["dependencies"]]
    (pyjwt,) = [r for r in requirements if r.name == "pyjwt"]
    assert "2.10.0" not in pyjwt.specifier
    assert version("pyjwt") in pyjwt.specifier


async def test_a_token_header_nested_too_deep_to_parse_is_401(client: Client, jwks: Jwks) -> None:
    # 2,000 levels fit in a token (under 8 KB) and are beyond the JSON parser's stack.
    deep_header = base64.urlsafe_b64encode(
        ('{"alg": "EdDSA", "x": ' + deep_arrays(2_000) + "}").encode()
    )
    token = deep_header.decode().rstrip("=") + ".e30.c2ln"
    response = await client.get(BALANCE, headers=bearer(token))
    assert response.status == 401
