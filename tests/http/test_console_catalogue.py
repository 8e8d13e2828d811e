"""The console's packages and gift look-up over HTTP on every store: each package change
through the catalogue's use cases, recorded once in the audit log with the operator and
reason; refused input changes nothing; a resent form changes once."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.settings import Settings
from mana_credits_core.gifts import GiftType
from mana_credits_core.ports import Principal
from mana_credits_core.purchases import Package
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .console_client import Client, csrf_of

KEY = re.compile(r'name="key" value="([^"]+)"')


async def form_on(client: Client, path: str, nth: int = 0) -> dict[str, str]:
    """The CSRF token and the `nth` form's idempotency key on `path`."""
    page = await client.get(path)
    assert page.status == 200
    keys = KEY.findall(await page.text())
    return {"csrf": await csrf_of(client, path), "key": keys[nth]}


async def everything(services: Services) -> list[Package]:
    return await services.purchases.packages(include_inactive=True)


ADD = {
    "name": "Mega",
    "description": "For heavy use",
    "credits": "13000",
    "price": "10000",
    "sort_order": "",
    "reason": "spring offer",
}


async def test_adding_a_package_sells_it_and_is_audited_once(
    operator: Client, console_services: Services
) -> None:
    data = {**await form_on(operator, "/console/packages"), **ADD}
    done = await operator.post("/console/packages", data=data, allow_redirects=False)
    assert done.status == 303, await done.text()
    # The same form again (a double click, a reload) adds nothing more.
    again = await operator.post("/console/packages", data=data, allow_redirects=False)
    assert (again.status, again.headers["Location"]) == (303, done.headers["Location"])

    [mega] = await everything(console_services)
    assert (mega.name, mega.credits, mega.price_euro_cents, mega.active) == (
        "Mega",
        13000,
        10000,
        True,
    )
    assert mega.description == "For heavy use"
    on_sale = await console_services.purchases.packages()
    assert [p.id for p in on_sale] == [mega.id]
    audit = (await console_services.console.audit()).entries
    assert [(a.operator, a.action, a.subject, a.reason) for a in audit] == [
        ("carol", "package-add", mega.id, "spring offer")
    ]
    assert audit[0].details["priceEuroCents"] == 10000
    page = await (await operator.get(done.headers["Location"])).text()
    assert "Package added." in page
    assert f'id="package-{mega.id}"' in page


async def test_editing_a_package_changes_it_once_and_audits_the_change(
    operator: Client, console_services: Services
) -> None:
    package = await console_services.purchases.add_package("Small", 500, 500)
    path = f"/console/packages/{package.id}"
    data = {
        **await form_on(operator, path),
        "name": "Small",
        "description": "",
        "credits": "550",
        "price": "450",
        "sort_order": str(package.sort_order),
        "reason": "price cut",
    }
    done, again = await asyncio.gather(
        operator.post(path, data=data, allow_redirects=False),
        operator.post(path, data=data, allow_redirects=False),
    )
    assert (done.status, again.status) == (303, 303)
    [small] = await everything(console_services)
    assert (small.credits, small.price_euro_cents) == (550, 450)
    audit = (await console_services.console.audit()).entries
    assert [(a.operator, a.action, a.subject, a.reason) for a in audit] == [
        ("carol", "package-edit", package.id, "price cut")
    ]
    assert audit[0].details == {"credits": "500 → 550", "priceEuroCents": "500 → 450"}
    # The same form (its key) with other values changes nothing and says so.
    other = await operator.post(path, data=data | {"price": "300"}, allow_redirects=False)
    assert other.status == 409
    assert "already sent with other values" in await other.text()
    [small] = await everything(console_services)
    assert small.price_euro_cents == 450
    assert len((await console_services.console.audit()).entries) == 1


async def test_deactivating_takes_it_off_sale_once_and_is_audited(
    operator: Client, console_services: Services
) -> None:
    package = await console_services.purchases.add_package("Small", 500, 500)
    path = f"/console/packages/{package.id}"
    data = {**await form_on(operator, path, nth=1), "reason": "end of offer"}
    done = await operator.post(f"{path}/deactivate", data=data, allow_redirects=False)
    assert (done.status, done.headers["Location"]) == (303, f"{path}?done=deactivated")
    again = await operator.post(f"{path}/deactivate", data=data, allow_redirects=False)
    assert (again.status, again.headers["Location"]) == (303, f"{path}?done=unchanged")

    assert await console_services.purchases.packages() == []
    [off] = await everything(console_services)
    assert off.active is False
    audit = (await console_services.console.audit()).entries
    assert [(a.operator, a.action, a.subject, a.reason) for a in audit] == [
        ("carol", "package-deactivate", package.id, "end of offer")
    ]
    listed = await (await operator.get("/console/packages")).text()
    assert "Small" in listed  # inactive packages are listed too

    back = {**await form_on(operator, path, nth=1), "reason": "offer is back"}
    done = await operator.post(f"{path}/activate", data=back, allow_redirects=False)
    assert done.headers["Location"] == f"{path}?done=activated"
    assert [p.id for p in await console_services.purchases.packages()] == [package.id]
    assert (await console_services.console.audit()).entries[0].action == "package-activate"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("credits", "", "credits must be a whole number"),
        ("credits", "0", "credits must be at least 1"),
        ("credits", "1.5", "credits must be a whole number"),
        ("price", "-100", "price must be a whole number"),
        ("price", "2000000", "priceEuroCents must be 1..1000000"),
        ("name", "   ", "name must not be empty"),
        ("name", "x" * 101, "name must be at most 100 characters"),
        ("reason", "", "reason must not be empty"),
        ("sort_order", "first", "sort order must be a whole number"),
        ("sort_order", "-12345678", "sortOrder must be from -1000000 to 1000000"),
        ("credits", "9" * 30, "credits is too large"),
    ],
)
async def test_refused_additions_reshow_the_form_and_change_nothing(
    operator: Client, console_services: Services, field: str, value: str, message: str
) -> None:
    data = {**await form_on(operator, "/console/packages"), **ADD, field: value}
    answer = await operator.post("/console/packages", data=data, allow_redirects=False)
    text = await answer.text()
    assert answer.status == 400
    assert message in text
    assert 'value="spring offer"' in text or field == "reason"  # the form keeps its values
    assert await everything(console_services) == []
    assert (await console_services.console.audit()).entries == []


