"""Running the import more than once, and dry: a dry run changes nothing and reports what
the import does; a second run writes nothing; the older layout imports too."""

from __future__ import annotations

from pathlib import Path

import pytest

from mana_credits_core.ledger import TransactionType

from .expected import corrections, openings
from .fixture import ROWS_OLDER, checksum
from .importing import Targets, cli, import_legacy, lasting, services_on, tables

KINDS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("sqlite", marks=pytest.mark.sqlite),
]


@pytest.mark.parametrize("kind", KINDS)
def test_a_dry_run_changes_nothing_and_reports_what_the_import_does(
    kind: str, targets: Targets, legacy_url: str
) -> None:
    target = targets.of_kind(kind)
    old, empty = checksum(legacy_url), target.checksum()
    dry = import_legacy(legacy_url, target, "--dry-run").report()
    assert dry["dryRun"] is True
    assert checksum(legacy_url) == old
    assert target.checksum() == empty
    real = import_legacy(legacy_url, target).report()
    assert real["dryRun"] is False
    assert lasting(dry) == lasting(real)
    assert target.checksum() != empty
    assert checksum(legacy_url) == old


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_run_writes_nothing(kind: str, targets: Targets, legacy_url: str) -> None:
    target = targets.of_kind(kind)
    first = import_legacy(legacy_url, target).report()
    after_first = target.checksum()
    second = import_legacy(legacy_url, target).report()
    assert target.checksum() == after_first
    assert all(counts["written"] > 0 for counts in tables(first).values())
    assert tables(second) == {
        table: {"source": counts["source"], "written": 0, "skipped": counts["written"]}
        for table, counts in tables(first).items()
    }
    # Everything else is the same report: the same users, sums, adjustments, findings.
    assert lasting(second) | {"tables": None} == lasting(first) | {"tables": None}


@pytest.mark.parametrize("kind", KINDS)
async def test_the_older_layout_imports_and_reconciles(
    kind: str, targets: Targets, older_legacy_url: str, tmp_path: Path
) -> None:
    target = targets.of_kind(kind)
    done = import_legacy(older_legacy_url, target)
    report = done.report()
    assert report["layout"] == {"hasGrant": False, "hasReservations": False}
    assert {table: counts["source"] for table, counts in tables(report).items()} == ROWS_OLDER
    expected = openings(older_legacy_url)
    assert corrections(older_legacy_url)  # the drifts are in this layout too
    async with services_on(target, tmp_path) as services:
        for user, opening in expected.items():
            found = await services.credits.balance(user)
            assert (found.balance, found.total_earned, found.total_spent, found.debt) == (
                opening.balance,
                opening.total_earned,
                opening.total_spent,
                opening.debt,
            ), user
        adjusted = {
            entry.user_id
            async for entry in services.credits.export()
            if entry.type is TransactionType.ADJUSTMENT
        }
        assert adjusted == set(corrections(older_legacy_url))
        reconciled = await services.reconcile.run()
    assert reconciled.ok, reconciled.drifts
    assert reconciled.users_checked == len(expected)
    done = cli("reconcile", "--database-url", target.url)
    assert done.code == 0, done.stdout + done.stderr
