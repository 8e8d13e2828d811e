"""SQL repository for gift codes and redemptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import GiftCodeTaken
from mana_credits_core.gifts import (
    GiftCode,
    GiftRedemption,
    GiftStatus,
    GiftType,
    ReceivedGift,
    RedemptionStatus,
    email_key,
)

from .lookups import SqlGiftLookups, redemption_from
from .tables import gift_codes, gift_redemptions, transactions

ACTIVE = GiftStatus.ACTIVE.value


def gift_from(row: Any) -> GiftCode:
    return GiftCode(
        id=row.id,
        code=row.code,
        creator_id=row.creator_id,
        creator_name=row.creator_name,
        total_credits=row.total_credits,
        redeemed=row.redeemed,
        type=GiftType(row.type),
        status=GiftStatus(row.status),
        target_email=row.target_email,
        message=row.message,
        expires_at=row.expires_at,
        reservation_transaction_id=row.reservation_transaction_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def gift_values(gift: GiftCode) -> dict[str, Any]:
    """A gift's row; `target_email_key` is what `pending_for_email` looks up."""
    return {
        "id": gift.id,
        "code": gift.code,
        "creator_id": gift.creator_id,
        "creator_name": gift.creator_name,
        "total_credits": gift.total_credits,
        "redeemed": gift.redeemed,
        "type": gift.type.value,
        "status": gift.status.value,
        "target_email": gift.target_email,
        "target_email_key": None if gift.target_email is None else email_key(gift.target_email),
        "message": gift.message,
        "expires_at": gift.expires_at,
        "reservation_transaction_id": gift.reservation_transaction_id,
        "created_at": gift.created_at,
        "updated_at": gift.updated_at,
    }


def redemption_values(redemption: GiftRedemption) -> dict[str, Any]:
    return {
        "id": redemption.id,
        "gift_code_id": redemption.gift_code_id,
        "redeemer_user_id": redemption.redeemer_user_id,
        "status": redemption.status.value,
        "credits_received": redemption.credits_received,
        "credit_transaction_id": redemption.credit_transaction_id,
        "source_app_id": redemption.source_app_id,
        "created_at": redemption.created_at,
    }


class SqlGifts(SqlGiftLookups):
    _id_table = gift_codes

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def add(self, gift: GiftCode) -> None:
        try:
            await self._c.execute(sa.insert(gift_codes).values(gift_values(gift)))
        except IntegrityError as exc:
            if "code" in str(exc.orig):
                raise GiftCodeTaken() from exc
            raise

    async def _one(self, where: Any) -> GiftCode | None:
        row = (await self._c.execute(sa.select(gift_codes).where(where))).first()
        return None if row is None else gift_from(row)

    async def get(self, gift_id: str) -> GiftCode | None:
        return await self._one(gift_codes.c.id == gift_id)

    async def by_code(self, code: str) -> GiftCode | None:
        return await self._one(gift_codes.c.code == code)

    async def created_by(self, user_id: str, limit: int) -> list[GiftCode]:
        g = gift_codes.c
        query = (
            sa.select(gift_codes)
            .where(g.creator_id == user_id)
            .order_by(g.created_at.desc(), g.id.desc())
            .limit(limit)
        )
        return [gift_from(row) for row in await self._c.execute(query)]

    async def recent(self, limit: int, status: GiftStatus | None = None) -> list[GiftCode]:
        g = gift_codes.c
        query = sa.select(gift_codes).order_by(g.created_at.desc(), g.id.desc()).limit(limit)
        if status is not None:
            query = query.where(g.status == status.value)
        return [gift_from(row) for row in await self._c.execute(query)]

    async def transition(
        self,
        gift_id: str,
        to: GiftStatus,
        now: datetime,
        *,
        creator_id: str | None = None,
        unexpired: bool = False,
        expired: bool = False,
    ) -> GiftCode | None:
        g = gift_codes.c
        # The `status = 'active'` guard is what gives redeem, cancel and expiry
        # exactly one winner: the row lock orders them and the loser matches nothing.
        conditions = [g.id == gift_id, g.status == ACTIVE]
        if creator_id is not None:
            conditions.append(g.creator_id == creator_id)
        if unexpired:
            conditions.append(g.expires_at > now)
        if expired:
            conditions.append(g.expires_at <= now)
        values: dict[str, Any] = {"status": to.value, "updated_at": now}
        if to == GiftStatus.DEPLETED:
            values["redeemed"] = 1
        row = (
            await self._c.execute(
                sa.update(gift_codes).where(*conditions).values(values).returning(gift_codes)
            )
        ).first()
        return None if row is None else gift_from(row)

    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]:
        g = gift_codes.c
        query = (
            sa.select(g.id)
            .where(g.status == ACTIVE, g.expires_at <= now)
            .order_by(g.expires_at)
            .limit(limit)
        )
        return list((await self._c.scalars(query)).all())

    async def pending_for_email(self, email_key: str, now: datetime) -> list[GiftCode]:
        g = gift_codes.c
        query = (
            sa.select(gift_codes)
            .where(
                g.target_email_key == email_key,
                g.status == ACTIVE,
                g.type == GiftType.PERSONALIZED.value,
                g.expires_at > now,
            )
            .order_by(g.created_at, g.id)
        )
        return [gift_from(row) for row in await self._c.execute(query)]

    async def add_redemption(self, redemption: GiftRedemption) -> None:
        await self._c.execute(sa.insert(gift_redemptions).values(redemption_values(redemption)))

    async def received_by(self, user_id: str, limit: int) -> list[ReceivedGift]:
        r, g = gift_redemptions.c, gift_codes.c
        query = (
            sa.select(gift_redemptions, g.code, g.message, g.creator_name)
            .join(gift_codes, g.id == r.gift_code_id)
            .where(r.redeemer_user_id == user_id, r.status == RedemptionStatus.SUCCESS.value)
            .order_by(r.created_at.desc(), r.id.desc())
            .limit(limit)
        )
        return [
            ReceivedGift(redemption_from(row), row.code, row.message, row.creator_name)
            for row in await self._c.execute(query)
        ]

    async def unbacked(self) -> list[tuple[str, int, int | None]]:
        g, t = gift_codes.c, transactions.c
        query = (
            sa.select(g.id, g.total_credits, t.amount)
            .select_from(gift_codes.outerjoin(transactions, t.id == g.reservation_transaction_id))
            .where(
                g.status == ACTIVE,
                sa.or_(t.amount.is_(None), t.amount != -g.total_credits),
            )
        )
        return [
            (row.id, row.total_credits, None if row.amount is None else -row.amount)
            for row in await self._c.execute(query)
        ]
