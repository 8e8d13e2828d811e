"""Whether a PostgreSQL database is the old service's, judged from its catalog.

The old layout is two schemas, `credits` and `gifts`, whose tables
use PostgreSQL enum types of schema `public`. This service's own database has the same
schema and table names but other columns and no enum types, so it is told apart first.
"""

from __future__ import annotations

from dataclasses import dataclass

from mana_credits_core.legacy import LegacyLayout, NotLegacyLayout

FIX = "--from must name the old service's database"

ENUMS: dict[str, tuple[str, ...]] = {
    "transaction_type": ("purchase", "usage", "refund", "gift", "grant"),
    "transaction_status": ("pending", "completed", "failed", "cancelled"),
    "gift_code_type": ("simple", "personalized"),
    "gift_code_status": ("active", "depleted", "expired", "cancelled", "refunded"),
    "gift_redemption_status": (
        "success",
        "failed_wrong_user",
        "failed_depleted",
        "failed_expired",
        "failed_already_claimed",
    ),
    "sync_billing_interval": ("monthly", "quarterly", "yearly"),
    "reservation_status": ("reserved", "committed", "refunded"),
}
"""Every value each old enum type may hold (schema `public`)."""
OPTIONAL_VALUES = {("transaction_type", "grant")}
"""Values the older versions of the old service lack."""

TABLES: dict[tuple[str, str], dict[str, str | None]] = {
    ("credits", "balances"): {
        **dict.fromkeys(("user_id", "balance", "total_earned", "total_spent", "version")),
        **dict.fromkeys(("created_at", "updated_at")),
    },
    ("credits", "transactions"): {
        **dict.fromkeys(("id", "user_id", "amount", "balance_before", "balance_after")),
        "type": "transaction_type",
        "status": "transaction_status",
        **dict.fromkeys(("app_id", "description", "metadata", "idempotency_key")),
        **dict.fromkeys(("created_at", "completed_at")),
    },
    ("credits", "packages"): {
        **dict.fromkeys(("id", "name", "description", "credits", "price_euro_cents")),
        **dict.fromkeys(("stripe_price_id", "active", "sort_order", "metadata")),
        **dict.fromkeys(("created_at", "updated_at")),
    },
    ("credits", "purchases"): {
        **dict.fromkeys(("id", "user_id", "package_id", "credits", "price_euro_cents")),
        **dict.fromkeys(("stripe_payment_intent_id", "stripe_customer_id")),
        "status": "transaction_status",
        **dict.fromkeys(("metadata", "created_at", "completed_at")),
    },
    ("credits", "usage_stats"): dict.fromkeys(
        ("id", "user_id", "app_id", "credits_used", "date", "metadata")
    ),
    ("credits", "stripe_customers"): dict.fromkeys(
        ("user_id", "stripe_customer_id", "email", "created_at", "updated_at")
    ),
    ("credits", "sync_subscriptions"): {
        **dict.fromkeys(("user_id", "active")),
        "billing_interval": "sync_billing_interval",
        **dict.fromkeys(("amount_charged", "activated_at", "next_charge_at", "paused_at")),
        **dict.fromkeys(("is_gifted", "gifted_by", "gifted_at", "created_at", "updated_at")),
    },
    ("gifts", "gift_codes"): {
        **dict.fromkeys(("id", "code", "short_url", "creator_id", "creator_name")),
        **dict.fromkeys(("total_credits", "redeemed")),
        "type": "gift_code_type",
        "status": "gift_code_status",
        **dict.fromkeys(("target_email", "message", "expires_at")),
        **dict.fromkeys(("reservation_transaction_id", "created_at", "updated_at")),
    },
    ("gifts", "gift_redemptions"): {
        **dict.fromkeys(("id", "gift_code_id", "redeemer_user_id")),
        "status": "gift_redemption_status",
        **dict.fromkeys(("credits_received", "credit_transaction_id", "source_app_id")),
        "created_at": None,
    },
}
"""Every table of the old layout with its columns and, for an enum column, its enum type
(the other columns' types are not checked: they are read through casts)."""
RESERVATIONS = ("credits", "reservations")
RESERVATION_COLUMNS: dict[str, str | None] = {
    **dict.fromkeys(("id", "user_id", "amount", "reason")),
    "status": "reservation_status",
    **dict.fromkeys(("created_at", "resolved_at")),
}
OWN_MARKERS = (("credits", "payment_events"),)
"""Tables only this service's own layout has."""

