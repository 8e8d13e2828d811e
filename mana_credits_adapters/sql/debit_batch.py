"""One writer's connection and its batch of debits (PostgreSQL; the SQL is `debit_sql`).

The writer talks to psycopg directly, in pipeline mode, so that a batch costs two round
trips whatever its size, a lone debit included: BEGIN, the lock of the balances and the
read of the lots and keys it needs (three statements, one flight; a session's first batch
also sets its plans, `debit_sql.GENERIC_PLANS`); then the one statement that writes
everything, and COMMIT (one flight). A third comes only when a user's first lots fall
short of what the batch asks of them. No per-statement overhead above the driver.

The connection runs in autocommit mode and the writer sends BEGIN and COMMIT itself:
psycopg, left to open the transaction, sends its BEGIN in a flight of its own and waits
for the answer, and every pipeline ends with a sync of its own. SQLAlchemy restores the
isolation level when the connection goes back to the pool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row, namedtuple_row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.ledger import Balance, Debit, DebitOutcome, LedgerEntry, Replayed
from mana_credits_core.lot_book import LotBook, Writes
from mana_credits_core.lots import Lot, LotSource

from .debit_sql import (
    ALL_LOTS,
    BEGIN,
    COMMIT,
    DEFAULT_PLANS,
    ENTRY_BY_KEY,
    FIRST_LOTS,
    GENERIC_PLANS,
    LOCK,
    LOOK_UP,
    WRITE_BATCH,
)
from .entries import RowView, entry_from
from .store import CONNECT_FAILURES

log = logging.getLogger("mana_credits.debits")

ROLLBACK_RETRIES = 3


class BatchRejected(Exception):
    """The database refused the batch as a whole (a key claimed meanwhile by another
    process, a deadlock, a value it would not take): retry its debits one by one."""


class WriterConnection:
    """A pooled connection held by one writer while it has debits to apply."""

    def __init__(self, pooled: AsyncConnection, driver: psycopg.AsyncConnection[Any]) -> None:
        self._pooled = pooled
        self._driver = driver
        self.broken = False
        self._generic = False  # whether GENERIC_PLANS has committed on this session
        # One cursor per statement, for every batch: a cursor keeps its adaptation
        # context (the dumpers it looked up) while it runs the same statement, and
        # builds a new one whenever the statement changes.
        self._locking = driver.cursor(row_factory=dict_row)
        self._reading = driver.cursor(row_factory=dict_row)
        self._writing = driver.cursor()

    @classmethod
    async def open(cls, engine: AsyncEngine) -> WriterConnection:
        try:
            pooled = await engine.connect()
        except CONNECT_FAILURES as exc:
            raise StoreUnavailable() from exc
        try:
            # BEGIN and COMMIT travel in the flights of `_apply` (module docstring).
            await pooled.execution_options(isolation_level="AUTOCOMMIT")
            raw = await pooled.get_raw_connection()
        except CONNECT_FAILURES as exc:
            await pooled.invalidate()
            await pooled.close()
            raise StoreUnavailable() from exc
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.AsyncConnection)
        return cls(pooled, driver)

    async def close(self) -> None:
        """Return the connection to the pool with the session's defaults, or drop it."""
        reset = False
        try:
            if not self.broken:
                await self._driver.execute(DEFAULT_PLANS)
                reset = True
        except psycopg.Error:
            pass
        finally:
            if not reset:  # broken, or keeping the writer's setting: not for reuse
                await self._pooled.invalidate()
            await self._pooled.close()

    async def apply_batch(self, debits: Sequence[Debit]) -> list[DebitOutcome]:
        """Lock, look up, decide and write the batch in one transaction; raises
        `BatchRejected` when the database refuses it as a whole."""
        try:
            return await self._apply(debits)
        except psycopg.Error as exc:
            await self._recover(exc)
            log.info("batch of %d debits refused (%s): one by one", len(debits), exc.sqlstate)
            raise BatchRejected() from exc

    async def apply_one(self, debit: Debit) -> DebitOutcome:
        """A debit on its own: a batch of one, retried after a deadlock; a key claimed
        meanwhile by another process answers with that process's entry."""
        for attempt in range(1, ROLLBACK_RETRIES + 1):
            try:
                return (await self._apply([debit]))[0]
            except psycopg.errors.TransactionRollback as exc:
                # A deadlock with some multi-row transaction: nothing was applied; again.
                await self._recover(exc)
                if attempt == ROLLBACK_RETRIES:
                    raise StoreUnavailable() from exc
            except psycopg.errors.UniqueViolation as exc:
                # A concurrent request with the same key committed first: its entry.
                await self._recover(exc)
                if debit.idempotency_key is None:
                    raise
                return await self._replay(debit.user_id, debit.idempotency_key)
            except psycopg.Error as exc:
                await self._recover(exc)
                raise
        raise AssertionError("unreachable")

    async def _apply(self, debits: Sequence[Debit]) -> list[DebitOutcome]:
        asked, asking = look_up(debits)
        driver = self._driver
        try:
            # Flight 1. LOOK_UP is a statement of its own after LOCK: it reads what the
            # lock's previous holder committed (`debit_sql`).
            async with driver.pipeline():
                await driver.execute(BEGIN, prepare=False)
                if not self._generic:
                    # Rides the first flight rather than a round trip of its own; inside
                    # the transaction, it holds once that commits.
                    await driver.execute(GENERIC_PLANS, prepare=False)
                locking = self._locking
                await locking.execute(LOCK, {"users": asking["users"]}, prepare=True)
                reading = self._reading
                await reading.execute(LOOK_UP, asking, prepare=True)
            book = await book_of(driver, asked, asking, locking, reading)
            outcomes = [book.debit(d) for d in debits]
            # Flight 2: a refused write makes the server skip COMMIT; `_recover` then
            # rolls the transaction back.
            async with driver.pipeline():
                if book.writes:
                    await self._writing.execute(WRITE_BATCH, parameters(book.writes), prepare=True)
                await driver.execute(COMMIT, prepare=False)
            self._generic = True
        except psycopg.Error:
            raise
        except BaseException:
            # Decided nothing (stored data out of step, a cancelled caller): the
            # transaction must not stay open on this connection with its locks.
            await self._abandon()
            raise
        return outcomes

    async def _replay(self, user_id: str, key: str) -> Replayed:
        driver = self._driver
        try:
            cursor = driver.cursor(row_factory=namedtuple_row)
            await cursor.execute(ENTRY_BY_KEY, {"user_id": user_id, "key": key})
            row = await cursor.fetchone()
            await driver.rollback()
        except psycopg.Error as exc:
            await self._recover(exc)
            raise
        assert row is not None, "the unique constraint fired, so the entry exists"
        return Replayed(entry_from(row))

    async def _recover(self, exc: psycopg.Error) -> None:
        """Roll back after a refused statement; a lost connection is unavailability."""
        if not self._driver.closed and exc.sqlstate is not None:
            try:
                await self._driver.rollback()
                return
            except psycopg.Error:
                pass
        self.broken = True
        raise StoreUnavailable() from exc

    async def _abandon(self) -> None:
        """Roll back after a failure outside the database; if even that fails, the
        connection is dropped rather than reused with its transaction open."""
        try:
            await self._driver.rollback()
        except psycopg.Error:
            self.broken = True


