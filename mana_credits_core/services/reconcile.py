"""Reconciliation: check the ledger invariants over the whole store, report drift."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..ports import LedgerTotals, LotTotals, Store

PROGRESS_EVERY = 100  # users between two progress reports
MAX_LOT_DRIFTS = 1000  # entries and reservations named at most (the rest are alike)


@dataclass(frozen=True, slots=True)
class Drift:
    """One broken invariant for one user: what was expected, what was found."""

    user_id: str
    check: str
    expected: int
    found: int

    def __str__(self) -> str:
        return f"{self.user_id}: {self.check} expected {self.expected}, found {self.found}"


@dataclass(slots=True)
class ReconcileReport:
    users_checked: int = 0
    drifts: list[Drift] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts


class ReconcileService:
    """Checks, for every user, that the balance is what the ledger says it is.

    balance == sum(completed entries) - credits held by pending reservations,
    total_earned == sum of completed credits, total_spent == sum of completed debits,
    balance >= 0, and no ledger entry or hold belongs to a user without a balance.
    Every active gift code is backed by a creation entry holding exactly its credits.

    Credit lots (docs/credits.md): per user, the credits left in lots == balance +
    credits held, and the credits held in lots == credits held by pending
    reservations; every debit entry's lot allocations sum to its amount, every credit
    entry has exactly one lot of its amount (entries from before lots excepted: see
    `balances.lots_since`), every pending reservation holds its amount from lots.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def run(
        self, user_id: str | None = None, progress: Callable[[int], None] | None = None
    ) -> ReconcileReport:
        """Check every user (or one); `progress(n)` is told of each batch of `n` users
        checked, for a progress display. Reads only."""
        report = ReconcileReport()
        async with self._store.unit_of_work() as uow:
            # One snapshot on PostgreSQL (repeatable reads are not needed: the store is
            # quiescent when reconcile matters, and a drift seen under load is re-checked).
            totals = await uow.ledger.totals()
            held = await uow.reservations.held_by_user()
            lots = await uow.lots.totals()
            seen: set[str] = set()
            async for balance in uow.balances.iterate():
                if user_id is not None and balance.user_id != user_id:
                    continue
                seen.add(balance.user_id)
                report.users_checked += 1
                sums = totals.get(balance.user_id, LedgerTotals())
                hold = held.get(balance.user_id, 0)
                in_lots = lots.get(balance.user_id, LotTotals())
                checks = (
                    ("balance = ledger - held", sums.net - hold, balance.balance),
                    ("total_earned", sums.earned, balance.total_earned),
                    ("total_spent", sums.spent, balance.total_spent),
                    ("lots remaining = balance + held", balance.balance + hold, in_lots.remaining),
                    ("lots held = held", hold, in_lots.held),
                )
                for check, expected, found in checks:
                    if expected != found:
                        report.drifts.append(Drift(balance.user_id, check, expected, found))
                if balance.balance < 0:
                    report.drifts.append(Drift(balance.user_id, "balance >= 0", 0, balance.balance))
                if progress is not None and report.users_checked % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
            if progress is not None and report.users_checked % PROGRESS_EVERY:
                progress(report.users_checked % PROGRESS_EVERY)
            orphans = (set(totals) | set(held) | set(lots)) - seen
            for orphan in sorted(orphans):
                if user_id is None or orphan == user_id:
                    report.drifts.append(Drift(orphan, "balance row exists", 1, 0))
            for lot in await uow.lots.drifts(MAX_LOT_DRIFTS):
                if user_id is None or lot.user_id == user_id:
                    check = f"{lot.subject}: {lot.check}"
                    report.drifts.append(Drift(lot.user_id, check, lot.expected, lot.found))
            if user_id is None:
                # Credits held by active gifts are exactly what their creators paid in.
                for gift_id, total, held_by_entry in await uow.gifts.unbacked():
                    report.drifts.append(
                        Drift(f"gift {gift_id}", "gift credits held", total, held_by_entry or 0)
                    )
        return report
