"""The port of gift codes and their redemptions."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..gifts import GiftCode, GiftRedemption, GiftStatus, ReceivedGift


class GiftRepository(Protocol):
    async def add(self, gift: GiftCode) -> None:
        """Store a new gift; raises `GiftCodeTaken` if its code exists already."""
        ...

    async def get(self, gift_id: str) -> GiftCode | None: ...

    async def by_code(self, code: str) -> GiftCode | None: ...

    async def created_by(self, user_id: str, limit: int) -> list[GiftCode]:
        """Newest first."""
        ...

    async def recent(self, limit: int, status: GiftStatus | None = None) -> list[GiftCode]:
        """All gifts, newest first, optionally of one status."""
        ...

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
        """Active → `to`, once: None if the gift is not active (or not the creator's,
        or, with `unexpired`/`expired`, on the wrong side of its expiry at `now`).
        Moving to `depleted` also sets `redeemed`.
        """
        ...

    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]:
        """Ids of active gifts whose expiry has passed."""
        ...

    async def pending_for_email(self, email_key: str, now: datetime) -> list[GiftCode]:
        """Active, unexpired personalized gifts for a (normalised) e-mail address."""
        ...

    async def add_redemption(self, redemption: GiftRedemption) -> None: ...

    async def redemptions(self, gift_id: str) -> list[GiftRedemption]:
        """Every redemption attempt of one gift, successful or failed, oldest first
        (ties by id); an empty list for a gift never redeemed or unknown."""
        ...

    async def received_by(self, user_id: str, limit: int) -> list[ReceivedGift]:
        """The user's successful redemptions with their gifts, newest first (failed
        attempts are not gifts received)."""
        ...

    async def unbacked(self) -> list[tuple[str, int, int | None]]:
        """Active gifts whose creation entry does not hold exactly their credits:
        (gift id, total credits, amount held by the entry or None)."""
        ...

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Ids beginning with `prefix` exactly (case matters, no wildcards), in id
        order, at most `limit` of them; an empty list when none does."""
        ...
