"""The group-commit writer changes its pooled connection's session while it holds it
(autocommit, to send BEGIN and COMMIT in its own flights; generic plans): the pool must
get the connection back as it lent it, or the next unit of work would commit each
statement on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mana_credits_adapters.sql.debit_batch import WriterConnection
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_adapters.sql.tables import balances
from mana_credits_core.ledger import Debit, NoBalance

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
async def one_connection(clean_pg_store: SqlStore) -> AsyncIterator[AsyncEngine]:
    """An engine over the test database whose pool holds a single connection, so the
    writer's connection is the one the next checkout gets."""
    url = clean_pg_store.engine.url.render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


def debit(user_id: str) -> Debit:
    return Debit(
        entry_id=str(uuid.uuid4()),
        user_id=user_id,
        amount=1,
        app_id="app",
        description="debit",
        metadata=None,
        idempotency_key=str(uuid.uuid4()),
        now=NOW,
    )


async def test_the_pool_gets_the_writers_connection_back_as_it_lent_it(
    one_connection: AsyncEngine,
) -> None:
    writer = await WriterConnection.open(one_connection)
    assert isinstance(await writer.apply_one(debit("nobody")), NoBalance)
    await writer.close()

    async with one_connection.connect() as connection:
        assert await connection.scalar(sa.text("SHOW plan_cache_mode")) == "auto"
        await connection.execute(
            sa.insert(balances).values(
                user_id="rolled-back",
                balance=1,
                total_earned=1,
                total_spent=0,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        await connection.rollback()
    async with one_connection.connect() as connection:
        found = await connection.scalar(
            sa.select(sa.func.count()).where(balances.c.user_id == "rolled-back")
        )
    assert found == 0  # in a transaction again: the rollback undid the insert
