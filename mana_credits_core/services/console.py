"""The operator console's use cases: sign-in links, audited changes, the audit log.

Every change the console makes runs the same use case the API and CLI run (e.g.
`CreditsService.grant`) and is then recorded in the audit log under an id derived
from what it changed, so a resubmitted form leaves one entry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import validation as v
from ..console import (
    LINK_TTL_SECONDS,
    MAX_OPERATOR,
    AuditEntry,
    SignInLink,
    UserMatch,
    email_prefix,
    token_hash,
)
from ..errors import InvalidInput, SignInRefused
from ..ports import Clock, Store
from .credits import CreditsService, LedgerResult

AUDIT_PAGE = 50
MAX_EXPIRY_DAYS = 3650


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A new sign-in link's token (shown once, stored only hashed) and its expiry."""

    token: str
    operator: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of the audit log, newest first; `page` counts from 1."""

    entries: list[AuditEntry]
    page: int
    has_more: bool


class ConsoleService:
    """Sign-in links, the console's audited changes and its reads."""

    def __init__(self, store: Store, clock: Clock, credits: CreditsService) -> None:
        self._store = store
        self._clock = clock
        self._credits = credits

    async def issue_link(self, operator: str, ttl_seconds: int = LINK_TTL_SECONDS) -> IssuedLink:
        """A single-use sign-in link for `operator`, valid `ttl_seconds` (seconds).
        Raises `InvalidInput` ("operator") for a blank or over-long name."""
        if not operator.strip():
            raise InvalidInput("operator", "operator must not be empty, name who signs in")
        operator = v.identifier(operator.strip(), "operator", MAX_OPERATOR)
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        link = SignInLink(token_hash(token), operator, now, now + timedelta(seconds=ttl_seconds))
        async with self._store.unit_of_work() as uow:
            await uow.console.add_link(link)
            await uow.commit()
        return IssuedLink(token, operator, link.expires_at)

    async def redeem_link(self, token: str) -> str:
        """The operator of the link `token`, which is used up by this call. Raises
        `SignInRefused` for an unknown, used or expired link (nothing changed)."""
        if not token or len(token) > 200:
            raise SignInRefused()
        async with self._store.unit_of_work() as uow:
            operator = await uow.console.redeem_link(token_hash(token), self._clock.now())
            await uow.commit()
        if operator is None:
            raise SignInRefused()
        return operator

    async def grant(
        self,
        operator: str,
        user_id: str,
        amount: int,
        reason: str,
        *,
        expires_in_days: int | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerResult:
        """`CreditsService.grant` of `amount` credits by `operator`, recorded in the
        audit log (action `grant`, subject `user_id`). `expires_in_days` (1..3650)
        makes the credits expire. The same `idempotency_key` again grants once and
        records once. Raises what `grant` raises (`InvalidInput` naming the field)."""
        reason = v.text(reason, "reason", v.MAX_REASON).strip()
        expires_at = None
        if expires_in_days is not None:
            if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
                raise InvalidInput(
                    "expiresInDays", f"expiry must be 1 to {MAX_EXPIRY_DAYS} days, or empty"
                )
            expires_at = self._clock.now() + timedelta(days=expires_in_days)
        result = await self._credits.grant(
            user_id,
            amount,
            reason,
            operator,
            idempotency_key=idempotency_key,
            expires_at=expires_at,
        )
        entry = result.entry
        details: dict[str, object] = {"entryId": entry.id, "amount": entry.amount}
        if expires_at is not None:
            details["expiresAt"] = expires_at.isoformat()
        await self.record(
            AuditEntry(
                id=f"grant:{entry.id}",  # one entry per ledger entry, replays included
                operator=operator,
                action="grant",
                subject=entry.user_id,
                reason=reason,
                details=details,
                created_at=self._clock.now(),
            )
        )
        return result

    def now(self) -> datetime:
        """The time audit entries are stamped with (the service's clock, UTC)."""
        return self._clock.now()

    async def record(self, entry: AuditEntry) -> bool:
        """Append `entry` to the audit log; False when its id was recorded before."""
        async with self._store.unit_of_work() as uow:
            added = await uow.console.record(entry)
            await uow.commit()
        return added

    async def audit(self, page: int = 1, subject: str | None = None) -> AuditPage:
        """Page `page` (from 1) of the audit log, `AUDIT_PAGE` entries, newest first,
        optionally only the entries about `subject`. Raises `InvalidInput` ("page")."""
        if page < 1 or page > 1_000_000:
            raise InvalidInput("page", "page must be a whole number from 1")
        async with self._store.reader() as uow:
            found = await uow.console.audit(AUDIT_PAGE + 1, (page - 1) * AUDIT_PAGE, subject)
        return AuditPage(found[:AUDIT_PAGE], page, len(found) > AUDIT_PAGE)

    async def find_users(self, query: str, limit: int = v.MAX_PAGE_SIZE) -> list[UserMatch]:
        """Users holding a balance whose id begins with `query` (blanks stripped, exact
        case) or whose recorded e-mail address begins with it (any case), in id order,
        at most `limit`. Addresses are searched whenever the query could begin one (no
        blank inside, at most one '@'): a support request names a person by address,
        and its first characters are often all an operator has. Raises `InvalidInput`
        ("q") for a blank query."""
        wanted = v.identifier(query.strip(), "q")
        async with self._store.reader() as uow:
            return await uow.console.find_users(wanted, email_prefix(wanted), limit)
