"""A user's data across the SQL tables: reads for export, erasure for deletion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.console import DELETION_AUDIT
from mana_credits_core.gifts import GiftCode, GiftRedemption, GiftStatus, RedemptionStatus
from mana_credits_core.ports import Erasure
from mana_credits_core.purchases import Purchase
from mana_credits_core.reservations import Reservation, ReservationStatus

from .gifts import gift_from
from .lookups import redemption_from
from .purchases import purchase_from
from .reservations import reservation_from
from .tables import (
    audit_log,
    balances,
    credit_lots,
    gift_codes,
    gift_redemptions,
    operation_usage,
    purchases,
    reservations,
    stripe_customers,
    sync_subscriptions,
    transactions,
    usage_stats,
)


class SqlUserData:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def lock(self, user_ids: Sequence[str]) -> None:
        # FOR UPDATE on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE.
        b = balances.c
        query = (
            sa.select(b.user_id)
            .where(b.user_id.in_(sorted(user_ids)))
            .order_by(b.user_id)
            .with_for_update()
        )
        await self._c.execute(query)

    async def pending_reservations(self, user_id: str) -> list[str]:
        r = reservations.c
        query = (
            sa.select(r.id)
            .where(r.user_id == user_id, r.status == ReservationStatus.PENDING.value)
            .order_by(r.created_at, r.id)
            .with_for_update()
        )
        return list((await self._c.scalars(query)).all())

    async def reservations(self, user_id: str) -> list[Reservation]:
        r = reservations.c
        query = sa.select(reservations).where(r.user_id == user_id).order_by(r.created_at, r.id)
        return [reservation_from(row) for row in await self._c.execute(query)]

    async def purchases(self, user_id: str, *, lock: bool = False) -> list[Purchase]:
        p = purchases.c
        query = sa.select(purchases).where(p.user_id == user_id).order_by(p.created_at, p.id)
        if lock:
            query = query.with_for_update()
        return [purchase_from(row) for row in await self._c.execute(query)]

    async def gifts_created(self, user_id: str) -> list[GiftCode]:
        return await self._gifts(gift_codes.c.creator_id == user_id)

    async def redemptions(self, user_id: str) -> list[GiftRedemption]:
        r = gift_redemptions.c
        query = (
            sa.select(gift_redemptions)
            .where(r.redeemer_user_id == user_id)
            .order_by(r.created_at, r.id)
        )
        return [redemption_from(row) for row in await self._c.execute(query)]

    async def gifts_received(self, user_id: str) -> list[GiftCode]:
        return await self._gifts(gift_codes.c.id.in_(_received(user_id)))

    async def active_gifts(self, user_id: str, email_keys: Sequence[str]) -> list[GiftCode]:
        g = gift_codes.c
        mine: sa.ColumnElement[bool] = g.creator_id == user_id
        if email_keys:
            mine = sa.or_(mine, g.target_email_key.in_(list(email_keys)))
        return await self._gifts(sa.and_(g.status == GiftStatus.ACTIVE.value, mine), lock=True)

    async def _gifts(self, condition: Any, *, lock: bool = False) -> list[GiftCode]:
        g = gift_codes.c
        query = sa.select(gift_codes).where(condition).order_by(g.created_at, g.id)
        if lock:
            query = query.with_for_update()
        return [gift_from(row) for row in await self._c.execute(query)]

    async def record_email(self, user_id: str, email: str) -> bool | None:
        b = balances.c
        changed: Any = await self._c.execute(
            sa.update(balances)
            .where(b.user_id == user_id, b.email.is_distinct_from(email))
            .values(email=email)
        )
        if changed.rowcount:
            return True
        held = await self._c.scalar(sa.select(b.user_id).where(b.user_id == user_id))
        return False if held is not None else None

    async def email(self, user_id: str) -> str | None:
        b = balances.c
        found: str | None = await self._c.scalar(sa.select(b.email).where(b.user_id == user_id))
        return found

    async def erase(self, erasure: Erasure) -> int:
        user, alias, now = erasure.user_id, erasure.pseudonym, erasure.now
        g, r, t = gift_codes.c, gift_redemptions.c, transactions.c
        statements: list[Any] = [
            sa.delete(usage_stats).where(usage_stats.c.user_id == user),
            sa.delete(operation_usage).where(operation_usage.c.user_id == user),
            sa.delete(reservations).where(reservations.c.user_id == user),
            sa.delete(stripe_customers).where(stripe_customers.c.user_id == user),
        ]
        # Other people's gifts: sent to the user (redeemed, or addressed to them).
        sent: sa.ColumnElement[bool] = g.id.in_(_received(user))
        if erasure.email_keys:
            sent = sa.or_(sent, g.target_email_key.in_(list(erasure.email_keys)))
        statements.append(
            sa.update(gift_codes)
            .where(sent, g.creator_id != user)
            .values(target_email=None, target_email_key=None, message=None, updated_at=now)
        )
        # The redeemers' entries of the user's gifts say "Gift from <the user's name>".
        given = sa.select(r.credit_transaction_id).where(
            r.gift_code_id.in_(sa.select(g.id).where(g.creator_id == user)),
            r.credit_transaction_id.is_not(None),
        )
        statements += [
            sa.update(transactions)
            .where(t.id.in_(given), t.user_id != user)
            .values(description=erasure.gift_description),
            sa.update(gift_codes)
            .where(g.creator_id == user)
            .values(
                creator_id=alias,
                creator_name=erasure.creator_name,
                target_email=None,
                target_email_key=None,
                message=None,
                updated_at=now,
            ),
            sa.update(gift_redemptions)
            .where(r.redeemer_user_id == user)
            .values(redeemer_user_id=alias),
            sa.update(transactions)
            .where(t.user_id == user)
            .values(user_id=alias, description=t.type, metadata=sa.null(), idempotency_key=None),
            sa.update(purchases)
            .where(purchases.c.user_id == user)
            .values(user_id=alias, stripe_customer_id=None),
            sa.update(sync_subscriptions)
            .where(sync_subscriptions.c.user_id == user)
            .values(user_id=alias, active=False, next_charge_at=None, updated_at=now),
            sa.update(sync_subscriptions)
            .where(sync_subscriptions.c.gifted_by == user)
            .values(gifted_by=alias),
            sa.update(credit_lots).where(credit_lots.c.user_id == user).values(user_id=alias),
            # What priced debits accrued below a credit is forgiven with the account.
            sa.update(balances)
            .where(balances.c.user_id == user)
            .values(user_id=alias, email=None, accrued_milli=0),
            # A deletion's own record keeps the old id: who deleted whom, and why.
            sa.update(audit_log)
            .where(audit_log.c.subject == user, audit_log.c.action != DELETION_AUDIT)
            .values(subject=alias),
        ]
        count = 0
        for statement in statements:
            result: Any = await self._c.execute(statement)
            count += int(result.rowcount)
        return count


def _received(user_id: str) -> Any:
    """Ids of the gifts `user_id` redeemed successfully (a subquery)."""
    r = gift_redemptions.c
    return sa.select(r.gift_code_id).where(
        r.redeemer_user_id == user_id, r.status == RedemptionStatus.SUCCESS.value
    )
