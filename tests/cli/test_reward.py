"""`mana-credits credits reward`: the internal grant route's use case from a shell."""

from __future__ import annotations

import json

from .conftest import invoke, invoke_split, seed


def test_a_reward_is_granted_once_per_reference(database_url: str) -> None:
    seed(database_url)  # alice has 70
    url = ("--database-url", database_url)
    reward = ["credits", "reward", "alice", "50", "--reason", "feedback", "--reference", "fb-1"]
    code, out = invoke(*reward, *url)
    assert (code, out.strip()) == (0, "alice: grant +50 for fb-1, balance 120")
    debit = ["credits", "debit", "alice", "20", "--reason", "fix", "--operator", "o"]
    assert invoke(*debit, *url)[0] == 0  # the balance moves on: 100
    code, out = invoke(*reward, *url)
    assert (code, out.strip()) == (
        0,
        "alice: fb-1 was already rewarded (+50), nothing changed; balance after that grant 120",
    )
    code, out = invoke(*reward, *url, "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert (answer["alreadyGranted"], answer["amount"], answer["newBalance"]) == (True, 50, 120)
    code, out = invoke("credits", "history", "alice", "--json", *url)
    rewards = [e for e in json.loads(out) if e["appId"] == "community"]
    assert [(e["id"], e["metadata"]) for e in rewards] == [
        (answer["transactionId"], {"reason": "feedback", "referenceId": "fb-1"})
    ]


def test_bad_input_is_one_line_and_exit_1(database_url: str) -> None:
    seed(database_url)
    url = ("--database-url", database_url)
    base = ["credits", "reward", "alice"]
    cases = [
        (["1.5", "--reason", "r", "--reference", "x"], "AMOUNT must be a whole number"),
        (["5", "--reason", "r" * 65, "--reference", "x"], "--reason must be at most 64"),
        (["5", "--reason", "r", "--reference", "x" * 129], "--reference must be at most 128"),
        (["5", "--reason", "r", "--reference", "x", "--description", " "], "--description"),
    ]
    for arguments, message in cases:
        code, out, err = invoke_split(*base, *arguments, *url)
        assert code == 1
        assert out == ""
        assert err.startswith("error: invalid_input: ")
        assert message in err
        assert err.count("\n") == 1
    code, out = invoke("credits", "balance", "alice", "--json", *url)
    assert json.loads(out)["balance"] == 70  # nothing changed
