"""The user page's actions over HTTP on every store: refund, Cloud Sync gift and
revoke, gift cancel, user deletion. Each is done once (a resent form changes nothing
more) with one audit entry, needs the CSRF token, and a refusal changes nothing."""

from __future__ import annotations

import re

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.payments.dev import DevGateway, DevPayments, dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import Principal
from mana_credits_core.errors import UserNotFound
from mana_credits_core.ledger import TransactionType
from mana_credits_core.ports import Store
from mana_credits_core.purchases import Purchase
from mana_credits_core.services import Services

from .conftest import service
from .console_client import CSRF, Client

FORM = re.compile(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', re.S)
KEY = re.compile(r'name="key" value="([^"]+)"')


@pytest.fixture
def payments() -> DevPayments:
    return DevPayments()


@pytest.fixture
def console_services(store: Store, http_settings: Settings, payments: DevPayments) -> Services:
    gateway = DevGateway("http://127.0.0.1:3061", payments=payments)
    return build_services(store, http_settings, clock=TickingClock(), payments=gateway)


async def form(client: Client, user_id: str, action: str) -> dict[str, str]:
    """The CSRF token and key of the form posting to `action` on the user's page."""
    page = await client.get(f"/console/users/{user_id}")
    assert page.status == 200
    text = await page.text()
    forms = {found.group(1): found.group(2) for found in FORM.finditer(text)}
    assert action in forms, f"no form for {action}"
    csrf, key = CSRF.search(forms[action]), KEY.search(forms[action])
    assert csrf is not None
    assert key is not None
    return {"csrf": csrf.group(1), "key": key.group(1)}


async def post(client: Client, action: str, data: dict[str, str]) -> tuple[int, str]:
    answer = await client.post(action, data=data, allow_redirects=False)
    return answer.status, answer.headers.get("Location") or await answer.text()


async def audited(services: Services) -> list[tuple[str, str, str, str]]:
    entries = (await services.console.audit()).entries
    return [(a.operator, a.action, a.subject, a.reason) for a in entries]


async def bought(services: Services, payments: DevPayments, user: str) -> Purchase:
    package = await services.purchases.add_package("Plus", 1000, 1100)
    purchase = (await services.purchases.start(user, package.id)).purchase
    await services.purchases.handle(dev_payment(purchase, payments))
    return await services.purchases.get(purchase.id)


async def test_refunding_a_purchase_claws_back_once_and_is_audited_once(
    operator: Client, console_services: Services, payments: DevPayments
) -> None:
    purchase = await bought(console_services, payments, "dave")
    assert (await console_services.credits.balance("dave")).balance == 1000
    action = f"/console/users/dave/purchases/{purchase.id}/refund"
    data = {**await form(operator, "dave", action), "reason": "charged twice, ticket 4711"}

    no_csrf = {k: v for k, v in data.items() if k != "csrf"}
    assert (await post(operator, action, no_csrf))[0] == 403
    assert (await console_services.purchases.get(purchase.id)).clawed_back == 0

    assert (await post(operator, action, {**data, "reason": " "}))[0] == 400
    assert (await console_services.purchases.get(purchase.id)).clawed_back == 0

    done = (303, "/console/users/dave?done=refund")
    assert await post(operator, action, data) == done
    assert await post(operator, action, data) == done  # the same form again
    assert (await console_services.purchases.get(purchase.id)).clawed_back == 1000
    assert (await console_services.credits.balance("dave")).balance == 0
    moves = await console_services.credits.transactions("dave")
    clawbacks = [e for e in moves if e.type == TransactionType.CLAWBACK]
    assert len(clawbacks) == 1
    assert clawbacks[0].metadata is not None
    assert clawbacks[0].metadata["operator"] == "carol"
    assert await audited(console_services) == [
        ("carol", "refund", "dave", "charged twice, ticket 4711")
    ]
    page = await (await operator.get("/console/users/dave?done=refund")).text()
    assert "Purchase refunded" in page
    assert action not in page  # nothing left to refund: no form

    # Another form (an older tab) is refused by the use case: nothing to refund.
    status, text = await post(operator, action, {**data, "key": "another-form"})
    assert status == 409
    assert "already refunded" in text
    assert len(await audited(console_services)) == 1


async def test_a_purchase_of_another_user_is_not_refunded_from_this_page(
    operator: Client, console_services: Services, payments: DevPayments
) -> None:
    purchase = await bought(console_services, payments, "erin")
    await console_services.credits.grant("dave", 5, "opening", "test")
    data = {**await form(operator, "dave", "/console/users/dave/sync/gift"), "reason": "x"}
    status, _ = await post(operator, f"/console/users/dave/purchases/{purchase.id}/refund", data)
    assert status == 404
    assert (await console_services.purchases.get(purchase.id)).clawed_back == 0
    assert await audited(console_services) == []


async def test_gifting_and_revoking_cloud_sync_once_each(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("dave", 5, "opening", "test")
    gift = "/console/users/dave/sync/gift"
    data = {**await form(operator, "dave", gift), "reason": "partner programme"}
    assert (await post(operator, gift, {"key": data["key"], "reason": "x"}))[0] == 403
    assert await console_services.sync.find("dave") is None

    done = (303, "/console/users/dave?done=sync-gift")
    assert await post(operator, gift, data) == done
    assert await post(operator, gift, data) == done
    found = await console_services.sync.find("dave")
    assert found is not None
    assert found.gifted
    status, text = await post(operator, gift, {**data, "key": "another-form"})
    assert (status, "already gifted" in text) == (409, True)

    revoke = "/console/users/dave/sync/revoke"
    data = {**await form(operator, "dave", revoke), "reason": "programme ended"}
    done = (303, "/console/users/dave?done=sync-revoke")
    assert await post(operator, revoke, data) == done
    assert await post(operator, revoke, data) == done
    found = await console_services.sync.find("dave")
    assert found is not None
    assert (found.gifted, found.active) == (False, False)
    status, text = await post(operator, revoke, {**data, "key": "another-form"})
    assert (status, "not gifted" in text) == (400, True)

    assert await audited(console_services) == [
        ("carol", "sync-revoke", "dave", "programme ended"),
        ("carol", "sync-gift", "dave", "partner programme"),
    ]


async def test_cancelling_a_gift_code_gives_its_credits_back_once(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("dave", 100, "opening", "test")
    gift_id = (await console_services.gifts.create(Principal("dave"), 60)).id
    assert (await console_services.credits.balance("dave")).balance == 40
    action = f"/console/users/dave/gifts/{gift_id}/cancel"
    data = {**await form(operator, "dave", action), "reason": "sent to the wrong person"}
    assert (await post(operator, action, {**data, "csrf": "forged"}))[0] == 403
    assert (await console_services.credits.balance("dave")).balance == 40

    done = (303, "/console/users/dave?done=gift-cancel")
    assert await post(operator, action, data) == done
    assert await post(operator, action, data) == done
    assert (await console_services.credits.balance("dave")).balance == 100
    status, text = await post(operator, action, {**data, "key": "another-form"})
    assert (status, "only active gifts can be cancelled" in text) == (400, True)
    assert (await console_services.credits.balance("dave")).balance == 100
    assert await audited(console_services) == [
        ("carol", "gift-cancel", "dave", "sent to the wrong person")
    ]


async def test_deleting_a_user_needs_their_id_typed(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("dave", 70, "opening", "test")
    action = "/console/users/dave/delete"
    data = {**await form(operator, "dave", action), "reason": "erasure request 12"}

    for wrong in ("dav", "dave ", " dave", "dave\n"):  # the id exactly, nothing around it
        status, text = await post(operator, action, {**data, "confirm": wrong})
        assert status == 400, wrong
    assert "type the user&#39;s id exactly" in text
    assert (
        'id="delete-reason" name="reason" maxlength="200" required value="erasure request 12"'
        in text
    )
    assert (await post(operator, action, {**data, "csrf": "", "confirm": "dave"}))[0] == 403
    assert (await console_services.credits.balance("dave")).balance == 70
    assert await audited(console_services) == []

    done = (303, "/console/audit?subject=dave&deleted=1")
    assert await post(operator, action, {**data, "confirm": "dave"}) == done
    assert await post(operator, action, {**data, "confirm": "dave"}) == done
    assert await audited(console_services) == [
        ("carol", "user-delete", "dave", "erasure request 12")
    ]
    entry = (await console_services.console.audit()).entries[0]
    assert entry.details["forfeited"] == 70
    assert (await operator.get("/console/users/dave")).status == 404
    log = await (await operator.get("/console/audit?subject=dave&deleted=1")).text()
    assert "User deleted." in log


async def test_a_user_deleted_before_is_not_deleted_again(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("dave", 70, "opening", "test")
    action = "/console/users/dave/delete"
    first = {**await form(operator, "dave", action), "reason": "erasure request 12"}
    later = {**first, "key": "another-tab.user-delete", "reason": "erasure request 13"}
    done = (303, "/console/audit?subject=dave&deleted=1")
    assert await post(operator, action, {**first, "confirm": "dave"}) == done

    # The auth service's call, then a form left open in another tab.
    api = await operator.delete("/api/v1/internal/credits/balance/dave", headers=service())
    assert (api.status, await api.json()) == (200, {"success": True, "deletedCount": 0})
    status, text = await post(operator, action, {**later, "confirm": "dave"})
    assert (status, "No user with this id." in text) == (404, True)
    assert await post(operator, action, {**first, "confirm": "dave"}) == done  # a resend
    assert await audited(console_services) == [
        ("carol", "user-delete", "dave", "erasure request 12")
    ]
    log = await (await operator.get("/console/audit?subject=dave")).text()
    assert "erasure request 12" in log


async def test_actions_on_a_user_the_ledger_does_not_know_are_404_and_change_nothing(
    operator: Client, console_services: Services
) -> None:
    # A form left open since the account was deleted, or one made by hand.
    await console_services.credits.grant("dave", 5, "opening", "test")
    data = {**await form(operator, "dave", "/console/users/dave/sync/gift"), "reason": "x"}
    status, _ = await post(operator, "/console/users/ghost/sync/gift", data)
    assert status == 404
    grant = {**data, "amount": "7", "reason": "x", "expires_in_days": ""}
    status, _ = await post(operator, "/console/users/ghost/grant", grant)
    assert status == 404
    with pytest.raises(UserNotFound):
        await console_services.credits.existing_balance("ghost")
    assert await console_services.sync.find("ghost") is None
    assert await audited(console_services) == []


async def test_no_form_that_posts_is_refilled_by_the_browser(
    operator: Client, console_services: Services, payments: DevPayments
) -> None:
    # After Back the browser would put the values sent into a page with a new form
    # key: sending it again would do the change twice.
    await bought(console_services, payments, "dave")
    await console_services.gifts.create(Principal("dave"), 60)
    package = (await console_services.catalogue.packages())[0]
    posting = re.compile(r'<form method="post"[^>]*>')
    forms: list[str] = []
    for path in (
        "/console",
        "/console/users/dave",
        "/console/packages",
        f"/console/packages/{package.id}",
        "/console/sign-in",
    ):
        page = await operator.get(path)
        assert page.status == 200, path
        forms += posting.findall(await page.text())
    actions = {re.sub(r'.*action="([^"]+)".*', r"\1", f).split("/")[-1] for f in forms}
    assert {"grant", "refund", "cancel", "gift", "delete", "packages", "deactivate"} <= actions
    assert [f for f in forms if 'autocomplete="off"' not in f] == []
