"""One transaction's view of some users' balances and credit lots.

A store locks the balances it is about to change, reads their users' open lots in a
statement run after the lock (so it sees what the last holder of the lock committed),
and hands both to a `LotBook`. The book decides debits, holds, commits, releases,
claw-backs, forfeits and expiry with the rules of `lots`, against the balances and lots
as this transaction has changed them so far, and collects every change in `Writes` for
the store to make at once. The balance stays the authority on what may be spent; the
lots say which credits were spent. Every store decides alike because they all decide
here (docs/credits.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from .errors import BalanceNotFound
from .ledger import (
    Applied,
    Balance,
    Credit,
    Debit,
    DebitOutcome,
    LedgerEntry,
    NoBalance,
    Refused,
    Replayed,
    TransactionType,
    completed_entry,
)
from .lots import Allocation, Lot, burn, burn_key, claw_back, derived_id, total
from .pricing import MILLI, PRICING_KEY, accrue
from .reservations import (
    CommitHold,
    Held,
    Hold,
    ReleaseHold,
    Reservation,
    committed_entry,
    pending_reservation,
)

EXPIRY_APP = "system"
UsageKey = tuple[str, str, date]
OperationKey = tuple[str, str, date]  # (user id, operation, day)


class LotsOutOfStep(RuntimeError):
    """A user's lots do not hold what their balance says is spendable: stored data broke
    an invariant (reconcile names it). Nothing is decided on such data."""


EXPIRY_KEY_PREFIX = "expire\x1f"
"""Expiry keys start with the ASCII unit separator after `expire`: no client key can
(client keys may not hold control characters), as for reward keys."""


def expiry_key(lot_id: str) -> str:
    """The idempotency key of the one `expire` entry of a lot's free credits."""
    return f"{EXPIRY_KEY_PREFIX}{lot_id}"


def held_expiry_key(reservation_id: str) -> str:
    """The idempotency key of the `expire` entry of the expired lots' credits a
    released reservation gave back."""
    return f"{EXPIRY_KEY_PREFIX}hold\x1f{reservation_id}"


def lot_for(credit: Credit, entry: LedgerEntry) -> Lot:
    """The lot a credit entry creates: the entry's amount, with the entry's id."""
    return Lot(
        id=entry.id,
        user_id=entry.user_id,
        source=credit.source,
        amount=entry.amount,
        remaining=entry.amount,
        priority=credit.priority,
        expires_at=credit.expires_at,
        created_at=credit.now,
        entry_id=entry.id,
        purchase_id=credit.purchase_id,
    )


@dataclass(slots=True)
class Writes:
    """What a book decided, for the store to write: the final state of every balance
    and existing lot it changed, the entries, lot allocations (by entry id), hold
    allocations added (by reservation id), reservations whose holds ended, usage
    (user, app, day) -> (credits, operations) and priced usage (user, operation, day)
    -> (calls, quantity, milli-credits). `at` is the newest moment of a change."""

    balances: dict[str, Balance] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    lots: dict[str, Lot] = field(default_factory=dict)
    allocations: list[tuple[str, Allocation]] = field(default_factory=list)
    holds: list[tuple[str, Allocation]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    usage: dict[UsageKey, tuple[int, int]] = field(default_factory=dict)
    operations: dict[OperationKey, tuple[int, int, int]] = field(default_factory=dict)
    at: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.balances or self.lots or self.entries or self.released)


