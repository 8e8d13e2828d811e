"""The hand-written old database imported by `mana-credits db import-legacy`, read back
through the library, the HTTP API and the CLI, on PostgreSQL and on SQLite: balances,
every ledger entry, the adjustments and the report, against the old rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mana_credits_core.ledger import LedgerEntry, TransactionType
from mana_credits_core.legacy.rules import ADJUSTMENT_KEY, IMPORT_APP, adjustment_id
from mana_credits_http.models import iso

from ..http.conftest import Jwks, bearer, service
from .expected import (
    as_imported,
    corrections,
    fields,
    held_reservations,
    keyless_grants,
    old_entries,
    openings,
    overdue_gifts,
    usage_days,
)
from .fixture import (
    BROKEN_CHAIN_ENTRIES,
    DOUBLE_CREDITS,
    DRIFT_LESS_USER,
    DRIFT_MORE_USER,
    DRIFT_USERS,
    DUPLICATE_CHARGES,
    DUPLICATE_REDEMPTION,
    EXPIRED_ACTIVE_GIFT,
    MISSING_BALANCE_USER,
    NEGATIVE_USER,
    NO_EXPIRY_GIFT,
    NO_PACKAGE_PURCHASE_USER,
    PENDING_PURCHASE,
    REPLAY,
    ROWS,
    STUCK_RESERVATION,
    TOTALS_DRIFT_USER,
    old_balances,
    query,
)
from .importing import Imported, by_kind, cli, served, services_on, tables


async def every_entry(imported: Imported, home: Path) -> dict[str, LedgerEntry]:
    async with services_on(imported.target, home) as services:
        return {entry.id: entry async for entry in services.credits.export()}


async def test_every_user_has_the_old_balance_and_totals(
    imported: Imported, legacy_url: str, jwks: Jwks, tmp_path: Path
) -> None:
    expected = openings(legacy_url)
    assert expected[MISSING_BALANCE_USER].balance > 0  # rebuilt from the ledger
    assert expected[NEGATIVE_USER].debt > 0
    entries = {e["user_id"] for e in old_entries(legacy_url).values()}
    adjusted = corrections(legacy_url)
    per_user = dict(
        query(legacy_url, "SELECT user_id, count(*) FROM credits.transactions GROUP BY user_id")
    )
    async with services_on(imported.target, tmp_path, jwks=jwks) as services:
        assert (await services.reconcile.run()).users_checked == len(expected)
        async with served(services, tmp_path, jwks, imported.target) as client:
            for user, opening in sorted(expected.items()):
                response = await client.get(
                    f"/api/v1/internal/credits/balance/{user}", headers=service()
                )
                answer = await response.json()
                assert response.status == 200, answer
                assert (answer["balance"], answer["totalEarned"], answer["totalSpent"]) == (
                    opening.balance,
                    opening.total_earned,
                    opening.total_spent,
                ), user
                old = per_user.get(user, 0) + (user in adjusted)
                assert answer["transactionsCount"] == old, user
                assert (await services.credits.balance(user)).debt == opening.debt, user
            # The person's own view, with their token.
            response = await client.get(
                "/api/v1/credits/balance", headers=bearer(jwks.token(NEGATIVE_USER))
            )
            assert await response.json() == {"balance": 0} | {
                "totalEarned": expected[NEGATIVE_USER].total_earned,
                "totalSpent": expected[NEGATIVE_USER].total_spent,
                "accruedMilliCredits": 0,
            }
    assert entries <= set(expected)


async def test_every_old_entry_comes_across_field_for_field(
    imported: Imported, legacy_url: str, jwks: Jwks, tmp_path: Path
) -> None:
    old = old_entries(legacy_url)
    assert len(old) == ROWS["transactions"]
    assert keyless_grants(old), "the data set must hold grants without a key"
    here = await every_entry(imported, tmp_path)
    adjustments = {adjustment_id(user) for user in corrections(legacy_url)}
    assert set(here) == set(old) | adjustments
    for entry_id, row in old.items():
        assert fields(here[entry_id]) == as_imported(row), entry_id
    # The same history through the API, as the person sees it (newest first).
    async with (
        services_on(imported.target, tmp_path, jwks=jwks) as services,
        served(services, tmp_path, jwks, imported.target) as client,
    ):
        response = await client.get(
            "/api/v1/credits/transactions?limit=100", headers=bearer(jwks.token(REPLAY.user_id))
        )
        history = await response.json()
    mine = sorted(
        (e for e in old.values() if e["user_id"] == REPLAY.user_id),
        key=lambda e: (e["created_at"], e["id"]),
        reverse=True,
    )
    assert [(h["id"], h["amount"], h["createdAt"]) for h in history] == [
        (e["id"], e["amount"], iso(e["created_at"])) for e in mine
    ]
    assert {h["idempotencyKey"] for h in history} == {
        as_imported(e)["idempotency_key"] for e in mine
    }


async def test_one_adjustment_per_drifted_user_and_reconcile_passes(
    imported: Imported, legacy_url: str, tmp_path: Path
) -> None:
    expected = corrections(legacy_url)
    assert set(expected) == {*DRIFT_USERS, NEGATIVE_USER}
    here = await every_entry(imported, tmp_path)
    adjustments = [e for e in here.values() if e.type is TransactionType.ADJUSTMENT]
    assert sorted(e.user_id for e in adjustments) == sorted(expected)
    last_old = {
        user: max(
            e.created_at for e in here.values() if e.user_id == user and e.app_id != IMPORT_APP
        )
        for user in expected
    }
    for entry in adjustments:
        fix = expected[entry.user_id]
        assert entry.amount == fix.difference, entry
        assert (entry.metadata or {})["totalEarned"] == fix.total_earned, entry
        assert (entry.metadata or {})["totalSpent"] == fix.total_spent, entry
        assert (entry.app_id, entry.idempotency_key) == (IMPORT_APP, ADJUSTMENT_KEY)
        # The newest line of the user's history, after everything the old service did.
        assert (
            last_old[entry.user_id]
            < entry.created_at
            <= last_old[entry.user_id] + timedelta(seconds=1)
        )
    assert [(a["userId"], a["difference"]) for a in imported.report["adjustments"]] == sorted(
        (user, fix.difference) for user, fix in expected.items()
    )
    async with services_on(imported.target, tmp_path) as services:
        assert (await services.reconcile.run()).ok
    done = cli("reconcile", "--database-url", imported.target.url)
    assert done.code == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok"), done.stdout


def test_the_report_names_every_planted_anomaly(imported: Imported, legacy_url: str) -> None:
    report = imported.report
    without_package = {
        purchase
        for purchase, user in query(
            legacy_url, "SELECT id::text, user_id FROM credits.purchases WHERE package_id IS NULL"
        )
        if user == NO_PACKAGE_PURCHASE_USER
    }
    # What is overdue depends on when the import ran: read it from the old rows.
    stuck = held_reservations(legacy_url, imported.started - timedelta(seconds=900))
    overdue = overdue_gifts(legacy_url, imported.started)
    assert STUCK_RESERVATION in stuck
    assert {EXPIRED_ACTIVE_GIFT, NO_EXPIRY_GIFT} <= set(overdue)
    assert by_kind(report) == {
        "drift": {DRIFT_MORE_USER, DRIFT_LESS_USER},
        "totals_drift": {TOTALS_DRIFT_USER},
        "missing_balance": {MISSING_BALANCE_USER},
        "negative_balance": {NEGATIVE_USER},
        "double_credit": {double.purchase_id for double in DOUBLE_CREDITS},
        "duplicate_charge": set(DUPLICATE_CHARGES),
        "broken_chain": set(BROKEN_CHAIN_ENTRIES),
        "purchase_without_package": without_package,
        "pending_purchase": {PENDING_PURCHASE},
        "stuck_reservation": set(stuck),
        "expired_active_gift": set(overdue),
        "gift_without_expiry": {NO_EXPIRY_GIFT},
        "duplicate_redemption": {DUPLICATE_REDEMPTION[0]},
    }
    assert all(a["detail"] and a["action"] for a in report["anomalies"])
    double = next(a for a in report["anomalies"] if a["subject"] == DOUBLE_CREDITS[0].purchase_id)
    assert DOUBLE_CREDITS[0].user_id in double["detail"]
    assert f"{DOUBLE_CREDITS[0].credits} credits" in double["detail"]


async def test_the_report_counts_every_table_and_sums_the_balances(
    imported: Imported, legacy_url: str, tmp_path: Path
) -> None:
    report = imported.report
    users = openings(legacy_url)
    adjusted = len(corrections(legacy_url))
    written = {name: counts["written"] for name, counts in tables(report).items()}
    assert {name: counts["source"] for name, counts in tables(report).items()} == ROWS
    assert written == ROWS | {
        "balances": len(users),
        "transactions": ROWS["transactions"] + adjusted,
        "usage_stats": usage_days(legacy_url),
        "gift_redemptions": ROWS["gift_redemptions"] - len(DUPLICATE_REDEMPTION[1]) + 1,
    }
    assert all(counts["skipped"] == 0 for counts in tables(report).values())
    assert report["users"] == len(users)
    assert report["balanceBefore"] == sum(row[0] for row in old_balances(legacy_url).values())
    assert report["rebuilt"] == users[MISSING_BALANCE_USER].balance
    assert report["debtAfter"] == users[NEGATIVE_USER].debt
    # The negative user has an old row: raised to 0, which is the debt now owed.
    assert report["raised"] == users[NEGATIVE_USER].debt
    assert report["balanceAfter"] == report["balanceBefore"] + report["rebuilt"] + report["raised"]
    async with services_on(imported.target, tmp_path) as services:
        here = [(await services.credits.balance(user)).balance for user in users]
    assert report["balanceAfter"] == sum(here)
    assert report["dryRun"] is False
    assert report["layout"] == {"hasGrant": True, "hasReservations": True}
