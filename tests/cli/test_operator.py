"""An operator's daily commands, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.payments.dev import dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import Principal, TransactionType
from mana_credits_core.validation import MAX_CREDITS

from .conftest import invoke, invoke_split, seed


def users_checked(url: str) -> int:
    code, out = invoke("reconcile", "--database-url", url, "--json")
    assert code == 0, out
    found: int = json.loads(out)["usersChecked"]
    return found


def test_reads_of_an_unknown_user_are_errors_and_create_nothing(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    for command in (
        ["credits", "balance", "alcie"],
        ["credits", "balance", "alcie", "--json"],
        ["credits", "history", "alcie"],
        ["sync", "status", "alcie"],
        ["reconcile", "--user", "alcie"],
    ):
        code, out, err = invoke_split(*command, *url)
        assert (code, out) == (1, ""), command
        assert err == (
            "error: user_not_found: no such user alcie, check the id "
            "(mana-credits credits top lists users)\n"
        )
    assert users_checked(database_url) == 1  # alice only: no balance row for "alcie"
    code, out = invoke("reconcile", "--user", "alice", *url)
    assert (code, out.strip()) == (0, "ok: 1 user checked, no drift")


def test_a_debit_of_an_unknown_user_names_the_user_and_what_to_do(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    code, out, err = invoke_split("credits", "debit", "ghost4", "5", "--reason", "x", *url)
    assert (code, out) == (1, "")
    assert err == (
        "error: balance_not_found: no such user ghost4, check the id "
        "(mana-credits credits top lists users)\n"
    )
    assert users_checked(database_url) == 1  # still alice only


def test_sync_status_in_words_and_for_users_without_a_subscription(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    code, out = invoke("sync", "status", "alice", *url)
    assert code == 0, out
    assert "inactive" in out
    assert "None" not in out
    assert "False" not in out
    code, out = invoke("sync", "gift", "carol", "--by", "ops", *url)  # never seen: a typo?
    assert (code, out.strip()) == (
        1,
        "error: user_not_found: no such user carol, check the id (mana-credits credits top"
        " lists users), or pass --new-user to gift Cloud Sync to an id never seen",
    )
    code, out = invoke("sync", "gift", "carol", "--by", "ops", "--new-user", *url)
    assert code == 0, out
    code, out = invoke("sync", "status", "carol", *url)  # gifted without any balance
    assert code == 0, out
    assert "active (gifted: never charged)" in out
    assert "True" not in out


def test_replayed_grant_prints_the_balance_as_it_is_now(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    grant = ["credits", "grant", "alice", "50", "--reason", "ticket 1", "--operator", "ops"]
    code, out = invoke(*grant, "--idempotency-key", "t-1", *url)
    assert (code, out.strip()) == (0, "alice: grant +50, balance 120")
    code, out = invoke(
        "credits", "debit", "alice", "20", "--reason", "fix", "--operator", "o", *url
    )
    assert (code, out.strip()) == (0, "alice: usage -20, balance 100")
    code, out = invoke(*grant, "--idempotency-key", "t-1", *url)
    assert code == 0
    assert out.strip() == "alice: grant +50 was already applied, nothing changed; balance now 100"
    code, out = invoke(*grant, "--idempotency-key", "t-1", *url, "--json")
    shape = json.loads(out)
    assert (shape["replayed"], shape["balanceAfter"], shape["balance"]) == (True, 120, 100)


def test_operator_recorded_on_grant_refund_and_debit(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    env = {"LOGNAME": "sam", "USER": "sam"}
    for command in (["grant", "alice", "5"], ["refund", "alice", "6"], ["debit", "alice", "7"]):
        code, out = invoke("credits", *command, "--reason", "why", *url, env=env)
        assert code == 0, out
    code, out = invoke("credits", "debit", "alice", "1", "--reason", "x", "--operator", "kim", *url)
    assert code == 0, out
    code, out = invoke("credits", "history", "alice", *url, "--json")
    recorded = sorted(
        (e["type"], e["metadata"]["operator"], e["metadata"]["reason"])
        for e in json.loads(out)
        if e["metadata"] is not None
    )
    assert recorded == [
        ("grant", "sam", "why"),
        ("refund", "sam", "why"),
        ("usage", "kim", "x"),
        ("usage", "sam", "why"),
    ]


def test_amount_and_refusal_messages_say_what_to_do(database_url: str) -> None:
    seed(database_url)
    url = ["--database-url", database_url]
    for big in (str(MAX_CREDITS + 1), "9" * 30):
        code, out = invoke("credits", "grant", "alice", big, "--reason", "x", *url)
        assert (code, out.strip()) == (
            1,
            f"error: invalid_input: AMOUNT must be at most {MAX_CREDITS}",
        )
    code, out = invoke("credits", "grant", "alice", "1e3", "--reason", "x", *url)
    assert (code, out.strip()) == (
        1,
        "error: invalid_input: AMOUNT must be a whole number of credits in ASCII digits"
        " (e.g. 500), not '1e3'",
    )
    code, out = invoke("credits", "debit", "alice", "500", "--reason", "x", *url)
    assert code == 1
    assert out.strip() == (
        "error: insufficient_credits: alice has 70 spendable credits, 500 required; "
        "debit less or grant first"
    )


def test_packages_add_goes_after_the_last(database_url: str) -> None:
    seed(database_url)  # the embedded catalogue: Starter 0 … Max 3
    url = ["--database-url", database_url]
    code, out = invoke(
        "packages",
        "add",
        "--name",
        "Mega",
        "--credits",
        "13000",
        "--price",
        "10000",
        *url,
        "--json",
    )
    assert code == 0, out
    added = json.loads(out)
    code, out = invoke("packages", "list", *url, "--json")
    orders = [p["sortOrder"] for p in json.loads(out)]
    assert added["sortOrder"] == max(orders)
    assert orders.count(added["sortOrder"]) == 1
    assert [p["id"] for p in json.loads(out)][-1] == added["id"]


def test_usage_report_leaves_out_gift_escrow(database_url: str) -> None:
    async def make() -> None:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            await services.gifts.create(Principal("alice"), 60)
            await services.credits.use("alice", 10, "chat", "answer")

    asyncio.run(make())
    code, out = invoke("report", "usage", "--days", "1", "--database-url", database_url, "--json")
    assert code == 0, out
    assert [(r["appId"], r["credits"]) for r in json.loads(out)] == [("chat", 10)]


def test_credits_top_by_balance_and_by_spending(database_url: str) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(days=20))

    async def make() -> None:
        settings = Settings(DATABASE_URL=database_url)
        async with bootstrap(settings, migrate=True, clock=clock) as services:
            for user, credits in (("ann", 300), ("bea", 100), ("cid", 200)):
                await services.credits.credit(user, credits, TransactionType.GRANT, "funds")
            await services.credits.use("bea", 90, "chat", "long ago")
            clock.advance(timedelta(days=15))
            await services.credits.use("cid", 40, "chat", "recently")
            await services.gifts.create(Principal("ann"), 250)  # held, not spent

    asyncio.run(make())
    url = ["--database-url", database_url]
    code, out = invoke("credits", "top", *url, "--json")
    assert code == 0, out
    assert json.loads(out) == [
        {"userId": "cid", "balance": 160},
        {"userId": "ann", "balance": 50},
        {"userId": "bea", "balance": 10},
    ]
    code, out = invoke("credits", "top", "--by", "spent", *url, "--json")
    assert json.loads(out) == [{"userId": "bea", "spent": 90}, {"userId": "cid", "spent": 40}]
    since = (clock.now() - timedelta(days=1)).date().isoformat()
    code, out = invoke("credits", "top", "--by", "spent", "--since", since, "--limit", "5", *url)
    assert code == 0, out
    assert "cid" in out
    assert "bea" not in out
    # 23:00 at UTC-5 on cid's usage day is the next day in UTC: cid's usage is before it.
    late = f"{clock.now().date().isoformat()}T23:00-05:00"
    code, out = invoke("credits", "top", "--by", "spent", "--since", late, *url, "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out = invoke("credits", "top", "--since", since, *url)
    assert (code, out.strip()) == (
        1,
        "error: invalid_input: --since goes with --by spent (balances have no period)",
    )


def test_gift_commands_take_the_code_or_the_id(database_url: str) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(days=10))

    async def make() -> list[tuple[str, str]]:
        settings = Settings(DATABASE_URL=database_url)
        async with bootstrap(settings, migrate=True, clock=clock) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            made = [await services.gifts.create(Principal("alice"), 10, expiration_days=1)]
            clock.advance(timedelta(days=9))
            made.append(await services.gifts.create(Principal("alice"), 20))
            made.append(await services.gifts.create(Principal("alice"), 30))
            return [(g.id, g.code) for g in made]

    (old_id, old_code), (id_a, code_a), (id_b, _code_b) = asyncio.run(make())
    url = ["--database-url", database_url]
    code, out = invoke("gifts", "list", *url)
    assert code == 0, out
    assert f"{id_a[:8]}…" in out
    assert code_a in out
    assert id_a not in out
    assert "--wide" in out
    code, out, _err = invoke_split("gifts", "list", "--wide", *url)
    assert id_a in out
    assert id_b in out
    code, out = invoke("gifts", "show", id_a, *url, "--json")
    assert (code, json.loads(out)["code"]) == (0, code_a)
    code, out = invoke("gifts", "cancel", code_a.lower(), *url)
    assert (code, out.strip()) == (0, f"cancelled {code_a}: 20 credits back to alice")
    code, out = invoke("gifts", "cancel", id_b, *url)
    assert code == 0, out
    code, out = invoke("gifts", "expire", id_a, *url)
    assert code == 1
    assert f"error: gift_not_cancellable: gift {code_a} is cancelled, only active gifts" in out
    code, out = invoke("gifts", "expire", old_code, *url, "--json")
    assert (code, json.loads(out)) == (0, {"expired": 1})
    code, out = invoke("gifts", "show", old_id, *url, "--json")
    assert json.loads(out)["status"] == "expired"
    code, out = invoke("credits", "balance", "alice", *url, "--json")
    assert json.loads(out)["balance"] == 100
    code, out = invoke("gifts", "show", "no-such-gift", *url)
    assert (code, out.strip()) == (
        1,
        "error: gift_not_found: no gift with code or id no-such-gift, check it"
        " (mana-credits gifts list shows them)",
    )


def test_purchases_list_show_and_refund_with_the_dev_gateway(database_url: str) -> None:
    async def make() -> tuple[str, str]:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            package = await services.purchases.add_package("Starter", 500, 500)
            paid = (await services.purchases.start("alice", package.id)).purchase
            await services.purchases.handle(dev_payment(paid))
            pending = (await services.purchases.start("bob", package.id)).purchase
            return paid.id, pending.id

    paid_id, pending_id = asyncio.run(make())
    url = ["--database-url", database_url]
    code, out = invoke("purchases", "list", *url, "--json")
    assert code == 0, out
    assert {p["id"]: p["status"] for p in json.loads(out)} == {
        paid_id: "completed",
        pending_id: "pending",
    }
    code, out = invoke("purchases", "list", "--user", "alice", "--wide", *url)
    assert paid_id in out
    assert pending_id not in out
    code, out = invoke("purchases", "list", "--status", "pending", *url, "--json")
    assert [p["id"] for p in json.loads(out)] == [pending_id]
    code, out = invoke("purchases", "list", "--status", "paid", *url)
    assert code == 1
    assert "error: usage: Invalid value for '--status': 'paid' is not one of 'pending'," in out
    code, out = invoke("purchases", "show", paid_id, *url)
    assert code == 0, out
    assert "5.00 €" in out
    assert "pi_dev_" in out
    code, out = invoke("purchases", "refund", pending_id, "--reason", "x", "--operator", "o", *url)
    assert code == 1
    assert out.startswith("error: purchase_not_refundable: purchase is pending")
    refund = ["purchases", "refund", paid_id, "--reason", "asked", "--operator", "ops", *url]
    code, out = invoke(*refund)
    assert code == 0, out
    assert "refunded 5.00 €" in out
    assert "clawed back 500, debt 0" in out
    code, out = invoke(*refund, "--json")
    assert json.loads(out)["outcome"] == "already refunded: nothing changed"
    code, out = invoke("credits", "balance", "alice", *url, "--json")
    assert json.loads(out)["balance"] == 0
    code, out = invoke("purchases", "show", paid_id, *url, "--json")
    shown = json.loads(out)
    assert shown["clawedBack"] == 500
    assert [(c["credits"], c["operator"], c["reason"]) for c in shown["clawbacks"]] == [
        (500, "ops", "asked")
    ]
    code, out = invoke("purchases", "show", paid_id, *url)
    assert "claw-back  500 credits on " in out
    assert "by ops: asked" in out
    code, out = invoke("purchases", "show", "missing", *url)
    assert (code, out.strip()) == (
        1,
        "error: purchase_not_found: no purchase with id missing, check it"
        " (mana-credits purchases list shows them)",
    )
