"""The embedded default's identity: a local Ed25519 key whose tokens the CLI mints."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_FILE = "dev-signing-key.pem"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class SigningKey:
    """An Ed25519 key pair that signs tokens the way the auth service does."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_x = _b64(raw)
        self.kid = "dev-" + hashlib.sha256(raw).hexdigest()[:12]

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, home: Path) -> SigningKey:
        """The key in `home`, created (readable by the owner only) on first use."""
        path = home / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            return cls(loaded)
        home.mkdir(parents=True, exist_ok=True)
        key = cls.generate()
        pem = key._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return key

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": self.public_x,
                    "kid": self.kid,
                    "alg": "EdDSA",
                }
            ]
        }

    async def source(self) -> Mapping[str, Any]:
        """A `JwksSource` serving this key, for a verifier in the same process."""
        return self.jwks()

    def mint(
        self,
        user_id: str,
        *,
        issuer: str,
        email: str | None = None,
        role: str = "user",
        name: str | None = None,
        ttl_seconds: int = 3600,
        audience: str = "mana",
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "role": role,
        }
        if email is not None:
            claims["email"] = email
        if name is not None:
            claims["name"] = name
        claims.update(extra or {})
        return jwt.encode(claims, self._private, algorithm="EdDSA", headers={"kid": self.kid})
