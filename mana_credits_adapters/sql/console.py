"""SQL store of the operator console: sign-in links and the audit log."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.console import AuditEntry, SignInLink, UserMatch

from .statements import insert_for
from .tables import audit_log, balances, console_links


class SqlConsole:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def add_link(self, link: SignInLink) -> None:
        await self._c.execute(
            sa.insert(console_links).values(
                token_hash=link.token_hash,
                operator=link.operator,
                created_at=link.created_at,
                expires_at=link.expires_at,
                used_at=link.used_at,
            )
        )

    async def redeem_link(self, token_hash: str, now: datetime) -> str | None:
        # One conditional write decides: of two concurrent redemptions, the second
        # finds `used_at` set (PostgreSQL re-checks it after the first commits).
        c = console_links.c
        query = (
            sa.update(console_links)
            .where(c.token_hash == token_hash, c.used_at.is_(None), c.expires_at > now)
            .values(used_at=now)
            .returning(c.operator)
        )
        operator: str | None = (await self._c.execute(query)).scalar_one_or_none()
        return operator

    async def record(self, entry: AuditEntry) -> bool:
        query = (
            insert_for(self._c, audit_log)
            .values(
                id=entry.id,
                operator=entry.operator,
                action=entry.action,
                subject=entry.subject,
                reason=entry.reason,
                details=entry.details,
                created_at=entry.created_at,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            # RETURNING rather than rowcount: a conflict returns no row on every driver.
            .returning(audit_log.c.id)
        )
        inserted = await self._c.execute(query)
        return inserted.first() is not None

    async def audit(
        self, limit: int, offset: int = 0, subject: str | None = None
    ) -> list[AuditEntry]:
        a = audit_log.c
        query = sa.select(audit_log)
        if subject is not None:
            query = query.where(a.subject == subject)
        query = query.order_by(a.created_at.desc(), a.id.desc()).limit(limit).offset(offset)
        return [
            AuditEntry(
                id=row.id,
                operator=row.operator,
                action=row.action,
                subject=row.subject,
                reason=row.reason,
                details=dict(row.details),
                created_at=row.created_at,
            )
            for row in await self._c.execute(query)
        ]

    async def find_users(
        self, prefix: str, email_prefix: str | None, limit: int
    ) -> list[UserMatch]:
        b = balances.c
        # A range on the primary key instead of LIKE: no wildcard to escape, and it
        # uses the key's index on both databases.
        wanted: sa.ColumnElement[bool] = sa.and_(
            b.user_id >= prefix, b.user_id < prefix + "\U0010ffff"
        )
        if email_prefix is not None:
            # `lower(email)` as the PostgreSQL index has it (text_pattern_ops serves a
            # LIKE prefix); autoescape makes `%`, `_` and the escape character literal.
            by_email = sa.func.lower(b.email).startswith(email_prefix, autoescape=True)
            wanted = sa.or_(wanted, by_email)
        query = sa.select(b.user_id, b.email).where(wanted).order_by(b.user_id).limit(limit)
        return [UserMatch(row.user_id, row.email) for row in await self._c.execute(query)]
