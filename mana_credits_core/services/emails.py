"""Each user's e-mail address as the auth service states it, kept for the console.

The address arrives in every verified token; writing it on every request would put a
statement on the debit path. A memo of what this process recorded last (user id →
address) lets a request pass without touching the store unless the address is new,
changed, or the memo is due for a recheck (another process, or a deletion elsewhere,
may have changed the row since).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..console import MAX_EMAIL
from ..gifts import email_key, looks_like_email
from ..ports import Clock, Store

RECHECK = timedelta(hours=1)
"""How long a recorded address is trusted before the next token writes it again (a
conditional write: nothing changes when the row holds it)."""

NO_BALANCE_RECHECK = timedelta(minutes=1)
"""How long a user found without a balance is left alone before the next try."""

MEMO_SIZE = 100_000
"""Users remembered at most; the least recently recorded is forgotten first."""


def normalized_email(value: str | None) -> str | None:
    """`value` trimmed and lower-cased when it is an e-mail address, else None."""
    if value is None or len(value.strip()) > MAX_EMAIL or not looks_like_email(value):
        return None
    return email_key(value)


class UserEmails:
    """Records the address of a token's user on their balance row, at most once per
    `RECHECK` (seconds) per user and address in this process."""

    def __init__(self, store: Store, clock: Clock, size: int = MEMO_SIZE) -> None:
        self._store = store
        self._clock = clock
        self._size = size
        # user id -> (address, time the memo is due for a recheck)
        self._memo: dict[str, tuple[str, datetime]] = {}

    async def note(self, user_id: str, email: str | None) -> bool:
        """Record `email` for `user_id` unless this process recorded it lately.
        Returns whether the store was asked (a memo miss). An address that is not one
        (or none) is ignored. Raises `StoreUnavailable` when the store cannot be
        reached (nothing changed, nothing remembered)."""
        address = normalized_email(email)
        if address is None:
            return False
        now = self._clock.now()
        known = self._memo.get(user_id)
        if known is not None and known[0] == address and now < known[1]:
            return False
        async with self._store.unit_of_work() as uow:
            outcome = await uow.users.record_email(user_id, address)
            await uow.commit()
        # Without a balance there was nothing to write: try again a little later, by
        # when a grant, purchase or gift may have created one.
        due = now + (NO_BALANCE_RECHECK if outcome is None else RECHECK)
        self._memo.pop(user_id, None)  # re-inserted last: the dict keeps recording order
        if len(self._memo) >= self._size:
            del self._memo[next(iter(self._memo))]
        self._memo[user_id] = (address, due)
        return True

    def forget(self, user_id: str) -> None:
        """Drop the memo of `user_id` (after an account deletion cleared the row)."""
        self._memo.pop(user_id, None)
