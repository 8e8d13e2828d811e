"""The old database the import tests run against holds what its description says."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa

from mana_credits_adapters.legacy.source import PostgresLegacySource
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import create_engine
from mana_credits_adapters.sql.tables import metadata

from .conftest import MakeDatabase
from .fixture import (
    DEPLETED_GIFT_CODE,
    DRIFT_USERS,
    MISSING_BALANCE_USER,
    NEGATIVE_USER,
    ROWS,
    ROWS_OLDER,
    TABLES,
    checksum,
    conninfo,
    fill_bulk,
    held_credits,
    ledger_sums,
    old_balances,
    query,
)

pytestmark = pytest.mark.postgres

OLD_CODE = re.compile(r"^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{6}$")


def disagreeing(url: str) -> set[str]:
    """Users whose balances row is not (completed sum - held, credits in, credits out)."""
    rows, sums, held = old_balances(url), ledger_sums(url), held_credits(url)
    found = set()
    for user in set(rows) | set(sums):
        net, earned, spent = sums.get(user, (0, 0, 0))
        if rows.get(user) != (net - held.get(user, 0), earned, spent):
            found.add(user)
    return found


@pytest.mark.parametrize("layout", ["newest", "older"])
def test_balances_agree_with_the_ledger_except_the_planted_drifts(
    layout: str, legacy_url: str, older_legacy_url: str
) -> None:
    url = legacy_url if layout == "newest" else older_legacy_url
    assert disagreeing(url) == {*DRIFT_USERS, MISSING_BALANCE_USER}
    assert old_balances(url)[NEGATIVE_USER][0] < 0


def test_every_table_holds_rows_in_the_numbers_described(legacy_url: str) -> None:
    for table, schema in TABLES.items():
        ((count,),) = query(legacy_url, f"SELECT count(*) FROM {schema}.{table}")
        assert count == ROWS[table] > 0, table


def test_the_older_layout_lacks_grant_and_reservations(older_legacy_url: str) -> None:
    types = query(older_legacy_url, "SELECT enum_range(NULL::public.transaction_type)::text")
    assert types == [("{purchase,usage,refund,gift}",)]
    assert query(older_legacy_url, "SELECT to_regclass('credits.reservations')") == [(None,)]
    assert query(older_legacy_url, "SELECT to_regtype('public.reservation_status')") == [(None,)]
    assert ROWS_OLDER["reservations"] == 0
    ((count,),) = query(older_legacy_url, "SELECT count(*) FROM credits.transactions")
    assert count == ROWS_OLDER["transactions"]


def test_the_newest_layout_has_the_documented_enums_and_keys(legacy_url: str) -> None:
    types = dict(
        query(
            legacy_url,
            """SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
               FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname""",
        )
    )
    assert types["transaction_type"] == "{purchase,usage,refund,gift,grant}"
    assert types["reservation_status"] == "{reserved,committed,refunded}"
    assert len(types) == 7
    indexes = {name for (name,) in query(legacy_url, "SELECT indexname FROM pg_indexes")}
    assert {"transactions_reference_id_idx", "transactions_idempotency_key_key"} <= indexes
    cascade = query(
        legacy_url,
        "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'gifts.gift_redemptions'::regclass"
        " AND contype = 'f'",
    )
    assert cascade == [("c",)]


def test_the_data_looks_like_the_old_service_wrote_it(legacy_url: str) -> None:
    codes = [code for (code,) in query(legacy_url, "SELECT code FROM gifts.gift_codes")]
    assert all(OLD_CODE.match(code) for code in codes)
    assert set("LU") <= set(DEPLETED_GIFT_CODE)
    first, last = query(
        legacy_url, "SELECT min(created_at), max(created_at) FROM credits.transactions"
    )[0]
    assert datetime(2026, 1, 1, tzinfo=UTC) <= first <= last < datetime(2027, 1, 1, tzinfo=UTC)
    # One usage_stats row per completed debit of type usage, at the debit's moment.
    debits = query(
        legacy_url,
        "SELECT user_id, app_id, -amount, created_at FROM credits.transactions "
        "WHERE type = 'usage' AND status = 'completed'",
    )
    uses = query(legacy_url, "SELECT user_id, app_id, credits_used, date FROM credits.usage_stats")
    assert Counter(debits) == Counter(uses)
    keys = query(
        legacy_url,
        "SELECT count(*) FROM credits.transactions "
        "WHERE type = 'usage' AND idempotency_key IS NOT NULL",
    )
    assert keys[0][0] > 30
    grants = query(
        legacy_url,
        "SELECT DISTINCT app_id, idempotency_key IS NULL, metadata ?& array['reason', "
        "'referenceId'] FROM credits.transactions WHERE type = 'grant'",
    )
    assert grants == [("community", True, True)]


def test_checksum_tells_equal_contents_from_changed_ones(
    make_legacy_database: MakeDatabase, legacy_url: str
) -> None:
    url = make_legacy_database()
    first = checksum(url)
    assert first == checksum(legacy_url)  # the same rows in another database
    assert first == {
        f"{schema}.{table}": (ROWS[table], first[f"{schema}.{table}"][1])
        for table, schema in TABLES.items()
    }
    with psycopg.connect(conninfo(url)) as connection:
        connection.execute(
            "UPDATE credits.transactions SET description = description || '.' "
            "WHERE idempotency_key = 'chat-anna-0001'"
        )
    changed = checksum(url)
    assert changed.pop("credits.transactions") != first.pop("credits.transactions")
    assert changed == first


async def test_checksum_reads_this_services_layout_too(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO credits.balances (user_id, balance, total_earned, total_spent,"
                    " created_at, updated_at) VALUES ('u-1', 5, 5, 0, now(), now())"
                )
            )
    finally:
        await engine.dispose()
    sums = checksum(empty_database)
    tables = {f"{table.schema}.{table.name}" for table in metadata.sorted_tables}
    assert set(sums) == tables | {"credits.alembic_version"}
    assert sums["credits.balances"][0] == 1
    assert sums["credits.transactions"][0] == 0
    assert checksum(empty_database) == sums


async def test_fill_bulk_adds_consistent_users_and_entries(
    make_legacy_database: MakeDatabase,
) -> None:
    url = make_legacy_database()
    fill_bulk(url, users=2_000, entries=20_000)
    counts = dict(
        query(
            url,
            """SELECT 'balances', count(*) FROM credits.balances WHERE user_id LIKE 'bulk-%'
               UNION ALL SELECT 'transactions', count(*) FROM credits.transactions
                   WHERE user_id LIKE 'bulk-%'
               UNION ALL SELECT 'usage_stats', count(*) FROM credits.usage_stats
                   WHERE user_id LIKE 'bulk-%'
               UNION ALL SELECT 'usage', count(*) FROM credits.transactions
                   WHERE user_id LIKE 'bulk-%' AND type = 'usage'
               UNION ALL SELECT 'purchases', count(*) FROM credits.purchases
                   WHERE user_id LIKE 'bulk-%'
               UNION ALL SELECT 'purchase entries', count(*) FROM credits.transactions
                   WHERE user_id LIKE 'bulk-%' AND type = 'purchase'
               UNION ALL SELECT 'grants', count(*) FROM credits.transactions
                   WHERE user_id LIKE 'bulk-%' AND type = 'grant'
               UNION ALL SELECT 'gifts', count(*) FROM gifts.gift_codes
                   WHERE creator_id LIKE 'bulk-%'
               UNION ALL SELECT 'subscriptions', count(*) FROM credits.sync_subscriptions
                   WHERE user_id LIKE 'bulk-%'""",
        )
    )
    assert counts["balances"] == 2_000
    assert counts["transactions"] == 20_000
    assert counts["usage_stats"] == counts["usage"] > 15_000
    assert counts["purchases"] == counts["purchase entries"] == 2_000
    assert counts["grants"] > 0
    assert 0 < counts["gifts"] <= 20
    assert 0 < counts["subscriptions"] <= 50
    # Only the hand-written drifts: every bulk user's row is their ledger's.
    assert disagreeing(url) == {*DRIFT_USERS, MISSING_BALANCE_USER}
    assert all(
        balance >= 0 for user, (balance, _, _) in old_balances(url).items() if "bulk" in user
    )
    async with PostgresLegacySource.connect(url) as source:
        findings = await source.findings()
    assert {chain.user_id for chain in findings.broken_chains} == {"u-quentin"}
    assert {charge.user_id for charge in findings.duplicate_charges} == {"u-stefan"}
    assert len(findings.double_credits) == 2
