"""The ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from .gifts import GiftCode, GiftRedemption, GiftStatus, ReceivedGift
from .ledger import (
    Balance,
    Credit,
    CreditOutcome,
    Debit,
    DebitOutcome,
    LedgerEntry,
    UsageStat,
)
from .payment_state import PaymentState
from .purchases import (
    CheckoutSession,
    Package,
    PaymentEvent,
    PaymentIntent,
    PaymentRef,
    Purchase,
    PurchaseStatus,
    Refund,
)
from .reservations import CommitHold, Held, Hold, ReleaseHold, Reservation
from .sync import BatchOutcome, SyncSubscription


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A fresh UUID string."""
        ...


class BalanceRepository(Protocol):
    async def get(self, user_id: str) -> Balance | None: ...

    async def ensure(self, user_id: str, now: datetime) -> Balance:
        """The user's balance, created at zero if absent; safe under concurrent calls."""
        ...

    async def debit(self, debit: Debit) -> DebitOutcome:
        """Apply a debit atomically (see `Debit`); a replayed key returns `Replayed`."""
        ...

    async def credit(self, credit: Credit) -> CreditOutcome:
        """Apply a credit atomically, creating the balance if absent."""
        ...

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        """Take up to `debit.amount` (never below zero); the shortfall becomes debt.

        Returns the clawback entry (None if nothing could be taken) and the debt added.
        """
        ...

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        """Take what the user owes, as far as the balance allows (`debit.amount` ignored)."""
        ...

    async def reinstate(self, credit: Credit) -> tuple[LedgerEntry | None, int]:
        """Give back `credit.amount` credits taken by a clawback: what the user owes is
        paid from them first, the rest is credited with one entry.

        Returns that entry (None if all went to the debt) and the debt paid. Raises
        `BalanceNotFound` if the user has no balance.
        """
        ...

    def iterate(self, batch_size: int = 1000) -> AsyncIterator[Balance]:
        """Every balance in user id order (for reconciliation)."""
        ...


