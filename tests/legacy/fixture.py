"""An old service's database on a test PostgreSQL server, and what it holds.

`create_legacy_database(pg_url, name)` makes a database in the old layout
(`schema.sql`) filled with the hand-written data set of `dataset.py`; the constants
below name its users and rows by role, so tests assert against them rather than
against numbers typed twice. `fill_bulk` adds a large synthetic data set, `checksum`
fingerprints every table of a database (old layout or this service's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from .book import at
from .bulk import fill_bulk
from .dataset import story
from .operations import STARTER

__all__ = [
    "BROKEN_CHAIN_ENTRIES",
    "BROKEN_CHAIN_USER",
    "CANCELLED_GIFT",
    "COMMITTED_RESERVATION",
    "DEPLETED_GIFT",
    "DEPLETED_GIFT_CODE",
    "DOUBLE_CREDITS",
    "DRIFT_LESS_USER",
    "DRIFT_MORE_USER",
    "DRIFT_USERS",
    "DUPLICATE_CHARGES",
    "DUPLICATE_REDEMPTION",
    "EXPIRED_ACTIVE_GIFT",
    "FAILED_ENTRY",
    "MISSING_BALANCE_USER",
    "NEGATIVE_USER",
    "NEWEST_ONLY",
    "NO_EXPIRY_GIFT",
    "NO_PACKAGE_PURCHASE_USER",
    "PENDING_PAYMENT_INTENT",
    "PENDING_PURCHASE",
    "PENDING_PURCHASE_USER",
    "PERSONALIZED_GIFT",
    "PERSONALIZED_GIFT_CODE",
    "PERSONALIZED_GIFT_EMAIL",
    "PERSONALIZED_GIFT_ENTRY",
    "RECENT_RESERVATION",
    "REFUNDED_RESERVATION",
    "REPLAY",
    "ROWS",
    "ROWS_OLDER",
    "SCHEMA",
    "SIMPLE_GIFT",
    "STARTER_PACKAGE",
    "STUCK_RESERVATION",
    "SYNC_ACTIVE_LAST_CHARGE_AT",
    "SYNC_ACTIVE_NEXT_CHARGE_AT",
    "SYNC_ACTIVE_USER",
    "SYNC_GIFTED_USER",
    "SYNC_INACTIVE_USER",
    "SYNC_PAUSED_USER",
    "SYNC_QUARTERLY_USER",
    "TABLES",
    "TIMEZONE",
    "TOTALS_DRIFT_USER",
    "PlantedDoubleCredit",
    "Replay",
    "checksum",
    "conninfo",
    "create_legacy_database",
    "database_url",
    "fill_bulk",
    "held_credits",
    "ledger_sums",
    "legacy_ddl",
    "old_balances",
    "query",
]

SCHEMA = Path(__file__).with_name("schema.sql")
NEWEST_ONLY = ("-- newest: begin", "-- newest: end")
TIMEZONE = "Europe/Berlin"
"""The old database's default time zone: not UTC, so reading in UTC is proven."""

# Tables in the order their foreign keys allow inserting them.
TABLES = {
    "packages": "credits",
    "purchases": "credits",
    "balances": "credits",
    "transactions": "credits",
    "usage_stats": "credits",
    "stripe_customers": "credits",
    "sync_subscriptions": "credits",
    "reservations": "credits",
    "gift_codes": "gifts",
    "gift_redemptions": "gifts",
}

_NEWEST = story(newest=True)
_OLDER = story(newest=False)
_IDS = _NEWEST.ids

ROWS: dict[str, int] = {table: len(_NEWEST.tables.get(table, [])) for table in TABLES}
"""Rows per old table (names without schema) in the newest layout's data set."""
ROWS_OLDER: dict[str, int] = {table: len(_OLDER.tables.get(table, [])) for table in TABLES}
"""Rows per old table in the older layout's (no grants written as such, no reservations)."""

