"""Use cases for balances and the ledger: read, debit, credit, history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .. import lots
from .. import pricing as p
from .. import validation as v
from ..cursors import decode_cursor as decode_cursor
from ..cursors import encode_cursor
from ..errors import (
    BalanceNotFound,
    InsufficientCredits,
    InvalidInput,
    UserNotFound,
)
from ..events import EventKind, Events
from ..ledger import (
    CREDIT_TYPES,
    Applied,
    Balance,
    BalanceSummary,
    Credit,
    CreditOutcome,
    Debit,
    DebitOutcome,
    LedgerEntry,
    LedgerPage,
    NoBalance,
    OperationUsage,
    Refused,
    Replayed,
    TransactionType,
    UsageStat,
)
from ..ports import Clock, DebitApplier, IdGenerator, Store
from ..pricing import PRICING_KEY, operation_id
from ..replays import PricedRequest, check_priced_replay, check_replay
from ..rewards import (
    MAX_REFERENCE_ID,
    MAX_REWARD_DESCRIPTION,
    MAX_REWARD_REASON,
    REWARD_APP,
    Reward,
    reward_key,
)
from .lots import lot_created_by
from .notices import LowBalanceAlerts
from .prices import price_now

SYSTEM_APP = "system"
ADMIN_APP = "admin"


@dataclass(frozen=True, slots=True)
class LedgerResult:
    """What a debit or credit did: the entry, the balance after it (None on a replay)."""

    entry: LedgerEntry
    balance: Balance | None
    replayed: bool = False


class UnitOfWorkDebits:
    """The default `DebitApplier`: each debit in its own unit of work."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def apply(self, debit: Debit) -> DebitOutcome:
        async with self._store.unit_of_work() as uow:
            outcome = await uow.balances.debit(debit)
            await uow.commit()
        return outcome

    async def close(self) -> None:
        pass


