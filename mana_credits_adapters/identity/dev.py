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

from ..errors import CorruptSigningKey, NotWritable
from ..home import check_home

KEY_FILE = "dev-signing-key.pem"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _read(path: Path) -> Ed25519PrivateKey:
    remedy = (
        "delete it: a new key is made on the next start (tokens signed with the old key "
        "are then refused)"
    )
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise CorruptSigningKey(f"cannot read dev signing key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise CorruptSigningKey(
            f"{path} holds no readable private key (unencrypted PEM), {remedy}"
        ) from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise CorruptSigningKey(f"{path} is not an Ed25519 private key, {remedy}")
    return loaded


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
        """The key in `home`, created (readable by the owner only) on first use.

        Raises `CorruptSigningKey` when the file is there but holds no Ed25519 private
        key, `NotAFolder` / `NotWritable` when `home` cannot hold a new one.
        """
        path = (home / KEY_FILE).absolute()
        if path.exists():
            return cls(_read(path))
        check_home(home, create=True)
        key = cls.generate()
        pem = key._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(_read(path))  # another process made it first: use theirs
        except OSError as exc:
            raise NotWritable(
                f"cannot write the dev signing key {path}: {exc.strerror}, make "
                "MANA_CREDITS_HOME writable"
            ) from exc
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
