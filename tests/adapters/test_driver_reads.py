"""PostgreSQL readers: the balance and the history page on the driver's own pool, any
other read on the reader engine, connected only when it runs; 503 when the database is
away or every connection is busy, and back once the database is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from psycopg.rows import tuple_row

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.balances import PG_BALANCE_OF, PG_BALANCES_OF
from mana_credits_adapters.sql.driver_reads import BATCH_LIMIT, DriverReads
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_core import StoreUnavailable
from mana_credits_core.services import Services

from ..conftest import own_cluster
from ..postgres import PostgresCluster, free_port

pytestmark = pytest.mark.postgres


@pytest.fixture
def services(clean_pg_store: SqlStore, settings: Settings) -> Services:
    return build_services(clean_pg_store, settings, clock=TickingClock())


@pytest.fixture
def checkouts(clean_pg_store: SqlStore) -> Iterator[list[object]]:
    """Connections checked out of the reader engine's pool meanwhile."""
    seen: list[object] = []
    pool = clean_pg_store.reader_engine.sync_engine.pool

    def checked_out(*args: object) -> None:
        seen.append(args)

    sa.event.listen(pool, "checkout", checked_out)
    yield seen
    sa.event.remove(pool, "checkout", checked_out)


async def test_hot_reads_take_no_reader_engine_connection(
    services: Services, checkouts: list[object]
) -> None:
    await services.credits.grant("alice", 30, "test", "welcome")
    await services.credits.use("alice", 5, "chat", "message", idempotency_key="k1")

    balance = await services.credits.balance("alice")
    page = await services.credits.transactions_page("alice", 50)
    listed = await services.credits.transactions("alice", 10)

    assert (balance.balance, balance.total_spent) == (25, 5)
    assert [e.amount for e in page.entries] == [-5, 30]
    assert listed == page.entries
    assert checkouts == []


async def test_a_reader_running_other_statements_connects_for_them(
    clean_pg_store: SqlStore, services: Services, checkouts: list[object]
) -> None:
    await services.credits.grant("alice", 30, "test", "welcome")
    async with clean_pg_store.reader() as reader:
        found = await reader.balances.get("alice")  # on the driver's pool
        count = await reader.ledger.count("alice")  # checks out the reader connection
        entries = await reader.ledger.list("alice", limit=10, offset=0)
    summary = await services.credits.balance_summary("alice")

    assert found is not None
    assert found.balance == 30
    assert count == 1 == summary.transactions_count
    assert len(checkouts) == 2  # the reader's count, then the summary's
    assert [e.amount for e in entries] == [30]


async def test_every_connection_busy_answers_unavailable_at_once(pg_url: str) -> None:
    reads = DriverReads(sa.make_url(pg_url), size=1, limit=1, timeout=0.2, connect_timeout=5)
    try:
        slow = asyncio.create_task(reads.query("SELECT pg_sleep(1)", (), tuple_row))
        await asyncio.sleep(0.1)
        with pytest.raises(StoreUnavailable):
            await reads.query("SELECT 1", (), tuple_row)
        await slow
        assert await reads.query("SELECT 2", (), tuple_row) == [(2,)]
    finally:
        await reads.close()


