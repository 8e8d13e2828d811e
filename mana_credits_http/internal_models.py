"""Bodies of the internal credits routes that the old service's clients read beyond
the common shapes: rewards (`POST /internal/credits/grant`) and the balance with its
entry count. Limits are the core's (`mana_credits_core.rewards`), shown in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from mana_credits_core.ledger import BalanceSummary
from mana_credits_core.rewards import (
    MAX_REFERENCE_ID,
    MAX_REWARD_DESCRIPTION,
    MAX_REWARD_REASON,
    Reward,
)

from .lot_models import ExpiresAt, Priority
from .models import BalanceOut, Camel


class GrantBody(Camel):
    user_id: StrictStr
    amount: Annotated[StrictInt, Field(ge=1)]
    reason: Annotated[StrictStr, Field(min_length=1, max_length=MAX_REWARD_REASON)]
    reference_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_REFERENCE_ID)]
    description: Annotated[StrictStr, Field(max_length=MAX_REWARD_DESCRIPTION)] | None = None
    expires_at: ExpiresAt = None
    priority: Priority = None


class GrantOut(Camel):
    """`newBalance` and `transactionId` are the original grant's on a repeat."""

    ok: Literal[True] = True
    already_granted: bool
    new_balance: int
    transaction_id: str

    @classmethod
    def of(cls, reward: Reward) -> GrantOut:
        return cls(
            already_granted=reward.already_granted,
            new_balance=reward.balance_after,
            transaction_id=reward.entry.id,
        )


class InternalBalanceOut(BalanceOut):
    """Balance plus the number of the user's ledger entries."""

    transactions_count: int

    @classmethod
    def of_summary(cls, summary: BalanceSummary) -> InternalBalanceOut:
        b = summary.balance
        return cls(
            balance=b.balance,
            total_earned=b.total_earned,
            total_spent=b.total_spent,
            accrued_milli_credits=b.accrued_milli,
            transactions_count=summary.transactions_count,
        )
