"""`credits grant --expires-in/--priority`, `credits lots` and `report expiring`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import invoke, invoke_split, seed


def grant(url: str, *extra: str) -> None:
    code, out = invoke(
        "credits", "grant", "alice", "25", "--reason", "promo", "--database-url", url, *extra
    )
    assert code == 0, out


def lots_of(url: str, user: str = "alice") -> list[dict[str, object]]:
    code, out, _err = invoke_split("credits", "lots", user, "--json", "--database-url", url)
    assert code == 0, out
    found: list[dict[str, object]] = json.loads(out)
    return found


def test_a_grant_with_expiry_and_priority_is_listed_first(database_url: str) -> None:
    seed(database_url)  # alice: a lot of 100, 70 left
    before = datetime.now(UTC)
    grant(database_url, "--expires-in", "30d", "--priority", "10")
    first, second = lots_of(database_url)
    assert (first["source"], first["amount"], first["remaining"], first["priority"]) == (
        "grant",
        25,
        25,
        10,
    )
    expires = datetime.fromisoformat(str(first["expiresAt"]))
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
    assert (second["remaining"], second["priority"], second["expiresAt"]) == (70, 50, None)

    code, out, _err = invoke_split("credits", "lots", "alice", "--database-url", database_url)
    assert code == 0
    assert "remaining" in out
    assert "never" in out
    assert expires.isoformat(timespec="seconds") in out


@pytest.mark.parametrize("given", ["12h", "90m", "1d"])
def test_each_duration_unit(database_url: str, given: str) -> None:
    grant(database_url, "--expires-in", given, "--new-user")
    [lot] = lots_of(database_url)
    left = datetime.fromisoformat(str(lot["expiresAt"])) - datetime.now(UTC)
    unit = {"h": timedelta(hours=1), "m": timedelta(minutes=1), "d": timedelta(days=1)}
    expected = int(given[:-1]) * unit[given[-1]]
    assert expected - timedelta(minutes=1) < left <= expected


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--expires-in", "30"), "--expires-in must be a whole number and d, h or m"),
        (("--expires-in", "30 d"), "--expires-in must be a whole number and d, h or m"),
        (("--expires-in", "-3d"), "--expires-in must be a whole number and d, h or m"),
        (("--expires-in", "2w"), "--expires-in must be a whole number and d, h or m"),
        (("--expires-in", "0d"), "--expires-in must be 1m..3660d"),
        (("--expires-in", "9999d"), "--expires-in must be 1m..3660d"),
        (("--priority", "101"), "--priority must be 0..100"),
        (("--priority", "-1"), "--priority must be 0..100"),
        (("--priority", "high"), "--priority"),
    ],
)
def test_bad_values_are_one_line_and_change_nothing(
    database_url: str, extra: tuple[str, ...], says: str
) -> None:
    seed(database_url)
    args = ("credits", "grant", "alice", "25", "--reason", "promo", *extra)
    code, out, err = invoke_split(*args, "--database-url", database_url)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert says in err
    assert len(err.strip().splitlines()) == 1
    assert [lot["remaining"] for lot in lots_of(database_url)] == [70]


def test_lots_of_an_unknown_user_is_an_error(database_url: str) -> None:
    seed(database_url)
    code, _out, err = invoke_split("credits", "lots", "nobody", "--database-url", database_url)
    assert code == 1
    assert err.startswith("error: ")


def test_report_expiring_sums_credits_and_users(database_url: str) -> None:
    seed(database_url)  # never expires: not counted
    grant(database_url, "--expires-in", "10d")
    grant(database_url, "--expires-in", "40d")
    code, out = invoke("credits", "grant", "bob", "5", "--reason", "r", "--expires-in", "29d",
                       "--new-user", "--database-url", database_url)  # fmt: skip
    assert code == 0, out
    code, out, _err = invoke_split("report", "expiring", "--database-url", database_url)
    assert code == 0
    assert "credits expiring in the next 30 days: 30 credits of 2 users (2 lots)" in out
    code, out, _err = invoke_split(
        "report", "expiring", "--days", "60", "--json", "--database-url", database_url
    )
    assert json.loads(out) == {"days": 60, "credits": 55, "users": 2, "lots": 3}
