"""`mana-credits prices list|set|retire|history`: the price list from the command line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mana_credits_core.pricing import SEED_PRICES

from .conftest import invoke_split


def ok(*args: str) -> str:
    code, out, err = invoke_split(*args)
    assert code == 0, out + err
    return out


def refused(*args: str, code: str, says: str) -> None:
    """One line `error: <code>: ...` naming what is wrong, exit 1, nothing on stdout."""
    exit_code, out, err = invoke_split(*args)
    assert exit_code == 1, out + err
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {code}: "), err
    assert says in err, err


def listed(url: str, *extra: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        ok("prices", "list", "--json", "--database-url", url, *extra)
    )
    return found


def changes(url: str, *extra: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        ok("prices", "history", "--json", "--database-url", url, *extra)
    )
    return found


def test_list_shows_the_seeded_price_list(any_store_url: str) -> None:
    found = listed(any_store_url)
    assert {p["operation"] for p in found} == {s.operation for s in SEED_PRICES}
    bulk = next(p for p in found if p["operation"] == "bulk_import")
    assert set(bulk) == {
        "operation",
        "appId",
        "name",
        "description",
        "price",
        "priceMilli",
        "unit",
        "unitSize",
        "active",
        "createdAt",
        "updatedAt",
        "retiredAt",
    }
    assert (bulk["appId"], bulk["price"], bulk["priceMilli"]) == ("notes", "0.2", 200)
    assert (bulk["unit"], bulk["unitSize"], bulk["active"], bulk["retiredAt"]) == (
        "item",
        10,
        True,
        None,
    )

    out = ok("prices", "list", "--database-url", any_store_url)
    line = next(row for row in out.splitlines() if "bulk_import" in row)
    assert "0.2" in line
    assert "per 10 items" in line
    ollama = next(row for row in out.splitlines() if "ai_chat_ollama" in row)
    assert "0.1" in ollama
    assert "per call" in ollama
    assert "status" not in out  # no retired marker without --all


def test_set_changes_a_price_and_records_who_and_why(any_store_url: str) -> None:
    url = any_store_url
    out = ok(
        "prices", "set", "ai_chat_gpt4", "4.5", "--reason", "new contract",
        "--operator", "carol", "--database-url", url,
    )  # fmt: skip
    assert out == (
        "ai_chat_gpt4 (chat, Chat (GPT-4)) changed: 5 credits per call -> 4.5 credits per call\n"
    )
    gpt4 = next(p for p in listed(url) if p["operation"] == "ai_chat_gpt4")
    assert (gpt4["price"], gpt4["priceMilli"]) == ("4.5", 4500)

    [change] = changes(url)
    assert set(change) == {
        "id",
        "operation",
        "action",
        "oldPrice",
        "newPrice",
        "oldPriceMilli",
        "newPriceMilli",
        "operator",
        "reason",
        "at",
        "before",
    }
    assert (change["operation"], change["action"], change["oldPrice"], change["newPrice"]) == (
        "ai_chat_gpt4",
        "changed",
        "5",
        "4.5",
    )
    assert (change["operator"], change["reason"]) == ("carol", "new contract")

    again = ok("prices", "set", "ai_chat_gpt4", "4.5", "--operator", "carol", "--database-url", url)
    assert again == "ai_chat_gpt4: 4.5 credits per call, unchanged\n"
    assert len(changes(url)) == 1  # nothing changed, nothing recorded


def test_set_json_and_a_new_operation_per_unit(any_store_url: str) -> None:
    url = any_store_url
    out = ok(
        "prices", "set", "ai_translate", "0.25", "--app", "notes", "--name", "Translation",
        "--description", "Pages translated.", "--unit", "page", "--unit-size", "5",
        "--operator", "carol", "--json", "--database-url", url,
    )  # fmt: skip
    shown = json.loads(out)
    assert set(shown) == {"price", "change"}
    assert shown["price"]["operation"] == "ai_translate"
    assert (shown["price"]["price"], shown["price"]["unit"], shown["price"]["unitSize"]) == (
        "0.25",
        "page",
        5,
    )
    assert (shown["change"]["action"], shown["change"]["oldPrice"]) == ("created", None)
    assert shown["change"]["newPriceMilli"] == 250
    line = next(
        r for r in ok("prices", "list", "--database-url", url).splitlines() if "ai_translate" in r
    )
    assert "per 5 pages" in line

    unchanged = json.loads(
        ok("prices", "set", "ai_translate", "0.25", "--json", "--operator", "carol",
           "--database-url", url)
    )  # fmt: skip
    assert unchanged["change"] is None
    assert unchanged["price"]["price"] == "0.25"


def test_a_price_per_unit_becomes_per_call(any_store_url: str) -> None:
    url = any_store_url
    out = ok("prices", "set", "bulk_import", "0.5", "--unit", "", "--operator", "carol",
             "--database-url", url)  # fmt: skip
    assert out.endswith("changed: 0.2 credits per 10 items -> 0.5 credits per call\n")
    bulk = next(p for p in listed(url) if p["operation"] == "bulk_import")
    assert (bulk["unit"], bulk["unitSize"]) == (None, 1)


def test_a_change_of_unit_app_or_name_alone_says_what_moved(any_store_url: str) -> None:
    url = any_store_url
    out = ok("prices", "set", "bulk_import", "0.2", "--unit", "", "--operator", "carol",
             "--database-url", url)  # fmt: skip
    assert out.endswith("changed: 0.2 credits per 10 items -> 0.2 credits per call\n")
    out = ok("prices", "set", "ai_chat_qwen", "2", "--app", "picture", "--name", "Qwen",
             "--operator", "carol", "--database-url", url)  # fmt: skip
    assert out == (
        "ai_chat_qwen (picture, Qwen) changed: 2 credits per call"
        " (app chat -> picture, name Chat (Qwen) -> Qwen)\n"
    )


def test_history_says_what_each_change_moved(any_store_url: str) -> None:
    """Each row shows the entry before and after its change, also for older changes
    of an operation changed again since."""
    url = any_store_url
    for args in (("bulk_import", "0.2", "--unit", ""), ("bulk_import", "0.3"),
                 ("ai_chat_qwen", "2", "--app", "picture")):  # fmt: skip
        ok("prices", "set", *args, "--operator", "carol", "--database-url", url)
    ok("prices", "set", "ai_new", "0.5", "--app", "notes", "--name", "New", "--operator",
       "carol", "--database-url", url)  # fmt: skip
    rows = [r for r in ok("prices", "history", "--database-url", url).splitlines() if "carol" in r]
    assert len(rows) == 4, rows
    new, qwen, dearer, per_call = rows
    assert "0.5 credits per call (new)" in new
    assert "2 credits per call (app chat -> picture)" in qwen
    assert "0.2 credits per call -> 0.3 credits per call" in dearer
    assert "0.2 credits per 10 items -> 0.2 credits per call" in per_call


def test_retire_then_list_all_and_set_again(any_store_url: str) -> None:
    url = any_store_url
    out = ok("prices", "retire", "pdf_export", "--reason", "moved to the app",
             "--operator", "dave", "--database-url", url)  # fmt: skip
    assert out == "pdf_export (documents, PDF export) retired, it was 1 credit per call\n"
    assert "pdf_export" not in {p["operation"] for p in listed(url)}
    retired = next(p for p in listed(url, "--all") if p["operation"] == "pdf_export")
    assert retired["active"] is False
    assert retired["retiredAt"] is not None
    table = ok("prices", "list", "--all", "--database-url", url)
    assert "status" in table
    assert "retired" in next(r for r in table.splitlines() if "pdf_export" in r)
    assert "active" in next(r for r in table.splitlines() if "bulk_import" in r)

    again = ok("prices", "retire", "pdf_export", "--operator", "dave", "--database-url", url)
    assert again == "pdf_export was retired already; nothing changed\n"
    shown = json.loads(
        ok("prices", "retire", "pdf_export", "--json", "--operator", "dave", "--database-url", url)
    )
    assert (shown["price"]["active"], shown["change"]) == (False, None)

    restored = ok("prices", "set", "pdf_export", "1.5", "--operator", "dave", "--database-url", url)
    assert restored.endswith("restored: 1 credit per call -> 1.5 credits per call (priced again)\n")
    assert next(p for p in listed(url) if p["operation"] == "pdf_export")["price"] == "1.5"


def test_retire_json(any_store_url: str) -> None:
    shown = json.loads(
        ok("prices", "retire", "premium_theme", "--json", "--operator", "dave",
           "--database-url", any_store_url)
    )  # fmt: skip
    assert shown["price"]["active"] is False
    assert (
        shown["change"]["action"],
        shown["change"]["oldPrice"],
        shown["change"]["newPrice"],
    ) == (
        "retired",
        "3",
        None,
    )


def test_history_newest_first_filtered_and_limited(any_store_url: str) -> None:
    url = any_store_url
    ok("prices", "set", "ai_chat_gpt4", "4", "--operator", "carol", "--reason", "r1",
       "--database-url", url)  # fmt: skip
    ok("prices", "set", "ai_suggestions", "1", "--operator", "erin", "--database-url", url)
    ok("prices", "retire", "ai_chat_gpt4", "--operator", "dave", "--reason", "gone",
       "--database-url", url)  # fmt: skip

    every = changes(url)
    assert [(c["operation"], c["action"]) for c in every] == [
        ("ai_chat_gpt4", "retired"),
        ("ai_suggestions", "changed"),
        ("ai_chat_gpt4", "changed"),
    ]
    assert [c["action"] for c in changes(url, "ai_chat_gpt4")] == ["retired", "changed"]
    assert [c["action"] for c in changes(url, "--limit", "1")] == ["retired"]

    table = ok("prices", "history", "--database-url", url)
    retired = next(r for r in table.splitlines() if "retired" in r)
    assert "was 4 credits per call" in retired
    assert "dave" in retired
    assert "gone" in retired
    changed = next(r for r in table.splitlines() if "carol" in r)
    assert "5 credits per call -> 4 credits per call" in changed
    assert "r1" in changed

    assert changes(url, "bulk_import") == []
    quiet = ok("prices", "history", "bulk_import", "--database-url", url)
    assert "no changes to the price list of bulk_import" in quiet


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (
            ("set", "ai_chat_gpt4", "0.1234"),
            "invalid_input",
            "PRICE must be credits in ASCII digits with at most 3",
        ),
        (("set", "ai_chat_gpt4", "abc"), "invalid_input", "PRICE must be credits"),
        (("set", "ai_chat_gpt4", "0"), "invalid_input", "PRICE must be 0.001..100000 credits"),
        (("set", "ai_chat_gpt4", "-1"), "invalid_input", "PRICE must be credits"),
        (("set", "ai_chat_gpt4", " 2"), "invalid_input", "PRICE must be credits in ASCII"),
        (("set", "ai_chat_gpt4", "2\n"), "invalid_input", "PRICE must be credits in ASCII"),
        (("set", "ai_chat_gpt4", "\uff11"), "invalid_input", "PRICE must be credits in ASCII"),
        (("set", "ai_chat_gpt4", "1000000000"), "invalid_input", "PRICE must be 0.001..100000"),
        (("set", "ai_chat_gpt4", "9" * 5000), "invalid_input", "(got 999999999999999999999999…)"),
        (
            # The price per call is the one it has: the unit size is refused all the same.
            ("set", "ai_chat_gpt4", "5", "--unit-size", "5"),
            "invalid_input",
            "a price per call has no unit size",
        ),
        (("set", "cloud_sync", "30", "--app", "chat"), "invalid_input", "belongs to app sync"),
        (("set", "bulk_import", "1", "--unit", "a b"), "invalid_input", "--unit must be one"),
        (("set", "bulk_import", "1", "--unit", "item "), "invalid_input", "--unit must be one"),
        (("set", "bulk_import", "1", "--unit", "call"), "invalid_input", "per call has no unit"),
        (
            # Units are singular: "per 10 boxes" is printed from "box", never from "boxes".
            ("set", "bulk_import", "0.3", "--unit", "boxes"),
            "invalid_input",
            "--unit boxes reads as a plural; units are singular, give the word for one",
        ),
        (("set", "Bad-Op", "1"), "invalid_input", "OPERATION must be an operation id"),
        (("set", "ai_new", "1"), "invalid_input", "needs --app APP and --name NAME"),
        (("set", "ai_new", "1", "--app", "notes"), "invalid_input", "needs --app APP and --name"),
        (("set", "ai_new", "1", "--name", "New"), "invalid_input", "needs --app APP and --name"),
        (
            ("set", "ai_chat_gpt4", "1", "--unit-size", "0", "--unit", "x"),
            "invalid_input",
            "--unit-size must be 1..1000000",
        ),
        (
            ("set", "ai_chat_gpt4", "1", "--unit-size", "10"),
            "invalid_input",
            "a price per call has no unit size",
        ),
        (("set", "ai_chat_gpt4", "1", "--reason", "a\nb"), "usage", "single line"),
        (("set", "ai_chat_gpt4", "1", "--reason", " "), "usage", "must not be empty"),
        (("set", "ai_chat_gpt4"), "usage", "PRICE"),
        (("retire", "no_such_op"), "price_not_found", "no operation no_such_op in the price"),
        (("retire", "Bad-Op"), "invalid_input", "OPERATION must be an operation id"),
        (("history", "no_such_op"), "price_not_found", "prices list --all lists them"),
        (("history", "--limit", "0"), "invalid_input", "--limit must be 1..1000"),
        (("history", "--limit", "1001"), "invalid_input", "--limit must be 1..1000"),
        (("list", "--bogus"), "usage", "--bogus"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    any_store_url: str, args: tuple[str, ...], code: str, says: str
) -> None:
    before = listed(any_store_url, "--all")
    who = ("--operator", "carol") if args[0] in ("set", "retire") else ()
    refused("prices", *args, *who, "--database-url", any_store_url, code=code, says=says)
    assert listed(any_store_url, "--all") == before
    assert changes(any_store_url) == []
