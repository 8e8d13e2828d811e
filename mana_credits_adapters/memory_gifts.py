"""The in-memory store's gift codes and their redemptions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

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

from .memory_lookups import MemoryGiftLookups
from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryGifts(MemoryGiftLookups):
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def add(self, gift: GiftCode) -> None:
        if any(g.code == gift.code for g in self._s.gifts.values()):
            raise GiftCodeTaken()
        undoable_set(self._s.gifts, gift.id, gift, self._undo)

    async def get(self, gift_id: str) -> GiftCode | None:
        return self._s.gifts.get(gift_id)

    async def by_code(self, code: str) -> GiftCode | None:
        return next((g for g in self._s.gifts.values() if g.code == code), None)

    async def recent(self, limit: int, status: GiftStatus | None = None) -> list[GiftCode]:
        found = [g for g in self._s.gifts.values() if status is None or g.status == status]
        found.sort(key=lambda g: (g.created_at, g.id), reverse=True)
        return found[:limit]

    async def created_by(self, user_id: str, limit: int) -> list[GiftCode]:
        mine = [g for g in self._s.gifts.values() if g.creator_id == user_id]
        mine.sort(key=lambda g: (g.created_at, g.id), reverse=True)
        return mine[:limit]

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
        g = self._s.gifts.get(gift_id)
        if (
            g is None
            or g.status != GiftStatus.ACTIVE
            or (creator_id is not None and g.creator_id != creator_id)
            or (unexpired and g.expires_at <= now)
            or (expired and g.expires_at > now)
        ):
            return None
        redeemed = 1 if to == GiftStatus.DEPLETED else g.redeemed
        moved = replace(g, status=to, updated_at=now, redeemed=redeemed)
        undoable_set(self._s.gifts, gift_id, moved, self._undo)
        return moved

    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]:
        due = [
            g
            for g in self._s.gifts.values()
            if g.status == GiftStatus.ACTIVE and g.expires_at <= now
        ]
        due.sort(key=lambda g: g.expires_at)
        return [g.id for g in due[:limit]]

    async def pending_for_email(self, email_key_: str, now: datetime) -> list[GiftCode]:
        found = [
            g
            for g in self._s.gifts.values()
            if g.status == GiftStatus.ACTIVE
            and g.type == GiftType.PERSONALIZED
            and g.target_email is not None
            and email_key(g.target_email) == email_key_
            and g.expires_at > now
        ]
        return sorted(found, key=lambda g: (g.created_at, g.id))

    async def add_redemption(self, redemption: GiftRedemption) -> None:
        if redemption.status == RedemptionStatus.SUCCESS and any(
            r.gift_code_id == redemption.gift_code_id and r.status == RedemptionStatus.SUCCESS
            for r in self._s.redemptions.values()
        ):
            raise ValueError("a gift has one successful redemption")  # the SQL unique index
        undoable_set(self._s.redemptions, redemption.id, redemption, self._undo)

    async def received_by(self, user_id: str, limit: int) -> list[ReceivedGift]:
        mine = [
            r
            for r in self._s.redemptions.values()
            if r.redeemer_user_id == user_id and r.status == RedemptionStatus.SUCCESS
        ]
        mine.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        found = []
        for r in mine:
            gift = self._s.gifts.get(r.gift_code_id)
            if gift is not None:  # as the SQL join: a redemption without its gift is not listed
                found.append(ReceivedGift(r, gift.code, gift.message, gift.creator_name))
        return found[:limit]

    async def unbacked(self) -> list[tuple[str, int, int | None]]:
        problems: list[tuple[str, int, int | None]] = []
        for g in self._s.gifts.values():
            if g.status != GiftStatus.ACTIVE:
                continue
            entry = self._s.entries.get(g.reservation_transaction_id or "")
            held = None if entry is None else -entry.amount
            if held != g.total_credits:
                problems.append((g.id, g.total_credits, held))
        return problems
