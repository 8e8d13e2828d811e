"""Whether a SQL store's schema is the one this code reads."""

from __future__ import annotations

from .errors import SetupError


class SchemaOutdated(SetupError):
    """The database's schema is not the one this code reads (a reader never migrates).
    A setup fault: the server answers 503 and logs it once, as for a damaged file."""

    code = "schema_outdated"


async def check_schema(store: object, url: str) -> None:
    """Raise `SchemaOutdated` unless the SQL store's schema is at the code's head
    revision (the in-memory store has no schema)."""
    from .sql.store import CONNECT_FAILURES, SqlStore

    if not isinstance(store, SqlStore):
        return
    from .sql import migrate  # alembic: only for SQL stores
    from .sql.target import parse

    try:
        at = await migrate.current(store.engine)
    except CONNECT_FAILURES as exc:
        raise store.unreachable(exc) from exc
    head = migrate.head()
    if at != head:
        target = parse(url)
        shown = str(target.sqlite_path) if target.backend == "sqlite" else target.shown
        raise SchemaOutdated(
            f"{shown} is at revision {at or 'none'}, head is {head}, run mana-credits db upgrade"
        )


class SchemaGate:
    """The second half of readiness: whether the store's schema is the code's. Asked of
    the database until the answer is yes once (a schema is not taken back while servers
    run), then free."""

    def __init__(self, store: object, url: str) -> None:
        self._store = store
        self._url = url
        self._current = False

    async def check(self) -> None:
        """Raise `SchemaOutdated` (or `DatabaseUnreachable`) unless the schema is at the
        code's head revision."""
        if not self._current:
            await check_schema(self._store, self._url)
            self._current = True
