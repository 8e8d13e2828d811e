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


class UserNotFound(NotFound):
    """No balance was ever created for this user id (reads that must not create one)."""

    code = "user_not_found"
    default_message = "No such user"


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
    """An idempotency key was replayed with another request (operation, amount, app,
    description or metadata); `details.differs` names what differs."""

    code = "idempotency_key_reused"
    default_message = "Idempotency key was already used for a different operation"

    def __init__(
        self, original_amount: int, original_app_id: str, differs: list[str] | None = None
    ) -> None:
        message = None
        if differs:
            message = (
                f"Idempotency key was already used for a different request ({', '.join(differs)}"
                " not as in the original), send a new key for a new request"
            )
        super().__init__(
            message,
            original_amount=original_amount,
            original_app_id=original_app_id,
            **({} if differs is None else {"differs": differs}),
        )


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


class PurchaseNotRefundable(Conflict):
    """Only a completed, paid purchase can be refunded."""

    code = "purchase_not_refundable"
    default_message = "Purchase cannot be refunded"


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


class GiftNotFound(NotFound):
    code = "gift_not_found"
    default_message = "Gift code not found"


class GiftNotRedeemable(Conflict):
    """The gift exists but cannot be redeemed (claimed, expired, cancelled)."""

    code = "gift_not_redeemable"


class GiftAlreadyClaimed(GiftNotRedeemable):
    code = "gift_already_claimed"
    default_message = "Gift already claimed"


class GiftExpired(GiftNotRedeemable):
    code = "gift_expired"
    default_message = "Gift code expired"


class GiftWrongUser(Forbidden):
    """A personalized gift presented by someone whose e-mail is not the target's."""

    code = "gift_wrong_user"
    default_message = "This gift is meant for someone else"


class GiftNotCancellable(Conflict):
    code = "gift_not_cancellable"
    default_message = "Only active gifts can be cancelled"


class InsufficientCreditsForGift(InsufficientCredits):
    """The contract answers this one with 400, not 402."""

    code = "insufficient_credits"


class GiftCodeTaken(CreditsError):
    """A freshly generated code collided with an existing one (retried, never shown)."""

    code = "gift_code_taken"


class RateLimited(CreditsError):
    code = "rate_limited"
    default_message = "Too many failed attempts; try again later"


class SyncStateError(Conflict):
    """The subscription is not in a state that allows this (the contract's 400s)."""

    code = "sync_state"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    default_message = "No sync subscription found for user"


class SignInRefused(Unauthenticated):
    """A console sign-in link that is unknown, used or expired, or a token without
    the admin role: nothing was changed."""

    code = "sign_in_refused"
    default_message = "This sign-in link is unknown, used or expired"
