"""The operator console's records: single-use sign-in links and the audit log."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LINK_TTL_SECONDS = 600
"""How long a sign-in link may be redeemed (seconds)."""

MAX_OPERATOR = 255
MAX_ACTION = 64
MAX_SUBJECT = 255
MAX_EMAIL = 254  # the longest address SMTP carries (RFC 5321)

DELETION_AUDIT = "user-delete"
"""The audit action of an account deletion made in the console. Its entry keeps the
deleted user id as its subject (the record of the erasure): a deletion pseudonymizes
the subject of every other audit entry about the user, never of these."""


def token_hash(token: str) -> str:
    """The stored form of a sign-in token: SHA-256, hex (64 characters). The token is
    256 random bits, so a plain hash suffices: nothing to guess, nothing to salt."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignInLink:
    """A sign-in link as stored: only the token's hash, never the token."""

    token_hash: str
    operator: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change an operator made through the console.

    `action` names the use case (e.g. `grant`), `subject` what it touched (a user id),
    `details` what it did (e.g. the ledger entry id and amount in credits)."""

    id: str
    operator: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserMatch:
    """A user the console's search found: the id, and the e-mail address last seen in
    the user's tokens (lower-cased; None when none was recorded)."""

    user_id: str
    email: str | None


def email_prefix(query: str) -> str | None:
    """What of `query` to match against e-mail addresses (lower-cased), or None when
    it cannot begin an address: blanks inside, more than one '@', or too long."""
    if any(c.isspace() for c in query) or query.count("@") > 1 or len(query) > MAX_EMAIL:
        return None
    return query.lower()
