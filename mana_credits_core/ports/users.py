"""The port of one user's data across tables: access (export) and erasure."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..gifts import GiftCode, GiftRedemption
from ..purchases import Purchase
from ..reservations import Reservation


class UserDataRepository(Protocol):
    """Everything held about one user, across tables: for access and erasure."""

    async def lock(self, user_ids: Sequence[str]) -> None:
        """Lock these users' balance rows until the unit of work ends, in user id order
        as a batch of debits does (so a debit racing an erasure waits for it)."""
        ...

    async def pending_reservations(self, user_id: str) -> builtins.list[str]:
        """Ids of the user's pending reservations, their rows locked until the unit of
        work ends."""
        ...

    async def reservations(self, user_id: str) -> builtins.list[Reservation]:
        """Every reservation of the user, oldest first."""
        ...

    async def purchases(self, user_id: str, *, lock: bool = False) -> builtins.list[Purchase]:
        """Every purchase of the user, oldest first; `lock` holds their rows until the
        unit of work ends."""
        ...

    async def gifts_created(self, user_id: str) -> builtins.list[GiftCode]:
        """Every gift the user created, oldest first."""
        ...

    async def redemptions(self, user_id: str) -> builtins.list[GiftRedemption]:
        """Every redemption attempt by the user (failed ones too), oldest first."""
        ...

    async def gifts_received(self, user_id: str) -> builtins.list[GiftCode]:
        """The gifts the user redeemed successfully, oldest first."""
        ...

    async def active_gifts(
        self, user_id: str, email_keys: Sequence[str]
    ) -> builtins.list[GiftCode]:
        """Active gifts created by the user or addressed to one of `email_keys`
        (normalised e-mail addresses), oldest first, their rows locked until the unit
        of work ends."""
        ...

    async def record_email(self, user_id: str, email: str) -> bool | None:
        """Set the e-mail address on the user's balance row in one conditional write
        (`email IS DISTINCT FROM` it): True when it changed, False when the row held it
        already (nothing written), None when the user holds no balance."""
        ...

    async def email(self, user_id: str) -> str | None:
        """The e-mail address recorded on the user's balance row, if any."""
        ...

    async def erase(self, erasure: Erasure) -> int:
        """Delete and pseudonymize what identifies the user (see `Erasure`); returns
        the rows deleted or changed. Run it last, after the user's credits moved."""
        ...


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an account deletion removes, all in the caller's unit of work.

    Deleted: the user's usage statistics, reservations and payment customer mapping.
    Cleared: the e-mail address recorded on the user's balance; the message, target
    e-mail (and creator name, for their own) of gifts the user created, redeemed, or
    that are addressed to one of `email_keys`; descriptions naming the user on the
    ledger entries of the people who redeemed their gifts.
    Pseudonymized, `user_id` replaced by `pseudonym` everywhere: balance, ledger
    entries (description reduced to the entry type, metadata and idempotency key
    cleared), purchases (payment customer cleared), gifts, redemptions, the Cloud Sync
    subscription (stopped), the `gifted_by` of subscriptions the user gifted, and the
    subject of the console's audit entries about the user.
    """

    user_id: str
    pseudonym: str
    email_keys: tuple[str, ...]
    now: datetime
    creator_name: str = "A former Mana user"  # on the gifts the user created
    gift_description: str = "Gift"  # on the redeemers' entries of the user's gifts
