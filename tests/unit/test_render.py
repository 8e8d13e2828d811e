"""The fast renderings (history entries, debit and balance answers) say exactly what
the response models say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mana_credits_core.ledger import Balance, LedgerEntry, TransactionStatus, TransactionType
from mana_credits_core.services import LedgerResult
from mana_credits_http.models import BalanceOut, NewBalanceOut, TransactionOut, UseCreditsOut
from mana_credits_http.routes.credits import ALREADY_PROCESSED, balance_answer, use_answer

AT = datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "entry",
    [
        LedgerEntry("e1", "alice", TransactionType.USAGE, TransactionStatus.COMPLETED, -5, 10,
                    5, "chat", "answer", {"model": "x", "tokens": [1, 2], "deep": {"ok": True}},
                    "key-1", AT, AT + timedelta(milliseconds=3)),
        LedgerEntry("e2", "bob", TransactionType.PURCHASE, TransactionStatus.PENDING, 500, 0,
                    500, "system", "Ünïcode — package", None, None, AT, None),
        LedgerEntry("e3", "c", TransactionType.REFUND, TransactionStatus.COMPLETED, 1, 0, 1,
                    "admin", "", {}, "k", AT.astimezone(), AT),
    ],
    ids=["usage-with-metadata", "pending-purchase", "refund-local-time"],
)  # fmt: skip
def test_render_entry_matches_the_model(entry: LedgerEntry) -> None:
    assert TransactionOut.render_entry(entry) == TransactionOut.of(entry).render()


USAGE = LedgerEntry("e1", "alice", TransactionType.USAGE, TransactionStatus.COMPLETED, -5, 10, 5,
                    "chat", "answer", {"model": "x"}, "key-1", AT, AT)  # fmt: skip


def test_use_answer_matches_the_model_when_applied() -> None:
    balance = Balance("alice", 5, 10, 5)
    model = UseCreditsOut(
        transaction=TransactionOut.of(USAGE),
        new_balance=NewBalanceOut(balance=5, total_spent=5, accrued_milli_credits=0),
    )
    answer = use_answer(LedgerResult(USAGE, balance))
    assert answer == model.render()
    assert list(answer) == list(model.render())  # the same key order on the wire


def test_use_answer_matches_the_model_when_replayed() -> None:
    model = UseCreditsOut(transaction=TransactionOut.of(USAGE), message=ALREADY_PROCESSED)
    answer = use_answer(LedgerResult(USAGE, None, replayed=True))
    assert answer == model.render()
    assert list(answer) == list(model.render())


@pytest.mark.parametrize(
    "balance",
    [Balance("alice", 5, 10, 5), Balance("bob", 0, 0, 0, 7), Balance("c", 2**62, 2**62, 0)],
)
def test_balance_answer_matches_the_model(balance: Balance) -> None:
    answer = balance_answer(balance)
    assert answer == BalanceOut.of(balance).render()
    assert list(answer) == list(BalanceOut.of(balance).render())
