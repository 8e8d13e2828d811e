"""What the import refuses: exit code 1, one line `error: <code>: ...`, and neither
database changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ..postgres import free_port
from .fixture import REPLAY, checksum
from .importing import Targets, cli, import_legacy, services_on

KINDS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("sqlite", marks=pytest.mark.sqlite),
]


@pytest.mark.postgres
def test_an_empty_database_is_not_the_old_layout(
    targets: Targets, empty_database: str, legacy_url: str
) -> None:
    target = targets.postgres()
    before, source = target.checksum(), checksum(empty_database)
    line = import_legacy(empty_database, target).error("not_legacy_layout")
    assert "credits" in line  # names what is missing
    assert target.checksum() == before
    assert checksum(empty_database) == source


@pytest.mark.postgres
def test_this_services_own_database_is_not_the_old_layout(
    targets: Targets, legacy_url: str
) -> None:
    # Same schema names, same table names: what tells them apart is the old layout's
    # columns and enum types.
    ours = targets.postgres()
    assert import_legacy(legacy_url, ours).code == 0
    target = targets.postgres()
    before, source = target.checksum(), checksum(ours.url)
    import_legacy(ours.url, target).error("not_legacy_layout")
    assert target.checksum() == before
    assert checksum(ours.url) == source


@pytest.mark.parametrize("kind", KINDS)
async def test_a_target_holding_other_data_for_the_users_is_refused(
    kind: str, targets: Targets, legacy_url: str, tmp_path: Path
) -> None:
    target = targets.of_kind(kind)
    assert import_legacy(legacy_url, target).code == 0
    # The new service ran after the import: a user spent credits here.
    async with services_on(target, tmp_path) as services:
        await services.credits.use(REPLAY.user_id, 3, "chat", "after the switch")
    before, source = target.checksum(), checksum(legacy_url)
    again = import_legacy(legacy_url, target)
    line = again.error("target_holds_other_data")
    assert REPLAY.user_id in line, line
    assert "1 of the imported users" in line, line
    assert target.checksum() == before
    assert checksum(legacy_url) == source


@pytest.mark.postgres
def test_an_unreachable_source_is_refused(targets: Targets, pg_url: str) -> None:
    target = targets.postgres()
    before = target.checksum()
    port = free_port()  # nothing listens there
    nowhere = make_url(pg_url).set(port=port, database="old").render_as_string(False)
    line = import_legacy(nowhere, target).error("database_unreachable")
    assert f"127.0.0.1:{port}" in line, line
    assert target.checksum() == before


@pytest.mark.postgres
def test_a_memory_target_is_refused(legacy_url: str) -> None:
    source = checksum(legacy_url)
    line = import_legacy(legacy_url, "memory://").error("unsupported_database")
    assert checksum(legacy_url) == source
    assert "postgresql://" in line, line
    assert "sqlite://" in line, line


def test_the_old_database_must_be_named(tmp_path: Path) -> None:
    target = tmp_path / "credits.db"
    done = cli("db", "import-legacy", "--database-url", f"sqlite:///{target}")
    line = done.error("usage")
    assert "Missing option '--from'" in line, line
    assert "mana-credits db import-legacy --help" in line, line
    assert not target.exists()
