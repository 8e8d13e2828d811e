"""The legacy import end to end: fresh targets, the command, the services on a target.

`Targets` hands out stores to import into: PostgreSQL databases copied from one migrated
with `mana-credits db upgrade`, and SQLite files. `import_legacy` runs the command in
process (Typer's runner: stdout and stderr apart, neither a terminal); `services_on` and
`served` open the library and the real HTTP app on a target, with a real JWKS.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from psycopg import sql
from typer.testing import CliRunner

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_cli.main import app
from mana_credits_core.ports import Clock
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..fakes.stripe_server import SECRET_KEY, WEBHOOK_SECRET
from ..http.conftest import SERVICE_KEYS, Jwks
from .fixture import checksum, conninfo, database_url

Checksum = dict[str, tuple[int, str]]
Client = TestClient[web.Request, web.Application]
VOLATILE = ("dryRun", "seconds", "target")
"""Report keys that differ between two runs of the same import (into two targets)."""

runner = CliRunner()


@dataclass(frozen=True)
class Target:
    """A store to import into: `url` for --database-url; `kind` postgres or sqlite."""

    url: str
    kind: str

    @property
    def path(self) -> Path:
        """The SQLite file."""
        assert self.kind == "sqlite"
        return Path(self.url.removeprefix("sqlite:///"))

    def checksum(self) -> Checksum:
        """Every table of the store: name -> (rows, digest of the rows in a total order)."""
        if self.kind == "postgres":
            return checksum(self.url)
        return sqlite_checksum(self.path)


def sqlite_checksum(path: Path) -> Checksum:
    assert path.exists(), path  # connecting would create it
    with closing(sqlite3.connect(path)) as connection:
        tables = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        ).fetchall()
        sums: Checksum = {}
        for (table,) in tables:
            rows = sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"'))
            sums[table] = (len(rows), hashlib.md5("\n".join(rows).encode()).hexdigest())
        return sums


def _execute(url: str, statement: sql.Composed) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as admin:
        admin.execute(statement)


class Targets:
    """Fresh targets for a test session; every database made is dropped by `drop_all`."""

    def __init__(self, pg_url: str, folder: Path) -> None:
        self._pg_url = pg_url
        self._folder = folder
        self._made: list[str] = []
        self._pg_template: str | None = None
        self._sqlite_template: Path | None = None

    def _name(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"

    def empty_postgres(self) -> Target:
        """A database with nothing in it."""
        name = self._name("target_empty")
        _execute(self._pg_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._made.append(name)
        return Target(database_url(self._pg_url, name), "postgres")

    def postgres(self) -> Target:
        """A database migrated to the code's schema, holding no data."""
        if self._pg_template is None:
            template = self.empty_postgres()
            migrated(template)
            self._pg_template = template.url
        return self.copy(Target(self._pg_template, "postgres"))

    def sqlite(self, *, migrated_file: bool = True) -> Target:
        """A SQLite file migrated to the code's schema; or, unless `migrated_file`, a path
        where none exists yet (the import makes and migrates it, as the server would)."""
        path = self._folder / f"{self._name('target')}.db"
        if migrated_file:
            if self._sqlite_template is None:
                template = Target(f"sqlite:///{self._folder / 'template.db'}", "sqlite")
                migrated(template)
                self._sqlite_template = template.path
            shutil.copyfile(self._sqlite_template, path)
        return Target(f"sqlite:///{path}", "sqlite")

    def of_kind(self, kind: str) -> Target:
        return self.postgres() if kind == "postgres" else self.sqlite()

    def copy(self, target: Target) -> Target:
        """A new target holding what `target` holds (nobody may be connected to it)."""
        if target.kind == "sqlite":
            path = self._folder / f"{self._name('copy')}.db"
            shutil.copyfile(target.path, path)
            return Target(f"sqlite:///{path}", "sqlite")
        name = self._name("target")
        source = conninfo(target.url).rsplit("/", 1)[1]
        _execute(
            self._pg_url,
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(source)
            ),
        )
        self._made.append(name)
        return Target(database_url(self._pg_url, name), "postgres")

    def drop_all(self) -> None:
        for name in self._made:
            _execute(
                self._pg_url,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
            )
        self._made.clear()


