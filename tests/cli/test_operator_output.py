"""What operators read: whole table cells, ids as tables print them, clear messages."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime

import pytest

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.payments.dev import dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import Principal, TransactionType
from mana_credits_core.errors import GiftAlreadyClaimed

from .conftest import invoke, invoke_split, seed


class SharedPrefixIds:
    """Ids that share their first 8 characters, as two records may by chance."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def new_id(self) -> str:
        return f"abcdef01-{next(self._n):04d}-4000-8000-000000000000"


def test_purchases_found_by_the_ids_tables_print(database_url: str) -> None:
    async def make() -> list[str]:
        settings = Settings(DATABASE_URL=database_url)
        async with bootstrap(settings, migrate=True, ids=SharedPrefixIds()) as services:
            package = await services.purchases.add_package("Starter", 500, 500)
            first = (await services.purchases.start("alice", package.id)).purchase
            await services.purchases.handle(dev_payment(first))
            second = (await services.purchases.start("bob", package.id)).purchase
            return [first.id, second.id]

    first, second = asyncio.run(make())
    url = ["--database-url", database_url]
    code, out, err = invoke_split("purchases", "show", first[:8], *url)
    assert (code, out) == (1, "")
    assert err.startswith("error: ambiguous_id: ")
    assert "have an id starting with abcdef01, give more characters" in err
    code, out = invoke("purchases", "show", first[:13], *url, "--json")
    assert (code, json.loads(out)["id"]) == (0, first)
    code, out = invoke("purchases", "show", second.upper(), *url, "--json")
    assert (code, json.loads(out)["id"]) == (0, second)
    code, out, err = invoke_split("purchases", "show", "0123", *url)
    assert err == (
        "error: purchase_not_found: no purchase with id 0123, check it"
        " (mana-credits purchases list shows them)\n"
    )
    code, out = invoke("purchases", "list", *url)
    assert f"{second[:8]}…" in out
    refund = ["purchases", "refund", first[:13], "--reason", "asked", "--operator", "ops"]
    code, out = invoke(*refund, *url)
    assert (code, "refunded 5.00 €" in out) == (0, True), out


def test_refunded_purchases_are_found_with_clawed_back(database_url: str) -> None:
    async def make() -> tuple[str, str]:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            package = await services.purchases.add_package("Starter", 500, 500)
            kept = (await services.purchases.start("alice", package.id)).purchase
            await services.purchases.handle(dev_payment(kept))
            refunded = (await services.purchases.start("alice", package.id)).purchase
            await services.purchases.handle(dev_payment(refunded))
            await services.purchases.refund(refunded.id, "asked", "ops")
            return kept.id, refunded.id

    kept, refunded = asyncio.run(make())
    url = ["--database-url", database_url]
    code, out = invoke("purchases", "list", "--clawed-back", *url, "--json")
    assert code == 0, out
    assert [(p["id"], p["status"], p["clawedBack"]) for p in json.loads(out)] == [
        (refunded, "completed", 500)
    ]
    code, out = invoke("purchases", "list", "--clawed-back", "--status", "pending", *url)
    assert (code, "no purchases" in out) == (0, True)
    code, out = invoke("purchases", "list", *url)
    assert "clawed back" in out
    rows = [line for line in out.splitlines() if kept[:8] in line or refunded[:8] in line]
    assert len(rows) == 2
    assert "500" in next(r for r in rows if refunded[:8] in r).split("completed")[1]


def test_gift_show_expire_and_list(database_url: str) -> None:
    clock = ManualClock(datetime.now(UTC))

    async def make() -> tuple[str, str, str]:
        settings = Settings(DATABASE_URL=database_url)
        async with bootstrap(settings, migrate=True, clock=clock) as services:
            await services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
            plain = await services.gifts.create(Principal("alice"), 10)
            personal = await services.gifts.create(
                Principal("alice"),
                20,
                type="personalized",
                target_email="bea@example.com",
                message="happy birthday",
            )
            await services.gifts.redeem(Principal("cid"), plain.code, source_app_id="chat")
            with pytest.raises(GiftAlreadyClaimed):  # refused, and recorded
                await services.gifts.redeem(Principal("cid"), plain.code)
            return plain.code, personal.code, personal.id

    plain, personal, personal_id = asyncio.run(make())
    url = ["--database-url", database_url]
    code, out = invoke("gifts", "show", plain, *url)
    assert code == 0, out
    assert "None" not in out
    assert "targetEmail" not in out
    assert "redemption  cid: success, 10 credits in chat, " in out
    assert "redemption  cid: failed_already_claimed, 0 credits, " in out
    code, out = invoke("gifts", "show", personal_id[:8], *url, "--json")
    shown = json.loads(out)
    assert (shown["message"], shown["targetEmail"], shown["redemptions"]) == (
        "happy birthday",
        "bea@example.com",
        [],
    )
    code, out = invoke("gifts", "show", personal, *url)
    assert "message  happy birthday" in out
    assert "redemptions  none" in out
    code, out, err = invoke_split("gifts", "expire", personal, *url)
    assert (code, out) == (1, "")
    expires = datetime.fromisoformat(shown["expiresAt"]).strftime("%Y-%m-%d %H:%M")
    assert err.startswith(f"error: gift_not_expired: gift {personal} is active until {expires}")
    assert err.endswith(
        f"not expired yet; mana-credits gifts cancel {personal} returns its credits now\n"
    )
    code, out = invoke("gifts", "list", *url)
    assert code == 0
    assert "personalized" in out
    assert "cancelled" not in out
    assert out.count("…") == 2  # the two ids, shortened to 8 characters; no other cell
    assert f"{personal_id[:8]}…" in out


