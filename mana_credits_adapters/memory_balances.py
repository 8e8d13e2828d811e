"""The in-memory store's balances: atomic debits and credits, claw-backs and debt, each
burning or adding credit lots as the core's `LotBook` decides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
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
    Replayed,
    completed_entry,
)
from mana_credits_core.lot_book import lot_for

from .memory_lots import add_entry, add_lot, book_for, write
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

    def _replay(self, user_id: str, key: str | None) -> LedgerEntry | None:
        if key is None:
            return None
        entry_id = self._s.idempotency.get((user_id, key))
        return None if entry_id is None else self._s.entries[entry_id]

    async def debit(self, debit: Debit) -> DebitOutcome:
        keys = [] if debit.idempotency_key is None else [(debit.user_id, debit.idempotency_key)]
        book = book_for(self._s, [debit.user_id], keys)
        outcome = book.debit(debit)
        write(self._s, book.writes, self._undo)
        return outcome

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
        undoable_set(self._s.balances, after.user_id, after, self._undo)
        add_entry(self._s, entry, self._undo)
        add_lot(self._s, lot_for(credit, entry), self._undo)
        return Applied(entry, after)

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        book = book_for(self._s, [debit.user_id])
        taken = book.claw_back(debit)
        write(self._s, book.writes, self._undo)
        return taken

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        book = book_for(self._s, [debit.user_id])
        entry = book.collect_debt(debit)
        write(self._s, book.writes, self._undo)
        return entry

    async def forfeit(self, debit: Debit) -> LedgerEntry | None:
        book = book_for(self._s, [debit.user_id])
        entry = book.forfeit(debit)
        write(self._s, book.writes, self._undo)
        return entry

    async def reinstate(self, credit: Credit) -> tuple[LedgerEntry | None, int]:
        current = self._s.balances.get(credit.user_id)
        if current is None:
            raise BalanceNotFound()
        paid = min(current.debt, credit.amount)
        given = credit.amount - paid
        after = replace(
            current,
            balance=current.balance + given,
            total_earned=current.total_earned + given,
            debt=current.debt - paid,
        )
        undoable_set(self._s.balances, after.user_id, after, self._undo)
        if given == 0:
            return None, paid
        entry = completed_entry(credit, given, current.balance, after.balance)
        add_entry(self._s, entry, self._undo)
        add_lot(self._s, lot_for(credit, entry), self._undo)
        return entry, paid

    async def iterate(self, batch_size: int = 1000) -> AsyncIterator[Balance]:
        for user_id in sorted(self._s.balances):
            yield self._s.balances[user_id]
