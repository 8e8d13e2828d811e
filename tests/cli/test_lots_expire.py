"""`mana-credits credits expire`: the lot expiry sweep on demand, once per lot."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings

from .conftest import invoke, invoke_split


def grant_expiring(url: str, seconds: float) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True) as services:
            soon = datetime.now(UTC) + timedelta(seconds=seconds)
            await services.credits.grant("zed", 40, "promo", "ops", expires_at=soon)
            await services.credits.grant("zed", 5, "kept", "ops")

    asyncio.run(work())


def test_credits_expire_sweeps_lots_past_their_date_once(database_url: str) -> None:
    grant_expiring(database_url, 1.0)
    time.sleep(1.2)  # the lot's date passes
    code, out, err = invoke_split("credits", "expire", "--json", "--database-url", database_url)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"expired": 1}
    code, out = invoke("credits", "expire", "--database-url", database_url)
    assert (code, out.strip()) == (0, "expired the credits of 0 lot(s)")  # once per lot
    code, out, _ = invoke_split(
        "credits", "balance", "zed", "--json", "--database-url", database_url
    )
    assert json.loads(out)["balance"] == 5
