"""The in-memory store's balances: atomic debits and credits, claw-backs and debt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from mana_credits_core.errors import BalanceNotFound
from mana_credits_core.ledger import (
    Applied,
    Balance,
    Credit,
    CreditOutcome,
    Debit,
    DebitOutcome,
    LedgerEntry,
    NoBalance,
    Refused,
    Replayed,
    UsageStat,
    completed_entry,
)

from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryBalances:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, user_id: str) -> Balance | None:
        return self._s.balances.get(user_id)

    async def ensure(self, user_id: str, now: datetime) -> Balance:
        found = self._s.balances.get(user_id)
        if found is None:
            found = Balance.zero(user_id)
            undoable_set(self._s.balances, user_id, found, self._undo)
        return found

    def set(self, balance: Balance) -> None:
        undoable_set(self._s.balances, balance.user_id, balance, self._undo)

    def _replay(self, user_id: str, key: str | None) -> LedgerEntry | None:
        if key is None:
            return None
        entry_id = self._s.idempotency.get((user_id, key))
        return None if entry_id is None else self._s.entries[entry_id]

    async def debit(self, debit: Debit) -> DebitOutcome:
        original = self._replay(debit.user_id, debit.idempotency_key)
        if original is not None:
            return Replayed(original)
        current = self._s.balances.get(debit.user_id)
        if current is None:
            return NoBalance()
        if current.balance < debit.amount:
            return Refused(current.balance)
        after = replace(
            current,
            balance=current.balance - debit.amount,
            total_spent=current.total_spent + debit.amount,
        )
        entry = completed_entry(debit, -debit.amount, current.balance, after.balance)
        self.set(after)
        self.add_entry(entry)
        if debit.counts_as_usage:
            self.count_usage(debit.user_id, debit.app_id, debit.usage_day, debit.amount)
        return Applied(entry, after)

    async def credit(self, credit: Credit) -> CreditOutcome:
        original = self._replay(credit.user_id, credit.idempotency_key)
        if original is not None:
            return Replayed(original)
        current = await self.ensure(credit.user_id, credit.now)
        after = replace(
            current,
            balance=current.balance + credit.amount,
            total_earned=current.total_earned + credit.amount,
        )
        entry = completed_entry(credit, credit.amount, current.balance, after.balance)
        self.set(after)
        self.add_entry(entry)
        return Applied(entry, after)

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        current = self._existing(debit.user_id)
        taken = min(current.balance, debit.amount)
        shortfall = debit.amount - taken
        return self._take(current, debit, taken, shortfall), shortfall

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        current = self._existing(debit.user_id)
        taken = min(current.balance, current.debt)
        return self._take(current, debit, taken, -taken)

    async def reinstate(self, credit: Credit) -> tuple[LedgerEntry | None, int]:
        current = self._existing(credit.user_id)
        paid = min(current.debt, credit.amount)
        given = credit.amount - paid
        after = replace(
            current,
            balance=current.balance + given,
            total_earned=current.total_earned + given,
            debt=current.debt - paid,
        )
        self.set(after)
        if given == 0:
            return None, paid
        entry = completed_entry(credit, given, current.balance, after.balance)
        self.add_entry(entry)
        return entry, paid

    def _existing(self, user_id: str) -> Balance:
        found = self._s.balances.get(user_id)
        if found is None:
            raise BalanceNotFound()
        return found

    def _take(
        self, current: Balance, debit: Debit, taken: int, debt_change: int
    ) -> LedgerEntry | None:
        self.set(
            replace(
                current,
                balance=current.balance - taken,
                total_spent=current.total_spent + taken,
                debt=current.debt + debt_change,
            )
        )
        if taken == 0:
            return None
        entry = completed_entry(debit, -taken, current.balance, current.balance - taken)
        self.add_entry(entry)
        return entry

    def add_entry(self, entry: LedgerEntry) -> None:
        s = self._s
        if entry.id in s.entries:
            raise RuntimeError(f"duplicate ledger entry id {entry.id}")
        undoable_set(s.entries, entry.id, entry, self._undo)
        ids = s.entries_by_user[entry.user_id]
        ids.append(entry.id)
        self._undo.append(lambda: ids.remove(entry.id))
        if entry.idempotency_key is not None:
            undoable_set(
                s.idempotency, (entry.user_id, entry.idempotency_key), entry.id, self._undo
            )

    def count_usage(self, user_id: str, app_id: str, day: date, amount: int) -> None:
        key = (user_id, app_id, day)
        old = self._s.usage.get(key) or UsageStat(user_id, app_id, day, 0, 0)
        new = replace(old, credits_used=old.credits_used + amount, operations=old.operations + 1)
        undoable_set(self._s.usage, key, new, self._undo)

    async def iterate(self, batch_size: int = 1000) -> AsyncIterator[Balance]:
        for user_id in sorted(self._s.balances):
            yield self._s.balances[user_id]
