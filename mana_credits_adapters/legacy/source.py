"""The old service's PostgreSQL database, read for the import (the `LegacySource` port).

psycopg 3 directly rather than SQLAlchemy: the import reads a foreign layout it never
writes, in one snapshot, through server-side cursors, which psycopg gives as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.datetime import TimestamptzLoader

from mana_credits_core.gifts import GiftRedemption, RedemptionStatus
from mana_credits_core.ledger import LedgerEntry, TransactionStatus, TransactionType, UsageStat
from mana_credits_core.legacy import (
    SOURCE_TABLES,
    BrokenChain,
    DoubleCredit,
    DuplicateCharge,
    DuplicateRedemption,
    LegacyFindings,
    LegacyGift,
    LegacyLayout,
    LegacyReservation,
    LegacySubscription,
    LegacyUser,
    StripeCustomer,
    UnbackedGift,
)
from mana_credits_core.purchases import Package, Purchase, PurchaseStatus

from ..errors import (
    DatabaseForbidden,
    DatabaseUnreachable,
    InvalidDatabaseUrl,
    NoDatabase,
    SetupError,
)
from ..sql.target import redact
from . import queries
from .layout import CATALOG_QUERY, ENUM_QUERY, SCHEMA_QUERY, Catalog, judge

T = TypeVar("T")
Row = tuple[Any, ...]

BATCH_SIZE = 5_000
"""Rows per batch (and per FETCH from the server)."""
CONNECT_TIMEOUT = 10
"""Seconds to wait for the old database's server to answer a connection."""
SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
EXAMPLE = "postgresql://user:password@host/mana_credits"

_SCHEMA_OF = {"gift_codes": "gifts", "gift_redemptions": "gifts"}

# Every value of the old enum types read into the core's enums (layout.ENUMS has them).
TYPES = {
    "purchase": TransactionType.PURCHASE,
    "usage": TransactionType.USAGE,
    "refund": TransactionType.REFUND,
    "gift": TransactionType.GIFT,
    "grant": TransactionType.GRANT,
}
STATUSES = {status.value: status for status in TransactionStatus}
PURCHASE_STATUSES = {status.value: status for status in PurchaseStatus}
REDEMPTION_STATUSES = {status.value: status for status in RedemptionStatus}


