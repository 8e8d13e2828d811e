"""SQL repository for balances: the atomic debit and credit, claw-backs, reinstatements,
debt collection and forfeits, each burning or adding credit lots as the core's
`LotBook` decides (`lots.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import BalanceNotFound, StoreUnavailable
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
from mana_credits_core.lot_book import LotBook, lot_for

from .entries import SqlLedger, entry_values
from .lots import add_lot, locked_book, write
from .statements import driver_query_batched, insert_for
from .tables import balances, transactions

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
        accrued_milli=row.accrued_milli,
    )


# Built once: the hottest read should not rebuild its statement per request.
BALANCE_OF = sa.select(balances).where(balances.c.user_id == sa.bindparam("user_id"))
PG_BALANCE_OF = (
    "SELECT user_id, balance, total_earned, total_spent, debt, accrued_milli"
    " FROM credits.balances WHERE user_id = %s"
)
# The same for several users, one row per user found, tagged with its user's position.
# `LIMIT 1` keeps the sub-query a look-up per user (the planner would otherwise join the
# list to the whole table).
PG_BALANCES_OF = (
    "SELECT q.n, b.* FROM unnest(%s::text[]) WITH ORDINALITY AS q(user_id, n)"
    " CROSS JOIN LATERAL (SELECT user_id, balance, total_earned, total_spent, debt,"
    " accrued_milli FROM credits.balances WHERE user_id = q.user_id LIMIT 1) b"
)


class SqlBalances:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, user_id: str) -> Balance | None:
        if self._c.dialect.name == "postgresql":
            # The hottest read goes straight to the driver on the same connection (and
            # transaction): the statement layer costs more than the query itself.
            rows = await driver_query_batched(self._c, PG_BALANCE_OF, PG_BALANCES_OF, (user_id,))
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
            return await self._debit(debit)
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

    async def _debit(self, debit: Debit) -> DebitOutcome:
        keys = [] if debit.idempotency_key is None else [(debit.user_id, debit.idempotency_key)]
        book = await locked_book(self._c, [debit.user_id], keys)
        outcome = book.debit(debit)
        await write(self._c, book.writes)
        return outcome

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
        for _ in range(2):
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
            ).one_or_none()
            if row is not None:
                break
            # An account deletion committed after `ensure` found the row took it away
            # (its id pseudonymized): the user starts anew, as one never seen.
        else:
            raise StoreUnavailable()
        after = balance_from(row)
        entry = completed_entry(credit, credit.amount, after.balance - credit.amount, after.balance)
        await self._c.execute(sa.insert(transactions).values(entry_values(entry)))
        await add_lot(self._c, lot_for(credit, entry))
        return Applied(entry, after)

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        book = await self._book(debit.user_id)
        taken = book.claw_back(debit)
        await write(self._c, book.writes)
        return taken

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        book = await self._book(debit.user_id)
        entry = book.collect_debt(debit)
        await write(self._c, book.writes)
        return entry

    async def forfeit(self, debit: Debit) -> LedgerEntry | None:
        book = await self._book(debit.user_id)
        entry = book.forfeit(debit)
        await write(self._c, book.writes)
        return entry

    async def _book(self, user_id: str) -> LotBook:
        book = await locked_book(self._c, [user_id])
        if book.balance(user_id) is None:
            raise BalanceNotFound()
        return book

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
        await add_lot(self._c, lot_for(credit, entry))
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
