"""The operator console's records on every store: sign-in links used once (racing
redemptions included) and only before expiry, the audit log newest first and paged,
one audit entry per grant, user ids by prefix, and the audit subject's erasure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mana_credits_adapters.clock import TickingClock
from mana_credits_core.console import DELETION_AUDIT, AuditEntry, token_hash
from mana_credits_core.errors import InvalidInput, SignInRefused, UserNotFound
from mana_credits_core.ports import Store
from mana_credits_core.services import Services
from mana_credits_core.services.console import AUDIT_PAGE
from mana_credits_core.services.console_actions import ConsoleActions
from mana_credits_core.services.emails import NO_BALANCE_RECHECK, RECHECK
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

    async def ids(query: str, limit: int = 50) -> list[str]:
        return [m.user_id for m in await services.console.find_users(query, limit)]

    assert await ids("da") == ["da%", "da_x", "dana", "dave"]
    assert await ids("da%") == ["da%"]  # no wildcard
    assert await ids("da_") == ["da_x"]
    assert await ids(" dav ") == ["dave"]
    assert await ids("da", limit=2) == ["da%", "da_x"]
    assert await ids("z") == []


async def test_users_are_found_by_e_mail_prefix_in_any_case(services: Services) -> None:
    addresses = {
        "u-1": "Ann.Lee@Example.org",
        "u-2": "annie@example.org",
        "u-3": "a%b_c@example.org",
        "u-4": "axbyc@example.org",
        "u-5": None,
    }
    for user_id, email in addresses.items():
        await services.credits.grant(user_id, 1, "opening", "test")
        await services.emails.note(user_id, email)
    found = await services.console.find_users("ANN")
    assert [(m.user_id, m.email) for m in found] == [
        ("u-1", "ann.lee@example.org"),
        ("u-2", "annie@example.org"),
    ]

    async def ids(query: str) -> list[str]:
        return [m.user_id for m in await services.console.find_users(query)]

    assert await ids("ann.lee@example.org") == ["u-1"]
    assert await ids("annie@") == ["u-2"]
    assert await ids("a%b") == ["u-3"]  # '%' and '_' match only themselves
    assert await ids("a_b") == []
    assert await ids("a%") == ["u-3"]
    assert await ids("u-") == ["u-1", "u-2", "u-3", "u-4", "u-5"]  # ids as before
    assert await ids("ann lee") == []  # a blank inside: no address begins so
    assert (await services.console.find_users("u-5"))[0].email is None


async def test_the_address_is_written_only_when_new_or_changed(
    services: Services, store: Store, clock: TickingClock
) -> None:
    await services.credits.grant("ann", 1, "opening", "test")
    assert await services.emails.note("ann", " Ann@Example.org ")
    for _ in range(5):  # the memo answers: no statement
        assert not await services.emails.note("ann", "ann@example.org")
    assert (await services.users.records("ann")).email == "ann@example.org"
    assert await services.emails.note("ann", "ann.lee@example.org")  # changed
    assert (await services.users.records("ann")).email == "ann.lee@example.org"
    assert not await services.emails.note("ann", "not an address")
    assert not await services.emails.note("ann", None)
    # The store's write is conditional: the same address again changes no row.
    async with store.unit_of_work() as uow:
        assert await uow.users.record_email("ann", "ann.lee@example.org") is False
        assert await uow.users.record_email("ann", "ann@example.org") is True
        assert await uow.users.record_email("nobody", "ann@example.org") is None
        await uow.rollback()
    # After the recheck interval the memo asks again (another process may have
    # written since), and the write changes nothing.
    clock.advance(RECHECK + timedelta(seconds=1))
    assert await services.emails.note("ann", "ann.lee@example.org")
    assert (await services.users.records("ann")).email == "ann.lee@example.org"


async def test_a_user_without_a_balance_gets_the_address_with_one(
    services: Services, clock: TickingClock
) -> None:
    assert await services.emails.note("bea", "bea@example.org")  # no balance: no row
    assert not await services.emails.note("bea", "bea@example.org")  # not asked again
    assert (await services.users.records("bea")).email is None
    await services.credits.grant("bea", 1, "opening", "test")
    clock.advance(NO_BALANCE_RECHECK + timedelta(seconds=1))
    assert await services.emails.note("bea", "bea@example.org")
    assert (await services.users.records("bea")).email == "bea@example.org"
    assert [m.user_id for m in await services.console.find_users("bea@")] == ["bea"]


async def test_a_deletion_clears_the_address_and_the_memo(services: Services) -> None:
    await services.credits.grant("cid", 1, "opening", "test")
    await services.emails.note("cid", "cid@example.org")
    await services.users.delete("cid")
    assert await services.console.find_users("cid") == []
    # The same id back with a new balance: its next token records the address again.
    await services.credits.grant("cid", 1, "opening", "test")
    assert await services.emails.note("cid", "cid@example.org")
    assert (await services.users.records("cid")).email == "cid@example.org"


async def test_an_account_deletion_pseudonymizes_the_audit_subject(services: Services) -> None:
    await services.console.grant("carol", "dave", 10, "support ticket")
    await services.users.delete("dave")
    entries = (await services.console.audit()).entries
    assert [(e.operator, e.reason) for e in entries] == [("carol", "support ticket")]
    assert entries[0].subject != "dave"
    assert entries[0].subject.startswith(PSEUDONYM_PREFIX)
    assert (await services.console.audit(subject="dave")).entries == []


async def test_a_deletion_keeps_its_own_record_and_a_second_finds_nothing(
    services: Services,
) -> None:
    await services.console.grant("carol", "dave", 10, "support ticket")
    actions = ConsoleActions(services)
    await actions.delete_user("carol", "dave", "dave", "erasure request 12", "form-1")
    # The auth service's own call (or `users delete`) after the console's deletion.
    assert (await services.users.delete("dave")).deleted_count == 0
    with pytest.raises(UserNotFound):  # another form: no second deletion, no record
        await actions.delete_user("carol", "dave", "dave", "again", "form-2")
    entries = (await services.console.audit()).entries
    assert [(e.action, e.reason) for e in entries] == [
        (DELETION_AUDIT, "erasure request 12"),
        ("grant", "support ticket"),
    ]
    assert entries[0].subject == "dave"  # who deleted whom, and why
    assert entries[1].subject.startswith(PSEUDONYM_PREFIX)
    assert [e.action for e in (await services.console.audit(subject="dave")).entries] == [
        DELETION_AUDIT
    ]


async def test_an_audit_id_is_recorded_once(services: Services) -> None:
    entry = AuditEntry("edit:1", "carol", "package-edit", "p1", "why", {}, TickingClock().now())
    assert await services.console.record(entry) is True
    assert await services.console.record(entry) is False  # the store says it was taken
    assert len((await services.console.audit()).entries) == 1
