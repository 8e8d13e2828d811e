"""The operator console's records on every store: sign-in links used once (racing
redemptions included) and only before expiry, the audit log newest first and paged,
one audit entry per grant, user ids by prefix, and the audit subject's erasure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mana_credits_adapters.clock import TickingClock
from mana_credits_core.console import AuditEntry, token_hash
from mana_credits_core.errors import InvalidInput, SignInRefused
from mana_credits_core.services import Services
from mana_credits_core.services.console import AUDIT_PAGE
from mana_credits_core.services.users import PSEUDONYM_PREFIX


async def test_a_link_is_redeemed_once(services: Services) -> None:
    link = await services.console.issue_link("  carol ")
    assert link.operator == "carol"
    assert link.token != token_hash(link.token)
    assert await services.console.redeem_link(link.token) == "carol"
    with pytest.raises(SignInRefused):
        await services.console.redeem_link(link.token)


async def test_racing_redemptions_sign_in_exactly_once(services: Services) -> None:
    link = await services.console.issue_link("carol")
    results = await asyncio.gather(
        *(services.console.redeem_link(link.token) for _ in range(8)), return_exceptions=True
    )
    assert results.count("carol") == 1
    assert all(isinstance(r, SignInRefused) for r in results if r != "carol")


async def test_expired_and_unknown_links_are_refused(
    services: Services, clock: TickingClock
) -> None:
    link = await services.console.issue_link("carol")
    clock.advance(timedelta(seconds=600))
    for token in (link.token, "unknown", ""):
        with pytest.raises(SignInRefused):
            await services.console.redeem_link(token)
    with pytest.raises(InvalidInput):
        await services.console.issue_link("  ")


async def test_grants_are_audited_once_newest_first_and_paged(services: Services) -> None:
    for n in range(AUDIT_PAGE + 2):
        await services.console.grant("carol", f"user-{n:03}", 10, f"reason {n}")
    again = await services.console.grant("carol", "user-000", 10, "again", idempotency_key="k")
    await services.console.grant("carol", "user-000", 10, "again", idempotency_key="k")
    assert (await services.credits.balance("user-000")).balance == 20

    first = await services.console.audit()
    assert len(first.entries) == AUDIT_PAGE
    assert first.has_more
    assert first.entries[0].reason == "again"
    assert first.entries[0].details["entryId"] == again.entry.id
    assert first.entries[1].subject == f"user-{AUDIT_PAGE + 1:03}"
    second = await services.console.audit(2)
    assert [e.reason for e in second.entries] == ["reason 2", "reason 1", "reason 0"]
    assert not second.has_more
    mine = await services.console.audit(subject="user-000")
    assert [e.reason for e in mine.entries] == ["again", "reason 0"]
    with pytest.raises(InvalidInput):
        await services.console.audit(0)


async def test_a_refused_grant_records_nothing(services: Services) -> None:
    for amount, reason, days in ((0, "why", None), (5, " ", None), (5, "why", 0)):
        with pytest.raises(InvalidInput):
            await services.console.grant("carol", "dave", amount, reason, expires_in_days=days)
    assert (await services.console.audit()).entries == []


async def test_users_are_found_by_id_prefix(services: Services) -> None:
    for user_id in ("dave", "dana", "da%", "da_x", "erin"):
        await services.credits.grant(user_id, 1, "opening", "test")
    assert await services.console.find_users("da") == ["da%", "da_x", "dana", "dave"]
    assert await services.console.find_users("da%") == ["da%"]  # no wildcard
    assert await services.console.find_users("da_") == ["da_x"]
    assert await services.console.find_users(" dav ") == ["dave"]
    assert await services.console.find_users("da", limit=2) == ["da%", "da_x"]
    assert await services.console.find_users("z") == []


async def test_an_account_deletion_pseudonymizes_the_audit_subject(services: Services) -> None:
    await services.console.grant("carol", "dave", 10, "support ticket")
    await services.users.delete("dave")
    entries = (await services.console.audit()).entries
    assert [(e.operator, e.reason) for e in entries] == [("carol", "support ticket")]
    assert entries[0].subject != "dave"
    assert entries[0].subject.startswith(PSEUDONYM_PREFIX)
    assert (await services.console.audit(subject="dave")).entries == []


async def test_an_audit_id_is_recorded_once(services: Services) -> None:
    entry = AuditEntry("edit:1", "carol", "package-edit", "p1", "why", {}, TickingClock().now())
    assert await services.console.record(entry) is True
    assert await services.console.record(entry) is False  # the store says it was taken
    assert len((await services.console.audit()).entries) == 1