class LedgerRepository(Protocol):
    async def get(self, entry_id: str) -> LedgerEntry | None: ...

    async def by_idempotency_key(self, user_id: str, key: str) -> LedgerEntry | None: ...

    async def count(self, user_id: str) -> int:
        """How many entries the user has, of any type and status."""
        ...

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> list[LedgerEntry]:
        """Entries newest first; `before` = (created_at, id) of the last entry seen."""
        ...

    async def page_forward(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[LedgerEntry]:
        """Entries oldest first after (created_at, id) `after`: keyset pages for export."""
        ...

    async def totals(self) -> Mapping[str, LedgerTotals]:
        """Per user: the sums of completed entries (for reconciliation)."""
        ...


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    net: int = 0
    earned: int = 0
    spent: int = 0


class ReservationRepository(Protocol):
    async def get(self, reservation_id: str) -> Reservation | None: ...

    async def hold(self, hold: Hold) -> Held | None:
        """Move credits into a pending reservation if they fit, else None (no change).

        Raises `BalanceNotFound` if the user has no balance.
        """
        ...

    async def commit(self, commit: CommitHold) -> tuple[Reservation, LedgerEntry] | None:
        """Resolve a pending reservation into a usage entry; None if not pending."""
        ...

    async def release(self, release: ReleaseHold) -> tuple[Reservation, Balance] | None:
        """Give a pending reservation's credits back; None if not pending."""
        ...

    async def expired(self, older_than: datetime, limit: int) -> list[str]:
        """Ids of pending reservations created before `older_than`."""
        ...

    async def held_by_user(self) -> Mapping[str, int]:
        """Per user: credits held by pending reservations (for reconciliation)."""
        ...


class UsageRepository(Protocol):
    async def for_user(self, user_id: str, since: datetime | None = None) -> list[UsageStat]: ...

    async def by_app_and_day(self, since: date, app_id: str | None = None) -> list[UsageStat]:
        """Usage summed over all users per app and day (`user_id` is "*"), by day."""
        ...


class PackageRepository(Protocol):
    async def list(self, *, active_only: bool) -> list[Package]:
        """Packages by `sort_order`, then name."""
        ...

    async def get(self, package_id: str) -> Package | None: ...

    async def add(self, package: Package) -> None: ...

    async def update(self, package: Package) -> None: ...

    async def count(self) -> int: ...

    async def ids_starting_with(self, prefix: str, limit: int) -> builtins.list[str]:
        """Ids beginning with `prefix` exactly (case matters, no wildcards), in id
        order, at most `limit` of them; an empty list when none does."""
        ...


class PurchaseRepository(Protocol):
    async def add(self, purchase: Purchase) -> None: ...

    async def get(self, purchase_id: str) -> Purchase | None: ...

    async def by_payment_intent(self, payment_intent_id: str) -> Purchase | None: ...

    async def by_charge(self, charge_id: str) -> Purchase | None: ...

    async def by_checkout_session(self, session_id: str) -> Purchase | None: ...

    async def lock(self, purchase_id: str) -> Purchase | None:
        """The purchase, its row locked until the unit of work ends."""
        ...

    async def list_for_user(self, user_id: str, limit: int) -> list[Purchase]:
        """Newest first."""
        ...

    async def complete(
        self, purchase_id: str, payment_intent_id: str | None, now: datetime
    ) -> Purchase | None:
        """Pending or failed → completed, recording the payment; None if not possible.

        The status guard makes this happen once, whichever event arrives first.
        """
        ...

    async def fail(self, purchase_id: str) -> bool:
        """Pending → failed; a completed purchase is never failed afterwards."""
        ...

    async def link(self, purchase_id: str, payment_intent_id: str, charge_id: str | None) -> None:
        """Record the purchase's PaymentIntent and charge where none is recorded yet."""
        ...

    async def move_clawback(self, purchase_id: str, version: int, clawed_back: int) -> bool:
        """Set `clawed_back` and bump `clawback_version` if it is still `version` (a
        conditional write); False if another move came first."""
        ...

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Ids beginning with `prefix` exactly (case matters, no wildcards), in id
        order, at most `limit` of them; an empty list when none does."""
        ...


class CustomerRepository(Protocol):
    async def get(self, user_id: str) -> str | None: ...

    async def add(self, user_id: str, customer_id: str, now: datetime) -> str:
        """Store the user's customer id unless one is stored; returns the stored one."""
        ...


class PaymentEventRepository(Protocol):
    async def record(self, event_id: str, type: str, now: datetime) -> bool:
        """Remember a processed event; False if it was recorded before."""
        ...

    async def seen(self, event_id: str) -> bool:
        """Whether the event was recorded as processed."""
        ...


class GiftRepository(Protocol):
    async def add(self, gift: GiftCode) -> None:
        """Store a new gift; raises `GiftCodeTaken` if its code exists already."""
        ...

    async def get(self, gift_id: str) -> GiftCode | None: ...

    async def by_code(self, code: str) -> GiftCode | None: ...

    async def created_by(self, user_id: str, limit: int) -> list[GiftCode]:
        """Newest first."""
        ...

    async def recent(self, limit: int, status: GiftStatus | None = None) -> list[GiftCode]:
        """All gifts, newest first, optionally of one status."""
        ...

    async def transition(
        self,
        gift_id: str,
        to: GiftStatus,
        now: datetime,
        *,
        creator_id: str | None = None,
        unexpired: bool = False,
        expired: bool = False,
    ) -> GiftCode | None:
        """Active → `to`, once: None if the gift is not active (or not the creator's,
        or, with `unexpired`/`expired`, on the wrong side of its expiry at `now`).
        Moving to `depleted` also sets `redeemed`.
        """
        ...

    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]:
        """Ids of active gifts whose expiry has passed."""
        ...

    async def pending_for_email(self, email_key: str, now: datetime) -> list[GiftCode]:
        """Active, unexpired personalized gifts for a (normalised) e-mail address."""
        ...

    async def add_redemption(self, redemption: GiftRedemption) -> None: ...

    async def redemptions(self, gift_id: str) -> list[GiftRedemption]:
        """Every redemption attempt of one gift, successful or failed, oldest first
        (ties by id); an empty list for a gift never redeemed or unknown."""
        ...

    async def received_by(self, user_id: str, limit: int) -> list[ReceivedGift]:
        """The user's successful redemptions with their gifts, newest first (failed
        attempts are not gifts received)."""
        ...

    async def unbacked(self) -> list[tuple[str, int, int | None]]:
        """Active gifts whose creation entry does not hold exactly their credits:
        (gift id, total credits, amount held by the entry or None)."""
        ...

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Ids beginning with `prefix` exactly (case matters, no wildcards), in id
        order, at most `limit` of them; an empty list when none does."""
        ...


class SyncRepository(Protocol):
    async def get(self, user_id: str, *, lock: bool = False) -> SyncSubscription | None:
        """The user's subscription; `lock` holds its row until the unit of work ends."""
        ...

    async def ensure(self, user_id: str, now: datetime) -> None:
        """Create an inactive monthly row if absent (safe under concurrent calls)."""
        ...

    async def save(self, sub: SyncSubscription) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[SyncSubscription]:
        """Active, non-gifted subscriptions whose charge is due, oldest first, locked;
        rows locked by another run are skipped (so several runs share the work)."""
        ...

    async def count_due(self, now: datetime) -> int: ...

    async def charge_due_batch(self, now: datetime, limit: int, app_id: str) -> BatchOutcome | None:
        """Optionally, one set-based batch of the billing run in one statement.

        It must do exactly what `SyncService` does row by row (`BillingInterval`
        prices and months, `add_months`, `period_key`, pause on a short balance) and
        is certified by the same contract suite. None: the store has no fast path.
        """
        ...


