"""Rewards: credits another service grants for something a user did (feedback, ...).

A reward is a `grant` ledger entry booked on the `community` app. It is idempotent per
user and *reference*: the calling service names the thing rewarded (`referenceId`), and
the same reference for the same user is granted once, however often and however
concurrently it is asked for.

Exactly-once comes from the ledger's `UNIQUE (user_id, idempotency_key)`: the entry's
idempotency key is `reward_key(reference_id)`, i.e. `"reward"`, the ASCII unit separator
(U+001F) and the reference id. Keys that clients send (`idempotencyKey` of debits and
refunds) may not contain control characters (`validation.idempotency_key`), so no key a
client chooses can ever equal a reward's key, and a reward can never replay, or be
blocked by, a client's own debit or refund.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ledger import LedgerEntry

REWARD_APP = "community"
"""The `appId` of every reward entry."""

MAX_REWARD_REASON = 64
MAX_REFERENCE_ID = 128
MAX_REWARD_DESCRIPTION = 256

REWARD_KEY_PREFIX = "reward\x1f"


def reward_key(reference_id: str) -> str:
    """The ledger idempotency key of the reward for `reference_id` (already validated).

    The separator is a control character, which client keys cannot contain.
    """
    return REWARD_KEY_PREFIX + reference_id


@dataclass(frozen=True, slots=True)
class Reward:
    """What `CreditsService.reward` did.

    `entry` is the reward's ledger entry: the new one, or the original when the
    reference was granted before (`already_granted`). `balance_after` is the user's
    balance in credits right after that entry, so a repeat answers exactly what the
    original grant answered.
    """

    entry: LedgerEntry
    balance_after: int
    already_granted: bool
