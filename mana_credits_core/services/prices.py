"""The price list's use cases: read it, price an operation, change it (audited)."""

from __future__ import annotations

import builtins
from dataclasses import replace

from .. import pricing as p
from .. import validation as v
from ..errors import InvalidInput, NotFound
from ..ports import Clock, IdGenerator, Store
from ..pricing import Price, PriceAction, PriceChange, Priced

MAX_CHANGES = 1000


class PriceNotFound(NotFound):
    code = "price_not_found"
    default_message = "No such operation in the price list"


class PricesService:
    """The suite's price list (`mana_credits_core.pricing`).

    Every change is recorded with who made it, when, why and the price before it, in
    the same transaction as the change; a change that changes nothing records nothing.
    """

    def __init__(self, store: Store, clock: Clock, ids: IdGenerator) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids

    async def list(self, *, include_retired: bool = False) -> list[Price]:
        """The price list by app, then operation (retired prices only if asked)."""
        async with self._store.reader() as reader:
            return await reader.prices.list(include_retired=include_retired)

    async def get(self, operation: str) -> Price:
        """One operation's price, retired or not. Raises `PriceNotFound`."""
        operation = p.operation_id(operation)
        async with self._store.reader() as reader:
            found = await reader.prices.get(operation)
        if found is None:
            raise PriceNotFound(f"no operation {operation} in the price list", operation=operation)
        return found

    async def price(self, operation: str, quantity: int | None = None) -> tuple[Price, Priced]:
        """What `quantity` units of `operation` cost now (see `price_now`)."""
        return await price_now(self._store, operation, quantity)

    async def set(
        self,
        operation: str,
        price: str | int,
        *,
        operator: str,
        app_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        unit: str | None = None,
        unit_size: int | None = None,
        reason: str | None = None,
    ) -> tuple[Price, PriceChange | None]:
        """Price `operation` at `price` credits ("0.1": `pricing.parse_credits`) per
        `unit_size` units of `unit` ("" for per call). A new operation needs `app_id`
        and `name`; for a known one, the fields not given stay as they are, and a
        retired one is priced again. Returns the price and the change recorded (None
        when nothing changed).

        Raises `InvalidInput` naming the field at fault, `Conflict` when another
        change added the same new operation first.
        """
        operation = p.operation_id(operation)
        price_milli = p.parse_credits(price)
        operator = v.identifier(operator, "operator", 255)
        reason = v.optional_text(reason, "reason", v.MAX_REASON)
        app = None if app_id is None else v.identifier(app_id, "appId", v.MAX_APP_ID)
        label = None if name is None else v.text(name, "name", p.MAX_NAME, multiline=False)
        about = v.optional_text(description, "description", p.MAX_PRICE_DESCRIPTION)
        units = _unit(unit)
        size = None if unit_size is None else _unit_size(unit_size)
        async with self._store.unit_of_work() as uow:
            old = await uow.prices.lock(operation)
            # After the lock: changes of one operation are timed in the order they commit.
            now = self._clock.now()
            if old is None:
                if app is None:
                    raise InvalidInput("appId", f"a new operation needs an app: {operation}")
                if label is None:
                    raise InvalidInput("name", f"a new operation needs a name: {operation}")
                new = Price(
                    operation=operation,
                    app_id=app,
                    name=label,
                    description=about or "",
                    price_milli=price_milli,
                    unit=units or None,
                    unit_size=1 if not units else size or 1,
                    created_at=now,
                    updated_at=now,
                )
                action = PriceAction.CREATED
            else:
                unit_now = old.unit if units is None else units or None
                new = replace(
                    old,
                    app_id=app or old.app_id,
                    name=label or old.name,
                    description=old.description if about is None else about,
                    price_milli=price_milli,
                    unit=unit_now,
                    unit_size=1 if unit_now is None else size or old.unit_size,
                    retired_at=None,
                )
            if new.unit is None and size not in (None, 1):
                raise InvalidInput("unitSize", "a price per call has no unit size; give a unit")
            _check_sync(new)
            if old is not None:
                if new == old:
                    return old, None
                new = replace(new, updated_at=now)
                action = PriceAction.CHANGED if old.active else PriceAction.RESTORED
            change = self._change(old, new, action, operator, reason)
            await uow.prices.put(new, change)
            await uow.commit()
        return new, change

    async def retire(
        self, operation: str, *, operator: str, reason: str | None = None
    ) -> tuple[Price, PriceChange | None]:
        """Take `operation` off the price list: debits and reservations naming it are
        refused from now on; entries that used it keep their record. Retiring a retired
        operation changes nothing (the change is None). Raises `PriceNotFound`."""
        operation = p.operation_id(operation)
        operator = v.identifier(operator, "operator", 255)
        reason = v.optional_text(reason, "reason", v.MAX_REASON)
        async with self._store.unit_of_work() as uow:
            old = await uow.prices.lock(operation)
            if old is None:
                raise PriceNotFound(
                    f"no operation {operation} in the price list", operation=operation
                )
            if operation == p.SYNC_OPERATION:
                raise InvalidInput(
                    "operation",
                    f"{operation} is the monthly price of Cloud Sync subscriptions and cannot "
                    "be retired; stop Cloud Sync by deactivating subscriptions instead",
                )
            if not old.active:
                return old, None
            now = self._clock.now()
            new = replace(old, retired_at=now, updated_at=now)
            change = self._change(old, new, PriceAction.RETIRED, operator, reason)
            await uow.prices.put(new, change)
            await uow.commit()
        return new, change

    async def history(
        self, operation: str | None = None, limit: int = 100
    ) -> builtins.list[PriceChange]:
        """Changes to the price list (or one operation's), newest first (`limit`
        1..1000)."""
        if operation is not None:
            operation = p.operation_id(operation)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CHANGES:
            raise InvalidInput("limit", f"limit must be 1..{MAX_CHANGES}")
        async with self._store.reader() as reader:
            return await reader.prices.changes(operation, limit)

    def _change(
        self,
        old: Price | None,
        new: Price,
        action: PriceAction,
        operator: str,
        reason: str | None,
    ) -> PriceChange:
        before: dict[str, object] = {}
        if old is not None:
            before = {
                "appId": old.app_id,
                "name": old.name,
                "description": old.description,
                "unit": old.unit,
                "unitSize": old.unit_size,
                "retired": not old.active,
            }
        return PriceChange(
            id=self._ids.new_id(),
            operation=new.operation,
            action=action,
            old_price_milli=None if old is None else old.price_milli,
            new_price_milli=None if action is PriceAction.RETIRED else new.price_milli,
            operator=operator,
            reason=reason,
            at=new.updated_at,
            before=before,
        )


