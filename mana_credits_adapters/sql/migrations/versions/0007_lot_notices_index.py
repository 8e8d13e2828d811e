"""Credit lots: an index for the expiry-notice sweep.

The sweep looks for lots with credits left, not announced yet, expiring within seven
days, soonest first; without an index of its own that is a sequential scan of every
lot at each round.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

UNANNOUNCED_LOTS = "remaining > 0 AND notified_at IS NULL AND expires_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_credit_lots_unannounced",
        "credit_lots",
        ["expires_at", "id"],
        schema=schema("credits"),
        postgresql_where=sa.text(UNANNOUNCED_LOTS),
        sqlite_where=sa.text(UNANNOUNCED_LOTS),
    )


def downgrade() -> None:
    op.drop_index("ix_credit_lots_unannounced", "credit_lots", schema=schema("credits"))