def test_a_redeemed_gift_cannot_be_cancelled_or_expired_in_plain_words(database_url: str) -> None:
    async def make() -> str:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            gift = await services.gifts.create(Principal("alice"), 10)
            await services.gifts.redeem(Principal("cid"), gift.code)
            return gift.code

    gift = asyncio.run(make())
    url = ["--database-url", database_url]
    for command, done in (("cancel", "cancelled"), ("expire", "expired")):
        code, out, err = invoke_split("gifts", command, gift, *url)
        assert (code, out) == (1, "")
        assert err == (
            f"error: gift_not_cancellable: gift {gift} is depleted, only active gifts can be"
            f" {done} (mana-credits gifts show {gift})\n"
        )


@pytest.mark.sqlite
def test_piped_tables_cut_no_cell(database_url: str) -> None:
    seed(database_url)
    reason = "a reason long enough that an eighty column table would have cut it short"
    url = ["--database-url", database_url]
    code, out = invoke("credits", "grant", "alice", "5", "--reason", reason, *url)
    assert code == 0, out
    code, out = invoke("credits", "history", "alice", *url)
    assert code == 0
    assert reason in out
    assert "…" not in out
    when = json.loads(invoke("credits", "history", "alice", *url, "--json")[1])[0]["createdAt"]
    assert when[:19] in out  # the whole time, to the second


@pytest.mark.sqlite
def test_top_by_spent_says_used_by_apps(database_url: str) -> None:
    seed(database_url)  # alice: 100 granted, 30 used by chat
    url = ["--database-url", database_url]
    code, out = invoke("credits", "top", "--by", "spent", *url)
    assert (code, "used by apps" in out) == (0, True)
    code, out = invoke("credits", "balance", "alice", *url)
    assert out.startswith("alice: 70 credits (earned 100, spent 30: app usage, gift codes")


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("args", "said"),
    [
        *[
            (["credits", "grant", "alice", amount, "--reason", "x"], "error: invalid_input: AMOUNT")
            for amount in ("\uff15", " 5", "5 ")  # full-width digit, spaces
        ],
        (
            ["credits", "grant", "alice", "5", "--reason", "two\nlines"],
            "error: usage: Invalid value for '--reason': must be a single line",
        ),
        (
            ["credits", "grant", "alice", "5", "--reason", "x" * 501],
            "error: usage: Invalid value for '--reason': must be at most 500 characters",
        ),
        (
            ["credits", "grant", "", "5", "--reason", "x"],
            "error: usage: Invalid value for 'USER': must not be empty",
        ),
        (
            ["credits", "grant", "alice", "5", "--reason", "bell\x07"],
            "error: invalid_input: --reason must not contain control characters",
        ),
        (
            ["purchases", "list", "--limit", "1000"],
            "error: usage: Invalid value for '--limit': Input should be less than or equal to 100",
        ),
        (
            ["dev", "token", "--user", "a", "--role", "superuser"],
            "error: usage: Invalid value for '--role': 'superuser' is not one of 'user', 'admin'",
        ),
        (["dev", "token", "--user", ""], "error: usage: Invalid value for '--user': must not be"),
    ],
)
def test_loose_input_is_refused_and_changes_nothing(
    args: list[str], said: str, database_url: str
) -> None:
    seed(database_url)
    url = [] if args[0] == "dev" else ["--database-url", database_url]
    code, out, err = invoke_split(*args, *url)
    assert (code, out) == (1, "")
    assert err.startswith(said), err
    assert err.count("\n") == 1
    code, out = invoke("credits", "balance", "alice", "--database-url", database_url, "--json")
    assert json.loads(out)["balance"] == 70
