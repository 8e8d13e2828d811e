"""Where a database URL points, said for people, and checked before anything is opened.

SQLite URLs follow SQLAlchemy: `sqlite:///x.db` is relative to the current folder,
`sqlite:////var/lib/mana-credits/credits.db` (four slashes) is absolute.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ..errors import (
    CorruptDatabase,
    InvalidDatabaseUrl,
    NoDatabase,
    NoFolder,
    NotAFolder,
    NotWritable,
    UnsupportedDatabase,
)
from ..home import check_home

SQLITE_EXAMPLE = "sqlite:////absolute/path/credits.db"
POSTGRES_EXAMPLE = "postgresql://user:password@host/database"
SUPPORTED = f"use {POSTGRES_EXAMPLE} or {SQLITE_EXAMPLE}"
DRIVERS = {"postgresql": "psycopg", "sqlite": "aiosqlite"}
SQLITE_HEADER = b"SQLite format 3\x00"
# `scheme://user:password@` in a string too broken to parse: hide the password anyway.
_PASSWORD = re.compile(r"(//[^:/@]*:)[^@/]*@")


def redact(url: str) -> str:
    """`url` for people: our async driver names dropped and the password shown as ***."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return _PASSWORD.sub(r"\1***@", url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed, supported database URL (`postgresql+psycopg` or `sqlite+aiosqlite`)."""

    url: URL
    shown: str  # as redact(): password hidden

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file, absolute (a relative URL path is relative to the current folder)."""
        return Path(self.url.database or "").absolute()

    @property
    def address(self) -> str:
        """`host:port` of a PostgreSQL server (5432 and the local socket by default)."""
        host = self.url.host or self.url.query.get("host") or "local socket"
        return f"{host}:{self.url.port or 5432}"


def parse(url: str) -> DatabaseTarget:
    """The target of a normalised URL (see `settings.normalise_database_url`).

    Raises `InvalidDatabaseUrl` when `url` is no URL, `UnsupportedDatabase` when it names
    another database, driver, or an in-memory SQLite database.
    """
    shown = redact(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidDatabaseUrl(
            f"DATABASE_URL {shown!r} is not a database URL, {SUPPORTED}"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise UnsupportedDatabase(
            f"DATABASE_URL {shown} names no SQLite file, use {SQLITE_EXAMPLE}"
        )
    if DRIVERS.get(backend) != parsed.get_driver_name():
        raise UnsupportedDatabase(
            f"DATABASE_URL {shown} is not supported (PostgreSQL and SQLite are), {SUPPORTED}"
        )
    return DatabaseTarget(parsed, shown)


def check_sqlite(target: DatabaseTarget, *, create: bool, home: Path | None = None) -> None:
    """Make sure the SQLite file can be opened as asked, before SQLite creates anything.

    `create`: a missing file may be created (else `NoDatabase`). `home`: the embedded
    default's folder, which is made when missing; any other folder must exist already
    (`NoFolder`). Also raises `NotAFolder`, `NotWritable` and `CorruptDatabase`.
    """
    path = target.sqlite_path
    folder = path.parent
    if home is not None:
        check_home(home, create=create)
    elif folder.exists() and not folder.is_dir():
        raise NotAFolder(f"{folder} is not a folder, fix DATABASE_URL ({SQLITE_EXAMPLE})")
    if not path.exists():
        if not create:
            where = "check MANA_CREDITS_HOME or DATABASE_URL" if home else "check DATABASE_URL"
            raise NoDatabase(
                f"no database at {path}, {where} ({SQLITE_EXAMPLE}) or run mana-credits db upgrade"
            )
        if not folder.is_dir():
            raise NoFolder(
                f"folder {folder} does not exist (DATABASE_URL {target.shown}), create it or "
                f"fix DATABASE_URL ({SQLITE_EXAMPLE})"
            )
    else:
        check_sqlite_file(path)
    if create and not os.access(folder, os.W_OK):
        raise NotWritable(
            f"folder {folder} of the database is read-only, make it writable or move the "
            "database (SQLite writes its journal beside the file)"
        )
    if create and path.exists() and not os.access(path, os.W_OK):
        raise NotWritable(f"database file {path} is read-only, make it writable")


def check_sqlite_file(path: Path) -> None:
    """Raise `CorruptDatabase` unless `path` is a SQLite file (or empty: SQLite fills it)."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except IsADirectoryError:
        header = b"folder"
    except OSError as exc:
        raise NotWritable(f"cannot read database file {path}: {exc.strerror}") from exc
    if header and header != SQLITE_HEADER:
        raise CorruptDatabase(
            f"{path} is not a SQLite database, move it away or point DATABASE_URL at "
            f"another file ({SQLITE_EXAMPLE})"
        )


def failure_cause(error: BaseException) -> str:
    """The driver's own words for why `error` happened, on one line (no password in them)."""
    found: BaseException = error
    while True:
        if isinstance(found, DBAPIError) and isinstance(found.orig, BaseException):
            found = found.orig
        elif found.__cause__ is not None:
            found = found.__cause__
        else:
            break
    lines = [line.strip() for line in str(found).splitlines() if line.strip()]
    return " ".join(lines) or type(found).__name__
