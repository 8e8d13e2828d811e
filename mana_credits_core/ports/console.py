"""The port of the operator console's own records: sign-in links and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..console import AuditEntry, SignInLink, UserMatch


class ConsoleRepository(Protocol):
    async def add_link(self, link: SignInLink) -> None:
        """Store a new sign-in link."""
        ...

    async def redeem_link(self, token_hash: str, now: datetime) -> str | None:
        """Mark the link used in one conditional write (`used_at IS NULL AND
        expires_at > now`) and return its operator; None when no link matched
        (unknown, used or expired). Of concurrent redemptions exactly one wins."""
        ...

    async def record(self, entry: AuditEntry) -> bool:
        """Append an audit entry; False (and nothing written) when its id is taken,
        so recording the same change twice keeps one entry."""
        ...

    async def audit(
        self, limit: int, offset: int = 0, subject: str | None = None
    ) -> list[AuditEntry]:
        """Audit entries newest first (by time, then id), optionally of one subject."""
        ...

    async def find_users(
        self, prefix: str, email_prefix: str | None, limit: int
    ) -> list[UserMatch]:
        """Users holding a balance whose id begins with `prefix` (exact case) or, when
        `email_prefix` is given, whose recorded e-mail address begins with it (stored
        lower-cased; `%`, `_` match only themselves), in id order, at most `limit`."""
        ...