def look_up(debits: Sequence[Debit]) -> tuple[dict[str, int], dict[str, Any]]:
    """What a batch asks of each user in all (credits, by user id) and `LOOK_UP`'s
    parameters for it (its `users` are `LOCK`'s, in user order)."""
    asked: dict[str, int] = {}
    for d in debits:
        asked[d.user_id] = asked.get(d.user_id, 0) + d.amount
    users = sorted(asked)
    keyed = [d for d in debits if d.idempotency_key is not None]
    return asked, {
        "users": users,
        "needs": [asked[u] for u in users],
        "now": max(d.now for d in debits),
        "key_users": [d.user_id for d in keyed],
        "keys": [d.idempotency_key for d in keyed],
    }


async def book_of(
    driver: psycopg.AsyncConnection[Any],
    asked: dict[str, int],
    asking: dict[str, Any],
    locking: psycopg.AsyncCursor[dict[str, Any]],
    reading: psycopg.AsyncCursor[dict[str, Any]],
) -> LotBook:
    """The `LotBook` that decides a batch, from the rows of `LOCK` (on `locking`) and
    `LOOK_UP` (on `reading`, with `look_up`'s `asked` and `asking`); users whose first
    lots fall short of what they are asked get all their lots read (`ALL_LOTS`)."""
    locked = await locking.fetchone()
    found = await reading.fetchone()
    assert locked is not None
    assert found is not None
    lots = [lot_from_json(lot) for lot in found["lots"] or ()]
    short = short_users(lots, asked, asking["now"])
    if short:
        # Rare: a cursor of its own would keep nothing worth keeping.
        extra = driver.cursor(row_factory=dict_row)
        await extra.execute(ALL_LOTS, {"users": short})
        complete = await extra.fetchone()
        assert complete is not None
        lots = [lot for lot in lots if lot.user_id not in short]
        lots += (lot_from_json(lot) for lot in complete["lots"] or ())
    return LotBook(
        (Balance(**b) for b in locked["balances"] or ()),
        lots,
        {(e["user_id"], e["idempotency_key"]): entry_from_json(e) for e in found["prior"] or ()},
    )


