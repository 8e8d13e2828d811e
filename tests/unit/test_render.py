"""The fast history rendering says exactly what the response model says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mana_credits_core.ledger import LedgerEntry, TransactionStatus, TransactionType
from mana_credits_http.models import TransactionOut

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
