"""`mana-credits console link` on SQLite and PostgreSQL: the URL it prints signs in once."""

from __future__ import annotations

import asyncio
import json

import pytest

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core.errors import SignInRefused

from .conftest import invoke, invoke_split


def redeem(url: str, token: str) -> str | None:
    async def work() -> str | None:
        async with bootstrap(Settings(DATABASE_URL=url)) as services:
            try:
                return await services.console.redeem_link(token)
            except SignInRefused:
                return None

    return asyncio.run(work())


def test_link_prints_a_single_use_url(database_url: str) -> None:
    code, out, err = invoke_split(
        "console", "link", "--operator", "carol", "--base-url", "https://credits.example.com/",
        "--database-url", database_url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    prefix = "https://credits.example.com/console/link/"
    assert out.startswith(prefix)
    token = out.strip().removeprefix(prefix)
    assert len(token) >= 43
    assert redeem(database_url, token) == "carol"
    assert redeem(database_url, token) is None


def test_link_json_names_operator_and_expiry(database_url: str) -> None:
    code, out = invoke("console", "link", "--operator", "carol", "--json",
                       "--database-url", database_url)  # fmt: skip
    assert code == 0
    shown = json.loads(out)
    assert shown["operator"] == "carol"
    assert shown["url"].startswith("http://localhost:3061/console/link/")
    assert "T" in shown["expiresAt"]


@pytest.mark.parametrize("operator", ["", "   ", "a\x01b"])
def test_a_bad_operator_is_one_line(database_url: str, operator: str) -> None:
    code, out, err = invoke_split("console", "link", "--operator", operator,
                                  "--database-url", database_url)  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith("error: invalid_input: --operator ")
    assert err.count("\n") == 1
