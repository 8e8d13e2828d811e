"""The error tree of the credits domain: one root, stable snake_case codes, no HTTP."""

from __future__ import annotations

from typing import Any, ClassVar


class CreditsError(Exception):
    """Root of every error the core raises on purpose.

    `code` is stable and machine-readable; `message` is for people; `details` carries
    the data a caller needs to act (never internals).
    """

    code: ClassVar[str] = "credits_error"
    default_message: ClassVar[str] = "Credits operation failed"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = details
        super().__init__(self.message)


class InvalidInput(CreditsError):
    """An argument broke a rule; `field` names it."""

    code = "invalid_input"
    default_message = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class NotFound(CreditsError):
    """The thing asked for does not exist (or is not the caller's to see)."""

    code = "not_found"
    default_message = "Not found"


class BalanceNotFound(NotFound):
    code = "balance_not_found"
    default_message = "User balance not found"


class ReservationNotFound(NotFound):
    code = "reservation_not_found"
    default_message = "Reservation not found"


class InsufficientCredits(CreditsError):
    """A debit or hold did not fit the spendable balance; nothing was changed."""

    code = "insufficient_credits"
    default_message = "Insufficient credits"

    def __init__(self, required: int, available: int, message: str | None = None) -> None:
        super().__init__(message, required=required, available=available)
        self.required = required
        self.available = available


class Conflict(CreditsError):
    """The request contradicts the current state of what it names."""

    code = "conflict"
    default_message = "Conflict"


class IdempotencyKeyReused(Conflict):
    """An idempotency key was replayed with a different amount or app."""

    code = "idempotency_key_reused"
    default_message = "Idempotency key was already used for a different operation"


class ReservationNotPending(Conflict):
    """A reservation may be committed or refunded once; this one is already resolved."""

    code = "reservation_not_pending"

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"Cannot {action} reservation in status: {status}", status=status)
        self.status = status


class StoreUnavailable(CreditsError):
    """The store could not be reached; nothing was changed, the caller may retry."""

    code = "store_unavailable"
    default_message = "Credit store temporarily unavailable"


class Unauthenticated(CreditsError):
    """No valid credential was presented."""

    code = "unauthenticated"
    default_message = "Invalid or expired token"


class Forbidden(CreditsError):
    """The caller is known but may not do this."""

    code = "forbidden"
    default_message = "Forbidden"


class PackageNotFound(NotFound):
    code = "package_not_found"
    default_message = "Package not found or inactive"


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"
    default_message = "Purchase not found"


class PaymentProviderError(CreditsError):
    """The payment provider refused or failed a request; nothing was recorded."""

    code = "payment_provider_error"
    default_message = "Payment provider error"


class PaymentProviderUnavailable(PaymentProviderError):
    code = "payment_provider_unavailable"
    default_message = "Payment provider temporarily unavailable"


class InvalidWebhook(CreditsError):
    """A webhook whose signature, timestamp or body does not verify."""

    code = "invalid_webhook"
    default_message = "Invalid signature"
