"""Purchases: the Stripe charge, and the version of the claw-back.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    credits = schema("credits")
    op.add_column(
        "purchases", sa.Column("stripe_charge_id", sa.String(255), nullable=True), schema=credits
    )
    op.add_column(
        "purchases",
        sa.Column("clawback_version", sa.Integer, nullable=False, server_default="0"),
        schema=credits,
    )
    op.create_index(
        "ix_purchases_stripe_charge_id",
        "purchases",
        ["stripe_charge_id"],
        unique=True,
        schema=credits,
    )


def downgrade() -> None:
    credits = schema("credits")
    op.drop_index("ix_purchases_stripe_charge_id", "purchases", schema=credits)
    with op.batch_alter_table("purchases", schema=credits) as batch:
        batch.drop_column("clawback_version")
        batch.drop_column("stripe_charge_id")
