"""The operator console: single-use sign-in links and the audit log.

Links keep only the SHA-256 of their token; redeeming one is a conditional UPDATE
(`used_at IS NULL AND expires_at > now`), so a link signs in once. The audit log
records every change an operator makes through the console, read newest first
overall and per subject (a user id).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import Json, UtcDateTime

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    credits = schema("credits")
    op.create_table(
        "console_links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("used_at", UtcDateTime, nullable=True),
        schema=credits,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("details", Json, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        schema=credits,
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at", "id"], schema=credits)
    op.create_index(
        "ix_audit_log_subject", "audit_log", ["subject", "created_at", "id"], schema=credits
    )


def downgrade() -> None:
    credits = schema("credits")
    op.drop_index("ix_audit_log_subject", "audit_log", schema=credits)
    op.drop_index("ix_audit_log_created_at", "audit_log", schema=credits)
    op.drop_table("audit_log", schema=credits)
    op.drop_table("console_links", schema=credits)