class CreditsService:
    """Balances and the ledger. Every method validates its arguments first."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        debits: DebitApplier | None = None,
        events: Events | None = None,
        alerts: LowBalanceAlerts | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._debits = debits or UnitOfWorkDebits(store)
        self._events = events or Events()
        self.alerts = alerts

    async def close(self) -> None:
        """Stop the debit applier (group commit writers finish their queues), then let
        the low-balance notices still being sent finish (bounded)."""
        await self._debits.close()
        if self.alerts is not None:
            await self.alerts.drain()

    async def init_balance(self, user_id: str) -> Balance:
        """Create a zero balance if the user has none; idempotent."""
        return await self.balance(user_id)

    async def balance(self, user_id: str) -> Balance:
        """The user's balance; a user seen for the first time gets a zero balance."""
        user_id = v.identifier(user_id, "userId")
        async with self._store.reader() as reader:
            found = await reader.balances.get(user_id)
        if found is not None:
            return found
        async with self._store.unit_of_work() as uow:
            created = await uow.balances.ensure(user_id, self._clock.now())
            await uow.commit()
            return created

    async def existing_balance(self, user_id: str) -> Balance:
        """The balance of a user seen before; never creates one (unlike `balance`).

        Raises `UserNotFound` for a user id that has no balance.
        """
        user_id = v.identifier(user_id, "userId")
        async with self._store.reader() as reader:
            found = await reader.balances.get(user_id)
        if found is None:
            raise UserNotFound(f"no such user {user_id}", userId=user_id)
        return found

    async def balance_summary(self, user_id: str) -> BalanceSummary:
        """The user's balance and how many ledger entries they have, of every type and
        status. A read only: a user without a balance (never seen, or deleted) gets a
        zero balance that is not stored, so that the auth service's data summary of a
        deleted account does not bring its balance back. Raises `InvalidInput` for a
        malformed id."""
        user_id = v.identifier(user_id, "userId")
        async with self._store.reader() as reader:
            found = await reader.balances.get(user_id)
            count = await reader.ledger.count(user_id)
        return BalanceSummary(found or Balance.zero(user_id), count)

    async def use(
        self,
        user_id: str,
        amount: int,
        app_id: str,
        description: str,
        *,
        idempotency_key: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> LedgerResult:
        """Debit `amount` credits for a paid feature of `app_id`.

        Raises `InsufficientCredits` (nothing changed) when the spendable balance is
        short, `BalanceNotFound` for a user without a balance, and
        `IdempotencyKeyReused` when the key was used for another request (a different
        amount, app, description or metadata; see `mana_credits_core.replays`). A
        replayed key returns the original entry with `replayed=True`.

        A debit that takes the balance below the low-balance threshold notifies the
        user once it has committed (`LowBalanceAlerts`); a failing notice never fails
        the debit.
        """
        debit = Debit(
            entry_id=self._ids.new_id(),
            user_id=v.identifier(user_id, "userId"),
            amount=v.amount(amount),
            app_id=v.identifier(app_id, "appId", v.MAX_APP_ID),
            description=v.text(description, "description", v.MAX_DESCRIPTION),
            metadata=_own_metadata(metadata),
            idempotency_key=v.idempotency_key(idempotency_key),
            now=self._clock.now(),
        )
        return await self._use(debit)

    async def use_operation(
        self,
        user_id: str,
        operation: str,
        quantity: int | None = None,
        *,
        description: str | None = None,
        app_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> LedgerResult:
        """Debit `quantity` units (None: 1) of a price-list `operation` at its price now.

        The cost in milli-credits joins what the user has accrued; the whole credits
        now due are charged and the rest is carried (`pricing.accrue`), so the entry's
        amount may be 0. The entry's app is the operation's, its description the
        given one or the operation's name, and its metadata the given one plus
        `pricing` (operation, quantity, price, cost and the milli-credits accrued
        after it). A replayed key returns the original (`replayed=True`) and accrues
        nothing, even after the price list changed; it must name the same operation and
        quantity (`replays.check_priced_replay`).

        Raises `InvalidInput` for an unknown or retired operation (field `operation`),
        a quantity outside 1..`pricing.MAX_QUANTITY`, an `app_id` other than the
        operation's, metadata using the key `pricing`; `InsufficientCredits` (nothing
        accrued) when the balance is short of the whole credits due; and what `use`
        raises.
        """
        user = v.identifier(user_id, "userId")
        text = v.optional_text(description, "description", v.MAX_DESCRIPTION)
        extra = _own_metadata(metadata)
        key = v.idempotency_key(idempotency_key)
        app = None if app_id is None else v.identifier(app_id, "appId", v.MAX_APP_ID)
        asked = PricedRequest(operation_id(operation), p.quantity(quantity), app, text, extra)
        try:
            price, priced = await price_now(self._store, asked.operation, asked.quantity, app)
        except InvalidInput:
            # The price list may have changed since a first request under this key was
            # charged (retired, moved to another app): its retry still gets the original.
            original = None if key is None else await self._by_key(user, key)
            if original is None:
                raise
            check_priced_replay(original, asked)
            return LedgerResult(original, None, replayed=True)
        debit = Debit(
            entry_id=self._ids.new_id(),
            user_id=user,
            amount=priced.most_credits,
            app_id=price.app_id,
            description=text or price.name,
            metadata=extra,
            idempotency_key=key,
            now=self._clock.now(),
            priced=priced,
        )
        return await self._use(debit, asked)

    async def _by_key(self, user_id: str, key: str) -> LedgerEntry | None:
        async with self._store.reader() as reader:
            return await reader.ledger.by_idempotency_key(user_id, key)

    async def _use(self, debit: Debit, asked: PricedRequest | None = None) -> LedgerResult:
        outcome = await self._debits.apply(debit)
        match outcome:
            case Applied(entry, balance):
                if self.alerts is not None:
                    await self.alerts.debited(
                        entry.user_id, entry.balance_before, entry.balance_after
                    )
                return LedgerResult(entry, balance)
            case Replayed(entry):
                if asked is None:
                    check_replay(entry, debit)
                else:
                    check_priced_replay(entry, asked)
                return LedgerResult(entry, None, replayed=True)
            case Refused(available, required):
                raise InsufficientCredits(
                    required=debit.amount if required is None else required, available=available
                )
            case NoBalance():
                raise BalanceNotFound()

    async def refund(
        self,
        user_id: str,
        amount: int,
        description: str,
        *,
        app_id: str = SYSTEM_APP,
        idempotency_key: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> LedgerResult:
        """Credit `amount` back to a user (e.g. a failed operation); idempotent by key
        (a key replayed with other arguments raises `IdempotencyKeyReused`)."""
        return await self.credit(
            user_id,
            amount,
            TransactionType.REFUND,
            description,
            app_id=app_id,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )

    async def credit(
        self,
        user_id: str,
        amount: int,
        type: TransactionType,
        description: str,
        *,
        app_id: str = SYSTEM_APP,
        idempotency_key: str | None = None,
        metadata: dict[str, object] | None = None,
        expires_at: datetime | None = None,
        priority: int | None = None,
    ) -> LedgerResult:
        """Add credits of the given type; creates the balance for a new user.

        The credits become one lot (docs/credits.md) that expires at `expires_at`
        (aware, in the future; None: never; purchased credits never expire) and is
        burned by `priority` (0..100, lower first; default `lots.DEFAULT_PRIORITY`).
        A replayed `idempotency_key` returns the original entry (`replayed=True`) if
        type, amount, app, description and metadata match it, else raises
        `IdempotencyKeyReused`. Raises `InvalidInput` naming the field at fault (`type`
        must be one of `CREDIT_TYPES`: entries that add credits).
        """
        if not isinstance(type, TransactionType) or type not in CREDIT_TYPES:
            raise InvalidInput(
                "type", f"type must be one of {', '.join(sorted(CREDIT_TYPES))} to add credits"
            )
        now = self._clock.now()
        credit = Credit(
            entry_id=self._ids.new_id(),
            user_id=v.identifier(user_id, "userId"),
            amount=v.amount(amount),
            type=type,
            app_id=v.identifier(app_id, "appId", v.MAX_APP_ID),
            description=v.text(description, "description", v.MAX_DESCRIPTION),
            metadata=v.metadata(metadata),
            idempotency_key=v.idempotency_key(idempotency_key),
            now=now,
            expires_at=lots.expiry(expires_at, now, purchased=type == TransactionType.PURCHASE),
            priority=lots.priority(priority),
        )
        async with self._store.unit_of_work() as uow:
            outcome: CreditOutcome = await uow.balances.credit(credit)
            await uow.commit()
        if isinstance(outcome, Replayed):
            check_replay(outcome.entry, credit, await lot_created_by(self._store, outcome.entry))
            return LedgerResult(outcome.entry, None, replayed=True)
        if credit.type == TransactionType.GRANT:
            self._events.emit(EventKind.GRANT, credits=credit.amount)
        return LedgerResult(outcome.entry, outcome.balance)

    async def grant(
        self,
        user_id: str,
        amount: int,
        reason: str,
        operator: str,
        *,
        idempotency_key: str | None = None,
        expires_at: datetime | None = None,
        priority: int | None = None,
    ) -> LedgerResult:
        """An operator's audited gift of credits: the entry names who and why. The
        credits may expire (`expires_at`) and carry a burn `priority` (see `credit`)."""
        operator = v.identifier(operator, "operator", 255)
        return await self.credit(
            user_id,
            amount,
            TransactionType.GRANT,
            reason,
            app_id=ADMIN_APP,
            idempotency_key=idempotency_key,
            metadata={"operator": operator, "reason": reason},
            expires_at=expires_at,
            priority=priority,
        )

    async def reward(
        self,
        user_id: str,
        amount: int,
        reason: str,
        reference_id: str,
        *,
        description: str | None = None,
        expires_at: datetime | None = None,
        priority: int | None = None,
    ) -> Reward:
        """Grant `amount` credits to `user_id` for the thing `reference_id` names, once.

        The entry is a `grant` on the `community` app with metadata
        `{"reason": reason, "referenceId": reference_id}` and `description` (default:
        the reason); it counts in `total_earned`, and the balance is created if absent.
        `amount` is in credits (1..`MAX_CREDITS`), `reason` one line of 1..64
        characters, `reference_id` 1..128, `description` 1..256.

        The same `reference_id` for the same user again, concurrent calls included,
        grants nothing and returns the original entry with `already_granted=True` and
        the balance right after the original grant (its amount, reason and description
        stand; a repeat's are ignored). Exactly-once rests on the store's unique
        ledger key (see `mana_credits_core.rewards`), not on a look-up. Raises
        `InvalidInput` naming the field that breaks a rule. The credits may expire
        (`expires_at`) and carry a burn `priority` (see `credit`).
        """
        user_id = v.identifier(user_id, "userId")
        amount = v.amount(amount)
        reason = v.identifier(reason, "reason", MAX_REWARD_REASON)
        reference_id = v.identifier(reference_id, "referenceId", MAX_REFERENCE_ID)
        if description is not None:
            description = v.text(description, "description", MAX_REWARD_DESCRIPTION)
        now = self._clock.now()
        credit = Credit(
            entry_id=self._ids.new_id(),
            user_id=user_id,
            amount=amount,
            type=TransactionType.GRANT,
            app_id=REWARD_APP,
            description=description or reason,
            metadata={"reason": reason, "referenceId": reference_id},
            idempotency_key=reward_key(reference_id),
            now=now,
            expires_at=lots.expiry(expires_at, now),
            priority=lots.priority(priority),
        )
        async with self._store.unit_of_work() as uow:
            outcome = await uow.balances.credit(credit)
            await uow.commit()
        if isinstance(outcome, Replayed):
            return Reward(outcome.entry, outcome.entry.balance_after, already_granted=True)
        self._events.emit(EventKind.GRANT, credits=credit.amount)
        return Reward(outcome.entry, outcome.balance.balance, already_granted=False)

    async def export(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        page: int = 1000,
    ) -> AsyncIterator[LedgerEntry]:
        """Every entry oldest first, one short transaction per page (constant memory,
        and no lock held between pages)."""
        if user_id is not None:
            user_id = v.identifier(user_id, "userId")
        after: tuple[datetime, str] | None = None
        while True:
            async with self._store.reader() as uow:
                entries = await uow.ledger.page_forward(
                    limit=page, after=after, user_id=user_id, since=since
                )
            for entry in entries:
                yield entry
            if len(entries) < page:
                return
            after = (entries[-1].created_at, entries[-1].id)

    async def usage_report(self, days: int = 30, app_id: str | None = None) -> list[UsageStat]:
        """Credits used per app and day over the last `days` days (all users)."""
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise InvalidInput("days", "days must be 1..3660")
        app = None if app_id is None else v.identifier(app_id, "appId", v.MAX_APP_ID)
        since = (self._clock.now() - timedelta(days=days - 1)).date()
        async with self._store.reader() as uow:
            return await uow.usage.by_app_and_day(since, app)

    async def usage_by_operation(
        self, days: int = 30, operation: str | None = None
    ) -> list[OperationUsage]:
        """Priced usage per operation and day over the last `days` days (all users):
        calls, units and cost in milli-credits. Raises `InvalidInput`."""
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise InvalidInput("days", "days must be 1..3660")
        wanted = None if operation is None else operation_id(operation)
        since = (self._clock.now() - timedelta(days=days - 1)).date()
        async with self._store.reader() as uow:
            return await uow.usage.by_operation(since, wanted)

    async def top_balances(self, limit: int = 10) -> list[Balance]:
        """The users holding the most credits, most first (`limit` ≤ `MAX_PAGE_SIZE`)."""
        size = v.page_size(limit)
        async with self._store.reader() as uow:
            return await uow.reports.top_balances(size)

    async def top_spenders(
        self, since: date | None = None, limit: int = 10
    ) -> list[tuple[str, int]]:
        """(user id, credits spent by apps) from day `since` on (UTC; None: ever), most
        first. Credits held for gift codes and claw-backs are not spending."""
        size = v.page_size(limit)
        async with self._store.reader() as uow:
            return await uow.reports.top_spenders(since, size)

    async def transactions(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> list[LedgerEntry]:
        """The user's entries, newest first; `limit` is capped at `MAX_PAGE_SIZE`."""
        user_id = v.identifier(user_id, "userId")
        size, skip = v.page_size(limit), v.offset(offset)
        async with self._store.reader() as uow:
            return await uow.ledger.list(user_id, limit=size, offset=skip)

    async def transactions_json(self, user_id: str, limit: int = 50, offset: int = 0) -> bytes:
        """`transactions` as the HTTP API answers it: one JSON array in UTF-8 of the
        Transaction shape (`LedgerRepository.list_json`), written by the store itself."""
        user_id = v.identifier(user_id, "userId")
        size, skip = v.page_size(limit), v.offset(offset)
        async with self._store.reader() as uow:
            return await uow.ledger.list_json(user_id, limit=size, offset=skip)

    async def transactions_page(
        self, user_id: str, limit: int = 50, cursor: str | None = None
    ) -> LedgerPage:
        """Keyset pagination for long histories: pass `next_cursor` back to go on."""
        user_id = v.identifier(user_id, "userId")
        size = v.page_size(limit)
        before = None if cursor is None else decode_cursor(cursor)
        async with self._store.reader() as uow:
            entries = await uow.ledger.list(user_id, limit=size + 1, before=before)
        more = len(entries) > size
        entries = entries[:size]
        next_cursor = encode_cursor(entries[-1]) if more else None
        return LedgerPage(entries, next_cursor)


def _own_metadata(metadata: object) -> dict[str, object] | None:
    """A debit's metadata (`validation.metadata`) without the service's own `pricing`
    record, which only a debit by operation gets: a client's copy would make an entry
    look priced (exports, `credits history`, replays). Raises `InvalidInput`."""
    extra = v.metadata(metadata)
    if extra is not None and PRICING_KEY in extra:
        raise InvalidInput("metadata", f"metadata key {PRICING_KEY!r} is the service's own")
    return extra