async def test_refused_changes_change_nothing(operator: Client, console_services: Services) -> None:
    small = await console_services.purchases.add_package("Small", 500, 500, description="A")
    await console_services.purchases.add_package("Mega", 13000, 10000)
    path = f"/console/packages/{small.id}"
    same = {
        **await form_on(operator, path),
        "name": "Small",
        "description": "A",
        "credits": "500",
        "price": "500",
        "sort_order": str(small.sort_order),
        "reason": "why",
    }
    cases = [
        ({}, 400, "nothing to change"),
        ({"description": ""}, 400, "description cannot be removed"),
        ({"credits": "0", "price": "400"}, 400, "credits must be at least 1"),
        ({"price": "400", "reason": " "}, 400, "reason must not be empty"),
    ]
    for change, status, message in cases:
        answer = await operator.post(path, data={**same, **change}, allow_redirects=False)
        assert (answer.status, message in await answer.text()) == (status, True), change
    switch = await operator.post(f"{path}/deactivate", data={**same, "reason": ""})
    assert switch.status == 400
    # A name on sale already is refused unless asked for.
    taken = {**await form_on(operator, "/console/packages"), **ADD}
    answer = await operator.post("/console/packages", data=taken, allow_redirects=False)
    assert (answer.status, "Mega is on sale already" in await answer.text()) == (409, True)
    unknown = await operator.get("/console/packages/no-such-package")
    assert unknown.status == 404
    assert [(p.name, p.credits, p.active) for p in await everything(console_services)] == [
        ("Small", 500, True),
        ("Mega", 13000, True),
    ]
    assert (await console_services.console.audit()).entries == []
    second = await operator.post(
        "/console/packages", data={**taken, "same_name": "1"}, allow_redirects=False
    )
    assert second.status == 303
    assert len(await everything(console_services)) == 3


async def test_package_forms_without_csrf_are_refused(
    operator: Client, console_services: Services
) -> None:
    small = await console_services.purchases.add_package("Small", 500, 500)
    path = f"/console/packages/{small.id}"
    form = await form_on(operator, path)
    forged = {"key": form["key"], **ADD}
    for target in ("/console/packages", path, f"{path}/deactivate"):
        answer = await operator.post(target, data=forged, allow_redirects=False)
        assert answer.status == 403, target
        assert "did not come from the console" in await answer.text()
        other = await operator.post(target, data={**forged, "csrf": "x" * 43})
        assert other.status == 403
    [only] = await everything(console_services)
    assert (only.name, only.credits, only.active) == ("Small", 500, True)
    assert (await console_services.console.audit()).entries == []


async def test_a_gift_is_looked_up_by_its_code(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("dave", 500, "opening", "setup")
    gift = await console_services.gifts.create(
        Principal("dave", "dave@example.com", name="Dave"),
        120,
        type=GiftType.PERSONALIZED,
        target_email="erin@example.com",
        message="Happy birthday",
    )
    await console_services.gifts.redeem(Principal("erin", "erin@example.com"), gift.code)
    typed = f"{gift.code[:5].lower()}-{gift.code[5:].lower()}"
    answer = await operator.get("/console/gifts", params={"code": typed})
    page = await answer.text()
    assert answer.status == 200
    assert re.search(r'id="gift-status">depleted<', page)
    assert re.search(r'id="gift-credits">120<', page)
    assert 'href="/console/users/dave"' in page
    assert "erin@example.com" in page  # operators see whom a gift was for
    assert "Happy birthday" not in page  # but not the message between the two
    assert 'href="/console/users/erin"' in page
    assert "success" in page


async def test_unknown_and_malformed_codes_are_4xx(operator: Client) -> None:
    unknown = await operator.get("/console/gifts", params={"code": "ABCD-EFGH-JK"})
    assert unknown.status == 404
    assert "No gift has the code ABCDEFGHJK" in await unknown.text()
    for bad in ("<script>", "A" * 65, "abc;drop", "ÄÖÜ"):
        answer = await operator.get("/console/gifts", params={"code": bad})
        assert answer.status == 400, bad
        assert "letters and digits" in await answer.text()
    empty = await operator.get("/console/gifts")
    assert empty.status == 200


async def test_the_catalogue_pages_need_a_session(
    http_settings: Settings, console_services: Services
) -> None:
    app = create_app(http_settings, services=console_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for path in ("/console/packages", "/console/gifts?code=ABCD"):
            answer = await client.get(path, allow_redirects=False)
            assert (answer.status, answer.headers["Location"]) == (303, "/console/sign-in")
        posted = await client.post("/console/packages", data=ADD, allow_redirects=False)
        assert posted.status == 401
    assert await everything(console_services) == []
