"""A SQLite file damaged behind a valid header is `corrupt_database` naming the file,
never a driver traceback; one the service may not write is `not_writable`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.errors import CorruptDatabase
from mana_credits_adapters.settings import Settings
from mana_credits_core.errors import StoreUnavailable

from ..damage import damaged_home


async def test_reading_damaged_pages_is_corrupt_database_naming_the_file(
    tmp_path: Path,
) -> None:
    database = await damaged_home(tmp_path / "home")
    async with bootstrap(Settings(MANA_CREDITS_HOME=database.parent)) as services:
        with pytest.raises(CorruptDatabase) as raised:
            await services.reconcile.run()
        assert raised.value.code == "corrupt_database"
        assert str(database) in raised.value.message
        assert "malformed" in raised.value.message
        assert "\n" not in raised.value.message
        # From then on readiness says the store is unusable.
        with pytest.raises(StoreUnavailable) as probe:
            await services.store.ping()
        assert isinstance(probe.value.__cause__, CorruptDatabase)
