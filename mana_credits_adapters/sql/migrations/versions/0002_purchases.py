"""Purchases: packages, purchases, Stripe customers, processed payment events, debt.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import Json, UtcDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    credits = schema("credits")
    if credits is None:  # SQLite adds a column with its CHECK in place, no table copy
        op.execute(
            "ALTER TABLE balances ADD COLUMN debt BIGINT NOT NULL DEFAULT 0 "
            "CONSTRAINT ck_balances_debt_not_negative CHECK (debt >= 0)"
        )
    else:
        op.add_column(
            "balances",
            sa.Column("debt", sa.BigInteger, nullable=False, server_default="0"),
            schema=credits,
        )
        op.create_check_constraint(
            "ck_balances_debt_not_negative", "balances", "debt >= 0", schema=credits
        )
    op.create_table(
        "packages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("price_euro_cents", sa.BigInteger, nullable=False),
        sa.Column("stripe_price_id", sa.String(255), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("sort_order", sa.Integer, nullable=False),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("credits > 0", name="ck_packages_credits_positive"),
        sa.CheckConstraint("price_euro_cents > 0", name="ck_packages_price_positive"),
        schema=credits,
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("package_id", sa.String(36), nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("price_euro_cents", sa.BigInteger, nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(255), nullable=True),
        sa.Column("stripe_checkout_session_id", sa.String(255), nullable=True),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("clawed_back", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.UniqueConstraint(
            "stripe_payment_intent_id", name="uq_purchases_stripe_payment_intent_id"
        ),
        sa.UniqueConstraint(
            "stripe_checkout_session_id", name="uq_purchases_stripe_checkout_session_id"
        ),
        sa.CheckConstraint(
            "clawed_back >= 0 AND clawed_back <= credits", name="ck_purchases_clawback_bounded"
        ),
        schema=credits,
    )
    op.create_index(
        "ix_purchases_user_created", "purchases", ["user_id", "created_at"], schema=credits
    )
    op.create_table(
        "stripe_customers",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("stripe_customer_id", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("stripe_customer_id", name="uq_stripe_customers_stripe_customer_id"),
        schema=credits,
    )
    op.create_table(
        "payment_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("processed_at", UtcDateTime, nullable=False),
        schema=credits,
    )


def downgrade() -> None:
    credits = schema("credits")
    for table in ("payment_events", "stripe_customers", "purchases", "packages"):
        op.drop_table(table, schema=credits)
    if credits is not None:
        op.drop_constraint("ck_balances_debt_not_negative", "balances", schema=credits)
    op.drop_column("balances", "debt", schema=credits)