DRIFT_MORE_USER = "u-lena"
"""Balances row 25 credits above the sum of the completed transactions."""
DRIFT_LESS_USER = "u-max"
"""Balances row 40 credits below the sum of the completed transactions."""
TOTALS_DRIFT_USER = "u-nora"
"""Balance right, total_earned and total_spent not the ledger's sums."""
DRIFT_USERS = (DRIFT_MORE_USER, DRIFT_LESS_USER, TOTALS_DRIFT_USER)
"""Every user whose balances row disagrees with the ledger (and only those)."""
MISSING_BALANCE_USER = "u-oskar"
"""Has transactions (a grant, a debit) but no balances row."""
NEGATIVE_USER = "u-paula"
"""Balance -50: two debits raced past the check (the row agrees with the ledger)."""
BROKEN_CHAIN_USER = "u-quentin"
BROKEN_CHAIN_ENTRIES = (_IDS["stale_entry"], _IDS["after_stale_entry"])
"""The two transactions whose balance_before is not the previous balance_after."""


@dataclass(frozen=True)
class PlantedDoubleCredit:
    purchase_id: str
    user_id: str
    credits: int  # both entries together


DOUBLE_CREDITS = (
    PlantedDoubleCredit(_IDS["double_credit_by_intent"], "u-kira", 3000),  # metadata: intent only
    PlantedDoubleCredit(_IDS["double_credit"], "u-jonas", 2200),
)
"""Purchases credited twice, by purchase id (both balances include both credits)."""

SYNC_ACTIVE_USER = "u-rosa"
SYNC_ACTIVE_NEXT_CHARGE_AT = at("2026-12-15 03:00")
SYNC_ACTIVE_LAST_CHARGE_AT = at("2026-11-15 03:00")
SYNC_PAUSED_USER = "u-stefan"
SYNC_GIFTED_USER = "u-tara"
SYNC_QUARTERLY_USER = "u-uwe"
SYNC_INACTIVE_USER = "u-vera"  # yearly, switched off
DUPLICATE_CHARGES = (_IDS["duplicate_charge_1"], _IDS["duplicate_charge_2"])
"""The paused user's Cloud Sync charges that came less than a month after the previous."""

PENDING_PURCHASE = _IDS["pending_purchase"]
PENDING_PAYMENT_INTENT = "pi_legacy_pending_1"
PENDING_PURCHASE_USER = "u-clara"
NO_PACKAGE_PURCHASE_USER = "u-ida"
STARTER_PACKAGE = STARTER

PERSONALIZED_GIFT = _IDS["personalized_gift"]
PERSONALIZED_GIFT_CODE = "QR8FZH"
PERSONALIZED_GIFT_EMAIL = "Friend@Example.com"
PERSONALIZED_GIFT_ENTRY = _IDS["personalized_entry"]
"""The creator's negative `gift` transaction (the gift's reservation_transaction_id)."""
SIMPLE_GIFT = _IDS["simple_gift"]
DEPLETED_GIFT = _IDS["depleted_gift"]
DEPLETED_GIFT_CODE = "LUCK42"  # an old code: holds an L and a U
CANCELLED_GIFT = _IDS["cancelled_gift"]
EXPIRED_ACTIVE_GIFT = _IDS["expired_gift"]
NO_EXPIRY_GIFT = _IDS["no_expiry_gift"]  # no expiry, no creator name
DUPLICATE_REDEMPTION = (
    _IDS["twice_redeemed_gift"],
    (_IDS["twice_redemption_1"], _IDS["twice_redemption_2"]),
)
"""A gift code redeemed successfully twice (a race), and its two redemptions."""

RECENT_RESERVATION = _IDS["recent_reservation"]  # `reserved` since 2026-11-29
STUCK_RESERVATION = _IDS["stuck_reservation"]  # `reserved` since 2026-01-14
COMMITTED_RESERVATION = _IDS["committed_reservation"]
REFUNDED_RESERVATION = _IDS["refunded_reservation"]
FAILED_ENTRY = _IDS["failed_entry"]  # status failed: moved nothing


@dataclass(frozen=True)
class Replay:
    """A completed debit with its idempotency key, to send again."""

    entry_id: str
    user_id: str
    idempotency_key: str
    amount: int  # credits, negative
    app_id: str


REPLAY = Replay(_IDS["replay"], "u-anna", "chat-anna-0001", -12, "chat")


