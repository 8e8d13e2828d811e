"""The in-memory store's operator console records: sign-in links, the audit log."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from mana_credits_core.console import AuditEntry, SignInLink, UserMatch

from .memory_undo import undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState
    from .memory_undo import Undo


class MemoryConsole:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def add_link(self, link: SignInLink) -> None:
        if link.token_hash in self._s.links:
            raise ValueError("duplicate sign-in link")
        undoable_set(self._s.links, link.token_hash, link, self._undo)

    async def redeem_link(self, token_hash: str, now: datetime) -> str | None:
        link = self._s.links.get(token_hash)
        if link is None or link.used_at is not None or link.expires_at <= now:
            return None
        undoable_set(self._s.links, token_hash, replace(link, used_at=now), self._undo)
        return link.operator

    async def record(self, entry: AuditEntry) -> bool:
        if entry.id in self._s.audit:
            return False
        undoable_set(self._s.audit, entry.id, entry, self._undo)
        return True

    async def audit(
        self, limit: int, offset: int = 0, subject: str | None = None
    ) -> list[AuditEntry]:
        found = [e for e in self._s.audit.values() if subject is None or e.subject == subject]
        found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return found[offset : offset + limit]

    async def find_users(
        self, prefix: str, email_prefix: str | None, limit: int
    ) -> list[UserMatch]:
        emails = self._s.emails
        found = [
            UserMatch(u, emails.get(u))
            for u in sorted(self._s.balances)
            if u.startswith(prefix)
            or (email_prefix is not None and emails.get(u, "").startswith(email_prefix))
        ]
        return found[:limit]
