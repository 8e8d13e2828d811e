"""Cloud Sync subscriptions.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import UtcDateTime

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    credits = schema("credits")
    op.create_table(
        "sync_subscriptions",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("interval", sa.String(20), nullable=False),
        sa.Column("next_interval", sa.String(20), nullable=True),
        sa.Column("anchor_at", UtcDateTime, nullable=False),
        sa.Column("months_paid", sa.Integer, nullable=False),
        sa.Column("next_charge_at", UtcDateTime, nullable=True),
        sa.Column("paused_at", UtcDateTime, nullable=True),
        sa.Column("is_gifted", sa.Boolean, nullable=False),
        sa.Column("gifted_by", sa.String(255), nullable=True),
        sa.Column("gifted_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        schema=credits,
    )
    op.create_index(
        "ix_sync_subscriptions_due",
        "sync_subscriptions",
        ["active", "is_gifted", "next_charge_at"],
        schema=credits,
    )


def downgrade() -> None:
    op.drop_table("sync_subscriptions", schema=schema("credits"))
