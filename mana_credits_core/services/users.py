"""Use cases for a person's data: access (GDPR art. 15/20) and erasure (art. 17)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from .. import validation as v
from ..errors import InvalidInput
from ..events import EventKind, Events
from ..gifts import GiftCode, GiftRedemption, GiftStatus, email_key, looks_like_email
from ..ledger import Balance, Debit, LedgerEntry, OperationUsage, TransactionType, UsageStat
from ..lots import Lot, LotSource
from ..ports import Clock, Erasure, IdGenerator, Store, UnitOfWork
from ..purchases import Purchase
from ..reservations import ReleaseHold, Reservation, ReservationStatus
from ..sync import SyncSubscription
from .emails import UserEmails
from .gift_returns import return_gift

SYSTEM_APP = "system"
PSEUDONYM_PREFIX = "deleted-"


@dataclass(frozen=True, slots=True)
class UserDeleted:
    """What an account deletion did.

    `deleted_count`: rows deleted or pseudonymized (0 for an unknown user and on a
    repeated call); `forfeited`: credits closed by the `forfeit` entry;
    `gifts_cancelled`: active gifts cancelled (credits back to their creators first).
    """

    deleted_count: int
    forfeited: int
    gifts_cancelled: int


@dataclass(frozen=True, slots=True)
class LotRecord:
    """One credit lot as a person's export shows it: `amount` and `remaining` in
    credits, `priority` 0..100 (lower spent first), `expires_at` None for credits that
    never expire, `expired_at` when its free credits expired (None if not)."""

    id: str
    source: LotSource
    amount: int
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    expired_at: datetime | None

    @classmethod
    def of(cls, lot: Lot) -> LotRecord:
        return cls(
            id=lot.id,
            source=lot.source,
            amount=lot.amount,
            remaining=lot.remaining,
            priority=lot.priority,
            expires_at=lot.expires_at,
            created_at=lot.created_at,
            expired_at=lot.expired_at,
        )


@dataclass(frozen=True, slots=True)
class UserRecords:
    """Everything held about a user except the ledger, which `UsersService.ledger`
    streams. Lists are oldest first."""

    user_id: str
    email: str | None  # the address last seen in the user's tokens (lower-cased)
    balance: Balance | None
    purchases: list[Purchase]
    gifts_created: list[GiftCode]
    gifts_received: list[GiftCode]
    redemptions: list[GiftRedemption]
    subscription: SyncSubscription | None
    reservations: list[Reservation]
    usage: list[UsageStat]
    lots: list[LotRecord]  # every credit lot, spent and expired ones too
    operation_usage: list[OperationUsage]  # priced debits per operation and day


def new_pseudonym() -> str:
    """A fresh pseudonym from the operating system's cryptographic source.

    It is derived from nothing, so it cannot be turned back into the user id, and it
    is returned to no one: nothing links it to the id once the deletion commits."""
    return PSEUDONYM_PREFIX + str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


class UsersService:
    """A person's data: everything held about them, and account deletion.

    Deletion keeps the accounting records (balances, ledger, purchases, gifts,
    redemptions, subscription) under one random pseudonym and removes what identifies
    the person and is not needed for the accounts; see docs/privacy.md.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        events: Events | None = None,
        emails: UserEmails | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._events = events or Events()
        self._emails = emails

    async def delete(self, user_id: str, *, email: str | None = None) -> UserDeleted:
        """Delete a user's account data in one transaction (idempotent).

        In order: the user's rows are locked, their balance last (a racing debit waits,
        then finds no balance); pending reservations are released; active gifts the
        user created, or addressed to `email` or to an address of a personalized gift
        they redeemed, are cancelled and their credits go back to their creators; what
        the user has left is forfeited by one `forfeit` entry; then
        `UserDataRepository.erase` deletes and pseudonymizes (see `Erasure`). `email`
        (optional) lets gifts still addressed to the person be found. Returns
        `UserDeleted`. Raises `InvalidInput` for a malformed id or e-mail,
        `StoreUnavailable` when the store cannot be reached (nothing changed).
        """
        user_id = v.identifier(user_id, "userId")
        keys = () if email is None else (email_key(_email(email)),)
        pseudonym = new_pseudonym()
        async with self._store.unit_of_work() as uow:
            data = uow.users
            received = [g.target_email for g in await data.gifts_received(user_id)]
            keys = tuple(sorted({*keys, *(email_key(e) for e in received if e)}))
            # Rows are locked in the order the other use cases lock them (subscription,
            # purchase, gift or reservation, then balance), so none deadlocks with this.
            await uow.sync.get(user_id, lock=True)
            await data.purchases(user_id, lock=True)
            gifts = await data.active_gifts(user_id, keys)
            await data.pending_reservations(user_id)
            # The balances: the user's, and those of the creators of gifts to cancel.
            await data.lock(sorted({user_id, *(g.creator_id for g in gifts)}))
            # Listed again: a gift or hold that took the balance first is committed now,
            # and no new one can start until this transaction ends.
            now = self._clock.now()
            for reservation_id in await data.pending_reservations(user_id):
                await uow.reservations.release(
                    ReleaseHold(reservation_id, ReservationStatus.REFUNDED, now)
                )
            cancelled = [
                gift
                for gift in await data.active_gifts(user_id, keys)
                if await self._cancel(uow, gift, self._clock.now())
            ]
            # Read the clock again: the forfeit is the last entry of the history.
            forfeited = await self._forfeit(uow, user_id, self._clock.now())
            count = await data.erase(Erasure(user_id, pseudonym, keys, self._clock.now()))
            await uow.commit()
        if self._emails is not None:
            # A later token of the same id records its address on a new balance at once.
            self._emails.forget(user_id)
        for gift in cancelled:
            self._events.emit(EventKind.GIFT_CANCELLED, credits=gift.total_credits)
        return UserDeleted(count, forfeited, len(cancelled))

    async def _cancel(self, uow: UnitOfWork, gift: GiftCode, now: datetime) -> bool:
        """Cancel one active gift, its credits back to its creator (as `GiftsService`
        does, with the same idempotency key); whether this call cancelled it."""
        return await return_gift(uow, self._ids.new_id(), gift, GiftStatus.CANCELLED, now)

    async def _forfeit(self, uow: UnitOfWork, user_id: str, now: datetime) -> int:
        current = await uow.balances.get(user_id)
        if current is None:
            return 0
        # Every lot goes to zero: lots past their expiry expire first (their own
        # entries), the rest is forfeited by one entry.
        entry = await uow.balances.forfeit(
            Debit(
                entry_id=self._ids.new_id(),
                user_id=user_id,
                amount=max(current.balance, 1),  # ignored: the whole balance goes
                app_id=SYSTEM_APP,
                description="Balance forfeited: account deleted",
                metadata=None,
                idempotency_key=None,
                now=now,
                type=TransactionType.FORFEIT,
            )
        )
        return 0 if entry is None else -entry.amount

    async def records(self, user_id: str) -> UserRecords:
        """Everything held about `user_id` but the ledger (see `ledger`), read in one
        unit of work. An unknown user gives empty records. Raises `InvalidInput`."""
        user_id = v.identifier(user_id, "userId")
        async with self._store.unit_of_work() as uow:
            data = uow.users
            return UserRecords(
                user_id=user_id,
                email=await data.email(user_id),
                balance=await uow.balances.get(user_id),
                purchases=await data.purchases(user_id),
                gifts_created=await data.gifts_created(user_id),
                gifts_received=await data.gifts_received(user_id),
                redemptions=await data.redemptions(user_id),
                subscription=await uow.sync.get(user_id),
                reservations=await data.reservations(user_id),
                usage=sorted(await uow.usage.for_user(user_id), key=lambda u: (u.day, u.app_id)),
                lots=[LotRecord.of(lot) for lot in await uow.lots.of_user(user_id)],
                operation_usage=await uow.usage.operations_for_user(user_id),
            )

    async def ledger(self, user_id: str, *, page: int = 1000) -> AsyncIterator[LedgerEntry]:
        """The user's ledger entries oldest first, one short read per `page` entries
        (constant memory, no lock held between pages). Raises `InvalidInput`."""
        user_id = v.identifier(user_id, "userId")
        after: tuple[datetime, str] | None = None
        while True:
            async with self._store.reader() as uow:
                entries = await uow.ledger.page_forward(limit=page, after=after, user_id=user_id)
            for entry in entries:
                yield entry
            if len(entries) < page:
                return
            after = (entries[-1].created_at, entries[-1].id)


def _email(value: object) -> str:
    address = v.identifier(value, "email", 254).strip()
    if not looks_like_email(address):
        raise InvalidInput("email", "email must be an e-mail address")
    return address