class ReportRepository(Protocol):
    """Operator reads across all users: rankings and listings."""

    async def top_balances(self, limit: int) -> list[Balance]:
        """The `limit` largest balances, largest first (ties by user id)."""
        ...

    async def top_spenders(self, since: date | None, limit: int) -> list[tuple[str, int]]:
        """(user id, credits used by apps) from day `since` on (None: ever), most first,
        ties by user id; credits held for gift codes and claw-backs are not spending."""
        ...

    async def purchases(
        self,
        limit: int,
        *,
        user_id: str | None = None,
        status: PurchaseStatus | None = None,
        clawed_back: bool = False,
    ) -> list[Purchase]:
        """Purchases of every user, newest first (ties by id, descending), optionally of
        one user or status; `clawed_back`: only those whose credits were taken back, in
        part or in full (`clawed_back` > 0)."""
        ...


class UserDataRepository(Protocol):
    """Everything held about one user, across tables: for access and erasure."""

    async def lock(self, user_ids: Sequence[str]) -> None:
        """Lock these users' balance rows until the unit of work ends, in user id order
        as a batch of debits does (so a debit racing an erasure waits for it)."""
        ...

    async def pending_reservations(self, user_id: str) -> builtins.list[str]:
        """Ids of the user's pending reservations, their rows locked until the unit of
        work ends."""
        ...

    async def reservations(self, user_id: str) -> builtins.list[Reservation]:
        """Every reservation of the user, oldest first."""
        ...

    async def purchases(self, user_id: str, *, lock: bool = False) -> builtins.list[Purchase]:
        """Every purchase of the user, oldest first; `lock` holds their rows until the
        unit of work ends."""
        ...

    async def gifts_created(self, user_id: str) -> builtins.list[GiftCode]:
        """Every gift the user created, oldest first."""
        ...

    async def redemptions(self, user_id: str) -> builtins.list[GiftRedemption]:
        """Every redemption attempt by the user (failed ones too), oldest first."""
        ...

    async def gifts_received(self, user_id: str) -> builtins.list[GiftCode]:
        """The gifts the user redeemed successfully, oldest first."""
        ...

    async def active_gifts(
        self, user_id: str, email_keys: Sequence[str]
    ) -> builtins.list[GiftCode]:
        """Active gifts created by the user or addressed to one of `email_keys`
        (normalised e-mail addresses), oldest first, their rows locked until the unit
        of work ends."""
        ...

    async def erase(self, erasure: Erasure) -> int:
        """Delete and pseudonymize what identifies the user (see `Erasure`); returns
        the rows deleted or changed. Run it last, after the user's credits moved."""
        ...


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an account deletion removes, all in the caller's unit of work.

    Deleted: the user's usage statistics, reservations and payment customer mapping.
    Cleared: the message, target e-mail (and creator name, for their own) of gifts the
    user created, redeemed, or that are addressed to one of `email_keys`; descriptions
    naming the user on the ledger entries of the people who redeemed their gifts.
    Pseudonymized, `user_id` replaced by `pseudonym` everywhere: balance, ledger
    entries (description reduced to the entry type, metadata and idempotency key
    cleared), purchases (payment customer cleared), gifts, redemptions, the Cloud Sync
    subscription (stopped) and the `gifted_by` of subscriptions the user gifted.
    """

    user_id: str
    pseudonym: str
    email_keys: tuple[str, ...]
    now: datetime
    creator_name: str = "A former Mana user"  # on the gifts the user created
    gift_description: str = "Gift"  # on the redeemers' entries of the user's gifts


class UnitOfWork(Protocol):
    """One transaction over the repositories: rolled back on exit unless committed."""

    @property
    def balances(self) -> BalanceRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def usage(self) -> UsageRepository: ...

    @property
    def packages(self) -> PackageRepository: ...

    @property
    def purchases(self) -> PurchaseRepository: ...

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def payment_events(self) -> PaymentEventRepository: ...

    @property
    def gifts(self) -> GiftRepository: ...

    @property
    def sync(self) -> SyncRepository: ...

    @property
    def reports(self) -> ReportRepository: ...

    @property
    def users(self) -> UserDataRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class Store(Protocol):
    """A store: hands out units of work, and closes its connections when done."""

    def unit_of_work(self) -> UnitOfWork: ...

    def reader(self) -> UnitOfWork:
        """A unit of work for reads only: each read sees committed data, without a
        transaction around them (one round trip per read); never call `commit`."""
        ...

    async def ping(self) -> None:
        """Touch the store; raises `StoreUnavailable` if it cannot be reached."""
        ...

    async def close(self) -> None: ...


class DebitApplier(Protocol):
    """Applies one debit in its own transaction.

    The default runs it in a unit of work; a batching adapter may group debits that
    arrive together into one transaction, as long as each gets its own outcome.
    """

    async def apply(self, debit: Debit) -> DebitOutcome: ...

    async def close(self) -> None:
        """Finish queued debits and release connections (a no-op when none are held)."""
        ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    user_id: str
    email: str | None = None
    role: str = "user"
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class IdentityVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The token's principal; raises `Unauthenticated` for any bad token."""
        ...