class LotBook:
    """Locked balances and the open lots of their users (see the module).

    `priors` are ledger entries already stored under the idempotency keys the caller
    will use, by (user id, key). Methods raise `LotsOutOfStep` when the lots cannot
    cover what the balance allows.
    """

    def __init__(
        self,
        balances: Iterable[Balance],
        lots: Iterable[Lot],
        priors: Mapping[tuple[str, str], LedgerEntry] | None = None,
    ) -> None:
        self._balances = {b.user_id: b for b in balances}
        self._lots: dict[str, Lot] = {}
        self._by_user: dict[str, list[str]] = {}
        for lot in lots:
            self._lots[lot.id] = lot
            self._by_user.setdefault(lot.user_id, []).append(lot.id)
        self._keys = dict(priors or {})
        self.writes = Writes()

    def balance(self, user_id: str) -> Balance | None:
        return self._balances.get(user_id)

    def lots_of(self, user_id: str) -> list[Lot]:
        """The user's open lots as this transaction sees them now, in burn order."""
        return sorted((self._lots[i] for i in self._by_user.get(user_id, ())), key=burn_key)

    # Debits.

    def debit(self, debit: Debit) -> DebitOutcome:
        """A debit (see `Debit`): replayed, refused, or burned from the lots. Lots past
        their expiry are expired first, so only unexpired credits pay. A priced debit
        charges the whole credits due with what the user accrued and carries the rest
        (`pricing.accrue`); refused, it accrues nothing."""
        key = debit.idempotency_key
        if key is not None and (debit.user_id, key) in self._keys:
            return Replayed(self._keys[(debit.user_id, key)])
        if debit.user_id not in self._balances:
            return NoBalance()
        self.expire_due(debit.user_id, debit.now)
        current = self._balances[debit.user_id]
        amount, accrued = debit.amount, current.accrued_milli
        if debit.priced is not None:
            amount, accrued = accrue(current.accrued_milli, debit.priced.cost_milli)
        if current.balance < amount:
            return Refused(current.balance, None if debit.priced is None else amount)
        entry = self._take(debit, self._burn(debit.user_id, amount, debit.now), accrued=accrued)
        if debit.counts_as_usage:
            self._count(debit.user_id, debit.app_id, debit.usage_day, amount)
        if debit.priced is not None:
            p = debit.priced
            self._count_operation(
                debit.user_id, p.operation, debit.usage_day, p.quantity, p.cost_milli
            )
        return Applied(entry, self._balances[debit.user_id])

    def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        """Take up to `debit.amount` back: the lot of `debit.purchase_id` first, then in
        burn order; what is already spent becomes debt. Returns the entry (None if
        nothing could be taken) and the debt added. Raises `BalanceNotFound`."""
        current = self._existing(debit.user_id, debit.now)
        first = next(
            (
                lot.id
                for lot in self.lots_of(debit.user_id)
                if debit.purchase_id is not None and lot.purchase_id == debit.purchase_id
            ),
            None,
        )
        taken, debt = claw_back(self.lots_of(debit.user_id), debit.amount, debit.now, first)
        if total(taken) != min(current.balance, debit.amount):
            raise LotsOutOfStep(f"the lots of {debit.user_id} do not cover the balance")
        if not taken:
            self._set_balance(replace(current, debt=current.debt + debt), debit.now)
            return None, debt
        return self._take(debit, taken, debt_change=debt), debt

    def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        """Take what the user owes, as far as the balance allows (`debit.amount` is
        ignored), in burn order. Raises `BalanceNotFound`."""
        current = self._existing(debit.user_id, debit.now)
        amount = min(current.balance, current.debt)
        if amount == 0:
            return None
        taken = self._burn(debit.user_id, amount, debit.now)
        return self._take(debit, taken, debt_change=-amount)

    def forfeit(self, debit: Debit) -> LedgerEntry | None:
        """Take the whole spendable balance (`debit.amount` is ignored), lots past their
        expiry expired first; None when nothing is left. Raises `BalanceNotFound`."""
        current = self._existing(debit.user_id, debit.now)
        if current.balance == 0:
            return None
        return self._take(debit, self._burn(debit.user_id, current.balance, debit.now))

    # Expiry.

    def expire_due(self, user_id: str, now: datetime) -> list[LedgerEntry]:
        """Expire the free credits of each of the user's lots past its expiry and not
        expired yet: one `expire` entry per lot (its key `expiry_key(lot id)`), the lot
        keeping only its held credits. Held credits expire when released."""
        entries: list[LedgerEntry] = []
        if not any(self._due(self._lots[i], now) for i in self._by_user.get(user_id, ())):
            return entries  # the common case, without sorting the user's lots
        for lot in self.lots_of(user_id):
            if self._due(lot, now):
                why: dict[str, object] = {"lotId": lot.id}
                expiry = _expiry(user_id, expiry_key(lot.id), lot.free, now, why)
                entries.append(self._take(expiry, [Allocation(lot.id, lot.free)]))
                self._set_lot(replace(self._lots[lot.id], expired_at=now))
        return entries

    @staticmethod
    def _due(lot: Lot, now: datetime) -> bool:
        """Whether the lot's free credits are past their expiry and not expired yet."""
        return lot.expired(now) and lot.free > 0 and lot.expired_at is None

    # Reservations.

    def hold(self, hold: Hold) -> Held | None:
        """Set `hold.amount` credits aside from the lots, in burn order, into a new
        pending reservation; None if they do not fit. Raises `BalanceNotFound`."""
        current = self._existing(hold.user_id, hold.now)
        if current.balance < hold.amount:
            return None
        reservation = pending_reservation(hold)
        for part in self._burn(hold.user_id, hold.amount, hold.now):
            lot = self._lots[part.lot_id]
            self._set_lot(replace(lot, held=lot.held + part.amount))
            self.writes.holds.append((reservation.id, part))
        after = replace(current, balance=current.balance - hold.amount)
        self._set_balance(after, hold.now)
        return Held(reservation, after.balance)

    def commit(
        self, reservation: Reservation, commit: CommitHold, holds: Iterable[Allocation]
    ) -> LedgerEntry:
        """Spend what `commit` charges of a reservation's held credits (its `holds`, in
        burn order) as a usage entry and give the rest back in the same step, as
        `release` does (credits of lots past their expiry then expire). A priced commit
        charges what its cost makes due with what the user accrued and carries the
        rest. Raises ValueError for a charge above the reservation's amount."""
        parts = sorted(
            self._holds(reservation, holds), key=lambda p: burn_key(self._lots[p.lot_id])
        )
        user_id = reservation.user_id
        current = self._balances[user_id]
        accrued = current.accrued_milli
        if commit.priced is not None:
            charged, accrued = accrue(current.accrued_milli, commit.priced.cost_milli)
        else:
            charged = reservation.amount if commit.amount is None else commit.amount
        if not 0 <= charged <= reservation.amount:
            raise ValueError(f"a commit charges 0..{reservation.amount} credits, not {charged}")
        spent, back = _split(parts, charged)
        entry = committed_entry(reservation, commit, current.balance, charged, accrued)
        for part in spent:
            lot = self._lots[part.lot_id]
            self._set_lot(
                replace(lot, remaining=lot.remaining - part.amount, held=lot.held - part.amount)
            )
            self.writes.allocations.append((entry.id, part))
        self._set_balance(
            replace(current, total_spent=current.total_spent + charged, accrued_milli=accrued),
            commit.now,
        )
        self.writes.entries.append(entry)
        self.writes.released.append(reservation.id)
        day = commit.now.date()
        self._count(user_id, reservation.app_id, day, charged)
        if commit.priced is not None:
            p = commit.priced
            self._count_operation(user_id, p.operation, day, p.quantity, p.cost_milli)
        elif reservation.priced is not None:  # an operation's reservation charged by amount
            p = reservation.priced
            self._count_operation(user_id, p.operation, day, p.quantity, charged * MILLI)
        if back:
            self._give_back(reservation, back, commit.now)
        return entry

    def release(
        self, reservation: Reservation, release: ReleaseHold, holds: Iterable[Allocation]
    ) -> Balance:
        """Give a reservation's held credits back to their lots; what lies in lots past
        their expiry then expires with one `expire` entry. Returns the balance after."""
        parts = self._holds(reservation, holds)
        self.writes.released.append(reservation.id)
        self._give_back(reservation, parts, release.now)
        return self._balances[reservation.user_id]

    # Internals.

    def _give_back(self, reservation: Reservation, parts: list[Allocation], now: datetime) -> None:
        """Return held `parts` of a reservation to their lots and the balance; the
        credits of lots past their expiry then expire with one `expire` entry."""
        user_id = reservation.user_id
        self.expire_due(user_id, now)
        current = self._balances[user_id]
        for part in parts:
            lot = self._lots[part.lot_id]
            self._set_lot(replace(lot, held=lot.held - part.amount))
        self._set_balance(replace(current, balance=current.balance + total(parts)), now)
        lapsed = [p for p in parts if self._lots[p.lot_id].expired(now)]
        if lapsed:
            why: dict[str, object] = {"reservationId": reservation.id}
            key = held_expiry_key(reservation.id)
            self._take(_expiry(user_id, key, total(lapsed), now, why), lapsed)
            for part in lapsed:
                lot = self._lots[part.lot_id]
                self._set_lot(replace(lot, expired_at=lot.expired_at or now))

    def _existing(self, user_id: str, now: datetime) -> Balance:
        if user_id not in self._balances:
            raise BalanceNotFound()
        self.expire_due(user_id, now)
        return self._balances[user_id]

    def _burn(self, user_id: str, amount: int, now: datetime) -> list[Allocation]:
        if amount == 0:  # a priced debit whose cost stays below the next whole credit
            return []
        taken = burn(self.lots_of(user_id), amount, now)
        if taken is None:
            raise LotsOutOfStep(f"the lots of {user_id} do not cover the balance")
        return taken

    def _holds(self, reservation: Reservation, holds: Iterable[Allocation]) -> list[Allocation]:
        parts = list(holds)
        if total(parts) != reservation.amount or any(p.lot_id not in self._lots for p in parts):
            raise LotsOutOfStep(f"reservation {reservation.id} holds other credits than its lots")
        return parts

    def _take(
        self,
        command: Debit,
        parts: list[Allocation],
        *,
        debt_change: int = 0,
        accrued: int | None = None,
    ) -> LedgerEntry:
        """Take the `parts` from their lots and the balance, as one entry of `command`;
        a priced command leaves `accrued` milli-credits accrued, recorded in the entry."""
        current = self._balances[command.user_id]
        taken = total(parts)
        after = current.debited(
            taken, debt_change, current.accrued_milli if accrued is None else accrued
        )
        if after.balance < 0:
            raise LotsOutOfStep(f"the lots of {command.user_id} hold more than the balance")
        for part in parts:
            lot = self._lots[part.lot_id]
            self._set_lot(lot.spent(part.amount))
        entry = completed_entry(command, -taken, current.balance, after.balance)
        if command.priced is not None:
            record = command.priced.record(after.accrued_milli)
            entry = replace(entry, metadata={**(entry.metadata or {}), PRICING_KEY: record})
        self._set_balance(after, command.now)
        self.writes.entries.append(entry)
        self.writes.allocations.extend((entry.id, part) for part in parts)
        if command.idempotency_key is not None:
            self._keys[(command.user_id, command.idempotency_key)] = entry
        return entry

    def _set_lot(self, lot: Lot) -> None:
        if not 0 <= lot.held <= lot.remaining <= lot.amount:
            raise LotsOutOfStep(f"lot {lot.id} would leave its bounds")
        self._lots[lot.id] = lot
        self.writes.lots[lot.id] = lot

    def _set_balance(self, balance: Balance, now: datetime) -> None:
        self._balances[balance.user_id] = balance
        self.writes.balances[balance.user_id] = balance
        self.writes.at = now if self.writes.at is None else max(self.writes.at, now)

    def _count(self, user_id: str, app_id: str, day: date, amount: int) -> None:
        key = (user_id, app_id, day)
        used, operations = self.writes.usage.get(key, (0, 0))
        self.writes.usage[key] = (used + amount, operations + 1)

    def _count_operation(
        self, user_id: str, operation: str, day: date, quantity: int, cost: int
    ) -> None:
        key = (user_id, operation, day)
        calls, units, milli = self.writes.operations.get(key, (0, 0, 0))
        self.writes.operations[key] = (calls + 1, units + quantity, milli + cost)