def parameters(writes: Writes, at: datetime | None = None) -> dict[str, object]:
    """A book's writes as `WRITE_BATCH` takes them (debits change only balances and
    what they accrued, the remaining and expiry of lots, allocations, entries, usage
    and priced usage); `at` stamps the balances when the book wrote nothing (the
    billing run's batch of pauses alone, whose `WRITE` ignores the priced parts)."""
    at = writes.at or at
    assert at is not None
    changed = list(writes.balances.values())
    lots = list(writes.lots.values())
    entries = writes.entries
    usage = writes.usage.items()
    priced = writes.operations.items()
    return {
        "m_users": [b.user_id for b in changed],
        "m_balance": [b.balance for b in changed],
        "m_spent": [b.total_spent for b in changed],
        "m_accrued": [b.accrued_milli for b in changed],
        "m_at": at,
        "l_ids": [lot.id for lot in lots],
        "l_remaining": [lot.remaining for lot in lots],
        "l_expired": [lot.expired_at for lot in lots],
        "a_entries": [entry_id for entry_id, _ in writes.allocations],
        "a_lots": [a.lot_id for _, a in writes.allocations],
        "a_amounts": [a.amount for _, a in writes.allocations],
        "e_ids": [e.id for e in entries],
        "e_users": [e.user_id for e in entries],
        "e_types": [e.type.value for e in entries],
        "e_amounts": [e.amount for e in entries],
        "e_before": [e.balance_before for e in entries],
        "e_after": [e.balance_after for e in entries],
        "e_apps": [e.app_id for e in entries],
        "e_descriptions": [e.description for e in entries],
        # Text cast to jsonb by the server: most debits carry none.
        "e_metadata": [None if e.metadata is None else json.dumps(e.metadata) for e in entries],
        "e_keys": [e.idempotency_key for e in entries],
        "e_at": [e.created_at for e in entries],
        "u_users": [user for (user, _, _), _ in usage],
        "u_apps": [app for (_, app, _), _ in usage],
        "u_days": [day for (_, _, day), _ in usage],
        "u_used": [used for _, (used, _) in usage],
        "u_operations": [operations for _, (_, operations) in usage],
        "o_users": [user for (user, _, _), _ in priced],
        "o_operations": [operation for (_, operation, _), _ in priced],
        "o_days": [day for (_, _, day), _ in priced],
        "o_calls": [calls for _, (calls, _, _) in priced],
        "o_quantity": [quantity for _, (_, quantity, _) in priced],
        "o_cost": [cost for _, (_, _, cost) in priced],
    }


def short_users(lots: Sequence[Lot], asked: dict[str, int], now: datetime) -> list[str]:
    """Users whose `FIRST_LOTS` spendable lots read by `LOOK_UP` (not past expiry at
    `now`) do not cover the credits the batch asks of them: their other lots may be
    needed."""
    free: dict[str, int] = {}
    counted: dict[str, int] = {}
    for lot in lots:
        if not lot.expired(now):
            free[lot.user_id] = free.get(lot.user_id, 0) + lot.free
            counted[lot.user_id] = counted.get(lot.user_id, 0) + 1
    return sorted(
        user
        for user, credits in asked.items()
        if counted.get(user, 0) == FIRST_LOTS and free[user] < credits
    )


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def lot_from_json(row: dict[str, Any]) -> Lot:
    """A lot row as `json_agg` renders it: timestamps arrive as ISO text."""
    created = _moment(row["created_at"])
    assert created is not None
    return Lot(
        id=row["id"],
        user_id=row["user_id"],
        source=LotSource(row["source"]),
        amount=row["amount"],
        remaining=row["remaining"],
        priority=row["priority"],
        expires_at=_moment(row["expires_at"]),
        created_at=created,
        held=row["held"],
        entry_id=row["entry_id"],
        purchase_id=row["purchase_id"],
        expired_at=_moment(row["expired_at"]),
    )


def entry_from_json(row: dict[str, Any]) -> LedgerEntry:
    """A ledger row as `json_agg` renders it: timestamps arrive as ISO text."""
    completed = row["completed_at"]
    return entry_from(
        RowView(
            row
            | {
                "created_at": datetime.fromisoformat(row["created_at"]),
                "completed_at": None if completed is None else datetime.fromisoformat(completed),
            }
        )
    )
