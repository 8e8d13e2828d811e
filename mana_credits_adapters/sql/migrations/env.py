"""Alembic environment: always given a live connection by `mana_credits_adapters.sql.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from mana_credits_adapters.sql.tables import CREDITS, GIFTS


def run_migrations(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        for schema in (CREDITS, GIFTS):
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    context.configure(
        connection=connection,
        version_table_schema=CREDITS if postgres else None,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `mana-credits db upgrade`, which supplies a connection")
run_migrations(connection)
