"""Whether a SQL store's schema is the one this code reads."""

from __future__ import annotations

from mana_credits_core.errors import CreditsError


class SchemaOutdated(CreditsError):
    """The database's schema is not the one this code reads (a reader never migrates)."""

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