# pg_catalog rather than information_schema: the latter hides what the role may not read,
# which would be reported as missing instead of refused.
CATALOG_QUERY = """
SELECT n.nspname, c.relname, a.attname, tn.nspname, t.typname
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.typnamespace
WHERE n.nspname IN ('credits', 'gifts') AND c.relkind IN ('r', 'p')
"""
ENUM_QUERY = """
SELECT t.typname, e.enumlabel
FROM pg_catalog.pg_type AS t
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_enum AS e ON e.enumtypid = t.oid
WHERE n.nspname = 'public'
ORDER BY t.typname, e.enumsortorder
"""
SCHEMA_QUERY = "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname IN ('credits', 'gifts')"


@dataclass(frozen=True)
class Catalog:
    """What the source's catalog says about the old layout's names."""

    schemas: set[str]
    columns: dict[tuple[str, str], dict[str, tuple[str, str]]]  # column -> (udt schema, name)
    enums: dict[str, list[str]]  # public enum type -> its values


def judge(catalog: Catalog) -> LegacyLayout:
    """The optional parts `catalog` has; `NotLegacyLayout` naming the first thing missing."""
    for schema in ("credits", "gifts"):
        if schema not in catalog.schemas:
            raise NotLegacyLayout(f"the source has no schema {schema}: {FIX}")
    for marker in OWN_MARKERS:
        if marker in catalog.columns:
            raise NotLegacyLayout(
                f"the source has the table {'.'.join(marker)} of this service's own layout: "
                f"it is already a mana-credits database, not the old one; {FIX}"
            )
    required = dict(TABLES)
    has_reservations = RESERVATIONS in catalog.columns
    if has_reservations:
        required[RESERVATIONS] = RESERVATION_COLUMNS
    for table, columns in required.items():
        _check_table(catalog, table, columns)
    has_grant = "grant" in catalog.enums.get("transaction_type", [])
    return LegacyLayout(has_grant=has_grant, has_reservations=has_reservations)


def _check_table(catalog: Catalog, table: tuple[str, str], columns: dict[str, str | None]) -> None:
    name = ".".join(table)
    found = catalog.columns.get(table)
    if found is None:
        raise NotLegacyLayout(f"the source has no table {name}: {FIX}")
    for column, enum in columns.items():
        if column not in found:
            raise NotLegacyLayout(f"the source's table {name} has no column {column}: {FIX}")
        if enum is None:
            continue
        if found[column] != ("public", enum):
            shown = found[column][1]
            raise NotLegacyLayout(
                f"the source's column {name}.{column} is of type {shown}, not the old "
                f"enum type public.{enum}: {FIX}"
            )
        _check_enum(catalog, enum)


def _check_enum(catalog: Catalog, enum: str) -> None:
    values = catalog.enums.get(enum)
    if values is None:
        raise NotLegacyLayout(f"the source has no enum type public.{enum}: {FIX}")
    for value in ENUMS[enum]:
        if value not in values and (enum, value) not in OPTIONAL_VALUES:
            raise NotLegacyLayout(
                f"the source's enum type public.{enum} lacks the value {value!r}: {FIX}"
            )
    unknown = [value for value in values if value not in ENUMS[enum]]
    if unknown:
        raise NotLegacyLayout(
            f"the source's enum type public.{enum} has the value {unknown[0]!r}, which the "
            "import does not know: this is a newer or changed old layout; import it only "
            "once this service maps that value"
        )
