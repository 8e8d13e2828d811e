"""The lots' generated flags (migration 0012): `is_open` and `has_free` follow the
credits on both SQL stores, no lot index reads `remaining` or `held`, and so on
PostgreSQL a debit that leaves credits in its lot updates it in place (HOT), without
new index entries (docs/performance.md, "Lot updates in place")."""

from __future__ import annotations

import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import credit_lots
from mana_credits_core import TransactionType

l = credit_lots.c  # noqa: E741 - the lots' alias in the SQL this mirrors


async def flags(store: SqlStore, user: str) -> tuple[int, int, bool, bool]:
    async with store.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(l.remaining, l.held, l.is_open, l.has_free).where(l.user_id == user)
            )
        ).one()
    return row.remaining, row.held, bool(row.is_open), bool(row.has_free)


async def test_the_flags_follow_the_credits(sql_store: SqlStore, settings: Settings) -> None:
    services = build_services(sql_store, settings, clock=TickingClock())
    await services.credits.credit("ann", 10, TransactionType.GRANT, "funds")
    assert await flags(sql_store, "ann") == (10, 0, True, True)
    held = await services.reservations.reserve("ann", 4, "render", app_id="research")
    assert await flags(sql_store, "ann") == (10, 4, True, True)
    await services.credits.use("ann", 6, "chat", "answer")
    assert await flags(sql_store, "ann") == (4, 4, True, False)  # all that is left is held
    await services.reservations.commit(held.reservation.id)
    assert await flags(sql_store, "ann") == (0, 0, False, False)
    # What reads the flags sees it: the user has nothing to spend.
    assert (await services.credits.balance("ann")).balance == 0


async def test_no_lot_index_reads_the_credits(sql_store: SqlStore) -> None:
    postgres = sql_store.engine.dialect.name == "postgresql"
    query = (
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'credits' AND tablename = 'credit_lots'"
        if postgres
        else "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        " AND tbl_name = 'credit_lots' AND sql IS NOT NULL"
    )
    async with sql_store.engine.connect() as connection:
        rows = (await connection.execute(sa.text(query))).all()
    indexes: dict[str, str] = {str(row[0]): str(row[1]) for row in rows}
    partial = {"ix_credit_lots_open", "ix_credit_lots_due", "ix_credit_lots_unannounced"}
    assert partial <= set(indexes)
    for name, text in indexes.items():
        assert "remaining" not in text, (name, text)
        assert "held" not in text, (name, text)
    assert "is_open" in indexes["ix_credit_lots_open"]
    assert "has_free" in indexes["ix_credit_lots_due"]


async def test_a_debit_that_leaves_credits_updates_its_lot_in_place(
    clean_pg_store: SqlStore, settings: Settings
) -> None:
    """The statement the debits' write runs on a lot, in one transaction whose own
    counters PostgreSQL keeps at once (`pg_stat_get_xact_*`)."""
    store = clean_pg_store
    services = build_services(store, settings, clock=TickingClock())
    await services.credits.credit("bea", 10, TransactionType.GRANT, "funds")
    counts = sa.text(
        "SELECT pg_stat_get_xact_tuples_updated(CAST('credits.credit_lots' AS regclass)),"
        " pg_stat_get_xact_tuples_hot_updated(CAST('credits.credit_lots' AS regclass))"
    )
    burn = (
        sa.update(credit_lots)
        .where(l.user_id == "bea")
        .values(remaining=l.remaining - 1, expired_at=sa.func.coalesce(l.expired_at, None))
    )

    async def updates(*statements: sa.Executable) -> tuple[int, int]:
        """(lot rows updated, of them in place) by `statements`, rolled back."""
        async with store.engine.connect() as connection, connection.begin() as transaction:
            # The counters may hold this connection's earlier, unreported work.
            before = (await connection.execute(counts)).one()
            for statement in statements:
                await connection.execute(statement)
            after = (await connection.execute(counts)).one()
            await transaction.rollback()
        return after[0] - before[0], after[1] - before[1]

    assert await updates(*[burn] * 5) == (5, 5)
    # Emptying the lot changes `is_open`: that update has to reach the indexes.
    empty = sa.update(credit_lots).where(l.user_id == "bea").values(remaining=0)
    assert await updates(empty) == (1, 0)
