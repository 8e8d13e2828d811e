"""SQL repositories for packages, purchases, Stripe customers and payment events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.purchases import Package, Purchase, PurchaseStatus

from .lookups import SqlIdPrefixes
from .statements import insert_for
from .tables import packages, payment_events, purchases, stripe_customers


def package_from(row: Any) -> Package:
    return Package(
        id=row.id,
        name=row.name,
        description=row.description,
        credits=row.credits,
        price_euro_cents=row.price_euro_cents,
        stripe_price_id=row.stripe_price_id,
        active=row.active,
        sort_order=row.sort_order,
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def package_values(p: Package) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "credits": p.credits,
        "price_euro_cents": p.price_euro_cents,
        "stripe_price_id": p.stripe_price_id,
        "active": p.active,
        "sort_order": p.sort_order,
        "metadata": p.metadata,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def purchase_from(row: Any) -> Purchase:
    return Purchase(
        id=row.id,
        user_id=row.user_id,
        package_id=row.package_id,
        credits=row.credits,
        price_euro_cents=row.price_euro_cents,
        stripe_payment_intent_id=row.stripe_payment_intent_id,
        stripe_checkout_session_id=row.stripe_checkout_session_id,
        stripe_customer_id=row.stripe_customer_id,
        status=PurchaseStatus(row.status),
        metadata=row.metadata,
        created_at=row.created_at,
        completed_at=row.completed_at,
        clawed_back=row.clawed_back,
        stripe_charge_id=row.stripe_charge_id,
        clawback_version=row.clawback_version,
    )


def purchase_values(purchase: Purchase) -> dict[str, Any]:
    return {
        "id": purchase.id,
        "user_id": purchase.user_id,
        "package_id": purchase.package_id,
        "credits": purchase.credits,
        "price_euro_cents": purchase.price_euro_cents,
        "stripe_payment_intent_id": purchase.stripe_payment_intent_id,
        "stripe_checkout_session_id": purchase.stripe_checkout_session_id,
        "stripe_customer_id": purchase.stripe_customer_id,
        "status": purchase.status.value,
        "metadata": purchase.metadata,
        "clawed_back": purchase.clawed_back,
        "stripe_charge_id": purchase.stripe_charge_id,
        "clawback_version": purchase.clawback_version,
        "created_at": purchase.created_at,
        "completed_at": purchase.completed_at,
    }


class SqlPackages(SqlIdPrefixes):
    _id_table = packages

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def list(self, *, active_only: bool) -> list[Package]:
        p = packages.c
        query = sa.select(packages).order_by(p.sort_order, p.name, p.id)
        if active_only:
            query = query.where(p.active.is_(True))
        return [package_from(row) for row in await self._c.execute(query)]

    async def get(self, package_id: str) -> Package | None:
        row = (
            await self._c.execute(sa.select(packages).where(packages.c.id == package_id))
        ).first()
        return None if row is None else package_from(row)

    async def add(self, package: Package) -> None:
        await self._c.execute(sa.insert(packages).values(package_values(package)))

    async def update(self, package: Package) -> None:
        values = package_values(package)
        del values["id"], values["created_at"]
        await self._c.execute(sa.update(packages).where(packages.c.id == package.id).values(values))

    async def count(self) -> int:
        return int(await self._c.scalar(sa.select(sa.func.count()).select_from(packages)) or 0)


class SqlPurchases(SqlIdPrefixes):
    _id_table = purchases

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def add(self, purchase: Purchase) -> None:
        await self._c.execute(sa.insert(purchases).values(purchase_values(purchase)))

    async def _one(self, where: Any) -> Purchase | None:
        row = (await self._c.execute(sa.select(purchases).where(where))).first()
        return None if row is None else purchase_from(row)

    async def get(self, purchase_id: str) -> Purchase | None:
        return await self._one(purchases.c.id == purchase_id)

    async def by_payment_intent(self, payment_intent_id: str) -> Purchase | None:
        return await self._one(purchases.c.stripe_payment_intent_id == payment_intent_id)

    async def by_charge(self, charge_id: str) -> Purchase | None:
        return await self._one(purchases.c.stripe_charge_id == charge_id)

    async def by_checkout_session(self, session_id: str) -> Purchase | None:
        return await self._one(purchases.c.stripe_checkout_session_id == session_id)

    async def lock(self, purchase_id: str) -> Purchase | None:
        # FOR UPDATE orders the settlements of one purchase (events arriving together):
        # the second reads what the first committed. SQLite serialises writers anyway.
        row = (
            await self._c.execute(
                sa.select(purchases).where(purchases.c.id == purchase_id).with_for_update()
            )
        ).first()
        return None if row is None else purchase_from(row)

    async def list_for_user(self, user_id: str, limit: int) -> list[Purchase]:
        p = purchases.c
        query = (
            sa.select(purchases)
            .where(p.user_id == user_id)
            .order_by(p.created_at.desc(), p.id.desc())
            .limit(limit)
        )
        return [purchase_from(row) for row in await self._c.execute(query)]

    async def complete(
        self, purchase_id: str, payment_intent_id: str | None, now: datetime
    ) -> Purchase | None:
        p = purchases.c
        values: dict[str, Any] = {"status": PurchaseStatus.COMPLETED.value, "completed_at": now}
        if payment_intent_id is not None:
            values["stripe_payment_intent_id"] = sa.func.coalesce(
                p.stripe_payment_intent_id, payment_intent_id
            )
        row = (
            await self._c.execute(
                sa.update(purchases)
                .where(
                    p.id == purchase_id,
                    p.status.in_([PurchaseStatus.PENDING.value, PurchaseStatus.FAILED.value]),
                )
                .values(values)
                .returning(purchases)
            )
        ).first()
        return None if row is None else purchase_from(row)

    async def fail(self, purchase_id: str) -> bool:
        p = purchases.c
        failed = await self._c.execute(
            sa.update(purchases)
            .where(p.id == purchase_id, p.status == PurchaseStatus.PENDING.value)
            .values(status=PurchaseStatus.FAILED.value)
            .returning(p.id)
        )
        return failed.first() is not None

    async def link(self, purchase_id: str, payment_intent_id: str, charge_id: str | None) -> None:
        p = purchases.c
        await self._c.execute(
            sa.update(purchases)
            .where(p.id == purchase_id)
            .values(
                stripe_payment_intent_id=sa.func.coalesce(
                    p.stripe_payment_intent_id, payment_intent_id
                ),
                stripe_charge_id=sa.func.coalesce(p.stripe_charge_id, charge_id),
            )
        )

    async def move_clawback(self, purchase_id: str, version: int, clawed_back: int) -> bool:
        p = purchases.c
        moved = await self._c.execute(
            sa.update(purchases)
            .where(p.id == purchase_id, p.clawback_version == version)
            .values(clawed_back=clawed_back, clawback_version=version + 1)
            .returning(p.id)
        )
        return moved.first() is not None


class SqlCustomers:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, user_id: str) -> str | None:
        found: str | None = await self._c.scalar(
            sa.select(stripe_customers.c.stripe_customer_id).where(
                stripe_customers.c.user_id == user_id
            )
        )
        return found

    async def add(self, user_id: str, customer_id: str, now: datetime) -> str:
        await self._c.execute(
            insert_for(self._c, stripe_customers)
            .values(user_id=user_id, stripe_customer_id=customer_id, created_at=now)
            # No conflict target: concurrent first purchases insert the same (user,
            # customer) pair and may collide on either unique index first.
            .on_conflict_do_nothing()
        )
        stored = await self.get(user_id)
        assert stored is not None
        return stored


class SqlPaymentEvents:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def record(self, event_id: str, type: str, now: datetime) -> bool:
        # RETURNING rather than rowcount: a conflict returns no row on every driver.
        inserted = await self._c.execute(
            insert_for(self._c, payment_events)
            .values(id=event_id, type=type, processed_at=now)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(payment_events.c.id)
        )
        return inserted.first() is not None

    async def seen(self, event_id: str) -> bool:
        found = await self._c.scalar(
            sa.select(payment_events.c.id).where(payment_events.c.id == event_id)
        )
        return found is not None
