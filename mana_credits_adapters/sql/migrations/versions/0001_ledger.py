"""The ledger: balances, transactions, usage statistics and reservations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import Json, UtcDateTime

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    credits = schema("credits")
    op.create_table(
        "balances",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("total_earned", sa.BigInteger, nullable=False),
        sa.Column("total_spent", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_balances_balance_not_negative"),
        schema=credits,
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_before", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("app_id", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_transactions_idempotency"),
        schema=credits,
    )
    op.create_index(
        "ix_transactions_user_history",
        "transactions",
        ["user_id", "created_at", "id"],
        schema=credits,
    )
    op.create_table(
        "usage_stats",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("app_id", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("credits_used", sa.BigInteger, nullable=False),
        sa.Column("operations", sa.BigInteger, nullable=False),
        schema=credits,
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("app_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
        sa.Column("transaction_id", sa.String(36), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_reservations_amount_positive"),
        schema=credits,
    )
    op.create_index(
        "ix_reservations_status_created", "reservations", ["status", "created_at"], schema=credits
    )
    op.create_index(
        "ix_reservations_user_status", "reservations", ["user_id", "status"], schema=credits
    )


def downgrade() -> None:
    credits = schema("credits")
    for table in ("reservations", "usage_stats", "transactions", "balances"):
        op.drop_table(table, schema=credits)
