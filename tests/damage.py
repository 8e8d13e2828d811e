"""Real damaged SQLite files: a valid header, garbage in the pages behind it."""

from __future__ import annotations

from pathlib import Path

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings

USERS = [f"user{n}" for n in range(5)]
PAGE = 4096  # SQLite's default page size, the one our files use


async def stocked_home(home: Path) -> Path:
    """`home`'s embedded database with a few hundred ledger entries; returns the file."""
    async with bootstrap(Settings(MANA_CREDITS_HOME=home)) as services:
        for n in range(300):
            await services.credits.refund(
                USERS[n % len(USERS)], 50, "welcome", idempotency_key=f"k{n}"
            )
    return home / "credits.db"


def damage(database: Path, page: int = 5) -> None:
    """Overwrite page `page` (1-based) of `database` with garbage; the header stays."""
    with database.open("r+b") as file:
        file.seek((page - 1) * PAGE)
        file.write(b"\xde\xad\xbe\xef" * (PAGE // 4))


async def damaged_home(home: Path) -> Path:
    """A home whose credits.db (stocked) has page 5 damaged; returns the file."""
    database = await stocked_home(home)
    damage(database)
    return database
