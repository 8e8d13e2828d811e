"""Console pages over HTTP on every store: search, a user's page, granting credits
through `CreditsService.grant` (recorded once in the audit log), refused input."""

from __future__ import annotations

import logging
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.settings import Settings
from mana_credits_core.ledger import TransactionType
from mana_credits_core.services import Services
from mana_credits_http import create_app
from mana_credits_http.console.pages import USER_PAGE_ROWS

from .conftest import Jwks, bearer
from .console_client import Client, csrf_of
from .metrics_reading import moved, scrape

KEY = re.compile(r'name="key" value="([^"]+)"')


async def grant_form(client: Client, user_id: str) -> dict[str, str]:
    page = await client.get(f"/console/users/{user_id}")
    assert page.status == 200
    key = KEY.search(await page.text())
    assert key is not None
    return {"csrf": await csrf_of(client, f"/console/users/{user_id}"), "key": key.group(1)}


async def test_search_finds_users_by_id_prefix(
    operator: Client, console_services: Services
) -> None:
    for user_id in ("dave", "dana", "erin"):
        await console_services.credits.grant(user_id, 1, "opening", "test")
    page = await operator.get("/console/users", params={"q": "da"})
    text = await page.text()
    assert page.status == 200
    assert 'href="/console/users/dana"' in text
    assert 'href="/console/users/dave"' in text
    assert "erin" not in text
    none = await (await operator.get("/console/users", params={"q": "zz"})).text()
    assert "No user with a balance" in none


async def test_search_finds_users_by_the_e_mail_of_their_tokens(
    operator: Client, console_services: Services, jwks: Jwks
) -> None:
    """The address comes from a JWT request, is written once while it stays the same,
    again when it changes, and the search and the user page show it."""
    await console_services.credits.grant("u-41", 5, "opening", "test")
    await console_services.credits.grant("u-42", 5, "opening", "test")
    writes = count_email_writes(console_services)
    for _ in range(3):
        token = jwks.token("u-41", email=" Ann.Lee@Example.ORG ")
        answer = await operator.get("/api/v1/credits/balance", headers=bearer(token))
        assert answer.status == 200
    assert writes == ["ann.lee@example.org"]  # one write, not one per request
    page = await (await operator.get("/console/users", params={"q": "ANN.l"})).text()
    assert 'href="/console/users/u-41"' in page
    assert "ann.lee@example.org" in page
    assert "u-42" not in page
    for query in ("ann%", "ann_lee"):  # wildcards match only themselves
        none = await (await operator.get("/console/users", params={"q": query})).text()
        assert "No user with a balance" in none
    changed = jwks.token("u-41", email="ann@example.net")
    assert (await operator.get("/api/v1/credits/balance", headers=bearer(changed))).status == 200
    assert writes == ["ann.lee@example.org", "ann@example.net"]
    user = await (await operator.get("/console/users/u-41")).text()
    assert 'id="email"' in user
    assert "ann@example.net" in user
    by_id = await (await operator.get("/console/users", params={"q": "u-4"})).text()
    assert "u-41" in by_id
    assert "u-42" in by_id
    assert "ann@example.net" in by_id


def count_email_writes(services: Services) -> list[str]:
    """The addresses `UserEmails.note` asked the store to write, in order (a spy)."""
    writes: list[str] = []
    emails = services.emails
    note = emails.note

    async def spying(user_id: str, email: str | None) -> bool:
        asked = await note(user_id, email)
        if asked:
            written = (await services.users.records(user_id)).email
            assert written is not None
            writes.append(written)
        return asked

    emails.note = spying  # type: ignore[method-assign]
    return writes


