"""`PostgresLegacySource`'s session: one read-only snapshot, and what it refuses to read
(other layouts, unreachable servers, URLs of other databases)."""

from __future__ import annotations

import socket
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from mana_credits_adapters.errors import (
    DatabaseForbidden,
    DatabaseUnreachable,
    InvalidDatabaseUrl,
    NoDatabase,
)
from mana_credits_adapters.legacy.source import PostgresLegacySource
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import create_engine
from mana_credits_core.legacy import SOURCE_TABLES, NotLegacyLayout

from .conftest import MakeDatabase, collect
from .fixture import ROWS, checksum, conninfo, database_url

pytestmark = pytest.mark.postgres


async def test_reading_changes_nothing_and_sees_one_snapshot(
    make_legacy_database: MakeDatabase,
) -> None:
    url = make_legacy_database()
    before = checksum(url)
    async with PostgresLegacySource.connect(url, batch_size=10) as source:
        first = await collect(source.entries())
        # The old service writes meanwhile: the import's snapshot does not move.
        with psycopg.connect(conninfo(url)) as writer:
            writer.execute(
                "INSERT INTO credits.transactions (user_id, type, status, amount, "
                "balance_before, balance_after, app_id, description) "
                "VALUES ('u-late', 'usage', 'completed', -1, 1, 0, 'chat', 'late')"
            )
            writer.execute("DELETE FROM credits.balances WHERE user_id = 'u-anna'")
        again = await collect(source.entries())
        counts = await source.counts()
        users = await collect(source.users())
        await collect(source.usage())
        await collect(source.gifts())
        await source.findings()
        ((isolation, read_only),) = await (
            await source._connection.execute(
                "SELECT current_setting('transaction_isolation'), "
                "current_setting('transaction_read_only')"
            )
        ).fetchall()
    assert first == again
    assert counts == {table: ROWS[table] for table in SOURCE_TABLES}
    assert "u-late" not in {user.user_id for user in users}
    assert next(user for user in users if user.user_id == "u-anna").balance is not None
    assert (isolation, read_only) == ("repeatable read", "on")
    after = checksum(url)
    assert after["credits.transactions"][0] == before["credits.transactions"][0] + 1
    del before["credits.transactions"], after["credits.transactions"]
    del before["credits.balances"], after["credits.balances"]
    assert before == after


async def test_this_services_own_database_is_refused(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    async with PostgresLegacySource.connect(empty_database) as source:
        with pytest.raises(NotLegacyLayout, match="this service's own layout") as refused:
            await source.layout()
        with pytest.raises(NotLegacyLayout):
            await collect(source.entries())
    assert "--from must name the old service's database" in str(refused.value)
    assert refused.value.code == "not_legacy_layout"


async def test_an_empty_database_is_refused(empty_database: str) -> None:
    async with PostgresLegacySource.connect(empty_database) as source:
        with pytest.raises(NotLegacyLayout, match="no schema credits"):
            await source.counts()


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("DROP TABLE credits.usage_stats", "no table credits.usage_stats"),
        ("DROP TABLE gifts.gift_redemptions", "no table gifts.gift_redemptions"),
        (
            "ALTER TABLE credits.balances DROP COLUMN version",
            "credits.balances has no column version",
        ),
        (
            "ALTER TABLE credits.transactions ALTER COLUMN type TYPE text",
            "credits.transactions.type is of type text",
        ),
        (
            "ALTER TABLE credits.reservations DROP COLUMN reason",
            "credits.reservations has no column reason",
        ),
        ("ALTER TYPE public.transaction_type ADD VALUE 'bonus'", "has the value 'bonus'"),
        (
            "ALTER TYPE public.gift_code_status RENAME VALUE 'depleted' TO 'claimed'",
            "gift_code_status lacks the value 'depleted'",
        ),
    ],
)
async def test_a_damaged_layout_is_refused_naming_what_is_missing(
    make_legacy_database: MakeDatabase, damage: str, named: str
) -> None:
    url = make_legacy_database()
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        connection.execute(damage.encode())
    async with PostgresLegacySource.connect(url) as source:
        with pytest.raises(NotLegacyLayout, match=named):
            await source.layout()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql+psycopg://old:s3cret@127.0.0.1:{free_port()}/mana_credits"
    with pytest.raises(DatabaseUnreachable) as failed:
        async with PostgresLegacySource.connect(url):
            pass
    message = str(failed.value)
    assert "s3cret" not in message
    assert "old:***@127.0.0.1" in message
    assert "cannot connect to the old database at 127.0.0.1:" in message
    assert "refused" in message.lower()


async def test_an_unknown_host_is_a_clear_error() -> None:
    url = "postgresql://old:s3cret@no-such-host.invalid/mana_credits"
    with pytest.raises(DatabaseUnreachable, match=r"no-such-host\.invalid") as failed:
        async with PostgresLegacySource.connect(url, connect_timeout=5):
            pass
    assert "s3cret" not in str(failed.value)


async def test_a_missing_database_or_role_is_a_clear_error(pg_url: str) -> None:
    missing = database_url(pg_url, "no_such_database")
    with pytest.raises(NoDatabase, match="has no database no_such_database"):
        async with PostgresLegacySource.connect(missing):
            pass
    stranger = (
        make_url(missing)
        .set(username="stranger", password="s3cret", database="mana_credits")
        .render_as_string(hide_password=False)
    )
    with pytest.raises(DatabaseUnreachable, match='role "stranger" does not exist') as failed:
        async with PostgresLegacySource.connect(stranger):
            pass
    assert "s3cret" not in str(failed.value)


@pytest.mark.parametrize(
    "url", ["mysql://old@127.0.0.1/mana_credits", "sqlite:///old.db", "not a url"]
)
async def test_a_url_that_is_not_postgresql_is_refused(url: str) -> None:
    with pytest.raises(InvalidDatabaseUrl, match="not a PostgreSQL URL"):
        async with PostgresLegacySource.connect(url):
            pass


async def test_a_role_that_may_not_read_a_table_is_a_clear_error(
    make_legacy_database: MakeDatabase,
) -> None:
    url = make_legacy_database()
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(url), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN".encode())
        admin.execute(f"GRANT USAGE ON SCHEMA credits, gifts TO {role}".encode())
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA credits, gifts TO {role}".encode())
        admin.execute(f"REVOKE SELECT ON credits.usage_stats FROM {role}".encode())
    reader = make_url(url).set(username=role).render_as_string(hide_password=False)
    try:
        async with PostgresLegacySource.connect(reader) as source:
            assert (await source.layout()).has_reservations  # the catalog is not refused
            with pytest.raises(DatabaseForbidden, match="permission denied for table usage_stats"):
                await collect(source.usage())
    finally:
        with psycopg.connect(conninfo(url), autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}".encode())
            admin.execute(f"DROP ROLE {role}".encode())