class PostgresLegacySource:
    """The old database in one read-only REPEATABLE READ transaction (one snapshot, even
    while the old service still writes), session time zone UTC.

    Open it with `async with PostgresLegacySource.connect(url) as source:`. Every stream
    reads through a server-side cursor in batches of `batch_size` rows. Raises
    `NotLegacyLayout` (from `layout()`, which every read runs first), `DatabaseForbidden`
    when the role may not read a table, and `DatabaseUnreachable` when the server drops
    the connection.
    """

    def __init__(
        self, connection: psycopg.AsyncConnection[Row], shown: str, *, batch_size: int
    ) -> None:
        self._connection = connection
        self._shown = shown
        self._batch_size = batch_size
        self._layout: LegacyLayout | None = None
        self._cursors = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        batch_size: int = BATCH_SIZE,
        connect_timeout: int = CONNECT_TIMEOUT,
    ) -> AsyncIterator[PostgresLegacySource]:
        """Open the old database at `url` (`postgresql://` or `postgresql+psycopg://`).

        Raises `InvalidDatabaseUrl` for a URL that is no PostgreSQL URL, `NoDatabase` when
        the server has no such database, `DatabaseUnreachable` when the server cannot be
        reached or refuses the login; their messages show the URL without its password.
        """
        shown = redact(url)
        conninfo = _conninfo(url, shown)
        try:
            connection = await psycopg.AsyncConnection.connect(
                conninfo,
                connect_timeout=connect_timeout,
                application_name="mana-credits import",
            )
        except psycopg.Error as exc:
            raise _cannot_connect(conninfo, shown, exc) from None
        # PostgreSQL's infinite timestamps (e.g. a gift that never expires) have no
        # Python datetime: they are read as the largest and smallest ones.
        connection.adapters.register_loader("timestamptz", _Timestamptz)
        try:
            source = cls(connection, shown, batch_size=batch_size)
            with source._reading():
                await connection.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
                await connection.set_read_only(True)
                # The first statement opens the snapshot's transaction. The import writes
                # the target between two batches: the old server must not end it as idle.
                await connection.execute(
                    "SET TIME ZONE 'UTC'; SET idle_in_transaction_session_timeout = 0"
                )
            yield source
        finally:
            await connection.close()  # without a commit: the read-only transaction ends

    async def layout(self) -> LegacyLayout:
        if self._layout is None:
            with self._reading():
                schemas = await self._fetch(SCHEMA_QUERY)
                columns = await self._fetch(CATALOG_QUERY)
                enums = await self._fetch(ENUM_QUERY)
            catalog = Catalog(schemas={name for (name,) in schemas}, columns={}, enums={})
            for schema, table, column, udt_schema, udt_name in columns:
                catalog.columns.setdefault((schema, table), {})[column] = (udt_schema, udt_name)
            for enum, value in enums:
                catalog.enums.setdefault(enum, []).append(value)
            self._layout = judge(catalog)
        return self._layout

    async def counts(self) -> dict[str, int]:
        layout = await self.layout()
        found: dict[str, int] = {}
        with self._reading():
            for table in SOURCE_TABLES:
                if table == "reservations" and not layout.has_reservations:
                    found[table] = 0
                    continue
                name = sql.Identifier(_SCHEMA_OF.get(table, "credits"), table)
                ((count,),) = await self._fetch(sql.SQL(queries.COUNT).format(table=name))
                found[table] = count
        return found

    async def users(self) -> AsyncIterator[list[LegacyUser]]:
        layout = await self.layout()
        query = queries.users(has_reservations=layout.has_reservations)
        async for batch in self._stream(query, _user):
            yield batch

    async def entries(self) -> AsyncIterator[list[LedgerEntry]]:
        async for batch in self._stream(queries.ENTRIES, _entry):
            yield batch

    async def packages(self) -> AsyncIterator[list[Package]]:
        async for batch in self._stream(queries.PACKAGES, _package):
            yield batch

    async def purchases(self) -> AsyncIterator[list[Purchase]]:
        async for batch in self._stream(queries.PURCHASES, _purchase):
            yield batch

    async def usage(self) -> AsyncIterator[list[UsageStat]]:
        async for batch in self._stream(queries.USAGE, _usage):
            yield batch

    async def customers(self) -> AsyncIterator[list[StripeCustomer]]:
        async for batch in self._stream(queries.CUSTOMERS, _customer):
            yield batch

    async def subscriptions(self) -> AsyncIterator[list[LegacySubscription]]:
        async for batch in self._stream(queries.SUBSCRIPTIONS, _subscription):
            yield batch

    async def reservations(self) -> AsyncIterator[list[LegacyReservation]]:
        if not (await self.layout()).has_reservations:
            return
        async for batch in self._stream(queries.RESERVATIONS, _reservation):
            yield batch

    async def gifts(self) -> AsyncIterator[list[LegacyGift]]:
        async for batch in self._stream(queries.GIFTS, _gift):
            yield batch

    async def redemptions(self) -> AsyncIterator[list[GiftRedemption]]:
        async for batch in self._stream(queries.REDEMPTIONS, _redemption):
            yield batch

    async def findings(self) -> LegacyFindings:
        await self.layout()
        with self._reading():
            doubles = await self._fetch(queries.DOUBLE_CREDITS)
            charges = await self._fetch(queries.DUPLICATE_CHARGES)
            chains = await self._fetch(queries.BROKEN_CHAINS)
            redeemed = await self._fetch(queries.DUPLICATE_REDEMPTIONS)
            unbacked = await self._fetch(queries.UNBACKED_GIFTS)
        return LegacyFindings(
            double_credits=[
                DoubleCredit(purchase, user, tuple(ids), credits)
                for purchase, user, ids, credits in doubles
            ],
            duplicate_charges=[DuplicateCharge(*row) for row in charges],
            broken_chains=[BrokenChain(*row) for row in chains],
            duplicate_redemptions=[DuplicateRedemption(gift, tuple(ids)) for gift, ids in redeemed],
            unbacked_gifts=[UnbackedGift(*row) for row in unbacked],
        )

    async def _fetch(self, query: str | sql.Composed) -> list[Row]:
        cursor = await self._connection.execute(query)
        return await cursor.fetchall()

    async def _stream(self, query: str, convert: Callable[[Row], T]) -> AsyncIterator[list[T]]:
        """`query`'s rows converted, `batch_size` at a time, through a server-side cursor."""
        await self.layout()
        name = f"legacy_import_{next(self._cursors)}"
        with self._reading():
            async with self._connection.cursor(name) as cursor:
                await cursor.execute(query)
                while rows := await cursor.fetchmany(self._batch_size):
                    yield [convert(row) for row in rows]

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except pg_errors.InsufficientPrivilege as exc:
            raise DatabaseForbidden(
                f"the old database (source {self._shown}) refused a read: {_cause(exc)}; "
                "grant the import's role SELECT on the schemas credits and gifts, or use "
                "the old service's own role"
            ) from None
        except psycopg.OperationalError as exc:
            raise _lost(self._shown, exc) from None