async def test_granting_credits_moves_the_ledger_and_is_audited_once(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("dave", 5, "opening", "test")
    form = await grant_form(operator, "dave")
    data = {**form, "amount": "100", "reason": "support ticket 4711", "expires_in_days": "30"}
    done = await operator.post("/console/users/dave/grant", data=data, allow_redirects=False)
    assert (done.status, done.headers["Location"]) == (303, "/console/users/dave?granted=1")
    # The same form sent again (a double click, a reload) grants nothing more.
    again = await operator.post("/console/users/dave/grant", data=data, allow_redirects=False)
    assert again.status == 303

    assert (await console_services.credits.balance("dave")).balance == 105
    entry = (await console_services.credits.transactions("dave"))[0]
    assert (entry.type, entry.amount) == (TransactionType.GRANT, 100)
    assert entry.metadata == {"operator": "carol", "reason": "support ticket 4711"}
    lots = await console_services.lots.of_user("dave")
    assert any(lot.amount == 100 and lot.expires_at is not None for lot in lots)
    audit = (await console_services.console.audit()).entries
    assert [(a.operator, a.action, a.subject, a.reason) for a in audit] == [
        ("carol", "grant", "dave", "support ticket 4711")
    ]
    assert audit[0].details["entryId"] == entry.id

    page = await (await operator.get("/console/users/dave?granted=1")).text()
    assert '<b id="balance">105</b>' in page
    assert "support ticket 4711" in page
    log = await (await operator.get("/console/audit")).text()
    assert "support ticket 4711" in log
    assert "carol" in log


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_redirects_are_logged_counted_and_traced(
    operator: Client, console_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mana_credits.access")
    await console_services.credits.grant("dave", 5, "opening", "test")
    data = {**await grant_form(operator, "dave"), "amount": "1", "reason": "why"}
    before = await scrape(operator)
    done = await operator.post(
        "/console/users/dave/grant",
        data=data,
        headers={"X-Request-Id": "grant-1"},
        allow_redirects=False,
    )
    assert (done.status, done.headers["X-Request-Id"]) == (303, "grant-1")
    out = await operator.post("/console/sign-out", data=data, allow_redirects=False)
    assert out.status == 303
    assert out.headers["X-Request-Id"]
    counted = moved(before, await scrape(operator), "mana_credits_http_requests_total")
    grant = 'method="POST",route="/console/users/{user_id}/grant",status="303"'
    sign_out = 'method="POST",route="/console/sign-out",status="303"'
    assert counted[f"mana_credits_http_requests_total{{{grant}}}"] == 1
    assert counted[f"mana_credits_http_requests_total{{{sign_out}}}"] == 1
    logged = [getattr(r, "fields", {}) for r in caplog.records if r.name == "mana_credits.access"]
    assert {"requestId": "grant-1", "status": 303} in [
        {k: f[k] for k in ("requestId", "status")} for f in logged
    ]
    # Signed out: a page's redirect to the sign-in page is counted too.
    before = await scrape(operator)
    gone = await operator.get("/console/users/dave", allow_redirects=False)
    assert (gone.status, gone.headers["Location"]) == (303, "/console/sign-in")
    assert gone.headers["X-Request-Id"]
    counted = moved(before, await scrape(operator), "mana_credits_http_requests_total")
    page = 'method="GET",route="/console/users/{user_id}",status="303"'
    assert counted[f"mana_credits_http_requests_total{{{page}}}"] == 1


@pytest.mark.parametrize(
    ("amount", "reason", "days", "message"),
    [
        ("", "why", "", "amount must be a whole number"),
        ("ten", "why", "", "amount must be a whole number"),
        ("0", "why", "", "amount must be at least 1"),
        ("100000001", "why", "", "amount must be at most 100000000"),
        ("9" * 21, "why", "", "amount is too large"),
        ("100", "  ", "", "reason must not be empty"),
        ("100", "why", "0", "expiry must be 1 to 3650 days"),
        ("100", "why", "-3", "expires in days must be a whole number"),
    ],
)
async def test_refused_grants_reshow_the_form_and_change_nothing(
    operator: Client, console_services: Services, amount: str, reason: str, days: str, message: str
) -> None:
    await console_services.credits.grant("dave", 5, "opening", "test")
    data = {
        **await grant_form(operator, "dave"),
        "amount": amount,
        "reason": reason,
        "expires_in_days": days,
    }
    answer = await operator.post("/console/users/dave/grant", data=data, allow_redirects=False)
    text = await answer.text()
    assert answer.status == 400
    assert message in text
    assert f'name="amount" min="1" step="1" required value="{amount}"' in text
    assert (await console_services.credits.balance("dave")).balance == 5
    assert (await console_services.console.audit()).entries == []


async def test_unknown_users_and_bad_pages_are_4xx(operator: Client) -> None:
    unknown = await operator.get("/console/users/nobody")
    assert unknown.status == 404
    page = await unknown.text()  # a signed-in operator is led back, not to sign in again
    assert 'id="back"' in page
    assert "Sign in another way" not in page
    assert (await operator.get("/console/users/nobody?ledger=garbage")).status == 404
    assert (await operator.get("/console/audit?page=0")).status == 400
    assert (await operator.get("/console/audit?page=x")).status == 400
    assert (await operator.get("/console/users", params={"q": "a\x01"})).status == 400


async def test_text_is_escaped(operator: Client, console_services: Services) -> None:
    await console_services.credits.grant("<b>x</b>", 5, "<script>alert(1)</script>", "test")
    page = await (await operator.get("/console/users/%3Cb%3Ex%3C%2Fb%3E")).text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_pages_need_a_session(http_settings: Settings, console_services: Services) -> None:
    app = create_app(http_settings, services=console_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for path in ("/console", "/console/users", "/console/users/dave", "/console/audit"):
            answer = await client.get(path, allow_redirects=False)
            assert (answer.status, answer.headers["Location"]) == (303, "/console/sign-in")
        css = await client.get("/console/static/console.css")
        assert (css.status, css.content_type) == (200, "text/css")


async def test_the_overview_shows_the_figures_and_checks_reconcile_on_demand(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("erin", 40, "opening", "setup")
    await console_services.credits.use("erin", 15, "chat", "used")
    page = await (await operator.get("/console")).text()
    assert re.search(r'id="outstanding">25<', page)
    assert re.search(r'id="used">15<', page)
    assert re.search(r'id="clawed-back">0<', page)
    assert "Not checked by this server process yet" in page

    csrf = await csrf_of(operator, "/console")
    refused = await operator.post("/console/reconcile", data={}, allow_redirects=False)
    assert refused.status == 403  # no CSRF token: nothing run
    assert console_services.reconcile_watch.last is None
    checked = await operator.post("/console/reconcile", data={"csrf": csrf}, allow_redirects=False)
    assert checked.status == 303
    page = await (await operator.get(checked.headers["Location"])).text()
    assert "No drift" in page
    assert "in 1 balance," in page

    chart = await operator.get("/console/usage.svg")
    assert chart.status == 200
    assert "default-src 'none'" in chart.headers["Content-Security-Policy"]
    assert "chat" in await chart.text()


async def test_a_user_id_with_a_slash_or_percent_keeps_its_own_page(
    operator: Client, console_services: Services
) -> None:
    for user_id, path in (("del/user", "del%2Fuser"), ("pct%41", "pct%2541")):
        await console_services.credits.grant(user_id, 5, "opening", "test")
        found = await (await operator.get("/console/users", params={"q": user_id[:3]})).text()
        assert f'href="/console/users/{path}"' in found
        form = await grant_form(operator, path)
        data = {**form, "amount": "3", "reason": "why", "expires_in_days": ""}
        done = await operator.post(f"/console/users/{path}/grant", data=data, allow_redirects=False)
        assert (done.status, done.headers["Location"]) == (303, f"/console/users/{path}?granted=1")
        assert (await console_services.credits.balance(user_id)).balance == 8


@pytest.mark.parametrize("amount", ["\uff11\uff12", "\u0661\u0662", "+5", "1_000"])
async def test_only_ascii_digits_are_an_amount(
    operator: Client, console_services: Services, amount: str
) -> None:
    await console_services.credits.grant("dave", 5, "opening", "test")
    data = {**await grant_form(operator, "dave"), "amount": amount, "reason": "why"}
    data["expires_in_days"] = ""
    done = await operator.post("/console/users/dave/grant", data=data, allow_redirects=False)
    assert done.status == 400
    no_key = {**data, "amount": "5", "key": ""}  # a form without its key would grant twice
    done = await operator.post("/console/users/dave/grant", data=no_key, allow_redirects=False)
    assert done.status == 400
    assert (await console_services.credits.balance("dave")).balance == 5


async def test_the_prices_page_shows_usage_per_operation_and_the_read_only_list(
    operator: Client, console_services: Services
) -> None:
    await console_services.credits.grant("erin", 40, "opening", "setup")
    for _ in range(3):
        await console_services.credits.use_operation("erin", "ai_chat_ollama")
    await console_services.credits.use_operation("erin", "bulk_import", 25)
    await console_services.prices.set(
        "pdf_export", "1.5", operator="dave", reason="<b>new</b> contract"
    )
    await console_services.prices.retire("premium_theme", operator="dave")

    overview = await (await operator.get("/console")).text()
    assert 'href="/console/prices"' in overview
    answer = await operator.get("/console/prices")
    assert answer.status == 200
    page = await answer.text()
    usage = page[page.index('id="operation-usage"') : page.index("</table>")]
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td>(\w+)</td>.*?</tr>", usage, re.S)
    assert rows == [("bulk_import", "notes"), ("ai_chat_ollama", "chat")]  # dearest first
    cells = re.findall(r'<td class="num">([\d.]+)</td>', usage)
    assert cells == ["1", "25", "0.5", "3", "3", "0.3"]
    assert re.search(r'id="operation-usage-total">0.8<', usage)

    assert "mana-credits prices set OPERATION PRICE" in page  # changed with the CLI
    assert page.count("<form") == 1  # sign-out only: nothing is changed here
    bulk = page[page.index('id="price-bulk_import"') :]
    assert "per 10 item" in bulk[: bulk.index("</tr>")]
    theme = page[page.index('id="price-premium_theme"') :]
    assert "retired" in theme[: theme.index("</tr>")]
    changes = page[page.index('id="price-changes"') :]
    assert "&lt;b&gt;new&lt;/b&gt; contract" in changes  # escaped
    assert "1 → 1.5" in changes
    assert "3 → —" in changes

    user = await (await operator.get("/console/users/erin")).text()
    assert re.search(r'id="accrued">800<', user)
    assert re.search(r'id="balance">40<', user)


async def test_the_prices_page_without_usage(operator: Client) -> None:
    page = await (await operator.get("/console/prices")).text()
    assert "No priced usage in this period." in page
    assert "No changes since the list was set up." in page
    assert 'id="price-ai_chat_gpt4"' in page


async def test_the_user_page_shows_what_is_held_and_the_newest_lots_and_holds(
    operator: Client, console_services: Services
) -> None:
    s = console_services
    for _ in range(USER_PAGE_ROWS + 5):
        await s.credits.grant("hana", 2, "one lot each", "ops")
    for i in range(USER_PAGE_ROWS + 3):
        held = await s.reservations.reserve("hana", 1, f"job {i}")
        if i % 2:
            await s.reservations.refund(held.reservation.id)
    page = await (await operator.get("/console/users/hana")).text()
    pending = (USER_PAGE_ROWS + 3) // 2 + 1  # the even ones
    assert re.search(rf'id="held">{pending}<', page)
    assert re.search(rf'id="balance">{2 * (USER_PAGE_ROWS + 5) - pending}<', page)
    assert f"The {USER_PAGE_ROWS} newest of {USER_PAGE_ROWS + 5} lots" in page
    assert f"The {USER_PAGE_ROWS} newest of {USER_PAGE_ROWS + 3} reservations" in page
    holds = page[page.index("<h2>Reservations</h2>") :]
    assert holds.count("<tr><td>") == USER_PAGE_ROWS
    assert f"job {USER_PAGE_ROWS + 2}" in holds  # the newest shown
    assert ">job 0<" not in holds  # the oldest not