def _split(parts: list[Allocation], amount: int) -> tuple[list[Allocation], list[Allocation]]:
    """The first `amount` credits of `parts` (in their order) and the rest."""
    spent: list[Allocation] = []
    rest: list[Allocation] = []
    left = amount
    for part in parts:
        take = min(part.amount, left)
        left -= take
        if take:
            spent.append(Allocation(part.lot_id, take))
        if part.amount > take:
            rest.append(Allocation(part.lot_id, part.amount - take))
    return spent, rest


def expire_all(book: LotBook, user_ids: Iterable[str], now: datetime) -> list[LedgerEntry]:
    """`LotBook.expire_due` for each of the users that has a balance in the book, in
    user id order; every `expire` entry written. Raises `LotsOutOfStep` (then the
    book's writes must not be made)."""
    entries: list[LedgerEntry] = []
    for user_id in sorted(set(user_ids)):
        if book.balance(user_id) is not None:
            entries.extend(book.expire_due(user_id, now))
    return entries


def _expiry(
    user_id: str, key: str, amount: int, now: datetime, metadata: dict[str, object]
) -> Debit:
    """The debit an expiry writes; its entry id derives from its key (once per key)."""
    return Debit(
        entry_id=derived_id(f"{user_id}\x1f{key}"),
        user_id=user_id,
        amount=amount,
        app_id=EXPIRY_APP,
        description="Credits expired",
        metadata=metadata,
        idempotency_key=key,
        now=now,
        type=TransactionType.EXPIRE,
    )
