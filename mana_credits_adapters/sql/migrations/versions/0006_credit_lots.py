"""Credit lots: every credit a lot, debits and holds allocated to lots.

Balances from before lots get one opening lot holding what they have (balance plus
credits held by pending reservations), and those reservations hold from it, so the
lot invariants hold on an upgraded database (docs/credits.md).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mana_credits_adapters.sql.migrations.schemas import schema
from mana_credits_adapters.sql.tables import UtcDateTime
from mana_credits_core.lots import opening_lot

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

OPEN_LOTS = "remaining > 0"
DUE_LOTS = "remaining > held AND expired_at IS NULL"
PAGE = 5000


def upgrade() -> None:
    credits = schema("credits")
    op.add_column("balances", sa.Column("lots_since", UtcDateTime, nullable=True), schema=credits)
    op.create_table(
        "credit_lots",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("held", sa.BigInteger, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("entry_id", sa.String(36), nullable=True),
        sa.Column("purchase_id", sa.String(36), nullable=True),
        sa.Column("expired_at", UtcDateTime, nullable=True),
        sa.Column("notified_at", UtcDateTime, nullable=True),
        sa.CheckConstraint(
            "0 <= held AND held <= remaining AND remaining <= amount",
            name="ck_credit_lots_bounds",
        ),
        sa.CheckConstraint("amount > 0", name="ck_credit_lots_amount_positive"),
        sa.CheckConstraint("priority BETWEEN 0 AND 100", name="ck_credit_lots_priority_range"),
        sa.CheckConstraint(
            "entry_id IS NOT NULL OR source = 'opening'", name="ck_credit_lots_entry_or_opening"
        ),
        schema=credits,
    )
    op.create_index(
        "uq_credit_lots_entry_id", "credit_lots", ["entry_id"], unique=True, schema=credits
    )
    op.create_index(
        "ix_credit_lots_open",
        "credit_lots",
        ["user_id", "priority", "expires_at", "created_at", "id"],
        schema=credits,
        postgresql_where=sa.text(OPEN_LOTS),
        sqlite_where=sa.text(OPEN_LOTS),
    )
    op.create_index(
        "ix_credit_lots_due",
        "credit_lots",
        ["expires_at"],
        schema=credits,
        postgresql_where=sa.text(DUE_LOTS),
        sqlite_where=sa.text(DUE_LOTS),
    )
    for table, owner in (("lot_allocations", "entry_id"), ("hold_allocations", "reservation_id")):
        op.create_table(
            table,
            sa.Column(owner, sa.String(36), primary_key=True),
            sa.Column("lot_id", sa.String(36), primary_key=True),
            sa.Column("amount", sa.BigInteger, nullable=False),
            sa.CheckConstraint("amount > 0", name=f"ck_{table}_amount_positive"),
            schema=credits,
        )
    _open(credits)


def _open(credits: str | None) -> None:
    """One opening lot per balance holding credits, its pending reservations holding
    from it; every user's entries so far marked as predating lots."""
    bind = op.get_bind()
    meta = sa.MetaData(schema=credits)
    balances = sa.Table("balances", meta, autoload_with=bind)
    reservations = sa.Table("reservations", meta, autoload_with=bind)
    transactions = sa.Table("transactions", meta, autoload_with=bind)
    lots = sa.Table("credit_lots", meta, autoload_with=bind)
    holds = sa.Table("hold_allocations", meta, autoload_with=bind)
    r, b, t = reservations.c, balances.c, transactions.c
    pending = r.status == "pending"
    held = (
        sa.select(r.user_id, sa.func.sum(r.amount).label("held"))
        .where(pending)
        .group_by(r.user_id)
        .subquery()
    )
    amount = b.balance + sa.func.coalesce(held.c.held, 0)
    query = (
        sa.select(b.user_id, amount.label("amount"), held.c.held, b.created_at)
        .select_from(balances.outerjoin(held, held.c.user_id == b.user_id))
        .where(amount > 0)
        .order_by(b.user_id)
    )
    last: str | None = None
    while True:
        page = query.limit(PAGE) if last is None else query.where(b.user_id > last).limit(PAGE)
        rows = bind.execute(page).all()
        if not rows:
            break
        opened = [opening_lot(u, a, int(h or 0), created) for u, a, h, created in rows]
        bind.execute(
            sa.insert(lots),
            [
                {
                    "id": lot.id,
                    "user_id": lot.user_id,
                    "source": lot.source.value,
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                    "held": lot.held,
                    "priority": lot.priority,
                    "created_at": lot.created_at,
                }
                for lot in opened
            ],
        )
        last = rows[-1].user_id
    opening = sa.select(lots.c.id).where(lots.c.user_id == r.user_id, lots.c.source == "opening")
    bind.execute(
        sa.insert(holds).from_select(
            ["reservation_id", "lot_id", "amount"],
            sa.select(r.id, opening.scalar_subquery(), r.amount).where(pending, sa.exists(opening)),
        )
    )
    newest = sa.select(sa.func.max(t.created_at)).where(t.user_id == b.user_id)
    bind.execute(sa.update(balances).values(lots_since=newest.scalar_subquery()))


def downgrade() -> None:
    credits = schema("credits")
    for table in ("hold_allocations", "lot_allocations", "credit_lots"):
        op.drop_table(table, schema=credits)
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy of the table would turn its
    # column CHECKs into table CHECKs, which older downgrades cannot drop columns from.
    op.drop_column("balances", "lots_since", schema=credits)
