"""History pages as the stores write them (`list_json`) are byte for byte the answer the
server built before from entries (`TransactionOut` rendered, then encoded), for entries
of every shape: each type and status, metadata absent, null, empty, nested, unicode,
with numbers of every form and an integer too large for orjson, text needing escapes,
timestamps with and without (milli/micro)seconds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.sql.entries import entry_values
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import transactions
from mana_credits_core import LedgerEntry, TransactionStatus, TransactionType
from mana_credits_core.ports import Store
from mana_credits_http.models import TransactionOut

USER = "history-user"
BASE = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ESCAPES = 'quote " backslash \\ slash / \b\f\n\r\t \x01 \x1f \x7f \u2028 </script>'
METADATA: list[Any] = [
    None,
    {},
    {"model": "gpt", "tokens": 1234},
    {"b": 1, "a": 2, "aa": 3, "": "empty key"},
    {"nested": {"list": [1, -2.5, None, True, False, "x", [], {}], "deep": {"deeper": {}}}},
    {"unicode": "Grüße, 日本語, emoji 😀", "ключ": "значение"},
    {"escapes": ESCAPES, ESCAPES: "as a key"},
    {"floats": [0.1, 1.0, 1e300, -0.0, 123456789.123456789, 5e-324, 1.5e-10]},
    {"ints": [0, -1, 2**53 + 1, 2**63 - 1, -(2**63)]},
]
DESCRIPTIONS = [
    "plain",
    "",
    'He said "hi"',
    ESCAPES,
    "Grüße 😀 \u00a0 nbsp",
    "x" * 500,
]
MICROSECONDS = [0, 1, 999, 1000, 123000, 123456, 999999]


def entries_of_every_shape(user: str) -> list[LedgerEntry]:
    entries = []
    types, statuses = list(TransactionType), list(TransactionStatus)
    count = max(len(types), len(statuses), len(METADATA), len(DESCRIPTIONS), 24)
    for n in range(count):
        created = BASE - timedelta(minutes=n, microseconds=-MICROSECONDS[n % len(MICROSECONDS)])
        completed = None if n % 3 == 0 else created + timedelta(microseconds=n * 77_777)
        entries.append(
            LedgerEntry(
                id=f"{user[:8]}-{n:03d}-\"'",
                user_id=user,
                type=types[n % len(types)],
                status=statuses[n % len(statuses)],
                amount=(-1) ** n * (n * 1000 + 7) if n != 5 else -(2**62),
                balance_before=n * 10**9,
                balance_after=2**62 if n == 6 else n,
                app_id="app-ü" if n % 2 else "chat",
                description=DESCRIPTIONS[n % len(DESCRIPTIONS)],
                metadata=METADATA[n % len(METADATA)],
                idempotency_key=None if n % 4 == 0 else f'key-{n}-"ü"',
                created_at=created,
                completed_at=completed,
            )
        )
    # Two entries at the same moment: the id decides their order.
    entries.append(replace(entries[1], id=f"{user[:8]}-001-b", idempotency_key="another"))
    # A year before 1000 and a moment at a whole second.
    old = datetime(999, 1, 2, tzinfo=UTC)
    entries.append(replace(entries[2], id=f"{user[:8]}-old", idempotency_key=None, created_at=old))
    return entries


async def add_entries(store: Store, entries: list[LedgerEntry], *, sql_null: bool) -> None:
    """Write the entries as they are, under the store (no ledger rule applies to them)."""
    if isinstance(store, MemoryStore):
        for e in entries:
            store.state.entries[e.id] = e
            store.state.entries_by_user[e.user_id].append(e.id)
        return
    assert isinstance(store, SqlStore)
    rows = [entry_values(e) for e in entries]
    for row in rows:
        if row["metadata"] is None and sql_null:
            row["metadata"] = sa.null()  # SQL NULL (None is stored as JSON null)
    async with store.engine.begin() as connection:
        for row in rows:
            await connection.execute(sa.insert(transactions).values(row))


def old_answer(entries: list[LedgerEntry]) -> bytes:
    """The body as the server built it before: models rendered, then orjson, with the
    standard library's encoder for what orjson refuses."""
    body = [TransactionOut.of(e).render() for e in entries]
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode()


PAGES = [(100, 0), (50, 0), (3, 0), (3, 2), (7, 9), (1, 30), (10, 1000)]


async def compare_pages(store: Store, user: str) -> list[Mapping[str, Any]]:
    seen: list[Mapping[str, Any]] = []
    async with store.reader() as uow:
        for limit, offset in PAGES:
            entries = await uow.ledger.list(user, limit=limit, offset=offset)
            page = await uow.ledger.list_json(user, limit=limit, offset=offset)
            assert page == old_answer(entries), (limit, offset)
            seen.extend(json.loads(page))
    return seen


@pytest.mark.parametrize("sql_null", [True, False], ids=["sql-null", "json-null"])
async def test_history_pages_equal_the_rendered_entries(store: Store, sql_null: bool) -> None:
    written = entries_of_every_shape(USER)
    await add_entries(store, written, sql_null=sql_null)
    seen = await compare_pages(store, USER)
    # The pages hold what was written, newest first (not merely the same as `list`;
    # metadata aside: PostgreSQL's jsonb keeps numbers in its own forms).
    newest_first = sorted(written, key=lambda e: (e.created_at, e.id), reverse=True)
    expected = json.loads(old_answer([replace(e, metadata=None) for e in newest_first]))
    assert [{**entry, "metadata": None} for entry in seen[: len(written)]] == expected


async def test_a_metadata_integer_beyond_64_bits_is_encoded_as_before(store: Store) -> None:
    """orjson refuses it; the whole page is then encoded by the standard library."""
    written = entries_of_every_shape("big-int-user")
    written[4] = replace(written[4], metadata={"huge": 2**70, "text": "Grüße"})
    await add_entries(store, written, sql_null=True)
    await compare_pages(store, "big-int-user")
    async with store.reader() as uow:
        page = await uow.ledger.list_json("big-int-user", limit=10, offset=0)
    assert b'"huge": 1180591620717411303424' in page  # the standard library's spacing


async def test_an_unknown_user_has_an_empty_page(store: Store) -> None:
    async with store.reader() as uow:
        assert await uow.ledger.list_json("nobody", limit=50, offset=0) == b"[]"


async def test_pages_read_together_equal_the_rendered_entries(store: Store) -> None:
    """Pages asked at once (on PostgreSQL: one statement for them all), a page needing
    the standard library's encoder among them."""
    await add_entries(store, entries_of_every_shape(USER), sql_null=False)
    odd = entries_of_every_shape("big-int-user")
    odd[0] = replace(odd[0], metadata={"huge": -(2**70)})
    await add_entries(store, odd, sql_null=True)
    asked = [(user, *page) for user in (USER, "big-int-user", "nobody") for page in PAGES]

    async def read(user: str, limit: int, offset: int) -> bytes:
        async with store.reader() as uow:
            return await uow.ledger.list_json(user, limit=limit, offset=offset)

    together = await asyncio.gather(*(read(*page) for page in asked))
    async with store.reader() as uow:
        for (user, limit, offset), page in zip(asked, together, strict=True):
            entries = await uow.ledger.list(user, limit=limit, offset=offset)
            assert page == old_answer(entries), (user, limit, offset)
