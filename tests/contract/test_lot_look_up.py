"""The group-committed debit reads only the lots a batch can touch (debit_batch.LOOK_UP):
the spendable lots in burn order up to what the batch asks, and the lots past their
expiry. These tests pin that a batch then decides exactly what the core decides with
every lot in view, on random lot sets full of ties (equal priorities, expiries, ages),
lots past their expiry, held lots and several debits of one user in one batch.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mana_credits_adapters.sql.debit_batch import WriterConnection
from mana_credits_adapters.sql.lots import lot_from, lot_values
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import balances, credit_lots, lot_allocations
from mana_credits_core.ledger import Applied, Balance, Debit, DebitOutcome, Refused
from mana_credits_core.lot_book import LotBook
from mana_credits_core.lots import Lot, LotSource

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
async def writer(clean_pg_store: SqlStore) -> AsyncIterator[WriterConnection]:
    connection = await WriterConnection.open(clean_pg_store.engine)
    yield connection
    await connection.close()


def random_lots(rng: random.Random, user: str) -> list[Lot]:
    """1..20 lots drawn from few values, so that every key of the burn order ties."""
    lots = []
    for _ in range(rng.randint(1, 20)):
        amount = rng.choice([1, 2, 5, 10])
        remaining = rng.randint(1, amount)
        lots.append(
            Lot(
                # Ids of 36 characters (the column's width) whose first character
                # sorts differently by byte and by a linguistic collation.
                id=rng.choice(["A", "a", "Z", "-", "0"])
                + str(uuid.UUID(int=rng.getrandbits(128)))[1:],
                user_id=user,
                source=LotSource.OPENING,
                amount=amount,
                remaining=remaining,
                held=rng.choice([0, 0, 0, remaining, remaining // 2]),
                priority=rng.choice([0, 50, 50, 100]),
                expires_at=rng.choice(
                    [
                        None,
                        NOW - timedelta(hours=1),
                        NOW,
                        NOW + timedelta(seconds=1),  # the batch's last moment
                        NOW + timedelta(days=1),
                        NOW + timedelta(days=1, microseconds=1),
                    ]
                ),
                created_at=NOW - timedelta(days=rng.choice([1, 1, 2, 30])),
            )
        )
    return lots


async def seed(store: SqlStore, lots: list[Lot]) -> list[Balance]:
    """The lots, and balances equal to their free credits not past expiry (as the
    service would hold them: expired credits leave the balance at the sweep, which
    these lots have not seen yet, so their balance still counts them)."""
    free: dict[str, int] = {}
    for lot in lots:
        free[lot.user_id] = free.get(lot.user_id, 0) + lot.free
    found = [Balance(user, credits, credits, 0) for user, credits in sorted(free.items())]
    async with store.engine.begin() as connection:
        await connection.execute(
            sa.insert(balances),
            [
                {
                    "user_id": b.user_id,
                    "balance": b.balance,
                    "total_earned": b.total_earned,
                    "total_spent": 0,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for b in found
            ],
        )
        await connection.execute(sa.insert(credit_lots), [lot_values(lot) for lot in lots])
    return found


def debit(rng: random.Random, user: str, n: int) -> Debit:
    return Debit(
        entry_id=f"entry-{user}-{n}",
        user_id=user,
        amount=rng.choice([1, 3, 7, 20, 60]),
        app_id="chat",
        description="test",
        metadata=None,
        idempotency_key=None,
        now=NOW + timedelta(seconds=n % 2),
    )


def summary(outcome: DebitOutcome) -> tuple[str, int]:
    if isinstance(outcome, Applied):
        return ("applied", outcome.entry.amount)
    assert isinstance(outcome, Refused), outcome
    return ("refused", outcome.available)


@pytest.mark.parametrize("seed_value", range(12))
async def test_a_batch_decides_as_the_core_with_every_lot_in_view(
    clean_pg_store: SqlStore, writer: WriterConnection, seed_value: int
) -> None:
    rng = random.Random(seed_value)
    users = [f"user-{seed_value}-{n}" for n in range(8)]
    lots = [lot for user in users for lot in random_lots(rng, user)]
    found = await seed(clean_pg_store, lots)
    debits = [debit(rng, rng.choice(users), n) for n in range(24)]

    expected_book = LotBook(found, lots)
    expected = [summary(expected_book.debit(d)) for d in debits]
    outcomes = await writer.apply_batch(debits)

    assert [summary(o) for o in outcomes] == expected
    async with clean_pg_store.engine.connect() as connection:
        rows = await connection.execute(sa.select(credit_lots))
        stored = {lot.id: lot for lot in map(lot_from, rows)}
        allocated = await connection.execute(
            sa.select(
                lot_allocations.c.entry_id, lot_allocations.c.lot_id, lot_allocations.c.amount
            )
        )
        allocations = sorted(tuple(row) for row in allocated)
    changed = {**{lot.id: lot for lot in lots}, **expected_book.writes.lots}
    assert stored == changed
    assert allocations == sorted(
        (entry_id, a.lot_id, a.amount) for entry_id, a in expected_book.writes.allocations
    )
