"""`mana-credits users export` and `users delete` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.payments.dev import dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import create_engine
from mana_credits_adapters.sql.tables import balances, transactions
from mana_credits_core import Principal, TransactionType

from .conftest import invoke, invoke_split

ZELDA = Principal("zelda", email="zelda@example.org", name="Zelda Quist")


def seed_zelda(url: str, entries: int = 0) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True) as s:
            package = await s.purchases.add_package("Plus", 1100, 1000)
            started = await s.purchases.start("zelda", package.id, email=ZELDA.email)
            await s.purchases.handle(dev_payment(started.purchase))
            await s.gifts.create(ZELDA, 100, message="For Bob, love Zelda")
            await s.reservations.reserve("zelda", 50, "render")
            await s.sync.activate("zelda")
            for n in range(entries):
                await s.credits.use("zelda", 1, "chat", f"answer {n}")
            await s.credits.credit("bob", 5, TransactionType.GRANT, "funds")

    asyncio.run(work())


async def bulk_grants(url: str, user: str, count: int) -> None:
    """`count` grants of one credit, written in one statement (seeding through the
    service would take a transaction each), balance and totals kept in step."""
    engine = create_engine(Settings(DATABASE_URL=url).effective_database_url)
    now = datetime.now(UTC)
    rows = [
        {
            "id": str(uuid.uuid4()), "user_id": user, "type": "grant", "status": "completed",
            "amount": 1, "balance_before": 0, "balance_after": 0, "app_id": "admin",
            "description": f"grant {n}", "metadata": None, "idempotency_key": None,
            "created_at": now + timedelta(seconds=n), "completed_at": now,
        }
        for n in range(count)
    ]  # fmt: skip
    b = balances.c
    async with engine.begin() as connection:
        await connection.execute(sa.insert(transactions), rows)
        await connection.execute(
            sa.update(balances)
            .where(b.user_id == user)
            .values(balance=b.balance + count, total_earned=b.total_earned + count)
        )
    await engine.dispose()


def test_delete_needs_yes_and_changes_nothing_without_it(database_url: str) -> None:
    seed_zelda(database_url)
    code, out, err = invoke_split("users", "delete", "zelda", "--database-url", database_url)
    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == [
        "error: confirmation_required: deleting zelda's data cannot be undone,"
        " pass --yes to confirm"
    ]
    code, out = invoke("credits", "balance", "zelda", "--database-url", database_url, "--json")
    assert code == 0, out
    assert json.loads(out)["balance"] == 1100 - 100 - 50 - 30


def test_export_then_delete_then_nothing_is_left(database_url: str) -> None:
    seed_zelda(database_url, entries=3)
    code, out = invoke(
        "credits", "grant", "zelda", "20", "--reason", "trial", "--expires-in", "30d",
        "--priority", "10", "--database-url", database_url,
    )  # fmt: skip
    assert code == 0, out
    code, out, err = invoke_split("users", "export", "zelda", "--database-url", database_url)
    assert code == 0, err
    exported = json.loads(out)
    assert set(exported) == {
        "userId", "email", "balance", "purchases", "giftsCreated", "giftsReceived", "redemptions",
        "subscription", "reservations", "usage", "operationUsage", "lots", "ledger",
    }  # fmt: skip
    assert exported["operationUsage"] == []  # no priced debits
    assert exported["balance"]["balance"] == 1100 - 100 - 50 - 30 - 3 + 20
    assert exported["balance"]["accruedMilli"] == 0
    purchase, grant = exported["lots"]  # oldest first
    assert set(purchase) == {
        "id", "source", "amount", "remaining", "priority", "expiresAt", "createdAt", "expiredAt",
    }  # fmt: skip
    # The purchase paid for everything (the grant came later); held credits stay in it.
    assert {k: purchase[k] for k in ("source", "amount", "remaining", "priority")} == {
        "source": "purchase", "amount": 1100, "remaining": 1100 - 100 - 30 - 3, "priority": 50,
    }  # fmt: skip
    assert (purchase["expiresAt"], purchase["expiredAt"]) == (None, None)
    assert {k: grant[k] for k in ("source", "amount", "remaining", "priority")} == {
        "source": "grant", "amount": 20, "remaining": 20, "priority": 10,
    }  # fmt: skip
    granted = datetime.fromisoformat(grant["createdAt"])
    # --expires-in counts from when the command started, just before the entry.
    lifetime = datetime.fromisoformat(grant["expiresAt"]) - granted
    assert timedelta(days=30) - timedelta(minutes=1) < lifetime <= timedelta(days=30)
    assert grant["expiredAt"] is None
    assert grant["id"] == exported["ledger"][-1]["id"]  # a lot's id is its entry's
    assert [p["credits"] for p in exported["purchases"]] == [1100]
    assert [g["message"] for g in exported["giftsCreated"]] == ["For Bob, love Zelda"]
    assert exported["subscription"]["active"] is True
    assert [r["amount"] for r in exported["reservations"]] == [50]
    assert [e["type"] for e in exported["ledger"]] == [
        "purchase", "gift", "usage", "usage", "usage", "usage", "grant",
    ]  # fmt: skip

    code, out, err = invoke_split(
        "users", "delete", "zelda", "--yes", "--json", "--database-url", database_url
    )
    assert code == 0, err
    done = json.loads(out)
    assert done["userId"] == "zelda"
    assert done["deletedCount"] > 0
    assert (done["forfeited"], done["giftsCancelled"]) == (1100 - 30 - 3 + 20, 1)

    code, out = invoke("users", "delete", "zelda", "--yes", "--database-url", database_url)
    assert (code, out.strip()) == (0, "nothing held about zelda: nothing deleted")
    code, out, err = invoke_split("users", "export", "zelda", "--database-url", database_url)
    assert code == 1
    assert err.strip() == "error: user_not_found: nothing is held about zelda, check the id"
    code, out = invoke("reconcile", "--database-url", database_url, "--json")
    assert code == 0, out


def test_export_of_a_long_ledger_streams_valid_json(database_url: str) -> None:
    seed_zelda(database_url)
    asyncio.run(bulk_grants(database_url, "zelda", 1005))  # more than one page of 1000
    output = invoke_split("users", "export", "zelda", "--database-url", database_url)
    code, out, err = output
    assert code == 0, err
    ledger = json.loads(out)["ledger"]
    assert len(ledger) == 3 + 1005
    assert len({e["id"] for e in ledger}) == len(ledger)
    assert [e["createdAt"] for e in ledger] == sorted(e["createdAt"] for e in ledger)


def test_bad_input_is_one_line(database_url: str) -> None:
    seed_zelda(database_url)
    code, out, err = invoke_split(
        "users", "delete", "zelda", "--yes", "--email", "nope", "--database-url", database_url
    )
    assert code == 1
    assert err.strip() == "error: invalid_input: email must be an e-mail address"
    code, out = invoke("users", "delete", "zelda", "--yes", "--database-url", database_url)
    assert code == 0
    assert out.startswith("deleted zelda: ")
