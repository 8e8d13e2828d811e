"""The console's changes to a user beyond a grant: refund a purchase, gift or revoke
Cloud Sync, cancel a gift code, delete the user.

Each runs the use case the API and the CLI run (`PurchasesService.refund`,
`SyncService.gift`/`revoke_gift`, `GiftsService.cancel_as_operator`,
`UsersService.delete`), so their rules hold, and is then recorded once in the audit
log under an id derived from what it changed. A form sent twice (a double click, a
reload) carries the same form key: the second finds its audit entry and changes
nothing; two different forms racing are kept to one change by the use cases
themselves (row locks, the payment provider's idempotency).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .. import validation as v
from ..console import DELETION_AUDIT, AuditEntry
from ..errors import (
    Conflict,
    GiftNotCancellable,
    GiftNotFound,
    InvalidInput,
    PurchaseNotFound,
)
from . import Services

MAX_FORM_KEY = 128


class ActionRefused(Conflict):
    """A console action that would change nothing (nothing to refund, Sync already
    gifted, nothing held about the user); nothing was changed."""

    code = "console_action_refused"


@dataclass(frozen=True, slots=True)
class ActionDone:
    """What an action did, for the operator (`message`), and whether this form had
    done it before (`replayed`: nothing changed this time)."""

    message: str
    replayed: bool = False


class ConsoleActions:
    """The audited console actions on one user, over the services of one process."""

    def __init__(self, services: Services) -> None:
        self._s = services

    async def refund(
        self, operator: str, user_id: str, purchase_id: str, reason: str, form_key: str
    ) -> ActionDone:
        """Refund `user_id`'s purchase `purchase_id` in full and claw its credits back
        (`PurchasesService.refund`, as `mana-credits purchases refund`). Raises
        `InvalidInput` (reason, form key), `PurchaseNotFound` (also for another user's
        purchase), `PurchaseNotRefundable`, `ActionRefused` (already refunded),
        `PaymentProviderError`."""
        reason, form_key = _reason(reason), _key(form_key)
        if await self._replayed("refund", user_id, form_key):
            return ActionDone("Purchase refunded.", replayed=True)
        purchase = await self._s.purchases.get(v.identifier(purchase_id, "purchaseId", 64))
        if purchase.user_id != user_id:  # only what the user's page shows
            raise PurchaseNotFound("no purchase with this id was made by this user")
        result = await self._s.purchases.refund(purchase.id, reason, operator)
        if result.refund is None:
            raise ActionRefused(f"{result.outcome}: the purchase was refunded before")
        done = result.purchase
        await self._record(
            (result.refund.id,),  # one entry per refund at the provider
            operator,
            "refund",
            user_id,
            reason,
            {
                "purchaseId": done.id,
                "refundId": result.refund.id,
                "refundedEuroCents": result.refund.amount,
                "clawedBack": done.clawed_back,
                "outcome": result.outcome,
                "formKey": form_key,
            },
        )
        return ActionDone(
            f"Purchase refunded: {result.refund.amount} euro cents, "
            f"{done.clawed_back} credits taken back."
        )

    async def gift_sync(
        self, operator: str, user_id: str, reason: str, form_key: str
    ) -> ActionDone:
        """Gift Cloud Sync to `user_id`: never charged, never paused, until revoked
        (`SyncService.gift`, as `mana-credits sync gift`). Raises `InvalidInput`,
        `ActionRefused` when Sync is already gifted."""
        reason, form_key = _reason(reason), _key(form_key)
        if await self._replayed("sync-gift", user_id, form_key):
            return ActionDone("Cloud Sync gifted.", replayed=True)
        found = await self._s.sync.find(user_id)
        if found is not None and found.gifted:
            raise ActionRefused("Cloud Sync is already gifted to this user: nothing changed")
        sub = await self._s.sync.gift(user_id, operator)
        # A racing gift returns the same subscription (same gifted_at): one entry.
        gifted_at = sub.gifted_at.isoformat() if sub.gifted_at else ""
        await self._record(
            (user_id, gifted_at),
            operator,
            "sync-gift",
            user_id,
            reason,
            {"formKey": form_key},
        )
        return ActionDone("Cloud Sync gifted.")

    async def revoke_sync(
        self, operator: str, user_id: str, reason: str, form_key: str
    ) -> ActionDone:
        """Revoke `user_id`'s gifted Cloud Sync; Sync stops (`SyncService.revoke_gift`,
        as `mana-credits sync revoke`). Raises `InvalidInput`, `SubscriptionNotFound`,
        `SyncStateError` (Sync is not gifted)."""
        reason, form_key = _reason(reason), _key(form_key)
        if await self._replayed("sync-revoke", user_id, form_key):
            return ActionDone("Cloud Sync gift revoked.", replayed=True)
        revoked = await self._s.sync.revoke_gift(user_id)
        await self._record(
            (user_id, revoked.updated_at.isoformat()),
            operator,
            "sync-revoke",
            user_id,
            reason,
            {"formKey": form_key},
        )
        return ActionDone("Cloud Sync gift revoked.")

    async def cancel_gift(
        self, operator: str, user_id: str, gift_id: str, reason: str, form_key: str
    ) -> ActionDone:
        """Cancel the active gift code `gift_id` that `user_id` created; its credits go
        back to them (`GiftsService.cancel_as_operator`, as `mana-credits gifts
        cancel`). Raises `InvalidInput`, `GiftNotFound` (also for another user's gift),
        `GiftNotCancellable` (it is no longer active)."""
        reason, form_key = _reason(reason), _key(form_key)
        if await self._replayed("gift-cancel", user_id, form_key):
            return ActionDone("Gift cancelled.", replayed=True)
        gift = await self._s.gifts.lookup(gift_id)
        if gift.creator_id != user_id:
            raise GiftNotFound("no gift with this id was created by this user")
        try:
            await self._s.gifts.cancel_as_operator(gift.id)
        except GiftNotCancellable as exc:
            now = await self._s.gifts.lookup(gift.id)
            raise GiftNotCancellable(
                f"gift {now.code} is {now.status}, only active gifts can be cancelled"
            ) from exc
        await self._record(
            (gift.id,),  # a gift is cancelled once
            operator,
            "gift-cancel",
            user_id,
            reason,
            {
                "giftId": gift.id,
                "code": gift.code,
                "credits": gift.total_credits,
                "formKey": form_key,
            },
        )
        return ActionDone(f"Gift {gift.code} cancelled: {gift.total_credits} credits back.")

    async def delete_user(
        self, operator: str, user_id: str, confirmation: str, reason: str, form_key: str
    ) -> ActionDone:
        """Delete `user_id`'s account data (`UsersService.delete`, as `mana-credits
        users delete`) once `confirmation` is the user id itself. Raises
        `InvalidInput` ("confirm" when it is not), `UserNotFound` when the ledger
        holds no balance for the id (never seen, or deleted before by another form:
        the first deletion's record stays the only one), `ActionRefused` when a
        deletion racing this one took everything first."""
        reason, form_key = _reason(reason), _key(form_key)
        if confirmation != user_id:
            raise InvalidInput("confirm", "type the user's id exactly to confirm the deletion")
        if await self._replayed(DELETION_AUDIT, user_id, form_key):
            return ActionDone("User deleted.", replayed=True)
        await self._s.credits.existing_balance(user_id)  # only users the ledger knows
        done = await self._s.users.delete(user_id)
        if done.deleted_count == 0:
            raise ActionRefused("nothing is held about this user: nothing deleted")
        await self._record(
            (user_id, form_key),  # a racing second deletion finds nothing
            operator,
            DELETION_AUDIT,
            user_id,
            reason,
            {
                "deletedRows": done.deleted_count,
                "forfeited": done.forfeited,
                "giftsCancelled": done.gifts_cancelled,
                "formKey": form_key,
            },
        )
        return ActionDone(
            f"User deleted: {done.deleted_count} rows deleted or pseudonymized, "
            f"{done.forfeited} credits forfeited, {done.gifts_cancelled} gifts cancelled."
        )

    async def _replayed(self, action: str, user_id: str, form_key: str) -> bool:
        """Whether this form was sent before: its entry is among the user's newest
        (a resubmission follows within moments, so the first page suffices)."""
        page = await self._s.console.audit(1, subject=user_id)
        return any(
            e.action == action and e.details.get("formKey") == form_key for e in page.entries
        )

    async def _record(
        self,
        identity: tuple[str, ...],
        operator: str,
        action: str,
        subject: str,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        """Record `action` once per `identity` (what it changed): hashed, as user ids
        are longer than an audit id may be."""
        digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:40]
        await self._s.console.record(
            AuditEntry(
                id=f"{action}:{digest}",
                operator=operator,
                action=action,
                subject=subject,
                reason=reason,
                details=details,
                created_at=self._s.console.now(),
            )
        )


def _reason(reason: str) -> str:
    return v.text(reason.strip(), "reason", v.MAX_REASON, multiline=False)


def _key(form_key: str) -> str:
    """The form's key: made by the page, so a bad one is a broken form."""
    if not form_key or len(form_key) > MAX_FORM_KEY or not form_key.isascii():
        raise InvalidInput("key", "the form is incomplete: reload the page and try again")
    return form_key
