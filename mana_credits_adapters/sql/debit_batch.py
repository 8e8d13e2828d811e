"""One writer's connection and the SQL of a batch of debits (PostgreSQL).

The writer talks to psycopg directly, in pipeline mode, so that a batch costs two round
trips (BEGIN + lock and look-up; write + COMMIT) and a debit alone costs one (BEGIN +
the one-statement debit + COMMIT), with no per-statement overhead above the driver.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row, namedtuple_row
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.ledger import (
    Applied,
    Balance,
    Debit,
    DebitOutcome,
    LedgerEntry,
    NoBalance,
    Refused,
    Replayed,
    completed_entry,
)

from .balances import PG_DEBIT, pg_debit_outcome, pg_debit_parameters
from .entries import RowView, entry_from
from .store import CONNECT_FAILURES

log = logging.getLogger("mana_credits.debits")

# The one-statement debit of `SqlBalances`, in the driver's own placeholder style.
ONE_DEBIT = str(PG_DEBIT.compile(dialect=psycopg_dialect.dialect()))  # type: ignore[no-untyped-call]

ROLLBACK_RETRIES = 3

BALANCE_OF = "SELECT balance FROM credits.balances WHERE user_id = %s"

ENTRY_BY_KEY = (
    "SELECT * FROM credits.transactions WHERE user_id = %(user_id)s AND idempotency_key = %(key)s"
)

# Steps 1 and 2 in one round trip. The key lookup runs on the statement's snapshot,
# which may predate a commit the lock waited for: a key claimed in that instant makes
# the batch insert fail on the unique constraint, and the batch is retried one by one.
LOCK_AND_LOOK_UP = """
WITH locked AS (
    SELECT user_id, balance, total_earned, total_spent, debt FROM credits.balances
     WHERE user_id = ANY(CAST(%(users)s AS varchar[])) ORDER BY user_id FOR UPDATE
)
SELECT (SELECT json_agg(locked) FROM locked) AS balances,
       (SELECT json_agg(t) FROM credits.transactions t
          JOIN json_to_recordset(CAST(%(keys)s AS json)) AS k(user_id text, key text)
            ON t.user_id = k.user_id AND t.idempotency_key = k.key) AS prior
"""

# Step 4: the batch travels as one JSON document (cheap to encode, parsed by the
# server in C) and lands in three tables in one statement.
WRITE_BATCH = """
WITH moved AS (
    -- `= ANY` keeps the update on the primary key whatever the table's size; a join
    -- with the batch would be planned for a guessed row count and may scan the table.
    UPDATE credits.balances b
       SET balance = b.balance - m.spent[array_position(m.users, b.user_id)],
           total_spent = b.total_spent + m.spent[array_position(m.users, b.user_id)],
           updated_at = m.at
      FROM (SELECT CAST(%(m_users)s AS varchar[]) AS users,
                   CAST(%(m_spent)s AS bigint[]) AS spent,
                   CAST(%(m_at)s AS timestamptz) AS at) AS m
     WHERE b.user_id = ANY(CAST(%(m_users)s AS varchar[]))
),
entries AS (
    INSERT INTO credits.transactions
        (id, user_id, type, status, amount, balance_before, balance_after, app_id,
         description, metadata, idempotency_key, created_at, completed_at)
    SELECT e.id, e.user_id, e.type, 'completed', e.amount, e.balance_before,
           e.balance_after, e.app_id, e.description, e.metadata, e.idempotency_key,
           e.at, e.at
      FROM json_to_recordset(CAST(%(entries)s AS json))
        AS e(id text, user_id text, type text, amount bigint, balance_before bigint,
             balance_after bigint, app_id text, description text, metadata jsonb,
             idempotency_key text, at timestamptz)
)
INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
SELECT s.user_id, s.app_id, s.day, s.used, s.operations
  FROM json_to_recordset(CAST(%(usage)s AS json))
    AS s(user_id text, app_id text, day date, used bigint, operations bigint)
ON CONFLICT (user_id, app_id, day) DO UPDATE
   SET credits_used = u.credits_used + EXCLUDED.credits_used,
       operations = u.operations + EXCLUDED.operations
