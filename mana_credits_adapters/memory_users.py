"""The in-memory store's view of one user's data: reads for export, erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mana_credits_core.console import DELETION_AUDIT
from mana_credits_core.gifts import (
    GiftCode,
    GiftRedemption,
    GiftStatus,
    RedemptionStatus,
    email_key,
)
from mana_credits_core.ports import Erasure
from mana_credits_core.purchases import Purchase
from mana_credits_core.reservations import Reservation, ReservationStatus

from .memory_undo import Undo

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryUserData:
    """Runs under the store's lock like every repository; every write can be undone."""

    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def lock(self, user_ids: Sequence[str]) -> None:
        return None  # the unit of work holds the store's lock

    async def pending_reservations(self, user_id: str) -> list[str]:
        return [r.id for r in await self.reservations(user_id) if r.status == _PENDING]

    async def reservations(self, user_id: str) -> list[Reservation]:
        found = [r for r in self._s.reservations.values() if r.user_id == user_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    async def purchases(self, user_id: str, *, lock: bool = False) -> list[Purchase]:
        found = [p for p in self._s.purchases.values() if p.user_id == user_id]
        return sorted(found, key=lambda p: (p.created_at, p.id))

    async def gifts_created(self, user_id: str) -> list[GiftCode]:
        return _oldest_first(g for g in self._s.gifts.values() if g.creator_id == user_id)

    async def redemptions(self, user_id: str) -> list[GiftRedemption]:
        found = [r for r in self._s.redemptions.values() if r.redeemer_user_id == user_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    async def gifts_received(self, user_id: str) -> list[GiftCode]:
        ids = self._received(user_id)
        return _oldest_first(g for g in self._s.gifts.values() if g.id in ids)

    async def active_gifts(self, user_id: str, email_keys: Sequence[str]) -> list[GiftCode]:
        return _oldest_first(
            g
            for g in self._s.gifts.values()
            if g.status == GiftStatus.ACTIVE
            and (g.creator_id == user_id or _addressed(g, email_keys))
        )

    def _received(self, user_id: str) -> set[str]:
        return {
            r.gift_code_id
            for r in self._s.redemptions.values()
            if r.redeemer_user_id == user_id and r.status == RedemptionStatus.SUCCESS
        }

    async def record_email(self, user_id: str, email: str) -> bool | None:
        if user_id not in self._s.balances:
            return None
        if self._s.emails.get(user_id) == email:
            return False
        self._put(self._s.emails, user_id, email)
        return True

    async def email(self, user_id: str) -> str | None:
        return self._s.emails.get(user_id)

    async def erase(self, erasure: Erasure) -> int:
        s, user, alias, now = self._s, erasure.user_id, erasure.pseudonym, erasure.now
        count = 0
        for usage_key in [k for k, u in s.usage.items() if u.user_id == user]:
            count += self._pop(s.usage, usage_key)
        for op_key in [k for k, u in s.operation_usage.items() if u.user_id == user]:
            count += self._pop(s.operation_usage, op_key)
        for reservation_id in [r.id for r in s.reservations.values() if r.user_id == user]:
            count += self._pop(s.reservations, reservation_id)
        if user in s.customers:
            count += self._pop(s.customers, user)
        received = self._received(user)
        for g in list(s.gifts.values()):
            if g.creator_id != user and (g.id in received or _addressed(g, erasure.email_keys)):
                cleared = replace(g, target_email=None, message=None, updated_at=now)
                count += self._put(s.gifts, g.id, cleared)
        given = {
            r.credit_transaction_id
            for r in s.redemptions.values()
            if r.credit_transaction_id is not None
            and (gift := s.gifts.get(r.gift_code_id)) is not None
            and gift.creator_id == user
        }
        for entry_id in sorted(given):
            entry = s.entries.get(entry_id)
            if entry is not None and entry.user_id != user:
                count += self._put(
                    s.entries, entry_id, replace(entry, description=erasure.gift_description)
                )
        for g in list(s.gifts.values()):
            if g.creator_id == user:
                anonymous = replace(
                    g,
                    creator_id=alias,
                    creator_name=erasure.creator_name,
                    target_email=None,
                    message=None,
                    updated_at=now,
                )
                count += self._put(s.gifts, g.id, anonymous)
        for r in list(s.redemptions.values()):
            if r.redeemer_user_id == user:
                count += self._put(s.redemptions, r.id, replace(r, redeemer_user_id=alias))
        count += self._move_entries(user, alias)
        count += self._move_lots(user, alias)
        for p in list(s.purchases.values()):
            if p.user_id == user:
                moved = replace(p, user_id=alias, stripe_customer_id=None)
                count += self._put(s.purchases, p.id, moved)
        sub = s.sync.get(user)
        if sub is not None:
            self._pop(s.sync, user)
            stopped = replace(sub, user_id=alias, active=False, next_charge_at=None, updated_at=now)
            count += self._put(s.sync, alias, stopped)
        for key, other in list(s.sync.items()):
            if other.gifted_by == user:
                count += self._put(s.sync, key, replace(other, gifted_by=alias))
        if user in s.emails:
            self._pop(s.emails, user)  # the pseudonymized balance keeps no address
        balance = s.balances.get(user)
        if balance is not None:
            self._pop(s.balances, user)
            # What priced debits accrued below a credit is forgiven with the account.
            closed = replace(balance, user_id=alias, accrued_milli=0)
            count += self._put(s.balances, alias, closed)
        for a in list(s.audit.values()):
            if a.subject == user and a.action != DELETION_AUDIT:  # the deletion's record stays
                count += self._put(s.audit, a.id, replace(a, subject=alias))
        return count

    def _move_entries(self, user: str, alias: str) -> int:
        s = self._s
        ids = s.entries_by_user.get(user, [])
        if not ids:
            return 0
        for entry_id in ids:
            entry = s.entries[entry_id]
            if entry.idempotency_key is not None:
                self._pop(s.idempotency, (user, entry.idempotency_key))
            erased = replace(
                entry,
                user_id=alias,
                description=entry.type.value,
                metadata=None,
                idempotency_key=None,
            )
            self._put(s.entries, entry_id, erased)
        self._pop(s.entries_by_user, user)
        self._put(s.entries_by_user, alias, list(ids))
        return len(ids)

    def _move_lots(self, user: str, alias: str) -> int:
        s = self._s
        ids = s.lots_by_user.get(user, [])
        if not ids:
            return 0
        for lot_id in ids:
            self._put(s.lots, lot_id, replace(s.lots[lot_id], user_id=alias))
        self._pop(s.lots_by_user, user)
        self._put(s.lots_by_user, alias, list(ids))
        return len(ids)

    def _put(self, table: Any, key: Any, value: Any) -> int:
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.pop(key, None))
        table[key] = value
        return 1

    def _pop(self, table: Any, key: Any) -> int:
        old = table.pop(key)
        self._undo.append(lambda: table.__setitem__(key, old))
        return 1


_PENDING = ReservationStatus.PENDING


def _addressed(gift: GiftCode, email_keys: Sequence[str]) -> bool:
    return gift.target_email is not None and email_key(gift.target_email) in email_keys


def _oldest_first(gifts: Any) -> list[GiftCode]:
    return sorted(gifts, key=lambda g: (g.created_at, g.id))
