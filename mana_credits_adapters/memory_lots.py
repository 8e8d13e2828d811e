"""The in-memory store's credit lots: books over its tables, their writes, the sweep
and reconciliation's reads (the rules themselves are the core's `LotBook`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mana_credits_core.ledger import (
    LedgerEntry,
    OperationUsage,
    TransactionStatus,
    TransactionType,
    UsageStat,
)
from mana_credits_core.lot_book import LotBook, OperationKey, UsageKey, Writes, expire_all
from mana_credits_core.lots import Allocation, Lot, to_notify
from mana_credits_core.ports import Expiring, LotDrift, LotTotals
from mana_credits_core.reservations import ReservationStatus

from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


def book_for(
    state: MemoryState, user_ids: Iterable[str], keys: Iterable[tuple[str, str]] = ()
) -> LotBook:
    """A book over the users' balances and open lots, with the entries already stored
    under `keys` (user id, idempotency key)."""
    users = set(user_ids)
    priors = {
        key: state.entries[state.idempotency[key]] for key in keys if key in state.idempotency
    }
    return LotBook(
        (state.balances[u] for u in users if u in state.balances),
        (
            state.lots[lot_id]
            for u in users
            for lot_id in state.lots_by_user.get(u, ())
            if state.lots[lot_id].remaining > 0
        ),
        priors,
    )


def add_entry(state: MemoryState, entry: LedgerEntry, undo: list[Undo]) -> None:
    if entry.id in state.entries:
        raise RuntimeError(f"duplicate ledger entry id {entry.id}")
    if entry.idempotency_key is not None and (entry.user_id, entry.idempotency_key) in (
        state.idempotency
    ):
        raise RuntimeError(f"idempotency key {entry.idempotency_key} taken")
    undoable_set(state.entries, entry.id, entry, undo)
    ids = state.entries_by_user[entry.user_id]
    ids.append(entry.id)
    undo.append(lambda: ids.remove(entry.id))
    if entry.idempotency_key is not None:
        undoable_set(state.idempotency, (entry.user_id, entry.idempotency_key), entry.id, undo)


def add_lot(state: MemoryState, lot: Lot, undo: list[Undo]) -> None:
    if lot.id in state.lots:
        raise RuntimeError(f"duplicate lot id {lot.id}")
    undoable_set(state.lots, lot.id, lot, undo)
    ids = state.lots_by_user[lot.user_id]
    ids.append(lot.id)
    undo.append(lambda: ids.remove(lot.id))


def count_usage(
    state: MemoryState, key: UsageKey, amount: int, operations: int, undo: list[Undo]
) -> None:
    user_id, app_id, day = key
    old = state.usage.get(key) or UsageStat(user_id, app_id, day, 0, 0)
    new = replace(
        old, credits_used=old.credits_used + amount, operations=old.operations + operations
    )
    undoable_set(state.usage, key, new, undo)


def count_operation(
    state: MemoryState, key: OperationKey, counts: tuple[int, int, int], undo: list[Undo]
) -> None:
    user_id, operation, day = key
    calls, quantity, cost = counts
    old = state.operation_usage.get(key) or OperationUsage(user_id, operation, day, 0, 0, 0)
    new = replace(
        old,
        calls=old.calls + calls,
        quantity=old.quantity + quantity,
        cost_milli=old.cost_milli + cost,
    )
    undoable_set(state.operation_usage, key, new, undo)


def write(state: MemoryState, writes: Writes, undo: list[Undo]) -> None:
    """Make a book's writes, each undoable."""
    for balance in writes.balances.values():
        undoable_set(state.balances, balance.user_id, balance, undo)
    for entry in writes.entries:
        add_entry(state, entry, undo)
    for lot in writes.lots.values():
        undoable_set(state.lots, lot.id, lot, undo)
    paid: dict[str, list[Allocation]] = defaultdict(list)
    for entry_id, part in writes.allocations:
        paid[entry_id].append(part)
    for entry_id, parts in paid.items():
        undoable_set(state.allocations, entry_id, state.allocations.get(entry_id, []) + parts, undo)
    held: dict[str, list[Allocation]] = defaultdict(list)
    for reservation_id, part in writes.holds:
        held[reservation_id].append(part)
    for reservation_id, parts in held.items():
        undoable_set(state.holds, reservation_id, parts, undo)
    for reservation_id in writes.released:
        if reservation_id in state.holds:
            _undoable_pop(state.holds, reservation_id, undo)
    for key, (used, operations) in writes.usage.items():
        count_usage(state, key, used, operations, undo)
    for op_key, counts in writes.operations.items():
        count_operation(state, op_key, counts, undo)


def _by_expiry(lot: Lot) -> tuple[datetime, str]:
    assert lot.expires_at is not None
    return (lot.expires_at, lot.id)