async def test_a_database_nobody_listens_at_is_unavailable() -> None:
    url = sa.make_url(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    reads = DriverReads(url, size=2, limit=4, timeout=1, connect_timeout=5)
    with pytest.raises(StoreUnavailable):
        await reads.query("SELECT 1", (), tuple_row)
    await reads.close()


@pytest.fixture(scope="module")
def restartable() -> Iterator[PostgresCluster]:
    # Durable: a committed grant survives the crash below.
    yield from own_cluster(durable=True)


@pytest.fixture
async def own_store(restartable: PostgresCluster) -> AsyncIterator[SqlStore]:
    engine = create_engine(restartable.url, pool_size=2)
    await migrate.upgrade(engine)
    store = SqlStore(engine)
    yield store
    await store.close()


async def test_reads_answer_unavailable_while_the_database_is_down_then_recover(
    restartable: PostgresCluster, own_store: SqlStore, settings: Settings
) -> None:
    services = build_services(own_store, settings, clock=TickingClock())
    await services.credits.grant("bob", 7, "test", "welcome")
    assert (await services.credits.balance("bob")).balance == 7  # a pooled connection now

    restartable.halt()
    try:
        with pytest.raises(StoreUnavailable):
            await services.credits.balance("bob")
        with pytest.raises(StoreUnavailable):
            await services.credits.transactions_page("bob", 50)
    finally:
        restartable.resume()

    assert (await services.credits.balance("bob")).balance == 7
    assert [e.amount for e in (await services.credits.transactions_page("bob", 50)).entries] == [7]


async def test_after_a_crash_at_most_one_read_fails(
    restartable: PostgresCluster, own_store: SqlStore, settings: Settings
) -> None:
    services = build_services(own_store, settings, clock=TickingClock())
    await services.credits.grant("carol", 3, "test", "welcome")
    # Two idle connections in the pool, both dead after the crash.
    await asyncio.gather(*(services.credits.balance("carol") for _ in range(2)))
    restartable.restart_immediately()

    failures = 0
    for _ in range(3):
        try:
            found = await services.credits.balance("carol")
        except StoreUnavailable:
            failures += 1
        else:
            assert found.balance == 3
    assert failures <= 1


async def test_reads_run_in_utc_and_keep_the_urls_own_options(pg_url: str) -> None:
    url = sa.make_url(pg_url).update_query_dict({"options": "-c statement_timeout=1234"})
    reads = DriverReads(url, size=1, limit=1, timeout=1, connect_timeout=5)
    try:
        rows = await reads.query(
            "SELECT current_setting('TimeZone'), current_setting('statement_timeout'),"
            " TIMESTAMPTZ '2030-01-02 03:04:05+02'",
            (),
            tuple_row,
        )
    finally:
        await reads.close()
    assert rows == [("UTC", "1234ms", datetime(2030, 1, 2, 1, 4, 5, tzinfo=UTC))]
    assert rows[0][2].tzinfo is UTC  # entries keep it without a conversion


@pytest.fixture
def statements(clean_pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the driver's pool runs meanwhile (the real ones still run)."""
    reads = clean_pg_store.driver_reads
    ran: list[str] = []
    query = reads.query

    async def counted(sql: str, params: tuple[object, ...], row_factory: object) -> list[object]:
        ran.append(sql)
        return await query(sql, params, row_factory)

    monkeypatch.setattr(reads, "query", counted)
    return ran


async def test_concurrent_reads_share_statements_and_answer_as_alone(
    services: Services, statements: list[str]
) -> None:
    users = [f"user-{n}" for n in range(BATCH_LIMIT + 6)]
    for n, user in enumerate(users[:20]):
        await services.credits.grant(user, n + 1, "test", "welcome")
        for k in range(n % 4):
            await services.credits.use(user, 1, "chat", f"message {k}")
    alone_balances = [await services.credits.balance(u) for u in users[:20]]
    sizes = ((2, 0), (50, 1))
    pages = [(u, limit, offset) for u in [*users[:20], "nobody"] for limit, offset in sizes]
    alone_pages = [await services.credits.transactions_json(*page) for page in pages]
    statements.clear()

    # More reads than one statement takes; duplicates; users without a balance (created).
    asked = [*users, users[3], users[3]]
    balances, histories = await asyncio.gather(
        asyncio.gather(*(services.credits.balance(u) for u in asked)),
        asyncio.gather(*(services.credits.transactions_json(*page) for page in pages)),
    )

    assert balances[:20] == alone_balances
    assert balances[-2:] == [alone_balances[3]] * 2
    assert [b.balance for b in balances[20 : len(users)]] == [0] * (len(users) - 20)
    assert histories == alone_pages
    batched = [sql for sql in statements if "WITH ORDINALITY" in sql]
    # Balances: two statements of the first turn (BATCH_LIMIT reads, then the rest), the
    # users found missing read again after their rows were created. History: one.
    assert len(batched) <= 5 < len(asked) + len(pages)


async def test_a_batch_that_fails_fails_each_of_its_reads() -> None:
    url = sa.make_url(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    reads = DriverReads(url, size=2, limit=4, timeout=1, connect_timeout=5)
    try:
        results = await asyncio.gather(
            *(reads.batched(PG_BALANCE_OF, PG_BALANCES_OF, (f"user-{n}",)) for n in range(5)),
            return_exceptions=True,
        )
    finally:
        await reads.close()
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert len({id(r) for r in results}) == 5  # each read its own exception


async def test_a_cancelled_read_leaves_the_others_of_its_batch(
    services: Services,
) -> None:
    for user in ("ann", "ben"):
        await services.credits.grant(user, 4, "test", "welcome")
    ann = asyncio.create_task(services.credits.balance("ann"))
    ben = asyncio.create_task(services.credits.balance("ben"))
    await asyncio.sleep(0)  # both joined the batch
    ann.cancel()
    assert (await ben).balance == 4
    with pytest.raises(asyncio.CancelledError):
        await ann