@dataclass(frozen=True)
class Imported:
    """A target the import filled, its --json report, and when the import started."""

    target: Target
    report: dict[str, Any]
    started: datetime


@dataclass(frozen=True)
class Outcome:
    """One run of the command: exit code, stdout, stderr."""

    code: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        """The --json report of a run that succeeded."""
        assert self.code == 0, self.stdout + self.stderr
        assert self.stderr == "", self.stderr
        answer: dict[str, Any] = json.loads(self.stdout)
        return answer

    def error(self, code: str) -> str:
        """The one error line of a run that failed with `code`; stdout stays empty."""
        assert self.code == 1, self.stdout + self.stderr
        assert self.stdout == "", self.stdout
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith(f"error: {code}: "), lines[0]
        return lines[0]


def cli(*args: str) -> Outcome:
    """`mana-credits ARGS` in process. Called from a coroutine, it runs on a thread of
    its own (the command runs its own event loop), blocking the caller's loop meanwhile."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _invoke(args)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_invoke, args).result()


def _invoke(args: tuple[str, ...]) -> Outcome:
    result = runner.invoke(app, list(args), env={"DATABASE_URL": None})
    return Outcome(result.exit_code, result.stdout, result.stderr)


def migrated(target: Target) -> None:
    """`mana-credits db upgrade` on the target."""
    done = cli("db", "upgrade", "--database-url", target.url)
    assert done.code == 0, done.stdout + done.stderr


def import_legacy(source: str, target: Target | str, *flags: str) -> Outcome:
    """`mana-credits db import-legacy --from source --database-url target --json`."""
    url = target.url if isinstance(target, Target) else target
    return cli("db", "import-legacy", "--from", source, "--database-url", url, "--json", *flags)


def lasting(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what differs between two runs of the same import."""
    return {key: value for key, value in report.items() if key not in VOLATILE}


def by_kind(report: dict[str, Any]) -> dict[str, set[str]]:
    """The report's anomalies: kind -> subjects."""
    found: dict[str, set[str]] = {}
    for anomaly in report["anomalies"]:
        found.setdefault(anomaly["kind"], set()).add(anomaly["subject"])
    return found


def tables(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The report's counts: table -> {source, written, skipped}."""
    return {t["table"]: {k: v for k, v in t.items() if k != "table"} for t in report["tables"]}


def target_settings(
    target: Target, home: Path, jwks: Jwks | None = None, stripe_url: str | None = None
) -> Settings:
    """Settings of a server on the target: the test JWKS, service keys, Stripe webhooks
    signed as `tests.fakes.stripe_server.sign` signs them, background jobs out of the way."""
    auth = {} if jwks is None else {"MANA_AUTH_URL": jwks.url}
    if stripe_url is not None:
        auth["STRIPE_API_BASE"] = stripe_url
    return Settings(
        DATABASE_URL=target.url,
        MANA_CREDITS_HOME=home,
        MANA_SERVICE_KEY=",".join(SERVICE_KEYS),
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MANA_CREDITS_SWEEP_INTERVAL=3600,
        MANA_CREDITS_GIFT_EXPIRY_INTERVAL=3600,
        MANA_CREDITS_BILLING_ENABLED=False,
        **auth,
    )


@asynccontextmanager
async def services_on(
    target: Target,
    home: Path,
    *,
    clock: Clock | None = None,
    jwks: Jwks | None = None,
    stripe_url: str | None = None,
) -> AsyncIterator[Services]:
    """The library on the target (never migrating it), closed at the end; Stripe at
    `stripe_url` (the fake) when given."""
    settings = target_settings(target, home, jwks, stripe_url)
    async with bootstrap(settings, clock=clock, migrate=False, connect=True) as services:
        yield services


@asynccontextmanager
async def served(
    services: Services, home: Path, jwks: Jwks, target: Target, stripe_url: str | None = None
) -> AsyncIterator[Client]:
    """The real HTTP app serving `services`, on loopback."""
    settings = target_settings(target, home, jwks, stripe_url)
    application = create_app(settings, services=services)
    async with TestClient(TestServer(application, host="127.0.0.1")) as client:
        yield client