def _undoable_pop(table: dict[str, Any], key: str, undo: list[Undo]) -> None:
    old = table.pop(key)
    undo.append(lambda: table.__setitem__(key, old))


class MemoryLots:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def of_user(self, user_id: str) -> list[Lot]:
        lots = (self._s.lots[i] for i in self._s.lots_by_user.get(user_id, ()))
        return sorted(lots, key=lambda lot: (lot.created_at, lot.id))

    async def allocations(self, entry_id: str) -> list[Allocation]:
        return sorted(self._s.allocations.get(entry_id, []), key=lambda a: a.lot_id)

    async def holds(self, reservation_id: str) -> list[Allocation]:
        return sorted(self._s.holds.get(reservation_id, []), key=lambda a: a.lot_id)

    async def due(self, now: datetime, limit: int) -> list[str]:
        due = sorted(
            (
                lot
                for lot in self._s.lots.values()
                if lot.expired(now) and lot.free > 0 and lot.expired_at is None
            ),
            key=lambda lot: (lot.expires_at, lot.id),
        )
        return list(dict.fromkeys(lot.user_id for lot in due[:limit]))

    async def expiring(self, until: datetime) -> Expiring:
        lots = [
            lot
            for lot in self._s.lots.values()
            if lot.expires_at is not None
            and lot.expires_at <= until
            and lot.expired_at is None
            and lot.free > 0
        ]
        return Expiring(
            credits=sum(lot.free for lot in lots),
            users=len({lot.user_id for lot in lots}),
            lots=len(lots),
        )

    async def expire(self, user_ids: Sequence[str], now: datetime) -> list[LedgerEntry]:
        book = book_for(self._s, user_ids)
        entries = expire_all(book, user_ids, now)
        write(self._s, book.writes, self._undo)
        return entries

    async def notice_due(self, now: datetime, limit: int) -> list[str]:
        due = sorted(self._unannounced(self._s.lots.values(), now), key=_by_expiry)
        return list(dict.fromkeys(lot.user_id for lot in due[:limit]))

    async def claim_notices(self, user_id: str, now: datetime) -> list[Lot]:
        lots = (self._s.lots[i] for i in self._s.lots_by_user.get(user_id, ()))
        claimed = sorted(self._unannounced(lots, now), key=_by_expiry)
        for lot in claimed:
            undoable_set(self._s.notified, lot.id, now, self._undo)
        return claimed

    async def release_notices(self, lot_ids: Sequence[str], claimed_at: datetime) -> None:
        for lot_id in lot_ids:
            if self._s.notified.get(lot_id) == claimed_at:
                _undoable_pop(self._s.notified, lot_id, self._undo)

    def _unannounced(self, lots: Iterable[Lot], now: datetime) -> list[Lot]:
        return [lot for lot in to_notify(lots, now) if lot.id not in self._s.notified]

    async def totals(self) -> Mapping[str, LotTotals]:
        sums: dict[str, LotTotals] = {}
        for lot in self._s.lots.values():
            found = sums.get(lot.user_id, LotTotals())
            sums[lot.user_id] = LotTotals(found.remaining + lot.remaining, found.held + lot.held)
        return sums

    async def drifts(self, limit: int) -> list[LotDrift]:
        s = self._s
        found: list[LotDrift] = []
        lots_of_entry: dict[str, list[Lot]] = defaultdict(list)
        for lot in s.lots.values():
            if lot.entry_id is not None:
                lots_of_entry[lot.entry_id].append(lot)
            if not 0 <= lot.held <= lot.remaining <= lot.amount:
                found.append(LotDrift(lot.user_id, f"lot {lot.id}", "lot bounds", 0, -1))
        for entry in s.entries.values():
            if entry.status != TransactionStatus.COMPLETED or entry.amount == 0:
                continue
            if entry.type == TransactionType.ADJUSTMENT:
                continue
            if entry.amount < 0:
                paid = sum(a.amount for a in s.allocations.get(entry.id, []))
                if paid != -entry.amount:
                    subject = f"entry {entry.id}"
                    drift = LotDrift(entry.user_id, subject, "lot allocations", -entry.amount, paid)
                    found.append(drift)
                continue
            lots = lots_of_entry.get(entry.id, [])
            if len(lots) != 1 or lots[0].amount != entry.amount:
                got = sum(lot.amount for lot in lots)
                found.append(
                    LotDrift(entry.user_id, f"entry {entry.id}", "credit lot", entry.amount, got)
                )
        for r in s.reservations.values():
            if r.status == ReservationStatus.PENDING:
                held = sum(a.amount for a in s.holds.get(r.id, []))
                if held != r.amount:
                    found.append(
                        LotDrift(r.user_id, f"reservation {r.id}", "lots held", r.amount, held)
                    )
        return found[:limit]