"""


class BatchRejected(Exception):
    """The database refused the batch as a whole (a key claimed meanwhile by another
    process, a deadlock, a value it would not take): retry its debits one by one."""


class WriterConnection:
    """A pooled connection held by one writer while it has debits to apply."""

    def __init__(self, pooled: AsyncConnection, driver: psycopg.AsyncConnection[Any]) -> None:
        self._pooled = pooled
        self._driver = driver
        self.broken = False

    @classmethod
    async def open(cls, engine: AsyncEngine) -> WriterConnection:
        try:
            pooled = await engine.connect()
        except CONNECT_FAILURES as exc:
            raise StoreUnavailable() from exc
        raw = await pooled.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.AsyncConnection)
        return cls(pooled, driver)

    async def close(self) -> None:
        if self.broken:
            await self._pooled.invalidate()
        await self._pooled.close()

    async def apply_batch(self, debits: Sequence[Debit]) -> list[DebitOutcome]:
        """Lock, look up, decide and write the batch in one transaction."""
        users = sorted({d.user_id for d in debits})
        keyed = [
            {"user_id": d.user_id, "key": d.idempotency_key}
            for d in debits
            if d.idempotency_key is not None
        ]
        driver = self._driver
        try:
            async with driver.pipeline():
                cursor = driver.cursor(row_factory=dict_row)
                await cursor.execute(LOCK_AND_LOOK_UP, {"users": users, "keys": json.dumps(keyed)})
                found = await cursor.fetchone()
                assert found is not None
                locked = {b["user_id"]: Balance(**b) for b in found["balances"] or ()}
                prior = {
                    (e["user_id"], e["idempotency_key"]): entry_from_json(e)
                    for e in found["prior"] or ()
                }
                plan = BatchPlan(locked, prior)
                outcomes = [plan.decide(d) for d in debits]
                if plan.entries:
                    await cursor.execute(WRITE_BATCH, plan.parameters())
                await driver.commit()
        except psycopg.Error as exc:
            await self._recover(exc)
            log.info("batch of %d debits refused (%s): one by one", len(debits), exc.sqlstate)
            raise BatchRejected() from exc
        return outcomes

    async def apply_one(self, debit: Debit) -> DebitOutcome:
        """A debit on its own: BEGIN, the one-statement debit and COMMIT in one flight."""
        for attempt in range(1, ROLLBACK_RETRIES + 1):
            try:
                return await self._apply_one(debit)
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

    async def _apply_one(self, debit: Debit) -> DebitOutcome:
        driver = self._driver
        async with driver.pipeline():
            cursor = driver.cursor(row_factory=dict_row)
            await cursor.execute(ONE_DEBIT, pg_debit_parameters(debit))
            await driver.commit()
            row = await cursor.fetchone()
        assert row is not None
        outcome = pg_debit_outcome(debit, row)
        if isinstance(outcome, Refused):
            # Decided on the newest balance, but the statement's plain reads saw its
            # start snapshot: what is available is read afresh (refusals only).
            fresh = driver.cursor(row_factory=dict_row)
            await fresh.execute(BALANCE_OF, (debit.user_id,))
            found = await fresh.fetchone()
            await driver.commit()
            return NoBalance() if found is None else Refused(found["balance"])
        return outcome

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


class BatchPlan:
    """The batch decided in arrival order against the locked balances."""

    def __init__(
        self, locked: dict[str, Balance], prior: dict[tuple[str, str], LedgerEntry]
    ) -> None:
        self._balances = locked
        self._keys = prior
        self._spent: dict[str, int] = {}
        self._usage: dict[tuple[str, str, date], tuple[int, int]] = {}
        self.entries: list[LedgerEntry] = []

    def decide(self, debit: Debit) -> DebitOutcome:
        key = None if debit.idempotency_key is None else (debit.user_id, debit.idempotency_key)
        if key is not None and key in self._keys:
            return Replayed(self._keys[key])
        current = self._balances.get(debit.user_id)
        if current is None:
            return NoBalance()
        if current.balance < debit.amount:
            return Refused(current.balance)
        after = Balance(
            current.user_id,
            current.balance - debit.amount,
            current.total_earned,
            current.total_spent + debit.amount,
            current.debt,
        )
        self._balances[debit.user_id] = after
        entry = completed_entry(debit, -debit.amount, current.balance, after.balance)
        self.entries.append(entry)
        if key is not None:
            self._keys[key] = entry  # a duplicate later in this batch is a replay
        self._spent[debit.user_id] = self._spent.get(debit.user_id, 0) + debit.amount
        if debit.counts_as_usage:
            usage = (debit.user_id, debit.app_id, debit.usage_day)
            used, operations = self._usage.get(usage, (0, 0))
            self._usage[usage] = (used + debit.amount, operations + 1)
        return Applied(entry, after)

    def parameters(self) -> dict[str, object]:
        entries = [
            {
                "id": e.id,
                "user_id": e.user_id,
                "type": e.type.value,
                "amount": e.amount,
                "balance_before": e.balance_before,
                "balance_after": e.balance_after,
                "app_id": e.app_id,
                "description": e.description,
                "metadata": e.metadata,
                "idempotency_key": e.idempotency_key,
                "at": e.created_at.isoformat(),
            }
            for e in self.entries
        ]
        usage = [
            {
                "user_id": user,
                "app_id": app,
                "day": day.isoformat(),
                "used": used,
                "operations": operations,
            }
            for (user, app, day), (used, operations) in self._usage.items()
        ]
        return {
            "m_users": list(self._spent),
            "m_spent": list(self._spent.values()),
            "m_at": max(e.created_at for e in self.entries),
            "entries": json.dumps(entries),
            "usage": json.dumps(usage),
        }


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