class _Timestamptz(TimestamptzLoader):
    """timestamptz with `infinity` / `-infinity` as datetime.max / datetime.min (UTC),
    as psycopg's documentation suggests for infinite dates."""

    def load(self, data: Buffer) -> datetime:
        if data == b"infinity":
            return datetime.max.replace(tzinfo=UTC)
        if data == b"-infinity":
            return datetime.min.replace(tzinfo=UTC)
        return super().load(data)


def _conninfo(url: str, shown: str) -> str:
    """`url` as libpq takes it; `InvalidDatabaseUrl` unless it is a PostgreSQL URL."""
    if not url.startswith(SCHEMES):
        raise InvalidDatabaseUrl(
            f"the source {shown!r} is not a PostgreSQL URL, name the old database as {EXAMPLE}"
        )
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise InvalidDatabaseUrl(
            f"the source {shown!r} is not a valid PostgreSQL URL, name the old database as "
            f"{EXAMPLE}"
        ) from None
    return conninfo


def _cannot_connect(conninfo: str, shown: str, error: psycopg.Error) -> SetupError:
    parts = conninfo_to_dict(conninfo)
    where = f"{parts.get('host') or 'the local socket'}:{parts.get('port') or 5432}"
    cause = _cause(error)
    database = parts.get("dbname") or parts.get("user")
    if f'database "{database}" does not exist' in cause:
        return NoDatabase(
            f"PostgreSQL at {where} has no database {database} (source {shown}), "
            "check the database name of the old service's URL"
        )
    return DatabaseUnreachable(
        f"cannot connect to the old database at {where} (source {shown}): {cause}, check "
        "that PostgreSQL runs there and the source URL (user, password, host, port)"
    )


def _lost(shown: str, error: psycopg.OperationalError) -> DatabaseUnreachable:
    return DatabaseUnreachable(
        f"lost the old database (source {shown}) while reading it: {_cause(error)}; nothing "
        "was imported, run the import again"
    )


def _cause(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


def _user(row: Row) -> LegacyUser:
    return LegacyUser(*row)


def _entry(row: Row) -> LedgerEntry:
    id_, user, type_, status, *rest = row
    return LedgerEntry(id_, user, TYPES[type_], STATUSES[status], *rest)


def _package(row: Row) -> Package:
    return Package(*row)


def _purchase(row: Row) -> Purchase:
    id_, user, package, credits, price, intent, customer, status, metadata, created, done = row
    return Purchase(
        id=id_,
        user_id=user,
        package_id=package,
        credits=credits,
        price_euro_cents=price,
        stripe_payment_intent_id=intent,
        stripe_checkout_session_id=None,  # the old service took payment intents only
        stripe_customer_id=customer,
        status=PURCHASE_STATUSES[status],
        metadata=metadata,
        created_at=created,
        completed_at=done,
    )


def _usage(row: Row) -> UsageStat:
    return UsageStat(*row)


def _customer(row: Row) -> StripeCustomer:
    return StripeCustomer(*row)


def _subscription(row: Row) -> LegacySubscription:
    return LegacySubscription(*row)


def _reservation(row: Row) -> LegacyReservation:
    return LegacyReservation(*row)


def _gift(row: Row) -> LegacyGift:
    return LegacyGift(*row)


def _redemption(row: Row) -> GiftRedemption:
    id_, gift, user, status, *rest = row
    return GiftRedemption(id_, gift, user, REDEMPTION_STATUSES[status], *rest)
