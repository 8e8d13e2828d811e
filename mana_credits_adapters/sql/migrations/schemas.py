"""Schema names for migrations: PostgreSQL schemas, none on SQLite."""

from __future__ import annotations

from alembic import op


def schema(name: str) -> str | None:
    return None if op.get_bind().dialect.name == "sqlite" else name
