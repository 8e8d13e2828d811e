"""Old data the old layout allows but the hand-written fixture does not hold, and
targets named by mistake: each is imported sensibly or refused with one clear line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from mana_credits_core.rewards import reward_key

from .conftest import MakeDatabase
from .fixture import FAILED_ENTRY, SYNC_ACTIVE_USER, conninfo, query
from .importing import Imported, Targets, by_kind, cli, import_legacy, services_on

pytestmark = pytest.mark.postgres

ODD_GRANT = "0dd00000-0000-4000-8000-000000000001"
KEYED_GRANT = "0dd00000-0000-4000-8000-000000000002"
ODD_USAGE = "0dd00000-0000-4000-8000-000000000003"
FOREVER_GIFT = "0dd00000-0000-4000-8000-000000000004"
UNBACKED_GIFT = "0dd00000-0000-4000-8000-000000000005"
ODD_USER = "u-odd"


def oddities(url: str) -> None:
    """Rows the old layout allows: metadata that is not an object, a grant with its own
    key and a reference, a gift that never expires, an active gift without its debit,
    and an active subscription whose next charge is long past."""
    statements = """
        INSERT INTO credits.balances (user_id, balance, total_earned, total_spent)
            VALUES ('u-odd', 545, 550, 5);
        INSERT INTO credits.transactions (id, user_id, type, status, amount, balance_before,
            balance_after, app_id, description, metadata, idempotency_key, created_at,
            completed_at) VALUES
          (%(odd_grant)s, 'u-odd', 'grant', 'completed', 50, 0, 50, 'community', 'odd',
           '["a", 1, null]', NULL, '2026-05-01 10:00+00', '2026-05-01 10:00+00'),
          (%(keyed_grant)s, 'u-odd', 'grant', 'completed', 500, 50, 550, 'community',
           'keyed', '{"reason": "feedback", "referenceId": "fb-odd"}', 'old-grant-key',
           '2026-05-02 10:00+00', '2026-05-02 10:00+00'),
          (%(odd_usage)s, 'u-odd', 'usage', 'completed', -5, 550, 545, 'chat', 'chat',
           '"just a string"', 'odd-usage-1', '2026-05-03 10:00+00', '2026-05-03 10:00+00');
        INSERT INTO gifts.gift_codes (id, code, creator_id, creator_name, total_credits,
            type, status, expires_at, reservation_transaction_id, created_at, updated_at)
        VALUES
          (%(forever)s, 'FVR234', 'u-odd', 'Odd', 10, 'simple', 'depleted', 'infinity',
           NULL, '2026-05-04 10:00+00', '2026-05-04 10:00+00'),
          (%(unbacked)s, 'NBK234', 'u-odd', 'Odd', 40, 'simple', 'active',
           '2027-05-04 10:00+00', NULL, '2026-05-04 10:00+00', '2026-05-04 10:00+00');
        UPDATE credits.sync_subscriptions SET next_charge_at = '2026-07-01 03:00+00',
            billing_interval = 'monthly'
        WHERE user_id = %(sync_user)s
        """
    values = {
        "odd_grant": ODD_GRANT,
        "keyed_grant": KEYED_GRANT,
        "odd_usage": ODD_USAGE,
        "forever": FOREVER_GIFT,
        "unbacked": UNBACKED_GIFT,
        "sync_user": SYNC_ACTIVE_USER,
    }
    with psycopg.connect(conninfo(url)) as connection:
        for statement in statements.split(";"):
            connection.execute(statement.encode(), values)


async def test_odd_old_rows_are_imported_and_reported(
    make_legacy_database: MakeDatabase, targets: Targets, tmp_path: Path
) -> None:
    source = make_legacy_database()
    oddities(source)
    target = targets.postgres()
    started = datetime.now(UTC)
    report = import_legacy(source, target).report()
    found = by_kind(report)
    assert found["metadata_not_object"] == {ODD_GRANT, ODD_USAGE}
    assert found["grant_key_replaced"] == {KEYED_GRANT}
    assert UNBACKED_GIFT in found["unbacked_gift"]
    assert SYNC_ACTIVE_USER in found["sync_overdue"]

    async with services_on(target, tmp_path) as services:
        listed = await services.credits.transactions(ODD_USER, limit=50)
        entries = {entry.id: entry for entry in listed}
        assert entries[ODD_GRANT].metadata == {"legacy": ["a", 1, None]}
        assert entries[ODD_USAGE].metadata == {"legacy": "just a string"}
        keyed = entries[KEYED_GRANT]
        assert keyed.idempotency_key == reward_key("fb-odd")
        assert keyed.metadata is not None
        assert keyed.metadata["legacyIdempotencyKey"] == "old-grant-key"
        # The grant repeated after the switch is recognised by its reference.
        again = await services.credits.reward(ODD_USER, 500, "feedback", "fb-odd")
        assert again.already_granted
        assert (await services.credits.balance(ODD_USER)).balance == 545
        # A gift that never expired in the old database does not expire here.
        forever = await services.gifts.info("FVR234")
        assert forever.expires_at == datetime.max.replace(tzinfo=UTC)
        # Overdue since July: charged once, for the period running now, not five times.
        due = await services.sync.status(SYNC_ACTIVE_USER)
        assert due.next_charge_at is not None
        assert started - timedelta(days=31) < due.next_charge_at <= started


def test_the_old_database_named_as_target_is_refused(
    make_legacy_database: MakeDatabase,
) -> None:
    source = make_legacy_database()
    before = query(source, "SELECT count(*) FROM credits.transactions")
    import_legacy(source, source).error("foreign_tables")
    import_legacy(source, source, "--dry-run").error("foreign_tables")
    upgrade = cli("db", "upgrade", "--database-url", source)
    assert upgrade.code == 1
    assert upgrade.stderr.startswith("error: foreign_tables: ")
    assert "old service" in upgrade.stderr
    assert query(source, "SELECT count(*) FROM credits.transactions") == before


def test_a_postgresql_target_not_migrated_is_refused_with_the_command_to_run(
    legacy_url: str, targets: Targets
) -> None:
    target = targets.empty_postgres()
    line = import_legacy(legacy_url, target).error("schema_outdated")
    assert "run mana-credits db upgrade" in line


def test_history_marks_imported_entries_that_moved_nothing(
    imported: Imported, legacy_url: str
) -> None:
    ((user,),) = query(
        legacy_url,
        "SELECT user_id FROM credits.transactions WHERE id = %(id)s",
        {"id": FAILED_ENTRY},
    )
    shown = cli("credits", "history", user, "--database-url", imported.target.url)
    assert shown.code == 0, shown.stderr
    assert "(failed)" in shown.stdout
