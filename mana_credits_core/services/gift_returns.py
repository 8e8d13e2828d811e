"""Gifts whose credits go back to their creator: cancel (creator or operator), expiry."""

from __future__ import annotations

from datetime import datetime

from .. import validation as v
from ..errors import GiftNotCancellable, GiftNotFound
from ..events import EventKind, Events
from ..gifts import GiftCode, GiftStatus
from ..ledger import Credit, TransactionType
from ..lots import DEFAULT_PRIORITY, LotSource, burn_key
from ..ports import Clock, IdGenerator, Store, UnitOfWork

GIFTS_APP = "gifts"


async def return_gift(
    uow: UnitOfWork,
    entry_id: str,
    gift: GiftCode,
    to: GiftStatus,
    now: datetime,
    *,
    creator_id: str | None = None,
) -> bool:
    """Move an active gift to `to` (cancelled or expired) and credit its credits back to
    its creator as ledger entry `entry_id`; whether this call moved it.

    The transition is conditional on `active` (and on `creator_id` when given) and the
    credit carries the key `gift-return:<giftId>`, so a gift's credits come back once,
    whoever races to return them (creator, operator, the expiry sweep, account deletion).
    """
    moved = await uow.gifts.transition(
        gift.id, to, now, creator_id=creator_id, expired=to == GiftStatus.EXPIRED
    )
    if moved is None:
        return False
    expires_at, priority = await return_terms(uow, gift)
    await uow.balances.credit(
        Credit(
            entry_id=entry_id,
            user_id=gift.creator_id,
            amount=gift.total_credits,
            type=TransactionType.REFUND,
            app_id=GIFTS_APP,
            description=f"Gift code {gift.code} {to}: credits returned",
            metadata={"giftId": gift.id},
            idempotency_key=f"gift-return:{gift.id}",
            now=now,
            lot_source=LotSource.RETURN,
            expires_at=expires_at,
            priority=priority,
        )
    )
    return True


async def return_terms(uow: UnitOfWork, gift: GiftCode) -> tuple[datetime | None, int]:
    """The expiry (None: never) and priority of the lot a gift's credits come back in:
    those of the lot that paid for them and expires last (never, if one of them never
    expires; of two alike, the one burned later), so credits that were to expire still
    expire, and none sooner than it would have (a credit entry has one lot, so credits
    of lots with different terms come back under the latest). The defaults when the
    paying lots are unknown (a gift imported from the old service)."""
    paid = (
        []
        if gift.reservation_transaction_id is None
        else await uow.lots.allocations(gift.reservation_transaction_id)
    )
    ids = {a.lot_id for a in paid}
    lots = [lot for lot in await uow.lots.of_user(gift.creator_id) if lot.id in ids] if ids else []
    if not lots:
        return None, DEFAULT_PRIORITY
    last = max(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or lot.created_at, burn_key(lot)),
    )
    return last.expires_at, last.priority


class GiftReturns:
    """Cancel and expiry: each a conditional transition out of `active` that gives the
    gift's credits back to its creator exactly once (key `gift-return:<giftId>`)."""

    _store: Store
    _clock: Clock
    _ids: IdGenerator
    _events: Events

    async def expire_one(self, gift_id: str) -> GiftCode:
        """Expire one overdue active gift now (the sweep would, later); its credits go
        back to its creator once. Raises `GiftNotFound`, `GiftNotCancellable` when the
        gift is not active or not yet past its expiry."""
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.get(v.identifier(gift_id, "giftId"))
            if found is None:
                raise GiftNotFound("Gift not found")
            if not await self._return(uow, found, GiftStatus.EXPIRED):
                raise GiftNotCancellable(
                    f"gift is {found.status} and expires {found.expires_at:%Y-%m-%d %H:%M} UTC:"
                    " only active gifts past their expiry can be expired"
                )
            await uow.commit()
        return found

    async def cancel_as_operator(self, gift_id: str) -> GiftCode:
        """Cancel any active gift; its credits go back to its creator."""
        gift_id = v.identifier(gift_id, "giftId")
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.get(gift_id)
            if found is None:
                raise GiftNotFound("Gift not found")
            if not await self._return(uow, found, GiftStatus.CANCELLED):
                raise GiftNotCancellable()
            await uow.commit()
        self._events.emit(EventKind.GIFT_CANCELLED, credits=found.total_credits)
        return found

    async def cancel(self, user_id: str, gift_id: str) -> int:
        """Cancel one's own active gift; returns the credits given back."""
        gift_id = v.identifier(gift_id, "giftId")
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.get(gift_id)
            if found is None or found.creator_id != user_id:
                raise GiftNotFound("Gift not found")
            returned = await self._return(uow, found, GiftStatus.CANCELLED, creator_id=user_id)
            if not returned:
                raise GiftNotCancellable()
            await uow.commit()
        self._events.emit(EventKind.GIFT_CANCELLED, credits=found.total_credits)
        return found.total_credits

    async def _return(
        self,
        uow: UnitOfWork,
        gift: GiftCode,
        to: GiftStatus,
        *,
        creator_id: str | None = None,
    ) -> bool:
        """Move an active gift to `to` and give its credits back to the creator, once."""
        return await return_gift(
            uow, self._ids.new_id(), gift, to, self._clock.now(), creator_id=creator_id
        )

    async def expire(self, batch_size: int = 500) -> int:
        """Expire every overdue active gift, returning its credits; safe to run anywhere."""
        expired = 0
        while True:
            async with self._store.unit_of_work() as uow:
                due = await uow.gifts.due_for_expiry(self._clock.now(), batch_size)
            for gift_id in due:
                async with self._store.unit_of_work() as uow:
                    gift = await uow.gifts.get(gift_id)
                    if gift is not None and await self._return(uow, gift, GiftStatus.EXPIRED):
                        await uow.commit()
                        self._events.emit(EventKind.GIFT_EXPIRED, credits=gift.total_credits)
                        expired += 1
            if len(due) < batch_size:
                return expired
