"""SQL repository for balances: the atomic debit (one statement on PostgreSQL) and
credit, claw-backs, reinstatements and debt collection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

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
    completed_entry,
)

from .entries import RowView, SqlLedger, entry_from, entry_values
from .statements import driver_query, insert_for
from .tables import balances, transactions
from .usage import count_usage

IDEMPOTENCY_CONSTRAINT = "uq_transactions_idempotency"


def is_idempotency_violation(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None) == IDEMPOTENCY_CONSTRAINT
    return "transactions.user_id, transactions.idempotency_key" in str(exc.orig)


def balance_from(row: Any) -> Balance:
    return Balance(
        user_id=row.user_id,
        balance=row.balance,
        total_earned=row.total_earned,
        total_spent=row.total_spent,
        debt=row.debt,
    )


# The whole debit in one statement and one round trip: the key is looked up, the
# balance row is conditionally updated (its row lock held only for this statement),
# the entry is written from the updated row, and the day's usage is counted. A
# concurrent duplicate key loses on the unique constraint, and the statement rolls back.
PG_DEBIT = sa.text(
    """
WITH p AS (
    SELECT CAST(:user_id AS varchar) AS user_id, CAST(:amount AS bigint) AS amount,
           CAST(:key AS varchar) AS key, CAST(:now AS timestamptz) AS now
),
prior AS (
    SELECT t.* FROM credits.transactions t, p
    WHERE t.user_id = p.user_id AND t.idempotency_key = p.key
),
debited AS (
    UPDATE credits.balances b
       SET balance = b.balance - p.amount, total_spent = b.total_spent + p.amount,
           updated_at = p.now
      FROM p
     WHERE b.user_id = p.user_id AND b.balance >= p.amount AND NOT EXISTS (SELECT 1 FROM prior)
 RETURNING b.user_id, b.balance, b.total_earned, b.total_spent, b.debt
),
entry AS (
    INSERT INTO credits.transactions
        (id, user_id, type, status, amount, balance_before, balance_after, app_id,
         description, metadata, idempotency_key, created_at, completed_at)
    SELECT :id, d.user_id, :type, 'completed', -p.amount, d.balance + p.amount, d.balance,
           :app_id, :description, CAST(:metadata AS jsonb), p.key, p.now, p.now
      FROM debited d, p
    RETURNING id
),
usage AS (
    INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
    SELECT d.user_id, :app_id, CAST(:day AS date), p.amount, 1 FROM debited d, p
     WHERE CAST(:counts AS boolean)
    ON CONFLICT (user_id, app_id, day) DO UPDATE
       SET credits_used = u.credits_used + EXCLUDED.credits_used,
           operations = u.operations + 1
)
SELECT d.balance, d.total_earned, d.total_spent, d.debt,
       (SELECT b.balance FROM credits.balances b, p WHERE b.user_id = p.user_id) AS available,
       prior.id AS prior_id, prior.user_id AS prior_user_id, prior.type AS prior_type,
       prior.status AS prior_status, prior.amount AS prior_amount,
       prior.balance_before AS prior_balance_before, prior.balance_after AS prior_balance_after,
       prior.app_id AS prior_app_id, prior.description AS prior_description,
       prior.metadata AS prior_metadata, prior.idempotency_key AS prior_idempotency_key,
       prior.created_at AS prior_created_at, prior.completed_at AS prior_completed_at
  FROM p
  LEFT JOIN debited d ON true
  LEFT JOIN prior ON true
