"""Use cases for gift codes: create, redeem, cancel, expire, auto-redeem at sign-up."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from .. import validation as v
from ..errors import (
    CreditsError,
    GiftAlreadyClaimed,
    GiftCodeTaken,
    GiftExpired,
    GiftNotFound,
    GiftNotRedeemable,
    GiftWrongUser,
    InsufficientCreditsForGift,
    InvalidInput,
)
from ..events import EventKind, Events
from ..gifts import (
    MAX_MESSAGE,
    GiftCode,
    GiftRedemption,
    GiftStatus,
    GiftType,
    ReceivedGift,
    RedemptionStatus,
    creator_name,
    email_key,
    normalise_code,
)
from ..ledger import Applied, Credit, Debit, TransactionType
from ..ports import Clock, CodeGenerator, IdGenerator, Principal, Store, UnitOfWork
from .gift_input import code_key, expiry, gift_credits, gift_type, valid_email
from .gift_returns import GIFTS_APP, GiftReturns

CODE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Redeemed:
    credits_received: int
    creator_name: str
    message: str | None
    gift: GiftCode
    new_balance: int  # the redeemer's balance right after the gift's credit


@dataclass(frozen=True, slots=True)
class PendingRedeemed:
    redeemed: int
    total_credits: int


class GiftsService(GiftReturns):
    """Single-use gift codes.

    Creating a gift debits the creator at once (a `gift` ledger entry) in the same
    transaction that stores the code. Redeeming, cancelling and expiring are each a
    conditional transition out of `active`, so exactly one of them ever happens to
    a gift; cancel and expiry give the credits back to the creator.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        codes: CodeGenerator,
        events: Events | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._codes = codes
        self._events = events or Events()

    async def create(
        self,
        creator: Principal,
        total_credits: int,
        *,
        type: str = GiftType.SIMPLE,
        target_email: str | None = None,
        message: str | None = None,
        expiration_days: int | None = None,
        expires_at: datetime | None = None,
        source_app_id: str | None = None,
        credits_field: str = "totalCredits",
    ) -> GiftCode:
        """Set `total_credits` of the creator's balance aside in a new single-use code.

        The gift expires at `expires_at` or after `expiration_days` (default 90), not
        both; `source_app_id` names the app the creator's `gift` ledger entry is booked
        for; `credits_field` is the name errors give the amount (the web app sends
        `credits`). Raises `InvalidInput`, `InsufficientCreditsForGift`, and
        `GiftCodeTaken` only if CODE_ATTEMPTS fresh codes all collide."""
        credits = gift_credits(total_credits, credits_field)
        kind = gift_type(type)
        address = None
        if kind == GiftType.PERSONALIZED or target_email is not None:
            address = valid_email(target_email, "targetEmail")
        text = v.optional_text(message, "message", MAX_MESSAGE)
        app = None if source_app_id is None else v.identifier(source_app_id, "sourceAppId", 100)
        now = self._clock.now()
        ends = expiry(now, expiration_days, expires_at)
        for _ in range(CODE_ATTEMPTS):
            gift = GiftCode(
                id=self._ids.new_id(),
                code=self._codes.new_code(),
                creator_id=v.identifier(creator.user_id, "userId"),
                creator_name=creator_name(creator.name, creator.email),
                total_credits=credits,
                redeemed=0,
                type=kind,
                status=GiftStatus.ACTIVE,
                target_email=address,
                message=text,
                expires_at=ends,
                reservation_transaction_id=self._ids.new_id(),
                created_at=now,
                updated_at=now,
            )
            try:
                return await self._create(gift, app or GIFTS_APP)
            except GiftCodeTaken:
                continue  # rare (N active codes in 30**10): draw another code
        raise GiftCodeTaken("Could not allocate a unique gift code")

    async def _create(self, gift: GiftCode, app_id: str) -> GiftCode:
        assert gift.reservation_transaction_id is not None
        debit = Debit(
            entry_id=gift.reservation_transaction_id,
            user_id=gift.creator_id,
            amount=gift.total_credits,
            app_id=app_id,
            description=f"Gift code {gift.code}",
            metadata={"giftId": gift.id},
            idempotency_key=None,
            now=gift.created_at,
            type=TransactionType.GIFT,
        )
        async with self._store.unit_of_work() as uow:
            await uow.gifts.add(gift)
            outcome = await uow.balances.debit(debit)
            if not isinstance(outcome, Applied):
                available = getattr(outcome, "available", 0)
                raise InsufficientCreditsForGift(
                    gift.total_credits, available, "Insufficient credits to create gift"
                )
            await uow.commit()
        self._events.emit(EventKind.GIFT_CREATED, credits=gift.total_credits)
        return gift

    async def info(self, code: str) -> GiftCode:
        """A gift by its code (case-insensitive), for the public info page."""
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.by_code(code_key(code))
        if found is None:
            raise GiftNotFound()
        return found

    async def created(self, user_id: str, limit: int = 50) -> list[GiftCode]:
        async with self._store.unit_of_work() as uow:
            return await uow.gifts.created_by(v.identifier(user_id, "userId"), v.page_size(limit))

    async def received(self, user_id: str, limit: int = 50) -> list[ReceivedGift]:
        """Gifts the user redeemed, newest first: successful redemptions only."""
        async with self._store.reader() as uow:
            return await uow.gifts.received_by(v.identifier(user_id, "userId"), v.page_size(limit))

    async def redeem(
        self, redeemer: Principal, code: str, *, source_app_id: str | None = None
    ) -> Redeemed:
        """Redeem a gift exactly once; failures are recorded and raised.

        `code` is matched case-insensitively, spaces and dashes ignored. Raises
        `GiftNotFound`, `GiftWrongUser`, `GiftExpired`, `GiftAlreadyClaimed`,
        `GiftNotRedeemable`."""
        redeemer = replace(redeemer, user_id=v.identifier(redeemer.user_id, "userId"))
        code = code_key(code)
        app = None if source_app_id is None else v.identifier(source_app_id, "sourceAppId", 100)
        now = self._clock.now()
        async with self._store.unit_of_work() as uow:
            gift = await uow.gifts.by_code(code)
            if gift is None:
                raise GiftNotFound()
            if not gift.for_email(redeemer.email):
                await self._record(uow, gift, redeemer, RedemptionStatus.FAILED_WRONG_USER, app)
                await uow.commit()
                raise GiftWrongUser()
            claimed = await uow.gifts.transition(gift.id, GiftStatus.DEPLETED, now, unexpired=True)
            if claimed is None:
                error, status, expired = await self._why_not(uow, gift)
                await self._record(uow, gift, redeemer, status, app)
                await uow.commit()
                if expired:
                    self._events.emit(EventKind.GIFT_EXPIRED, credits=gift.total_credits)
                raise error
            outcome = await uow.balances.credit(
                Credit(
                    entry_id=self._ids.new_id(),
                    user_id=redeemer.user_id,
                    amount=gift.total_credits,
                    type=TransactionType.GIFT,
                    app_id=app or GIFTS_APP,
                    description=f"Gift from {gift.creator_name}",
                    metadata={"giftId": gift.id},
                    idempotency_key=f"gift:{gift.id}",
                    now=now,
                )
            )
            await self._record(
                uow, gift, redeemer, RedemptionStatus.SUCCESS, app, entry_id=outcome.entry.id
            )
            await uow.commit()
        self._events.emit(EventKind.GIFT_REDEEMED, credits=gift.total_credits)
        balance = (
            outcome.balance.balance if isinstance(outcome, Applied) else outcome.entry.balance_after
        )
        return Redeemed(gift.total_credits, gift.creator_name, gift.message, claimed, balance)

    async def _why_not(
        self, uow: UnitOfWork, gift: GiftCode
    ) -> tuple[GiftNotRedeemable, RedemptionStatus, bool]:
        """Why a claim failed, and whether this call expired the gift on the spot."""
        now = self._clock.now()
        current = await uow.gifts.get(gift.id) or gift
        if current.status == GiftStatus.ACTIVE and current.expires_at <= now:
            expired = await self._return(uow, current, GiftStatus.EXPIRED)
            return GiftExpired(), RedemptionStatus.FAILED_EXPIRED, expired
        if current.status == GiftStatus.EXPIRED:
            return GiftExpired(), RedemptionStatus.FAILED_EXPIRED, False
        if current.status == GiftStatus.DEPLETED:
            return GiftAlreadyClaimed(), RedemptionStatus.FAILED_ALREADY_CLAIMED, False
        return (
            GiftNotRedeemable(f"Gift code is {current.status}"),
            RedemptionStatus.FAILED_DEPLETED,
            False,
        )

    async def _record(
        self,
        uow: UnitOfWork,
        gift: GiftCode,
        redeemer: Principal,
        status: RedemptionStatus,
        app: str | None,
        *,
        entry_id: str | None = None,
    ) -> None:
        await uow.gifts.add_redemption(
            GiftRedemption(
                id=self._ids.new_id(),
                gift_code_id=gift.id,
                redeemer_user_id=redeemer.user_id,
                status=status,
                credits_received=gift.total_credits if status == RedemptionStatus.SUCCESS else 0,
                credit_transaction_id=entry_id,
                source_app_id=app,
                created_at=self._clock.now(),
            )
        )

    async def recent(self, limit: int = 50, status: str | None = None) -> list[GiftCode]:
        """All gifts, newest first (operators)."""
        wanted = None
        if status is not None:
            if status not in GiftStatus.__members__.values():
                raise InvalidInput("status", "unknown gift status")
            wanted = GiftStatus(status)
        async with self._store.unit_of_work() as uow:
            return await uow.gifts.recent(v.page_size(limit), wanted)

    async def lookup(self, code_or_id: str) -> GiftCode:
        """A gift by its id or its code (any case, dashes allowed), for operators.

        Raises `GiftNotFound`."""
        key = v.identifier(code_or_id, "gift", 64)
        async with self._store.reader() as uow:
            found = await uow.gifts.get(key)
            code = normalise_code(key)
            if found is None and code.isalnum():
                found = await uow.gifts.by_code(code)
        if found is None:
            raise GiftNotFound("no gift with this code or id")
        return found

    async def gift_ids_starting_with(
        self, prefix: str, limit: int = v.MAX_PAGE_SIZE + 1
    ) -> list[str]:
        """Ids of the gifts whose id (not code) begins with `prefix` (stripped,
        lower-cased), in id order, at most `limit` (capped at MAX_PAGE_SIZE + 1), for
        operators naming a gift as tables show it. Raises `InvalidInput` ("gift") for a
        blank or malformed prefix, ("limit") for a bad limit."""
        wanted = v.id_prefix(prefix, "gift")
        async with self._store.reader() as uow:
            return await uow.gifts.ids_starting_with(wanted, v.match_limit(limit))

    async def redemptions(self, gift_id: str) -> list[GiftRedemption]:
        """Every redemption attempt of the gift with this id, successful or failed,
        oldest first (operators). Raises `GiftNotFound` for an unknown gift,
        `InvalidInput` ("giftId") for a malformed id."""
        key = v.identifier(gift_id, "giftId", 64)
        async with self._store.reader() as uow:
            if await uow.gifts.get(key) is None:
                raise GiftNotFound("no gift with this id")
            return await uow.gifts.redemptions(key)

    async def redeem_pending(self, user_id: str, email: str) -> PendingRedeemed:
        """At registration: redeem every active personalized gift for this e-mail."""
        user_id = v.identifier(user_id, "userId")
        address = valid_email(email, "email")
        async with self._store.unit_of_work() as uow:
            pending = await uow.gifts.pending_for_email(email_key(address), self._clock.now())
        principal = Principal(user_id=user_id, email=address)
        redeemed = total = 0
        for gift in pending:
            try:
                done = await self.redeem(principal, gift.code, source_app_id="registration")
            except CreditsError:
                continue  # claimed or cancelled meanwhile: report only what succeeded
            redeemed += 1
            total += done.credits_received
        return PendingRedeemed(redeemed, total)
