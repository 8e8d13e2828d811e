"""The CLI against the embedded SQLite store and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import create_engine
from mana_credits_core import TransactionType

from ..processes import kill_group, popen
from .conftest import invoke, invoke_split, seed


def test_db_upgrade_and_current(database_url: str) -> None:
    code, out = invoke("db", "upgrade", "--database-url", database_url)
    assert code == 0, out
    assert f"database at revision {migrate.head()}" in out
    code, out = invoke("db", "current", "--database-url", database_url)
    assert code == 0
    assert out.startswith(str(migrate.head()))


def test_balance_and_history_as_json(database_url: str) -> None:
    seed(database_url)
    code, out = invoke("credits", "balance", "alice", "--database-url", database_url, "--json")
    assert code == 0, out
    assert json.loads(out) == {
        "userId": "alice",
        "balance": 70,
        "totalEarned": 100,
        "totalSpent": 30,
        "accruedMilliCredits": 0,
    }
    code, out = invoke("credits", "history", "alice", "--database-url", database_url, "--json")
    assert code == 0, out
    entries = json.loads(out)
    assert [(e["type"], e["amount"]) for e in entries] == [("usage", -30), ("grant", 100)]
    code, out = invoke("credits", "history", "alice", "--database-url", database_url)
    assert code == 0
    assert "answer" in out


def test_bad_input_is_an_error_with_exit_code_1(database_url: str) -> None:
    seed(database_url)
    code, out = invoke(
        "credits", "history", "alice", "--limit", "0", "--database-url", database_url
    )
    assert code == 1
    assert out == (
        "error: usage: Invalid value for '--limit': Input should be greater than or equal to 1,"
        " see mana-credits credits history --help\n"
    )


def test_reconcile_exits_1_on_drift(database_url: str) -> None:
    seed(database_url)
    code, out = invoke("reconcile", "--database-url", database_url, "--json")
    assert code == 0, out
    assert json.loads(out)["ok"] is True

    async def plant() -> None:
        engine = create_engine(Settings(DATABASE_URL=database_url).effective_database_url)
        schema = "credits." if database_url.startswith("postgresql") else ""
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"UPDATE {schema}balances SET total_spent = 31"))
        await engine.dispose()

    asyncio.run(plant())
    code, out = invoke("reconcile", "--database-url", database_url)
    assert code == 1
    assert "total_spent" in out
    code, out = invoke("reconcile", "--database-url", database_url, "--json")
    assert code == 1
    assert json.loads(out)["drifts"] == [
        {"userId": "alice", "check": "total_spent", "expected": 30, "found": 31}
    ]


def test_packages_add_update_deactivate(database_url: str) -> None:
    seed(database_url)
    code, out = invoke(
        "packages", "add", "--name", "Mega", "--credits", "13000", "--price", "10000",
        "--database-url", database_url, "--json",
    )  # fmt: skip
    assert code == 0, out
    added = json.loads(out)  # one object, not a list of one
    assert (added["credits"], added["priceEuroCents"], added["active"]) == (13000, 10000, True)
    again = ["packages", "add", "--name", " mega", "--credits", "1", "--price", "1"]
    code, out, err = invoke_split(*again, "--database-url", database_url)
    assert (code, out) == (1, "")
    assert err == (
        f"error: package_exists: Mega ({added['id'][:8]}) is on sale already; change it with"
        f" mana-credits packages update {added['id'][:8]}, or pass --force to add another\n"
    )
    code, out = invoke(*again, "--force", "--database-url", database_url, "--json")
    assert (code, json.loads(out)["name"]) == (0, " mega")
    code, out, err = invoke_split("packages", "update", added["id"], "--database-url", database_url)
    assert (code, out) == (1, "")
    assert err.startswith("error: nothing_to_change: nothing to change, pass one or more of --name")
    code, out = invoke(
        "packages", "update", added["id"][:8], "--price", "9000", "--database-url", database_url
    )
    assert code == 0, out
    code, out = invoke("packages", "list", "--database-url", database_url, "--json")
    on_sale = {p["id"]: p["priceEuroCents"] for p in json.loads(out)}
    assert on_sale[added["id"]] == 9000
    code, out = invoke("packages", "deactivate", added["id"], "--database-url", database_url)
    assert (code, out) == (0, f"Mega ({added['id']}) is no longer on sale\n")
    code, out = invoke("packages", "deactivate", added["id"], "--database-url", database_url)
    assert (code, out) == (0, f"Mega ({added['id']}) was not on sale already; nothing changed\n")
    code, out = invoke("packages", "list", "--database-url", database_url, "--json")
    assert added["id"] not in {p["id"] for p in json.loads(out)}
    code, out = invoke("packages", "list", "--all", "--database-url", database_url, "--json")
    assert added["id"] in {p["id"] for p in json.loads(out)}


def test_packages_bad_input_exits_1(database_url: str) -> None:
    seed(database_url)
    code, out = invoke(
        "packages", "add", "--name", "Free", "--credits", "10", "--price", "0",
        "--database-url", database_url,
    )  # fmt: skip
    assert code == 1
    assert "error: invalid_input" in out
    code, out = invoke(
        "packages", "update", "missing", "--price", "5", "--database-url", database_url
    )
    assert code == 1
    assert "error: package_not_found" in out


def test_gifts_show_and_expire(database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from mana_credits_adapters.clock import ManualClock
    from mana_credits_core import Principal

    clock = ManualClock(datetime.now(UTC) - timedelta(days=10))

    async def make() -> str:
        settings = Settings(DATABASE_URL=database_url)
        async with bootstrap(settings, migrate=True, clock=clock) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            gift = await services.gifts.create(Principal("alice"), 40, expiration_days=1)
            return gift.code

    code = asyncio.run(make())
    status, out = invoke("gifts", "show", code.lower(), "--database-url", database_url, "--json")
    assert status == 0, out
    assert json.loads(out)["status"] == "active"
    status, out = invoke("gifts", "expire", "--database-url", database_url, "--json")
    assert (status, json.loads(out)) == (0, {"expired": 1})
    status, out = invoke("gifts", "expire", "--database-url", database_url, "--json")
    assert json.loads(out) == {"expired": 0}
    status, out = invoke("credits", "balance", "alice", "--database-url", database_url, "--json")
    assert json.loads(out)["balance"] == 100
    status, out = invoke("gifts", "show", "NOPE", "--database-url", database_url)
    assert status == 1
    assert "error: gift_not_found" in out


def test_sync_and_billing_commands(database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from mana_credits_adapters.clock import ManualClock

    clock = ManualClock(datetime.now(UTC) - timedelta(days=40))

    async def subscribe() -> None:
        settings = Settings(DATABASE_URL=database_url)
        async with bootstrap(settings, migrate=True, clock=clock) as services:
            for user, credits in (("rich", 100), ("poor", 30)):
                await services.credits.credit(user, credits, TransactionType.GRANT, "funds")
                await services.sync.activate(user)

    asyncio.run(subscribe())
    code, out = invoke("billing", "run", "--dry-run", "--database-url", database_url, "--json")
    assert (code, json.loads(out)) == (
        0,
        {"charged": 0, "paused": 0, "errors": 0, "total": 2, "dryRun": True},
    )
    code, out = invoke("billing", "run", "--database-url", database_url, "--json")
    assert json.loads(out) == {"charged": 1, "paused": 1, "errors": 0, "total": 2, "dryRun": False}
    code, out = invoke("billing", "run", "--database-url", database_url)
    assert (code, out.strip()) == (0, "charged 0, paused 0, errors 0")
    code, out = invoke("sync", "status", "poor", "--database-url", database_url, "--json")
    assert json.loads(out)["active"] is False
    code, out = invoke("sync", "gift", "poor", "--by", "ops", "--database-url", database_url)
    assert code == 0
    code, out = invoke("sync", "status", "poor", "--database-url", database_url, "--json")
    assert (json.loads(out)["active"], json.loads(out)["gifted"]) == (True, True)
    code, out = invoke("sync", "revoke", "poor", "--database-url", database_url)
    assert code == 0
    code, out = invoke("sync", "revoke", "nobody", "--database-url", database_url)
    assert code == 1
    assert "error: subscription_not_found" in out


def test_grant_refund_debit_and_their_errors(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    # bob was never seen: a likely typo, refused unless --new-user says it is meant.
    for command in (
        ["grant", "bob", "500", "--reason", "ticket 4711"],
        ["refund", "bob", "25", "--reason", "failed job"],
        ["reward", "bob", "50", "--reason", "feedback", "--reference", "fb-1"],
    ):
        code, out = invoke("credits", *command, *url)
        assert (code, out) == (
            1,
            "error: user_not_found: no such user bob, check the id (mana-credits credits"
            " top lists users), or pass --new-user to credit an id never seen\n",
        )
    code, out = invoke("credits", "balance", "bob", *url)
    assert code == 1  # nothing was created
    code, out = invoke(
        "credits", "grant", "bob", "500", "--reason", "ticket 4711", "--operator", "ops",
        "--idempotency-key", "t-4711", "--new-user", *url, "--json",
    )  # fmt: skip
    assert code == 0, out
    granted = json.loads(out)
    assert (granted["type"], granted["amount"], granted["appId"]) == ("grant", 500, "admin")
    assert granted["metadata"] == {"operator": "ops", "reason": "ticket 4711"}
    code, out = invoke(
        "credits", "grant", "bob", "500", "--reason", "ticket 4711", "--operator", "ops",
        "--idempotency-key", "t-4711", *url,
    )  # fmt: skip
    assert code == 0
    assert "already applied" in out
    code, out = invoke("credits", "debit", "bob", "100", "--reason", "correction", *url)
    assert (code, "balance 400" in out) == (0, True)
    code, out = invoke("credits", "refund", "bob", "25", "--reason", "failed job", *url)
    assert (code, "balance 425" in out) == (0, True)
    for bad in (["-5"], ["0"], ["1.5"], ["ten"]):
        code, out = invoke("credits", "grant", "bob", *bad, "--reason", "x", *url)
        assert code == 1, out
        assert "error: invalid_input" in out
    code, out = invoke("credits", "grant", "bob", "-5", "--reason", "x", *url)
    assert code == 1
    assert "error: invalid_input: AMOUNT must be at least 1, not -5" in out
    code, out = invoke("credits", "debit", "bob", "100000", "--reason", "too much", *url)
    assert code == 1
    assert "error: insufficient_credits" in out
    code, out = invoke("credits", "balance", "bob", *url, "--json")
    assert json.loads(out)["balance"] == 425


def test_history_since_and_ledger_export(database_url: str, tmp_path: Path) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    code, out = invoke("credits", "history", "alice", "--since", "2999-01-01", *url, "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out = invoke("ledger", "export", *url)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(e["userId"], e["amount"]) for e in lines] == [("alice", 100), ("alice", -30)]
    target = tmp_path / "ledger.csv"
    code, out = invoke("ledger", "export", "--format", "csv", "-o", str(target), *url)
    assert code == 0, out
    rows = target.read_text().splitlines()
    assert rows[0].startswith("id,userId,type")
    assert len(rows) == 3
    code, out = invoke("ledger", "export", "--user", "nobody", *url)
    assert (code, out) == (
        1,
        "error: user_not_found: no such user nobody, check the id"
        " (mana-credits credits top lists users)\n",
    )
    code, out = invoke("ledger", "export", "--format", "xml", *url)
    assert code == 1


def test_usage_report(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    code, out = invoke("report", "usage", "--days", "7", *url, "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [(r["appId"], r["credits"], r["operations"]) for r in rows] == [("chat", 30, 1)]
    code, out = invoke("report", "usage", *url)
    assert "█" in out
    code, out = invoke("report", "usage", "--app", "images", *url, "--json")
    assert json.loads(out) == []
    code, out = invoke("report", "usage", "--days", "0", *url)
    assert code == 1
    assert "error: usage: Invalid value for '--days'" in out


def test_gifts_list_and_operator_cancel(database_url: str) -> None:
    from mana_credits_core import Principal

    async def make() -> str:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            return (await services.gifts.create(Principal("alice"), 60)).id

    gift_id = asyncio.run(make())
    url = ["--database-url", database_url]
    code, out = invoke("gifts", "list", "--status", "active", *url, "--json")
    assert [g["id"] for g in json.loads(out)] == [gift_id]
    code, out = invoke("gifts", "cancel", gift_id, *url)
    assert code == 0, out
    code, out = invoke("gifts", "cancel", gift_id, *url)
    assert code == 1
    assert "error: gift_not_cancellable" in out
    code, out = invoke("credits", "balance", "alice", *url, "--json")
    assert json.loads(out)["balance"] == 100
    code, out = invoke("gifts", "list", "--status", "bogus", *url)
    assert code == 1


@pytest.mark.postgres
def test_export_of_100k_entries_streams_in_bounded_memory(
    pg_url: str, clean_pg_store: object, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from mana_credits_adapters.sql.tables import transactions

    async def bulk() -> None:
        engine = create_engine(pg_url)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        async with engine.begin() as connection:
            for base in range(0, 100_000, 20_000):
                await connection.execute(
                    sa.insert(transactions),
                    [
                        {
                            "id": f"00000000-0000-0000-0000-{i:012d}",
                            "user_id": f"u{i % 100}",
                            "type": "usage",
                            "status": "completed",
                            "amount": -1,
                            "balance_before": 1,
                            "balance_after": 0,
                            "app_id": "chat",
                            "description": "bulk",
                            "metadata": None,
                            "idempotency_key": None,
                            "created_at": start + timedelta(seconds=i),
                            "completed_at": start + timedelta(seconds=i),
                        }
                        for i in range(base, base + 20_000)
                    ],
                )
        await engine.dispose()

    def exported_peak_rss(target: Path) -> int:
        """The export as its own process (no tracing overhead); its peak RSS in bytes."""
        command = [sys.executable, "-m", "mana_credits_cli", "ledger", "export", "-o",
                   str(target), "--database-url", pg_url]  # fmt: skip
        child = popen(command, stdout=subprocess.DEVNULL)
        try:
            _pid, status, usage = os.wait4(child.pid, 0)  # reaped here, with its own rusage
        finally:
            kill_group(child.pid)
        child.returncode = os.waitstatus_to_exitcode(status)
        assert child.returncode == 0
        return usage.ru_maxrss * 1024  # kilobytes on Linux

    empty = exported_peak_rss(tmp_path / "empty.jsonl")
    asyncio.run(bulk())
    target = tmp_path / "big.jsonl"
    peak = exported_peak_rss(target)
    with target.open() as exported:
        assert sum(1 for _ in exported) == 100_000
    # The 100,000 entries held at once take ~180 MB more (as parsed JSON); pages keep
    # the export's growth to the allocator's high-water marks (~40 MB measured).
    grown = peak - empty
    assert grown < 64 * 1024 * 1024, f"export grew by {grown / 1e6:.1f} MB"
