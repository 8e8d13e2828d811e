"""SQLite's engine (pragmas, `BEGIN IMMEDIATE`, cancelled statements) and its file's
faults."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import CorruptDatabase, NotWritable, SetupError
from .tables import SQLITE_SCHEMA_MAP
from .target import DatabaseTarget, failure_cause

# SQLite's primary result codes (https://sqlite.org/rescode.html) that blame the file.
SQLITE_READONLY = 8
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
_CORRUPT_WORDS = ("database disk image is malformed", "file is not a database")


def _sqlite_code(error: BaseException) -> int | None:
    """The primary SQLite result code somewhere in `error`'s chain, if any."""
    found: BaseException | None = error
    seen = 0
    while found is not None and seen < 10:
        code = getattr(found, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF
        found = found.orig if isinstance(found, DBAPIError) else found.__cause__
        seen += 1
    return None


def sqlite_fault(url: sa.URL, error: BaseException) -> SetupError | None:
    """`error` as the SQLite file's own fault, naming the file: `CorruptDatabase`
    (SQLITE_CORRUPT, SQLITE_NOTADB) or `NotWritable` (SQLITE_READONLY); None for any
    other error or database."""
    if url.get_backend_name() != "sqlite":
        return None
    code = _sqlite_code(error)
    cause = failure_cause(error)
    path = DatabaseTarget(url, "").sqlite_path
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or any(w in cause for w in _CORRUPT_WORDS):
        return CorruptDatabase(
            f"database file {path} is damaged ({cause}), restore it from a backup or point "
            "DATABASE_URL at another file (sqlite3's .recover may save what is left)"
        )
    if code == SQLITE_READONLY or "readonly database" in cause:
        return NotWritable(
            f"database file {path} cannot be written ({cause}), make the file and its "
            "folder writable for the user running mana-credits"
        )
    return None


def sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    """An async engine for a `sqlite+aiosqlite://` URL: WAL, full sync, foreign keys,
    writers serialised by `BEGIN IMMEDIATE`, readers in autocommit."""
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": 30},
        execution_options={"schema_translate_map": SQLITE_SCHEMA_MAP},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: sa.engine.ExceptionContext) -> None:
        # A caller cancelled mid-statement (a timeout around a library call) is no
        # broken connection: aiosqlite's thread runs the statement to its end, and what
        # the caller queues next (the unit of work's rollback) runs after it. Treated as
        # a disconnect, SQLAlchemy would close the connection without a rollback while
        # the statement is unfinished, and SQLite keeps such a closed connection, with
        # its transaction and write lock, until the statement is garbage collected:
        # every other writer, in this process or another, would wait and fail with
        # "database is locked".
        if isinstance(context.original_exception, asyncio.CancelledError):
            context.is_disconnect = False

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get("mana_read_only"):
            return  # readers run in autocommit and never wait for the write lock
        # Writers are serialised up front: no deadlock-prone lock upgrades mid-transaction.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