class PaymentGateway(Protocol):
    """The payment provider (Stripe in production, a dev gateway locally)."""

    async def ensure_customer(self, user_id: str, email: str | None) -> str: ...

    async def create_payment_intent(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> PaymentIntent: ...

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        product_name: str,
        success_url: str,
        cancel_url: str,
        metadata: Mapping[str, str],
    ) -> CheckoutSession: ...

    async def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> Refund:
        """Give the buyer back what is not yet refunded of the payment of
        `amount_cents` euro cents; the same `purchase_id` never refunds twice.
        Raises `PaymentProviderError`."""
        ...

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        """The payment as the provider knows it now: its PaymentIntent (found from the
        charge or the Checkout Session when `ref` names no PaymentIntent), latest
        charge, refunds and disputes. None when the provider knows no such payment,
        or the Checkout Session has no PaymentIntent yet. Raises
        `PaymentProviderUnavailable` (retry later), `PaymentProviderError`."""
        ...

    def verify_webhook(self, payload: bytes, signature: str) -> PaymentEvent:
        """The event, verified and translated; raises `InvalidWebhook` otherwise."""
        ...

    async def close(self) -> None: ...


class Notifier(Protocol):
    """Tells users about things that happened to their account."""

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None: ...

    async def close(self) -> None: ...


class CodeGenerator(Protocol):
    def new_code(self) -> str:
        """A fresh gift code from a cryptographic random source."""
        ...