"""
)


def pg_debit_parameters(debit: Debit) -> dict[str, Any]:
    return {
        "id": debit.entry_id,
        "user_id": debit.user_id,
        "amount": debit.amount,
        "key": debit.idempotency_key,
        "now": debit.now,
        "day": debit.usage_day,
        "counts": debit.counts_as_usage,
        "type": debit.type.value,
        "app_id": debit.app_id,
        "description": debit.description,
        "metadata": None if debit.metadata is None else json.dumps(debit.metadata),
    }


def pg_debit_outcome(debit: Debit, row: Mapping[Any, Any]) -> DebitOutcome:
    """What `PG_DEBIT`'s one row says happened."""
    if row["prior_id"] is not None:
        prior = {
            key.removeprefix("prior_"): value
            for key, value in row.items()
            if key.startswith("prior_")
        }
        return Replayed(entry_from(RowView(prior)))
    if row["balance"] is None:
        return NoBalance() if row["available"] is None else Refused(row["available"])
    balance = row["balance"]
    after = Balance(debit.user_id, balance, row["total_earned"], row["total_spent"], row["debt"])
    entry = completed_entry(debit, -debit.amount, balance + debit.amount, balance)
    return Applied(entry, after)


# Built once: the hottest read should not rebuild its statement per request.
BALANCE_OF = sa.select(balances).where(balances.c.user_id == sa.bindparam("user_id"))
PG_BALANCE_OF = (
    "SELECT user_id, balance, total_earned, total_spent, debt FROM credits.balances"
    " WHERE user_id = %s"
)