def conninfo(url: str) -> str:
    """A SQLAlchemy-style PostgreSQL URL as libpq takes it (no `+psycopg`)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def database_url(base_url: str, name: str) -> str:
    """`base_url` (a SQLAlchemy-style URL) naming database `name` instead."""
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def legacy_ddl(*, newest: bool) -> str:
    """The old layout's DDL; without the last versions' additions unless `newest`."""
    text = SCHEMA.read_text()
    if newest:
        return text
    kept, skipping = [], False
    for line in text.splitlines():
        if line.strip() == NEWEST_ONLY[0]:
            skipping = True
        elif line.strip() == NEWEST_ONLY[1]:
            skipping = False
        elif not skipping:
            kept.append(line)
    return "\n".join(kept)


def create_legacy_database(base_url: str, name: str, *, newest: bool = True) -> str:
    """Make database `name` (dropped first if it exists) on the server of `base_url`, in
    the old layout, holding the hand-written data set; return its URL (as `base_url`'s)."""
    with psycopg.connect(conninfo(base_url), autocommit=True) as admin:
        database = sql.Identifier(name)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(database))
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(database, sql.Literal(TIMEZONE))
        )
    url = database_url(base_url, name)
    data = _NEWEST if newest else _OLDER
    with psycopg.connect(conninfo(url)) as connection:
        connection.execute(legacy_ddl(newest=newest).encode())
        connection.commit()  # a value added to an enum is usable once committed
        with connection.cursor() as cursor:
            for table, schema in TABLES.items():
                rows = data.tables.get(table, [])
                if rows:
                    _insert(cursor, schema, table, rows)
    return url


def _insert(
    cursor: psycopg.Cursor[Any], schema: str, table: str, rows: list[dict[str, Any]]
) -> None:
    columns = list(rows[0])
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(schema, table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    cursor.executemany(
        statement,
        [[Jsonb(row[c]) if isinstance(row[c], dict) else row[c] for c in columns] for row in rows],
    )


def query(url: str, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row of one read, in a UTC session."""
    with psycopg.connect(conninfo(url), options="-c TimeZone=UTC") as connection:
        return connection.execute(statement.encode(), params).fetchall()


def old_balances(url: str) -> dict[str, tuple[int, int, int]]:
    """The old balances rows: user id -> (balance, total_earned, total_spent)."""
    rows = query(url, "SELECT user_id, balance, total_earned, total_spent FROM credits.balances")
    return {user: (balance, earned, spent) for user, balance, earned, spent in rows}


def ledger_sums(url: str) -> dict[str, tuple[int, int, int]]:
    """Each user's completed transactions: user id -> (net, credits in, credits out)."""
    rows = query(
        url,
        """SELECT user_id, sum(amount), sum(greatest(amount, 0)), sum(greatest(-amount, 0))
           FROM credits.transactions WHERE status = 'completed' GROUP BY user_id""",
    )
    return {user: (int(net), int(earned), int(spent)) for user, net, earned, spent in rows}


def held_credits(url: str) -> dict[str, int]:
    """Credits in reservations still `reserved`, per user (none on the older layout)."""
    if not query(url, "SELECT to_regclass('credits.reservations')")[0][0]:
        return {}
    rows = query(
        url,
        "SELECT user_id, sum(amount) FROM credits.reservations "
        "WHERE status = 'reserved' GROUP BY user_id",
    )
    return {user: int(amount) for user, amount in rows}


def checksum(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the schemas credits and gifts: `schema.table` -> (rows, md5 of the
    rows as text, in order). Any layout; equal results mean equal contents."""
    with psycopg.connect(conninfo(url)) as connection:
        connection.execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3"
        )
        tables = connection.execute(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_schema IN ('credits', 'gifts') AND table_type = 'BASE TABLE'
               ORDER BY table_schema, table_name"""
        ).fetchall()
        sums: dict[str, tuple[int, str]] = {}
        for schema, table in tables:
            # Rows ordered by their whole text: a total order that ignores where they sit.
            count, digest = connection.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                    "ORDER BY t::text COLLATE \"C\"), '')) FROM {} AS t"
                ).format(sql.Identifier(schema, table))
            ).fetchone() or (0, "")
            sums[f"{schema}.{table}"] = (count, digest)
        return sums
