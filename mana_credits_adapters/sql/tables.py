"""The SQL schema as SQLAlchemy Core tables (PostgreSQL schemas, mapped away on SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

CREDITS = "credits"
GIFTS = "gifts"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite which stores them naive."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")
Credits = sa.BigInteger
Id = sa.String(36)
UserId = sa.String(255)
AppId = sa.String(100)
Operation = sa.String(64)

balances = sa.Table(
    "balances",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("balance", Credits, nullable=False),
    sa.Column("total_earned", Credits, nullable=False),
    sa.Column("total_spent", Credits, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("debt", Credits, nullable=False, server_default="0"),
    # The user's entries up to this moment predate credit lots (an upgraded database,
    # the legacy import): their credits are in the opening lot (docs/credits.md).
    sa.Column("lots_since", UtcDateTime, nullable=True),
    # The address last seen in the user's tokens, lower-cased: the console's search.
    sa.Column("email", sa.String(254), nullable=True),
    # Milli-credits priced debits cost beyond the whole credits they charged, carried
    # to the user's next priced debit (`pricing.accrue`).
    sa.Column("accrued_milli", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    sa.CheckConstraint("debt >= 0", name="debt_not_negative"),
    sa.CheckConstraint("accrued_milli >= 0 AND accrued_milli < 1000", name="accrued_range"),
    # The console's search by address prefix; on PostgreSQL `text_pattern_ops` serves
    # a LIKE prefix whatever the database's collation.
    sa.Index(
        "ix_balances_email",
        sa.func.lower(sa.column("email")).label("email_lower"),
        postgresql_ops={"email_lower": "text_pattern_ops"},
    ).ddl_if(dialect="postgresql"),
    # SQLite reflects no index on an expression: a plain one (addresses are stored
    # lower-cased already).
    sa.Index("ix_balances_email_sqlite", "email").ddl_if(dialect="sqlite"),
    schema=CREDITS,
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("amount", Credits, nullable=False),
    sa.Column("balance_before", Credits, nullable=False),
    sa.Column("balance_after", Credits, nullable=False),
    sa.Column("app_id", AppId, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("metadata", Json, nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    # Exactly-once for idempotent debits and credits lives here, scoped to the user.
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_transactions_idempotency"),
    sa.Index("ix_transactions_user_history", "user_id", "created_at", "id"),
    schema=CREDITS,
)

usage_stats = sa.Table(
    "usage_stats",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("app_id", AppId, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("credits_used", Credits, nullable=False),
    sa.Column("operations", sa.BigInteger, nullable=False),
    schema=CREDITS,
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("amount", Credits, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("app_id", AppId, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime, nullable=True),
    sa.Column("transaction_id", Id, nullable=True),
    # A reservation made for an operation: its priced snapshot (`pricing.Priced`).
    sa.Column("operation", Operation, nullable=True),
    sa.Column("quantity", sa.BigInteger, nullable=True),
    sa.Column("price_milli", sa.BigInteger, nullable=True),
    sa.Column("unit_size", sa.Integer, nullable=True),
    sa.Column("cost_milli", sa.BigInteger, nullable=True),
    # Credits its commit charged (a commit may charge less than is held).
    sa.Column("charged", Credits, nullable=True),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.Index("ix_reservations_status_created", "status", "created_at"),
    sa.Index("ix_reservations_user_status", "user_id", "status"),
    schema=CREDITS,
)

packages = sa.Table(
    "packages",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("credits", Credits, nullable=False),
    sa.Column("price_euro_cents", sa.BigInteger, nullable=False),
    sa.Column("stripe_price_id", sa.String(255), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("sort_order", sa.Integer, nullable=False),
    sa.Column("metadata", Json, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("credits > 0", name="credits_positive"),
    sa.CheckConstraint("price_euro_cents > 0", name="price_positive"),
    schema=CREDITS,
)

purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("package_id", Id, nullable=False),
    sa.Column("credits", Credits, nullable=False),
    sa.Column("price_euro_cents", sa.BigInteger, nullable=False),
    # Each payment completes at most one purchase.
    sa.Column("stripe_payment_intent_id", sa.String(255), nullable=True, unique=True),
    sa.Column("stripe_checkout_session_id", sa.String(255), nullable=True, unique=True),
    sa.Column("stripe_customer_id", sa.String(255), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("metadata", Json, nullable=True),
    sa.Column("clawed_back", Credits, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    # The charge refunds and disputes name; one purchase per charge.
    sa.Column("stripe_charge_id", sa.String(255), nullable=True),
    # Moves of clawed_back so far: each move is a conditional write on it.
    sa.Column("clawback_version", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("clawed_back >= 0 AND clawed_back <= credits", name="clawback_bounded"),
    sa.Index("ix_purchases_user_created", "user_id", "created_at"),
    sa.Index("ix_purchases_stripe_charge_id", "stripe_charge_id", unique=True),
    schema=CREDITS,
)

stripe_customers = sa.Table(
    "stripe_customers",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("stripe_customer_id", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    schema=CREDITS,
)

payment_events = sa.Table(
    "payment_events",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("processed_at", UtcDateTime, nullable=False),
    schema=CREDITS,
)

gift_codes = sa.Table(
    "gift_codes",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("creator_id", UserId, nullable=False),
    sa.Column("creator_name", sa.String(255), nullable=False),
    sa.Column("total_credits", Credits, nullable=False),
    sa.Column("redeemed", sa.Integer, nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("target_email", sa.String(254), nullable=True),
    sa.Column("target_email_key", sa.String(254), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("reservation_transaction_id", Id, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("total_credits > 0", name="credits_positive"),
    sa.Index("ix_gift_codes_creator_created", "creator_id", "created_at"),
    sa.Index("ix_gift_codes_status_expires", "status", "expires_at"),
    sa.Index("ix_gift_codes_target_status", "target_email_key", "status"),
    schema=GIFTS,
)

gift_redemptions = sa.Table(
    "gift_redemptions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("gift_code_id", Id, nullable=False),
    sa.Column("redeemer_user_id", UserId, nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("credits_received", Credits, nullable=False),
    sa.Column("credit_transaction_id", Id, nullable=True),
    sa.Column("source_app_id", AppId, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_gift_redemptions_redeemer_created", "redeemer_user_id", "created_at"),
    # One successful redemption per gift, whatever happens above.
    sa.Index(
        "uq_gift_redemptions_one_success",
        "gift_code_id",
        unique=True,
        postgresql_where=sa.text("status = 'success'"),
        sqlite_where=sa.text("status = 'success'"),
    ),
    schema=GIFTS,
)

sync_subscriptions = sa.Table(
    "sync_subscriptions",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("interval", sa.String(20), nullable=False),
    sa.Column("next_interval", sa.String(20), nullable=True),
    sa.Column("anchor_at", UtcDateTime, nullable=False),
    sa.Column("months_paid", sa.Integer, nullable=False),
    sa.Column("next_charge_at", UtcDateTime, nullable=True),
    sa.Column("paused_at", UtcDateTime, nullable=True),
    sa.Column("is_gifted", sa.Boolean, nullable=False),
    sa.Column("gifted_by", UserId, nullable=True),
    sa.Column("gifted_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_sync_subscriptions_due", "active", "is_gifted", "next_charge_at"),
    schema=CREDITS,
)

# The partial indexes test flags the database computes (migration 0012), never
# `remaining` or `held` themselves: a debit that changes neither flag then updates its
# lot in place on PostgreSQL (HOT), without new entries in every index. A query must
# name the flag (`is_open`, `has_free`) for the planner to pick these indexes.
OPEN_LOTS = "is_open"
DUE_LOTS = "has_free AND expired_at IS NULL"
UNANNOUNCED_LOTS = "is_open AND notified_at IS NULL AND expires_at IS NOT NULL"

credit_lots = sa.Table(
    "credit_lots",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("amount", Credits, nullable=False),
    sa.Column("remaining", Credits, nullable=False),
    # Credits of `remaining` set aside by pending reservations.
    sa.Column("held", Credits, nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # The credit entry that created the lot (none for an opening lot).
    sa.Column("entry_id", Id, nullable=True),
    sa.Column("purchase_id", Id, nullable=True),
    sa.Column("expired_at", UtcDateTime, nullable=True),
    sa.Column("notified_at", UtcDateTime, nullable=True),
    # remaining > 0 and remaining > held, as flags of their own (see OPEN_LOTS).
    # Stored on PostgreSQL (before 18 it computes no other kind), virtual on SQLite.
    sa.Column("is_open", sa.Boolean, sa.Computed("remaining > 0", persisted=True), nullable=False),
    sa.Column(
        "has_free", sa.Boolean, sa.Computed("remaining > held", persisted=True), nullable=False
    ),
    sa.CheckConstraint("0 <= held AND held <= remaining AND remaining <= amount", name="bounds"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("priority BETWEEN 0 AND 100", name="priority_range"),
    sa.CheckConstraint("entry_id IS NOT NULL OR source = 'opening'", name="entry_or_opening"),
    # One lot per credit entry.
    sa.Index("uq_credit_lots_entry_id", "entry_id", unique=True),
    # A user's open lots, in burn order.
    sa.Index(
        "ix_credit_lots_open",
        "user_id",
        "priority",
        "expires_at",
        "created_at",
        "id",
        postgresql_where=sa.text(OPEN_LOTS),
        sqlite_where=sa.text(OPEN_LOTS),
    ),
    # The expiry sweep: lots with free credits not expired yet, by expiry.
    sa.Index(
        "ix_credit_lots_due",
        "expires_at",
        postgresql_where=sa.text(DUE_LOTS),
        sqlite_where=sa.text(DUE_LOTS),
    ),
    # The expiry-notice sweep: lots with credits left not announced yet, by expiry.
    sa.Index(
        "ix_credit_lots_unannounced",
        "expires_at",
        "id",
        postgresql_where=sa.text(UNANNOUNCED_LOTS),
        sqlite_where=sa.text(UNANNOUNCED_LOTS),
    ),
    schema=CREDITS,
)

lot_allocations = sa.Table(
    "lot_allocations",
    metadata,
    sa.Column("entry_id", Id, primary_key=True),
    sa.Column("lot_id", Id, primary_key=True),
    sa.Column("amount", Credits, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    schema=CREDITS,
)

hold_allocations = sa.Table(
    "hold_allocations",
    metadata,
    sa.Column("reservation_id", Id, primary_key=True),
    sa.Column("lot_id", Id, primary_key=True),
    sa.Column("amount", Credits, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    schema=CREDITS,
)

# The operator console: single-use sign-in links (only the token's hash) and its audit
# log, one row per change an operator made.
console_links = sa.Table(
    "console_links",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime, nullable=True),
    schema=CREDITS,
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("operator", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_audit_log_created_at", "created_at", "id"),
    sa.Index("ix_audit_log_subject", "subject", "created_at", "id"),
    schema=CREDITS,
)

# The price list (`mana_credits_core.pricing`), seeded by migration 0011, and every
# change made to it.
prices = sa.Table(
    "prices",
    metadata,
    sa.Column("operation", Operation, primary_key=True),
    sa.Column("app_id", AppId, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("price_milli", sa.BigInteger, nullable=False),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("unit_size", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("retired_at", UtcDateTime, nullable=True),
    sa.CheckConstraint("price_milli >= 1", name="price_positive"),
    sa.CheckConstraint("unit_size >= 1", name="unit_size_positive"),
    schema=CREDITS,
)

price_changes = sa.Table(
    "price_changes",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("operation", Operation, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("old_price_milli", sa.BigInteger, nullable=True),
    sa.Column("new_price_milli", sa.BigInteger, nullable=True),
    sa.Column("operator", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("at", UtcDateTime, nullable=False),
    # The other fields the change set, as they were before it.
    sa.Column("before", Json, nullable=False),
    # One operation's changes newest first, and all of them.
    sa.Index("ix_price_changes_operation_at", "operation", "at", "id"),
    sa.Index("ix_price_changes_at", "at", "id"),
    schema=CREDITS,
)

# Priced debits per user, operation and UTC day.
operation_usage = sa.Table(
    "operation_usage",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("operation", Operation, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("cost_milli", sa.BigInteger, nullable=False),
    # Usage summed over all users per day and operation.
    sa.Index("ix_operation_usage_day_operation", "day", "operation"),
    schema=CREDITS,
)

SQLITE_SCHEMA_MAP: dict[str | None, str | None] = {CREDITS: None, GIFTS: None}
"""SQLite has no schemas: every table lives in the one database file."""
