"""Pricing: the price list and its changes, accrued milli-credits, priced usage.

`prices` holds one row per operation of the suite, priced in milli-credits (1 credit =
1,000) per `unit_size` units; it starts with the seed list below, a copy of the core's
`pricing.SEED_PRICES` as it was when this revision was written (a migration must not
change when that constant does). `price_changes` records every change for good, read
newest first per operation. `balances.accrued_milli` (0..999) carries what priced
debits cost beyond the whole credits they charged; `operation_usage` counts priced
debits per user, operation and UTC day. A reservation made for an operation keeps its
priced snapshot, and every committed reservation the credits its commit charged.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import Json, UtcDateTime

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None

ACCRUED_CHECK = "accrued_milli >= 0 AND accrued_milli < 1000"

# (operation, app id, name, description, milli-credits per unit_size units, unit, unit_size)
SEED: tuple[tuple[str, str, str, str, int, str | None, int], ...] = (
    ("ai_chat_gpt4", "chat", "Chat (GPT-4)", "One chat answer from GPT-4.", 5000, None, 1),
    ("ai_chat_claude", "chat", "Chat (Claude)", "One chat answer from Claude.", 5000, None, 1),
    ("ai_chat_gemini", "chat", "Chat (Gemini)", "One chat answer from Gemini.", 2000, None, 1),
    ("ai_chat_qwen", "chat", "Chat (Qwen)", "One chat answer from Qwen.", 2000, None, 1),
    (
        "ai_chat_ollama",
        "chat",
        "Chat (local model)",
        "One chat answer from a local model.",
        100,
        None,
        1,
    ),
    ("ai_image_generation", "picture", "Image generation", "One generated image.", 10000, None, 1),
    ("ai_image_upscale", "picture", "Image upscale", "One upscaled image.", 5000, None, 1),
    ("ai_research_quick", "research", "Quick research", "One quick research.", 5000, None, 1),
    ("ai_research_deep", "research", "Deep research", "One deep research.", 25000, None, 1),
    ("ai_deck_generation", "cards", "Deck generation", "One generated deck.", 20000, None, 1),
    ("ai_card_generation", "cards", "Card generation", "One generated card.", 2000, None, 1),
    ("ai_quote_explanation", "quotes", "Quote explanation", "One explained quote.", 2000, None, 1),
    ("ai_guide_generation", "guides", "Guide generation", "One generated guide.", 5000, None, 1),
    ("notes_import_url", "notes", "Import from URL", "One page imported as a note.", 1000, None, 1),
    (
        "ai_smart_scheduling",
        "calendar",
        "Smart scheduling",
        "One scheduling proposal.",
        2000,
        None,
        1,
    ),
    ("ai_suggestions", "todo", "Suggestions", "One set of suggestions.", 2000, None, 1),
    ("ai_enrichment", "contacts", "Enrichment", "One enriched record.", 2000, None, 1),
    ("cloud_sync", "sync", "Cloud Sync", "Cloud Sync for one month.", 30000, "month", 1),
    ("bulk_import", "notes", "Bulk import", "Items imported in bulk.", 200, "item", 10),
    ("pdf_export", "documents", "PDF export", "One document exported as PDF.", 1000, None, 1),
    ("premium_theme", "themes", "Premium theme", "One premium theme unlocked.", 3000, None, 1),
)


def _reservation_columns() -> list[sa.Column[int] | sa.Column[str]]:
    """A reservation's priced snapshot (all NULL for one made by amount) and what its
    commit charged."""
    return [
        sa.Column("operation", sa.String(64), nullable=True),
        sa.Column("quantity", sa.BigInteger, nullable=True),
        sa.Column("price_milli", sa.BigInteger, nullable=True),
        sa.Column("unit_size", sa.Integer, nullable=True),
        sa.Column("cost_milli", sa.BigInteger, nullable=True),
        sa.Column("charged", sa.BigInteger, nullable=True),
    ]


def upgrade() -> None:
    credits = schema("credits")
    if credits is None:  # SQLite adds a column with its CHECK in place, no table copy
        op.execute(
            "ALTER TABLE balances ADD COLUMN accrued_milli BIGINT NOT NULL DEFAULT 0 "
            f"CONSTRAINT ck_balances_accrued_range CHECK ({ACCRUED_CHECK})"
        )
    else:
        op.add_column(
            "balances",
            sa.Column("accrued_milli", sa.BigInteger, nullable=False, server_default="0"),
            schema=credits,
        )
        op.create_check_constraint(
            "ck_balances_accrued_range", "balances", ACCRUED_CHECK, schema=credits
        )
    for column in _reservation_columns():
        op.add_column("reservations", column, schema=credits)
    prices = op.create_table(
        "prices",
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("app_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("price_milli", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("unit_size", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("retired_at", UtcDateTime, nullable=True),
        sa.CheckConstraint("price_milli >= 1", name="ck_prices_price_positive"),
        sa.CheckConstraint("unit_size >= 1", name="ck_prices_unit_size_positive"),
        schema=credits,
    )
    op.create_table(
        "price_changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("old_price_milli", sa.BigInteger, nullable=True),
        sa.Column("new_price_milli", sa.BigInteger, nullable=True),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("before", Json, nullable=False),
        schema=credits,
    )
    op.create_index(
        "ix_price_changes_operation_at",
        "price_changes",
        ["operation", "at", "id"],
        schema=credits,
    )
    op.create_index("ix_price_changes_at", "price_changes", ["at", "id"], schema=credits)
    op.create_table(
        "operation_usage",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("cost_milli", sa.BigInteger, nullable=False),
        schema=credits,
    )
    op.create_index(
        "ix_operation_usage_day_operation", "operation_usage", ["day", "operation"], schema=credits
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        prices,
        [
            {
                "operation": operation,
                "app_id": app_id,
                "name": name,
                "description": description,
                "price_milli": price_milli,
                "unit": unit,
                "unit_size": unit_size,
                "created_at": now,
                "updated_at": now,
            }
            for operation, app_id, name, description, price_milli, unit, unit_size in SEED
        ],
    )


def downgrade() -> None:
    credits = schema("credits")
    op.drop_index("ix_operation_usage_day_operation", "operation_usage", schema=credits)
    op.drop_table("operation_usage", schema=credits)
    op.drop_index("ix_price_changes_at", "price_changes", schema=credits)
    op.drop_index("ix_price_changes_operation_at", "price_changes", schema=credits)
    op.drop_table("price_changes", schema=credits)
    op.drop_table("prices", schema=credits)
    for column in reversed(_reservation_columns()):
        op.drop_column("reservations", column.name, schema=credits)
    if credits is not None:
        op.drop_constraint("ck_balances_accrued_range", "balances", schema=credits)
    # A plain DROP COLUMN (SQLite 3.35+), as 0002 drops `debt`.
    op.drop_column("balances", "accrued_milli", schema=credits)
