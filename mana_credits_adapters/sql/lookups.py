"""SQL reads for operators naming records: ids by prefix, a gift's redemptions."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.gifts import GiftRedemption, RedemptionStatus

from .tables import gift_redemptions


def redemption_from(row: Any) -> GiftRedemption:
    return GiftRedemption(
        id=row.id,
        gift_code_id=row.gift_code_id,
        redeemer_user_id=row.redeemer_user_id,
        status=RedemptionStatus(row.status),
        credits_received=row.credits_received,
        credit_transaction_id=row.credit_transaction_id,
        source_app_id=row.source_app_id,
        created_at=row.created_at,
    )


class SqlIdPrefixes:
    """`ids_starting_with` over one table's `id` column (a mixin of its repository)."""

    _c: AsyncConnection
    _id_table: ClassVar[sa.Table]

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Ids beginning with `prefix` exactly, in id order, at most `limit`."""
        ids = self._id_table.c.id
        # substr, not LIKE: SQLite's LIKE ignores case and both treat % and _ as
        # wildcards; an equal leading substring means the same thing everywhere.
        query = (
            sa.select(ids)
            .where(sa.func.substr(ids, 1, len(prefix)) == prefix)
            .order_by(ids)
            .limit(limit)
        )
        return [str(i) for i in (await self._c.execute(query)).scalars()]


class SqlGiftLookups(SqlIdPrefixes):
    """The gift repository's reads for operators (a mixin of `SqlGifts`)."""

    async def redemptions(self, gift_id: str) -> list[GiftRedemption]:
        """Every redemption attempt of one gift, oldest first (ties by id)."""
        r = gift_redemptions.c
        query = (
            sa.select(gift_redemptions)
            .where(r.gift_code_id == gift_id)
            .order_by(r.created_at, r.id)
        )
        return [redemption_from(row) for row in await self._c.execute(query)]