class SqlBalances:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, user_id: str) -> Balance | None:
        if self._c.dialect.name == "postgresql":
            # The hottest read goes straight to the driver on the same connection (and
            # transaction): the statement layer costs more than the query itself.
            rows = await driver_query(self._c, PG_BALANCE_OF, (user_id,))
            return Balance(*rows[0]) if rows else None
        row = (await self._c.execute(BALANCE_OF, {"user_id": user_id})).first()
        return None if row is None else balance_from(row)

    async def ensure(self, user_id: str, now: datetime) -> Balance:
        # INSERT ... ON CONFLICT DO NOTHING: concurrent first reads both succeed.
        await self._c.execute(
            insert_for(self._c, balances)
            .values(
                user_id=user_id,
                balance=0,
                total_earned=0,
                total_spent=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        found = await self.get(user_id)
        assert found is not None
        return found

    async def debit(self, debit: Debit) -> DebitOutcome:
        try:
            if self._c.dialect.name == "postgresql":
                return await self._debit_postgres(debit)
            return await self._debit_generic(debit)
        except IntegrityError as exc:
            if not is_idempotency_violation(exc) or debit.idempotency_key is None:
                raise
        return await self._replay_after_race(debit.user_id, debit.idempotency_key)

    async def _replay_after_race(self, user_id: str, key: str) -> Replayed:
        # A concurrent request with the same key committed first. Our transaction is
        # aborted and did nothing else (debits and credits run in their own unit of
        # work), so start afresh and answer with the winner's entry.
        await self._c.rollback()
        original = await SqlLedger(self._c).by_idempotency_key(user_id, key)
        assert original is not None, "the unique constraint fired, so the entry exists"
        return Replayed(original)

    async def _debit_postgres(self, debit: Debit) -> DebitOutcome:
        row = (await self._c.execute(PG_DEBIT, pg_debit_parameters(debit))).one()
        outcome = pg_debit_outcome(debit, row._mapping)
        if isinstance(outcome, Refused):
            # The refusal was decided on the newest balance, but the statement's plain
            # reads saw its start snapshot; a new statement sees what is there now.
            available = await self._c.scalar(
                sa.select(balances.c.balance).where(balances.c.user_id == debit.user_id)
            )
            return NoBalance() if available is None else Refused(available)
        return outcome

    async def _debit_generic(self, debit: Debit) -> DebitOutcome:
        if debit.idempotency_key is not None:
            prior = await SqlLedger(self._c).by_idempotency_key(
                debit.user_id, debit.idempotency_key
            )
            if prior is not None:
                return Replayed(prior)
        row = (
            await self._c.execute(
                sa.update(balances)
                .where(balances.c.user_id == debit.user_id, balances.c.balance >= debit.amount)
                .values(
                    balance=balances.c.balance - debit.amount,
                    total_spent=balances.c.total_spent + debit.amount,
                    updated_at=debit.now,
                )
                .returning(balances)
            )
        ).first()
        if row is None:
            current = await self.get(debit.user_id)
            return NoBalance() if current is None else Refused(current.balance)
        after = balance_from(row)
        entry = completed_entry(debit, -debit.amount, after.balance + debit.amount, after.balance)
        await self._c.execute(sa.insert(transactions).values(entry_values(entry)))
        if debit.counts_as_usage:
            await count_usage(self._c, debit.user_id, debit.app_id, debit.now, debit.amount)
        return Applied(entry, after)

    async def credit(self, credit: Credit) -> CreditOutcome:
        try:
            return await self._credit(credit)
        except IntegrityError as exc:
            if not is_idempotency_violation(exc) or credit.idempotency_key is None:
                raise
        return await self._replay_after_race(credit.user_id, credit.idempotency_key)

    async def _credit(self, credit: Credit) -> CreditOutcome:
        if credit.idempotency_key is not None:
            prior = await SqlLedger(self._c).by_idempotency_key(
                credit.user_id, credit.idempotency_key
            )
            if prior is not None:
                return Replayed(prior)
        await self.ensure(credit.user_id, credit.now)
        row = (
            await self._c.execute(
                sa.update(balances)
                .where(balances.c.user_id == credit.user_id)
                .values(
                    balance=balances.c.balance + credit.amount,
                    total_earned=balances.c.total_earned + credit.amount,
                    updated_at=credit.now,
                )
                .returning(balances)
            )
        ).one()
        after = balance_from(row)
        entry = completed_entry(credit, credit.amount, after.balance - credit.amount, after.balance)
        await self._c.execute(sa.insert(transactions).values(entry_values(entry)))
        return Applied(entry, after)

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        current = await self._locked(debit.user_id)
        taken = min(current.balance, debit.amount)
        shortfall = debit.amount - taken
        return await self._take(current, debit, taken, shortfall), shortfall

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        current = await self._locked(debit.user_id)
        taken = min(current.balance, current.debt)
        return await self._take(current, debit, taken, -taken)

    async def reinstate(self, credit: Credit) -> tuple[LedgerEntry | None, int]:
        current = await self._locked(credit.user_id)
        paid = min(current.debt, credit.amount)
        given = credit.amount - paid
        b = balances.c
        await self._c.execute(
            sa.update(balances)
            .where(b.user_id == current.user_id)
            .values(
                balance=b.balance + given,
                total_earned=b.total_earned + given,
                debt=b.debt - paid,
                updated_at=credit.now,
            )
        )
        if given == 0:
            return None, paid
        entry = completed_entry(credit, given, current.balance, current.balance + given)
        await self._c.execute(sa.insert(transactions).values(entry_values(entry)))
        return entry, paid

    async def _locked(self, user_id: str) -> Balance:
        # Clawbacks are rare: lock the row, decide in Python, write once.
        row = (
            await self._c.execute(
                sa.select(balances).where(balances.c.user_id == user_id).with_for_update()
            )
        ).first()
        if row is None:
            raise BalanceNotFound()
        return balance_from(row)

    async def _take(
        self, current: Balance, debit: Debit, taken: int, debt_change: int
    ) -> LedgerEntry | None:
        b = balances.c
        await self._c.execute(
            sa.update(balances)
            .where(b.user_id == current.user_id)
            .values(
                balance=b.balance - taken,
                total_spent=b.total_spent + taken,
                debt=b.debt + debt_change,
                updated_at=debit.now,
            )
        )
        if taken == 0:
            return None
        entry = completed_entry(debit, -taken, current.balance, current.balance - taken)
        await self._c.execute(sa.insert(transactions).values(entry_values(entry)))
        return entry

    async def iterate(self, batch_size: int = 1000) -> AsyncIterator[Balance]:
        last: str | None = None
        while True:
            query = sa.select(balances).order_by(balances.c.user_id).limit(batch_size)
            if last is not None:
                query = query.where(balances.c.user_id > last)
            rows = (await self._c.execute(query)).all()
            for row in rows:
                yield balance_from(row)
            if len(rows) < batch_size:
                return
            last = rows[-1].user_id
