"""Gift codes and their redemptions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import UtcDateTime

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    gifts = schema("gifts")
    op.create_table(
        "gift_codes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("creator_id", sa.String(255), nullable=False),
        sa.Column("creator_name", sa.String(255), nullable=False),
        sa.Column("total_credits", sa.BigInteger, nullable=False),
        sa.Column("redeemed", sa.Integer, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("target_email", sa.String(254), nullable=True),
        sa.Column("target_email_key", sa.String(254), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("reservation_transaction_id", sa.String(36), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("code", name="uq_gift_codes_code"),
        sa.CheckConstraint("total_credits > 0", name="ck_gift_codes_credits_positive"),
        schema=gifts,
    )
    for name, columns in (
        ("ix_gift_codes_creator_created", ["creator_id", "created_at"]),
        ("ix_gift_codes_status_expires", ["status", "expires_at"]),
        ("ix_gift_codes_target_status", ["target_email_key", "status"]),
    ):
        op.create_index(name, "gift_codes", columns, schema=gifts)
    op.create_table(
        "gift_redemptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("gift_code_id", sa.String(36), nullable=False),
        sa.Column("redeemer_user_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("credits_received", sa.BigInteger, nullable=False),
        sa.Column("credit_transaction_id", sa.String(36), nullable=True),
        sa.Column("source_app_id", sa.String(100), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        schema=gifts,
    )
    op.create_index(
        "ix_gift_redemptions_redeemer_created",
        "gift_redemptions",
        ["redeemer_user_id", "created_at"],
        schema=gifts,
    )
    op.create_index(
        "uq_gift_redemptions_one_success",
        "gift_redemptions",
        ["gift_code_id"],
        unique=True,
        schema=gifts,
        postgresql_where=sa.text("status = 'success'"),
        sqlite_where=sa.text("status = 'success'"),
    )


def downgrade() -> None:
    gifts = schema("gifts")
    op.drop_table("gift_redemptions", schema=gifts)
    op.drop_table("gift_codes", schema=gifts)
