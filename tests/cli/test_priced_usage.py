"""Priced usage from the command line: `report usage --by operation`, the accrued
milli-credits of `credits balance` and the operation usage of `users export`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType

from .conftest import invoke_split


def use_priced(url: str) -> None:
    """alice: 100 credits, 3 local chat answers (0.1 each) and 25 items imported in bulk
    (0.2 per 10): 0.8 credits of cost, nothing charged yet, 800 milli-credits accrued."""

    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            for _ in range(3):
                await services.credits.use_operation("alice", "ai_chat_ollama")
            await services.credits.use_operation("alice", "bulk_import", 25)

    asyncio.run(work())


def ok(*args: str) -> str:
    code, out, err = invoke_split(*args)
    assert code == 0, out + err
    return out


def test_usage_by_operation(any_store_url: str) -> None:
    use_priced(any_store_url)
    found: list[dict[str, Any]] = json.loads(
        ok("report", "usage", "--by", "operation", "--json", "--database-url", any_store_url)
    )
    assert found == [
        {
            "operation": "bulk_import",
            "appId": "notes",
            "calls": 1,
            "quantity": 25,
            "costMilli": 500,
            "credits": "0.5",
        },
        {
            "operation": "ai_chat_ollama",
            "appId": "chat",
            "calls": 3,
            "quantity": 3,
            "costMilli": 300,
            "credits": "0.3",
        },
    ]
    out = ok("report", "usage", "--by", "operation", "--days", "7", "--database-url", any_store_url)
    assert "usage by operation, last 7 days" in out
    bulk = next(r for r in out.splitlines() if "bulk_import" in r)
    assert [cell.strip() for cell in bulk.split("│")[1:6]] == [
        "bulk_import",
        "notes",
        "1",
        "25",
        "0.5",
    ]
    assert "total: 0.8 credits in 4 calls" in out

    chat = json.loads(
        ok("report", "usage", "--by", "operation", "--app", "chat", "--json",
           "--database-url", any_store_url)
    )  # fmt: skip
    assert [row["operation"] for row in chat] == ["ai_chat_ollama"]


def test_usage_by_operation_empty_and_bad_choice(any_store_url: str) -> None:
    out = ok("report", "usage", "--by", "operation", "--database-url", any_store_url)
    assert "no priced usage in this period" in out
    assert ok(
        "report", "usage", "--by", "operation", "--json", "--database-url", any_store_url
    ) == ("[]\n")
    code, out, err = invoke_split(
        "report", "usage", "--by", "user", "--database-url", any_store_url
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: usage: ")
    assert "'user' is not one of 'app', 'operation'" in err


def test_balance_shows_what_is_accrued(any_store_url: str) -> None:
    use_priced(any_store_url)
    shown = json.loads(ok("credits", "balance", "alice", "--json", "--database-url", any_store_url))
    assert shown == {
        "userId": "alice",
        "balance": 100,
        "totalEarned": 100,
        "totalSpent": 0,
        "accruedMilliCredits": 800,
    }
    out = ok("credits", "balance", "alice", "--database-url", any_store_url)
    assert "accrued 800 milli-credits (0.8 credits) of priced operations" in out


def test_history_says_what_each_debit_by_operation_priced(any_store_url: str) -> None:
    use_priced(any_store_url)
    out = ok("credits", "history", "alice", "--database-url", any_store_url)
    assert out.count("(ai_chat_ollama x1, cost 0.1)") == 3
    assert out.count("(bulk_import x25, cost 0.5)") == 1
    assert "funds" in out
    assert "funds (" not in out  # a credit is described as it was


def test_export_holds_operation_usage_and_accrual(any_store_url: str) -> None:
    use_priced(any_store_url)
    exported = json.loads(ok("users", "export", "alice", "--database-url", any_store_url))
    assert exported["balance"]["accruedMilli"] == 800
    usage = sorted(exported["operationUsage"], key=lambda row: row["operation"])
    assert [
        (row["operation"], row["calls"], row["quantity"], row["costMilli"]) for row in usage
    ] == [("ai_chat_ollama", 3, 3, 300), ("bulk_import", 1, 25, 500)]
    assert all(row["userId"] == "alice" for row in usage)
    priced = [e for e in exported["ledger"] if "pricing" in (e["metadata"] or {})]
    assert len(priced) == 4
