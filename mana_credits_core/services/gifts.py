"""Use cases for gift codes: create, redeem, cancel, expire, auto-redeem at sign-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .. import validation as v
from ..errors import (
    CreditsError,
    GiftAlreadyClaimed,
    GiftCodeTaken,
    GiftExpired,
    GiftNotCancellable,
    GiftNotFound,
    GiftNotRedeemable,
    GiftWrongUser,
    InsufficientCreditsForGift,
    InvalidInput,
)
from ..events import EventKind, Events
from ..gifts import (
    DEFAULT_EXPIRATION_DAYS,
    MAX_EXPIRATION_DAYS,
    MAX_GIFT_CREDITS,
    MAX_MESSAGE,
    GiftCode,
    GiftRedemption,
    GiftStatus,
    GiftType,
    RedemptionStatus,
    email_key,
    looks_like_email,
    masked_name,
    normalise_code,
)
from ..ledger import Applied, Credit, Debit, TransactionType
from ..ports import Clock, CodeGenerator, IdGenerator, Principal, Store, UnitOfWork

GIFTS_APP = "gifts"
CODE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Redeemed:
    credits_received: int
    creator_name: str
    message: str | None
    gift: GiftCode


@dataclass(frozen=True, slots=True)
class PendingRedeemed:
    redeemed: int
    total_credits: int


class GiftsService:
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
    ) -> GiftCode:
        credits = v.amount(total_credits, "totalCredits")
        if credits > MAX_GIFT_CREDITS:
            raise InvalidInput("totalCredits", f"totalCredits must be at most {MAX_GIFT_CREDITS}")
        kind = _gift_type(type)
        email = None
        if kind == GiftType.PERSONALIZED or target_email is not None:
            email = _email(target_email, "targetEmail")
        days = _days(expiration_days)
        text = v.optional_text(message, "message", MAX_MESSAGE)
        now = self._clock.now()
        for _ in range(CODE_ATTEMPTS):
            gift = GiftCode(
                id=self._ids.new_id(),
                code=self._codes.new_code(),
                creator_id=v.identifier(creator.user_id, "userId"),
                creator_name=creator.name or masked_name(creator.email),
                total_credits=credits,
                redeemed=0,
                type=kind,
                status=GiftStatus.ACTIVE,
                target_email=email,
                message=text,
                expires_at=now + timedelta(days=days),
                reservation_transaction_id=self._ids.new_id(),
                created_at=now,
                updated_at=now,
            )
            try:
                return await self._create(gift)
            except GiftCodeTaken:
                continue  # astronomically rare: draw another code
        raise GiftCodeTaken("Could not allocate a unique gift code")

    async def _create(self, gift: GiftCode) -> GiftCode:
        assert gift.reservation_transaction_id is not None
        debit = Debit(
            entry_id=gift.reservation_transaction_id,
            user_id=gift.creator_id,
            amount=gift.total_credits,
            app_id=GIFTS_APP,
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
            found = await uow.gifts.by_code(_code(code))
        if found is None:
            raise GiftNotFound()
        return found

    async def created(self, user_id: str, limit: int = 50) -> list[GiftCode]:
        async with self._store.unit_of_work() as uow:
            return await uow.gifts.created_by(v.identifier(user_id, "userId"), v.page_size(limit))

    async def received(self, user_id: str, limit: int = 50) -> list[GiftRedemption]:
        async with self._store.unit_of_work() as uow:
            return await uow.gifts.redemptions_of(
                v.identifier(user_id, "userId"), v.page_size(limit)
            )

    async def redeem(
        self, redeemer: Principal, code: str, *, source_app_id: str | None = None
    ) -> Redeemed:
        """Redeem a gift exactly once; failures are recorded and raised."""
        code = _code(code)
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
        return Redeemed(gift.total_credits, gift.creator_name, gift.message, claimed)

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

    async def expire_one(self, gift_id: str) -> GiftCode:
        """Expire one overdue active gift now (the sweep would, later); its credits go
        back to its creator once. Raises `GiftNotFound`, `GiftNotCancellable` when the
        gift is not active or not yet past its expiry."""
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.get(v.identifier(gift_id, "giftId"))
            if found is None:
                raise GiftNotFound("Gift not found")
            if not await self._return(uow, found, GiftStatus.EXPIRED):
                raise GiftNotCancellable(
                    f"gift is {found.status} and expires {found.expires_at:%Y-%m-%d %H:%M} UTC:"
                    " only active gifts past their expiry can be expired"
                )
            await uow.commit()
        return found

    async def cancel_as_operator(self, gift_id: str) -> GiftCode:
        """Cancel any active gift; its credits go back to its creator."""
        gift_id = v.identifier(gift_id, "giftId")
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.get(gift_id)
            if found is None:
                raise GiftNotFound("Gift not found")
            if not await self._return(uow, found, GiftStatus.CANCELLED):
                raise GiftNotCancellable()
            await uow.commit()
        self._events.emit(EventKind.GIFT_CANCELLED, credits=found.total_credits)
        return found

    async def cancel(self, user_id: str, gift_id: str) -> int:
        """Cancel one's own active gift; returns the credits given back."""
        gift_id = v.identifier(gift_id, "giftId")
        async with self._store.unit_of_work() as uow:
            found = await uow.gifts.get(gift_id)
            if found is None or found.creator_id != user_id:
                raise GiftNotFound("Gift not found")
            returned = await self._return(uow, found, GiftStatus.CANCELLED, creator_id=user_id)
            if not returned:
                raise GiftNotCancellable()
            await uow.commit()
        self._events.emit(EventKind.GIFT_CANCELLED, credits=found.total_credits)
        return found.total_credits

    async def _return(
        self,
        uow: UnitOfWork,
        gift: GiftCode,
        to: GiftStatus,
        *,
        creator_id: str | None = None,
    ) -> bool:
        """Move an active gift to `to` and give its credits back to the creator, once."""
        now = self._clock.now()
        moved = await uow.gifts.transition(
            gift.id, to, now, creator_id=creator_id, expired=to == GiftStatus.EXPIRED
        )
        if moved is None:
            return False
        await uow.balances.credit(
            Credit(
                entry_id=self._ids.new_id(),
                user_id=gift.creator_id,
                amount=gift.total_credits,
                type=TransactionType.REFUND,
                app_id=GIFTS_APP,
                description=f"Gift code {gift.code} {to}: credits returned",
                metadata={"giftId": gift.id},
                idempotency_key=f"gift-return:{gift.id}",
                now=now,
            )
        )
        return True

    async def expire(self, batch_size: int = 500) -> int:
        """Expire every overdue active gift, returning its credits; safe to run anywhere."""
        expired = 0
        while True:
            async with self._store.unit_of_work() as uow:
                due = await uow.gifts.due_for_expiry(self._clock.now(), batch_size)
            for gift_id in due:
                async with self._store.unit_of_work() as uow:
                    gift = await uow.gifts.get(gift_id)
                    if gift is not None and await self._return(uow, gift, GiftStatus.EXPIRED):
                        await uow.commit()
                        self._events.emit(EventKind.GIFT_EXPIRED, credits=gift.total_credits)
                        expired += 1
            if len(due) < batch_size:
                return expired

    async def redeem_pending(self, user_id: str, email: str) -> PendingRedeemed:
        """At registration: redeem every active personalized gift for this e-mail."""
        user_id = v.identifier(user_id, "userId")
        address = _email(email, "email")
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


def _code(value: object) -> str:
    code = normalise_code(v.identifier(value, "code", 64))
    if not code.isalnum():
        raise GiftNotFound()
    return code


def _gift_type(value: object) -> GiftType:
    if isinstance(value, str) and value in GiftType.__members__.values():
        return GiftType(value)
    raise InvalidInput("type", "type must be simple or personalized")


def _email(value: object, field: str) -> str:
    if value is None:
        raise InvalidInput(field, f"{field} is required for a personalized gift")
    address = v.identifier(value, field, 254).strip()
    if not looks_like_email(address):
        raise InvalidInput(field, f"{field} must be an e-mail address")
    return address


def _days(value: object) -> int:
    if value is None:
        return DEFAULT_EXPIRATION_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("expirationDays", "expirationDays must be a positive integer")
    if value > MAX_EXPIRATION_DAYS:
        raise InvalidInput(
            "expirationDays", f"expirationDays must be at most {MAX_EXPIRATION_DAYS}"
        )
    return value
