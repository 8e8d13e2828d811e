"""Request and response bodies: one definition for validation, rendering and OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from mana_credits_adapters.entry_json import entry_json
from mana_credits_adapters.entry_json import iso as iso
from mana_credits_core import Balance, LedgerEntry, TransactionStatus, TransactionType
from mana_credits_core.errors import InvalidInput
from mana_credits_core.pricing import MAX_QUANTITY, MILLI
from mana_credits_core.validation import MAX_CREDITS


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    # (wire name, Python name) of each field whose names differ, found once per model.
    renamed: ClassVar[tuple[tuple[str, str], ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.renamed = tuple(
            (field.alias, name)
            for name, field in cls.model_fields.items()
            if field.alias is not None and field.alias != name
        )

    @model_validator(mode="before")
    @classmethod
    def _each_field_once(cls, data: Any) -> Any:
        """Refuse a body giving one field under both its names (`idempotencyKey` and
        `idempotency_key`): one would be dropped without a word, and a retry naming it
        the other way would be another request."""
        if isinstance(data, dict):
            for alias, name in cls.renamed:
                if alias in data and name in data:
                    raise InvalidInput(alias, f"give {alias} once, not also as {name}")
        return data

    def render(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


def drop_none(body: dict[str, Any]) -> dict[str, Any]:
    """Leave out optional top-level keys; nested shapes keep their nulls."""
    return {key: value for key, value in body.items() if value is not None}


# Requests. Types are strict here (no "10" for 10); the core checks ranges and text.


# A debit or a hold gives `amount` (credits) or `operation` (and `quantity`) of the
# price list, never both: `mana_credits_http.charges` enforces which fields go together.
Amount = Annotated[StrictInt | None, Field(description="Credits; or give operation")]
Operation = Annotated[
    StrictStr | None,
    Field(description="An operation of the price list (GET /api/v1/credits/prices); or amount"),
]


def _given(value: object) -> object:
    """Refuse an explicit null where leaving the field out picks a default: a client
    sending `"amount": null` by mistake would otherwise commit the whole hold."""
    if value is None:
        raise PydanticCustomError("not_null", "Input should be an integer; leave it out, not null")
    return value


def _no_null_default(schema: dict[str, Any]) -> None:
    """The field's model default is None, which pydantic writes as `"default": null`; but
    null is refused, and the default a client gets by leaving the field out is the one
    its description gives."""
    schema.pop("default", None)


def _count_schema(least: int, most: int, description: str) -> WithJsonSchema:
    """The OpenAPI schema of an optional whole number: an integer in least..most (null is
    no value of theirs)."""
    return WithJsonSchema(
        {"type": "integer", "minimum": least, "maximum": most, "description": description}
    )


# Optional whole numbers: absent means the default, an explicit null is refused, and the
# OpenAPI schema says integer with their bounds (which the core checks for commits).
NOT_NULL = BeforeValidator(_given)
NO_NULL_DEFAULT = Field(json_schema_extra=_no_null_default)
Quantity = Annotated[
    StrictInt | None,
    Field(ge=1, le=MAX_QUANTITY),
    NO_NULL_DEFAULT,
    NOT_NULL,
    _count_schema(1, MAX_QUANTITY, "Units of the operation (default 1)"),
]
CommitAmount = Annotated[
    StrictInt | None,
    NO_NULL_DEFAULT,
    NOT_NULL,
    _count_schema(
        1,
        MAX_CREDITS,
        "Credits to charge, at most those held (default: all held); or give quantity",
    ),
]
CommitQuantity = Annotated[
    StrictInt | None,
    NO_NULL_DEFAULT,
    NOT_NULL,
    _count_schema(
        1,
        MAX_QUANTITY,
        "Units used, at most those reserved (reservations by operation; default: all"
        " reserved); or give amount",
    ),
]
AccruedMilli = Annotated[
    int,
    Field(
        ge=0,
        lt=MILLI,
        description="Milli-credits priced debits cost beyond the whole credits they "
        "charged, carried to the next priced debit",
    ),
]


def one_of_amount_or_operation(*with_amount: str) -> dict[str, Any]:
    """The OpenAPI rule of a body that gives `amount` (with `with_amount`) or
    `operation`, never both, and `quantity` only with `operation`."""
    return {
        "oneOf": [
            {
                "required": ["amount", *with_amount],
                "not": {"anyOf": [{"required": ["operation"]}, {"required": ["quantity"]}]},
            },
            {"required": ["operation"], "not": {"required": ["amount"]}},
        ]
    }


class UseCreditsBody(Camel):
    model_config = ConfigDict(json_schema_extra=one_of_amount_or_operation("appId", "description"))

    amount: Amount = None
    operation: Operation = None
    quantity: Quantity = None
    app_id: Annotated[
        StrictStr | None,
        Field(description="Required with amount; with operation, must be the operation's app"),
    ] = None
    description: Annotated[
        StrictStr | None,
        Field(description="Required with amount; with operation, defaults to its name"),
    ] = None
    idempotency_key: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class InternalUseCreditsBody(UseCreditsBody):
    user_id: StrictStr


class InternalRefundBody(Camel):
    user_id: StrictStr
    amount: StrictInt
    description: StrictStr
    app_id: StrictStr = "system"
    idempotency_key: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class UserIdBody(Camel):
    user_id: StrictStr


class ReserveBody(Camel):
    model_config = ConfigDict(json_schema_extra=one_of_amount_or_operation("reason"))

    user_id: StrictStr
    amount: Amount = None
    operation: Operation = None
    quantity: Quantity = None
    reason: Annotated[
        StrictStr | None,
        Field(description="Required with amount; with operation, defaults to its name"),
    ] = None


class CommitBody(Camel):
    reservation_id: StrictStr
    description: StrictStr | None = None
    amount: CommitAmount = None
    quantity: CommitQuantity = None


class ReservationIdBody(Camel):
    reservation_id: StrictStr


# Responses.


class BalanceOut(Camel):
    balance: int
    total_earned: int
    total_spent: int
    accrued_milli_credits: AccruedMilli

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        return cls(
            balance=balance.balance,
            total_earned=balance.total_earned,
            total_spent=balance.total_spent,
            accrued_milli_credits=balance.accrued_milli,
        )


class TransactionOut(Camel):
    id: str
    user_id: str
    type: TransactionType
    status: TransactionStatus
    amount: int
    balance_before: int
    balance_after: int
    app_id: str
    description: str
    metadata: dict[str, Any] | None
    idempotency_key: str | None
    created_at: str
    completed_at: str | None

    @classmethod
    def of(cls, e: LedgerEntry) -> TransactionOut:
        return cls(
            id=e.id,
            user_id=e.user_id,
            type=e.type,
            status=e.status,
            amount=e.amount,
            balance_before=e.balance_before,
            balance_after=e.balance_after,
            app_id=e.app_id,
            description=e.description,
            metadata=e.metadata,
            idempotency_key=e.idempotency_key,
            created_at=iso(e.created_at),
            completed_at=None if e.completed_at is None else iso(e.completed_at),
        )

    @staticmethod
    def render_entry(e: LedgerEntry) -> dict[str, Any]:
        """`TransactionOut.of(e).render()` without building the model: the stores render
        history pages with the same function (a test keeps the two identical)."""
        return entry_json(e)


class NewBalanceOut(Camel):
    balance: int
    total_spent: int
    accrued_milli_credits: AccruedMilli


class RefundedBalanceOut(Camel):
    balance: int


class UseCreditsOut(Camel):
    """Applied: `newBalance` is set. Replayed: `message` says so and it is omitted."""

    success: Literal[True] = True
    transaction: TransactionOut
    new_balance: NewBalanceOut | None = None
    message: str | None = None

    def render(self) -> dict[str, Any]:
        return drop_none(super().render())


class RefundOut(Camel):
    success: Literal[True] = True
    transaction: TransactionOut
    new_balance: RefundedBalanceOut
    message: str | None = None

    def render(self) -> dict[str, Any]:
        return drop_none(super().render())


class ReserveOut(Camel):
    reservation_id: str
    balance: int


class CommitOut(Camel):
    success: Literal[True] = True
    transaction_id: str
    charged: Annotated[int, Field(ge=0, description="Credits charged; the rest was released")]


class DeletedUserOut(Camel):
    success: Literal[True] = True
    deleted_count: int


class RefundReservationOut(Camel):
    success: Literal[True] = True
    balance: int


class HealthOut(Camel):
    status: str
    service: str
    timestamp: str


class ReadyOut(Camel):
    status: str


class ErrorOut(Camel):
    status_code: int
    message: str
    code: str
    details: dict[str, Any] | None = None