async def price_now(
    store: Store, operation: str, quantity: int | None = None, app_id: str | None = None
) -> tuple[Price, Priced]:
    """The price of `operation` now and what `quantity` units (None: 1) of it cost;
    `app_id`, if given, must be the operation's app.

    Raises `InvalidInput` (field `operation`) for an unknown or retired operation,
    (field `quantity`) for a quantity outside 1..`pricing.MAX_QUANTITY`, (field
    `appId`) for another app than the operation's.
    """
    operation = p.operation_id(operation)
    units = p.quantity(quantity)
    app = None if app_id is None else v.identifier(app_id, "appId", v.MAX_APP_ID)
    async with store.reader() as reader:
        found = await reader.prices.get(operation)
    if found is None:
        raise InvalidInput("operation", f"unknown operation {operation}: not in the price list")
    if app is not None and app != found.app_id:
        raise InvalidInput(
            "appId", f"operation {operation} belongs to app {found.app_id}, not {app}"
        )
    return found, p.price_of(found, units)


def _check_sync(new: Price) -> None:
    """Cloud Sync's entry prices whole months in whole credits (`SyncService` charges
    it per period); raises `InvalidInput` for anything else."""
    if new.operation != p.SYNC_OPERATION:
        return
    if new.price_milli % p.MILLI:
        raise InvalidInput(
            "price", f"{new.operation} is charged per month in whole credits; give e.g. 30"
        )
    if new.unit != "month" or new.unit_size != 1:
        raise InvalidInput("unit", f"{new.operation} is priced per month; keep --unit month")
    if new.app_id != p.SYNC_APP:
        # Its charges are entries of the app `sync` (SyncService), whatever the list says.
        raise InvalidInput("appId", f"{new.operation} belongs to app {p.SYNC_APP}; keep it there")


def _unit(value: str | None) -> str | None:
    """None: unchanged; "": per call; else a unit's name (`pricing.unit_name`)."""
    if value is None or value == "":
        return value
    return p.unit_name(value)


def _unit_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= p.MAX_UNIT_SIZE:
        raise InvalidInput("unitSize", f"unitSize must be 1..{p.MAX_UNIT_SIZE}")
    return value
