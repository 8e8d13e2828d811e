"""Balances: the user's e-mail address, for the operator console's search.

The address is the one the auth service states in the user's tokens, lower-cased and
trimmed; it is written only when it is new or changed (a conditional UPDATE) and
cleared by an account deletion. The console finds users by its first characters:
on PostgreSQL an index on `lower(email)` with `text_pattern_ops` serves `LIKE 'abc%'`
whatever the database's collation; SQLite gets a plain index.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None

INDEX = "ix_balances_email"
SQLITE_INDEX = "ix_balances_email_sqlite"  # plain: SQLite reflects no expression index


def upgrade() -> None:
    credits = schema("credits")
    op.add_column("balances", sa.Column("email", sa.String(254), nullable=True), schema=credits)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            INDEX, "balances", [sa.text("lower(email) text_pattern_ops")], schema=credits
        )
    else:
        op.create_index(SQLITE_INDEX, "balances", ["email"], schema=credits)


def downgrade() -> None:
    credits = schema("credits")
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index(INDEX if postgres else SQLITE_INDEX, "balances", schema=credits)
    op.drop_column("balances", "email", schema=credits)
