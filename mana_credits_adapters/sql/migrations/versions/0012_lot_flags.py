"""Credit lots: the partial indexes test two generated flags, not the credits left.

A debit lowers a lot's `remaining`. PostgreSQL may update a row in place, without a new
entry in every index of the table (a heap-only tuple, HOT), only when no column an index
reads changes its value, the columns of index predicates included; `remaining` and
`held` were in the predicates of the open-lots, due-lots and unannounced-lots indexes,
so every debit wrote a new entry into each index of the lots it burned. The predicates
now read `is_open` (remaining > 0) and `has_free` (remaining > held), columns the
database computes itself: a debit that leaves credits in a lot changes neither flag, and
its update stays on the heap page, which `fillfactor` keeps room on. On SQLite the flags
are virtual columns (SQLite adds only those to an existing table), indexed all the same.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema

revision = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

BURN_ORDER = ["user_id", "priority", "expires_at", "created_at"]
OLD = {
    "ix_credit_lots_open": "remaining > 0",
    "ix_credit_lots_due": "remaining > held AND expired_at IS NULL",
    "ix_credit_lots_unannounced": (
        "remaining > 0 AND notified_at IS NULL AND expires_at IS NOT NULL"
    ),
}
NEW = {
    "ix_credit_lots_open": "is_open",
    "ix_credit_lots_due": "has_free AND expired_at IS NULL",
    "ix_credit_lots_unannounced": "is_open AND notified_at IS NULL AND expires_at IS NOT NULL",
}
FILLFACTOR = 80


def _indexes(predicates: dict[str, str]) -> None:
    credits = schema("credits")
    postgres = op.get_bind().dialect.name == "postgresql"
    columns: dict[str, list[str | sa.TextClause]] = {
        "ix_credit_lots_open": [*BURN_ORDER, sa.text('id COLLATE "C"') if postgres else "id"],
        "ix_credit_lots_due": ["expires_at"],
        "ix_credit_lots_unannounced": ["expires_at", "id"],
    }
    for name, predicate in predicates.items():
        op.drop_index(name, "credit_lots", schema=credits)
        op.create_index(
            name,
            "credit_lots",
            columns[name],
            schema=credits,
            postgresql_where=sa.text(predicate),
            sqlite_where=sa.text(predicate),
        )


def upgrade() -> None:
    credits = schema("credits")
    postgres = op.get_bind().dialect.name == "postgresql"
    # PostgreSQL before 18 computes only stored columns; SQLite adds only virtual ones.
    persisted = True if postgres else None
    for name, rule in (("is_open", "remaining > 0"), ("has_free", "remaining > held")):
        op.add_column(
            "credit_lots",
            sa.Column(name, sa.Boolean, sa.Computed(rule, persisted=persisted), nullable=False),
            schema=credits,
        )
    _indexes(NEW)
    if postgres:
        op.execute(f"ALTER TABLE {credits}.credit_lots SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    credits = schema("credits")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {credits}.credit_lots RESET (fillfactor)")
    _indexes(OLD)
    op.drop_column("credit_lots", "has_free", schema=credits)
    op.drop_column("credit_lots", "is_open", schema=credits)
