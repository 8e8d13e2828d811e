"""Verified tokens are remembered until they expire, and only verified ones."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.identity.jwks import JwksVerifier
from mana_credits_core.errors import Unauthenticated

ISSUER = "http://auth.test"


class Decodes:
    """Counts the signature checks `jwt.decode` performs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = jwt.decode

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(jwt, "decode", counting)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Decodes:
    return Decodes(monkeypatch)


class Wallclock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_token_is_verified_once_until_it_expires(decodes: Decodes) -> None:
    key, clock = SigningKey.generate(), Wallclock()
    verifier = JwksVerifier(ISSUER, key.source, wallclock=clock, leeway=0)
    token = key.mint("alice", issuer=ISSUER, ttl_seconds=60)
    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert first == again
    assert first.user_id == "alice"
    assert decodes.count == 1
    clock.now += 61  # past `exp`: the token is checked afresh
    await verifier.verify(token)
    assert decodes.count == 2


async def test_the_memory_is_bounded(decodes: Decodes) -> None:
    key = SigningKey.generate()
    verifier = JwksVerifier(ISSUER, key.source, cache_size=2)
    tokens = [key.mint(user, issuer=ISSUER) for user in ("a", "b", "c")]
    for token in tokens:
        await verifier.verify(token)
    await verifier.verify(tokens[2])
    assert decodes.count == 3
    await verifier.verify(tokens[0])  # evicted as the oldest
    assert decodes.count == 4


async def test_a_refused_token_is_never_remembered(decodes: Decodes) -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    verifier = JwksVerifier(ISSUER, key.source)
    forged = other.mint("mallory", issuer=ISSUER)
    wrong_issuer = key.mint("mallory", issuer="http://elsewhere")
    for token in (forged, wrong_issuer, forged, wrong_issuer):
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)
    assert decodes.count == 2  # the forged token's kid is unknown: no decode at all
