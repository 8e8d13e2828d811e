"""Credit lots: the open-lots index in the burn order exactly, ids compared byte by byte.

A group-committed debit reads a user's first spendable lots in burn order, ids compared
as Python compares them (`COLLATE "C"`). With the ids of the index in the database's
default collation PostgreSQL had to read past the lots it wanted and sort them again;
in the same collation it reads just those lots off the index. SQLite compares text byte
by byte already: nothing changes there.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

OPEN_LOTS = "remaining > 0"
BURN_ORDER = ["user_id", "priority", "expires_at", "created_at"]


def _rebuild(id_column: str | sa.TextClause) -> None:
    op.drop_index("ix_credit_lots_open", "credit_lots", schema=schema("credits"))
    op.create_index(
        "ix_credit_lots_open",
        "credit_lots",
        [*BURN_ORDER, id_column],
        schema=schema("credits"),
        postgresql_where=sa.text(OPEN_LOTS),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(sa.text('id COLLATE "C"'))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild("id")
