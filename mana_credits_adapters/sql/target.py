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
from sqlalchemy.exc import DBAPIError

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
MAX_PORT = 65535
SQLITE_HEADER = b"SQLite format 3\x00"
# Query parameters that carry a secret (libpq's `password`, `sslpassword`, ...).
_SECRET_PARAMETER = re.compile(r"pass|secret|token", re.IGNORECASE)
_SECRET_IN_QUERY = re.compile(r"(?i)([?&;][^=&;#]*(?:pass|secret|token)[^=&;#]*=)[^&;#]*")
HIDDEN = "***"
_OUR_DRIVER = re.compile(r"^(postgresql|sqlite)\+(?:psycopg|aiosqlite)://")


def redact(url: str) -> str:
    """`url` for people: our async driver names dropped and every password shown as ***.

    The password of the user part and any query parameter naming a password or secret
    (`?password=`, `sslpassword=`) are hidden, even in a string that does not parse.
    Never raises.
    """
    try:
        parsed = make_url(url)
        if "@" in (parsed.host or ""):  # an unencoded @ in the password: part of it is here
            return _redact_unparsed(url)
        query = {
            key: HIDDEN if _SECRET_PARAMETER.search(key) else value
            for key, value in parsed.query.items()
        }
        shown = parsed.set(drivername=parsed.get_backend_name(), query=query)
        return shown.render_as_string(hide_password=True).replace("%2A%2A%2A", HIDDEN)
    except Exception:  # anything that does not parse is hidden by hand
        return _redact_unparsed(url)


def _redact_unparsed(url: str) -> str:
    """Hide the password of a string too broken to parse: everything between the user
    name and the last `@` of the authority, and secret query parameters."""
    url = _SECRET_IN_QUERY.sub(rf"\1{HIDDEN}", _OUR_DRIVER.sub(r"\1://", url))
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    at = url.rfind("@", start)
    if at < 0:
        return url
    colon = url.find(":", start, at)
    if colon < 0:
        return url
    return f"{url[: colon + 1]}{HIDDEN}{url[at:]}"


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
        parsed.get_backend_name()
    except Exception:  # SQLAlchemy raises ArgumentError, ValueError...
        raise InvalidDatabaseUrl(
            f"DATABASE_URL {shown!r} is not a database URL, {SUPPORTED}"
        ) from None
    if "@" in (parsed.host or ""):
        raise InvalidDatabaseUrl(
            f"DATABASE_URL {shown!r} has an @ in its password or user name, write it %40"
        )
    if parsed.port is not None and not 0 < parsed.port <= MAX_PORT:
        raise InvalidDatabaseUrl(
            f"DATABASE_URL {shown!r} has port {parsed.port}, use a port from 1 to {MAX_PORT}"
        )
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise UnsupportedDatabase(
            f"DATABASE_URL {shown} names no SQLite file, use {SQLITE_EXAMPLE}"
        )
    # Not `get_driver_name()`: it loads the dialect, which fails for unknown schemes.
    if DRIVERS.get(backend) != parsed.drivername.partition("+")[2]:
        raise UnsupportedDatabase(
            f"DATABASE_URL {shown} is not supported (PostgreSQL and SQLite are), {SUPPORTED}"
        )
    return DatabaseTarget(parsed, shown)


def check_sqlite(target: DatabaseTarget, *, create: bool, home: Path | None = None) -> None:
    """Make sure the SQLite file can be opened as asked, before SQLite creates anything.

    `create`: a missing file may be created (else `NoDatabase`); it is made here, empty
    and readable by its owner only (0600). `home`: the embedded
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
    if create:
        _create_private(path)


def _create_private(path: Path) -> None:
    """Make the missing SQLite file empty with mode 0600 before SQLite opens it: SQLite
    then fills it, and gives its -wal and -shm files the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # made meanwhile (another worker): it is SQLite's to open
    except OSError as exc:
        raise NotWritable(f"cannot create database file {path}: {exc.strerror}") from exc


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
