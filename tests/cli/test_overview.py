"""`mana-credits report overview`: the console's figures on a terminal and as JSON."""

from __future__ import annotations

import asyncio
import json

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.payments.dev import dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import Principal, TransactionType

from .conftest import invoke, invoke_split


def seed(url: str) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            await services.credits.use("alice", 30, "chat", "answer")
            await services.credits.use("alice", 5, "images", "picture")
            await services.reservations.reserve("alice", 10, "long answer", app_id="chat")
            await services.gifts.create(Principal("alice"), 20)
            await services.sync.gift("eve", "ops")

    asyncio.run(work())


def test_report_overview_as_json(database_url: str) -> None:
    seed(database_url)
    code, out, err = invoke_split(
        "report", "overview", "--days", "7", "--json", "--database-url", database_url
    )
    assert (code, err) == (0, "")
    found = json.loads(out)
    assert found["days"] == 7
    figures = {k: found[k] for k in ("outstandingCredits", "balanceCredits", "heldCredits")}
    assert figures == {"outstandingCredits": 45, "balanceCredits": 35, "heldCredits": 10}
    assert (found["debtCredits"], found["creditsSold"], found["euroCentsSold"]) == (0, 0, 0)
    assert found["creditsUsed"] == 35
    assert found["sync"] == {"active": 0, "paused": 0, "gifted": 1}
    assert found["gifts"] == {"active": 1, "credits": 20}
    assert found["expiring"] == {"days": 30, "credits": 0, "users": 0, "lots": 0}
    assert found["reconcile"] is None  # a CLI process has run none
    assert [(u["appId"], u["credits"]) for u in found["usage"]] == [("chat", 30), ("images", 5)]


def test_report_overview_with_reconcile_on_a_terminal(database_url: str) -> None:
    seed(database_url)
    code, out = invoke("report", "overview", "--reconcile", "--database-url", database_url)
    assert code == 0, out
    lines = {line[:20].strip(): line[20:].strip() for line in out.splitlines() if line[:1] != " "}
    assert (
        lines["owed to users"] == "45 credits (35 spendable in 1 balance, 10 held by reservations)"
    )
    assert lines["sold"] == "0 credits for 0.00 € (0 purchases completed)"
    assert lines["gift codes"] == "1 active, holding 20 credits"
    assert lines["last reconcile"].startswith("ok, 1 user, at ")
    assert "images" in out  # the per-app table


def test_report_overview_refuses_a_bad_window(database_url: str) -> None:
    code, out = invoke("report", "overview", "--days", "0", "--database-url", database_url)
    assert code == 1
    assert "error: usage: Invalid value for '--days'" in out


def test_report_overview_says_what_was_clawed_back_from_the_sales(database_url: str) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            package = await services.purchases.add_package("Plus", 500, 500)
            for user in ("bob", "cid"):
                bought = (await services.purchases.start(user, package.id)).purchase
                await services.purchases.handle(dev_payment(bought))
            await services.purchases.refund(bought.id, "asked by mail", "ops")

    asyncio.run(work())
    code, out = invoke("report", "overview", "--database-url", database_url)
    assert code == 0, out
    lines = {line[:20].strip(): line[20:].strip() for line in out.splitlines() if line[:1] != " "}
    assert lines["sold"] == (
        "1000 credits for 10.00 € (2 purchases completed; 500 credits clawed back since)"
    )
    code, out, _err = invoke_split("report", "overview", "--json", "--database-url", database_url)
    found = json.loads(out)
    assert (found["creditsSold"], found["creditsClawedBack"]) == (1000, 500)
