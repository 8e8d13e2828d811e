"""The console in a real browser (Debian's chromium, headless): sign in with a link,
find a user, grant credits, refund a purchase, see the ledger, balance and audit log
change; refusals of a used link, a non-admin token and a form without its CSRF token.

Screenshots of each page go to `$MANA_CREDITS_ARTIFACTS` (else the test's temporary
folder); docs/img/console-*.png are copies of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import BrowserContext, Page, Route, ViewportSize, async_playwright

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.payments.dev import dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import Principal
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .conftest import Jwks
from .console_client import Client
from .test_api_docs import FLAGS, chromium

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
OVERFLOWS = "document.documentElement.scrollWidth > document.documentElement.clientWidth"


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MANA_CREDITS_ARTIFACTS") or tmp_path) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def console_services(http_settings: Settings) -> Services:
    """The pages do not depend on the store (the HTTP tests run on all three)."""
    return build_services(MemoryStore(), http_settings, clock=TickingClock())


@pytest.fixture
async def site(console_services: Services, http_settings: Settings) -> AsyncIterator[Client]:
    app = create_app(http_settings, services=console_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    executable = chromium()

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            await route.abort()

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True, args=FLAGS
        )
        await context.route("**/*", only_loopback)
        try:
            yield context
        finally:
            await context.close()


async def fresh_page(browser: BrowserContext) -> Page:
    """A page without the console's cookie (as another person's browser)."""
    await browser.clear_cookies()
    return await browser.new_page()


async def test_operator_grants_credits_in_the_browser(
    site: Client, browser: BrowserContext, console_services: Services, artifacts: Path
) -> None:
    await console_services.credits.grant("dave", 25, "opening balance", "setup")
    for app, amount in (("chat", 7), ("image", 10), ("chat", 3)):  # two apps: two series
        await console_services.credits.use("dave", amount, app, "used")
    for _ in range(2):  # 0.1 credits each: accrued, no whole credit charged yet
        await console_services.credits.use_operation("dave", "ai_chat_ollama")
    link = await console_services.console.issue_link("carol")
    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    await page.goto(str(site.make_url(f"/console/link/{link.token}")))
    await page.screenshot(path=artifacts / "console-link.png")
    await page.click("#continue")
    await page.wait_for_url("**/console")
    assert await page.text_content("#operator") == "carol"
    assert await page.is_visible("#overview-figures")
    assert await page.text_content("#outstanding") == "5"
    assert await page.text_content("#used") == "20"
    assert await page.evaluate("document.querySelector('#usage-chart').naturalWidth") > 0
    chart = await page.request.get(str(site.make_url("/console/usage.svg")))
    assert chart.headers["content-type"].startswith("image/svg+xml")
    svg = await chart.text()
    assert sorted(set(re.findall(r'class="series (serie-\d+)', svg))) == ["serie-0", "serie-1"]
    await page.screenshot(path=artifacts / "console-overview.png", full_page=True)
    await page.set_viewport_size(PHONE)
    assert await page.evaluate(OVERFLOWS) is False  # the chart shrinks to the page
    await page.set_viewport_size(DESKTOP)

    await page.click("#prices-link")
    await page.wait_for_url("**/console/prices")
    usage = await page.inner_text("#operation-usage tbody tr:first-child")
    assert usage.split("\t") == ["ai_chat_ollama", "chat", "Chat (local model)", "2", "2", "0.2"]
    assert "prices set" in (await page.text_content("#prices-read-only") or "")
    assert await page.locator("#prices tbody tr").count() > 1
    await page.screenshot(path=artifacts / "console-prices.png", full_page=True)
    await page.set_viewport_size(PHONE)
    assert await page.evaluate(OVERFLOWS) is False  # wide tables scroll inside their box
    await page.set_viewport_size(DESKTOP)

    await page.click("text=Users")
    await page.fill("#q", "da")
    await page.press("#q", "Enter")  # the keyboard is enough
    await page.wait_for_selector("#results")
    await page.screenshot(path=artifacts / "console-users.png", full_page=True)
    await page.click("#results a:text-is('dave')")
    assert await page.text_content("#balance") == "5"
    assert await page.text_content("#accrued") == "200"

    await page.fill("#amount", "100")
    await page.fill("#reason", "support ticket 4711")
    await page.click("#grant button[type=submit]")
    await page.wait_for_selector("#notice")
    assert await page.text_content("#balance") == "105"
    first_row = await page.inner_text("#ledger tbody tr:first-child")
    assert "grant" in first_row
    assert "100" in first_row
    assert "support ticket 4711" in first_row
    await page.screenshot(path=artifacts / "console-user.png", full_page=True)

    await page.set_viewport_size(PHONE)
    assert await page.evaluate(OVERFLOWS) is False  # wide tables scroll inside their box
    await page.screenshot(path=artifacts / "console-user-phone.png")
    await page.set_viewport_size(DESKTOP)

    await page.click("text=Audit log")
    row = await page.inner_text("table.audit tbody tr:first-child")
    assert "carol" in row
    assert "grant" in row
    assert "dave" in row
    assert "support ticket 4711" in row
    await page.screenshot(path=artifacts / "console-audit.png", full_page=True)
    assert (await console_services.credits.balance("dave")).balance == 105
    assert problems == []

    # The link is used up: another browser opening it is refused.
    other = await fresh_page(browser)
    await other.goto(str(site.make_url(f"/console/link/{link.token}")))
    async with other.expect_response(lambda r: r.request.method == "POST") as posted:
        await other.click("#continue")
    assert (await posted.value).status == 403
    assert "unknown, used or expired" in (await other.text_content("#refused") or "")
    await other.screenshot(path=artifacts / "console-link-refused.png")


async def test_a_non_admin_token_is_refused_in_the_browser(
    site: Client, browser: BrowserContext, jwks: Jwks, artifacts: Path
) -> None:
    page = await fresh_page(browser)
    await page.goto(str(site.make_url("/console")))
    assert page.url.endswith("/console/sign-in")
    await page.screenshot(path=artifacts / "console-sign-in.png", full_page=True)
    await page.fill("#token", jwks.token("mallory"))
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click("button[type=submit]")
    assert (await posted.value).status == 403
    assert "not an admin" in (await page.text_content("#refused") or "")
    await page.goto(str(site.make_url("/console")))
    assert page.url.endswith("/console/sign-in")  # still signed out

    await page.fill("#token", jwks.token("root", role="admin", email="ops@example.com"))
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console")
    assert await page.text_content("#operator") == "ops@example.com"


async def test_a_form_without_its_csrf_token_is_refused_in_the_browser(
    site: Client, browser: BrowserContext, console_services: Services, artifacts: Path
) -> None:
    await console_services.credits.grant("dave", 25, "opening balance", "setup")
    for app, amount in (("chat", 7), ("image", 10), ("chat", 3)):  # two apps: two series
        await console_services.credits.use("dave", amount, app, "used")
    link = await console_services.console.issue_link("carol")
    page = await fresh_page(browser)
    await page.goto(str(site.make_url(f"/console/link/{link.token}")))
    await page.click("#continue")
    await page.wait_for_url("**/console")  # signed in before leaving the page
    await page.goto(str(site.make_url("/console/users/dave")))
    await page.evaluate("document.querySelector('#grant input[name=csrf]').remove()")
    await page.fill("#amount", "100")
    await page.fill("#reason", "forged")
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click("#grant button[type=submit]")
    assert (await posted.value).status == 403
    assert "did not come from the console" in (await page.text_content("#refused") or "")
    await page.screenshot(path=artifacts / "console-csrf-refused.png")
    assert (await console_services.credits.balance("dave")).balance == 5
    assert (await console_services.console.audit()).entries == []


async def test_operator_refunds_a_purchase_in_the_browser(
    site: Client, browser: BrowserContext, console_services: Services, artifacts: Path
) -> None:
    package = await console_services.purchases.add_package("Plus", 1000, 1100)
    purchase = (await console_services.purchases.start("dave", package.id)).purchase
    await console_services.purchases.handle(dev_payment(purchase))
    await console_services.gifts.create(Principal("dave"), 200)
    link = await console_services.console.issue_link("carol")
    page = await fresh_page(browser)
    await page.goto(str(site.make_url(f"/console/link/{link.token}")))
    await page.click("#continue")
    await page.wait_for_url("**/console")  # signed in before leaving the page
    await page.goto(str(site.make_url("/console/users/dave")))
    assert await page.text_content("#balance") == "800"

    await page.fill(f"#refund-reason-{purchase.id}", "charged twice, ticket 4711")
    await page.click("button:text('Refund 1100 euro cents')")
    await page.wait_for_selector("#notice")
    assert "Purchase refunded" in (await page.text_content("#notice") or "")
    assert await page.text_content("#balance") == "0"
    assert await page.text_content("#debt") == "200"  # the gift held 200 of the credits
    assert await page.locator("button:text('Refund 1100 euro cents')").count() == 0
    row = await page.inner_text("table.audit tbody tr:first-child")
    assert "refund" in row
    assert "charged twice, ticket 4711" in row
    await page.screenshot(path=artifacts / "console-user-actions.png", full_page=True)
    assert (await console_services.purchases.get(purchase.id)).clawed_back == 1000


async def carol_signed_in(site: Client, browser: BrowserContext, services: Services) -> Page:
    """A page signed in as the operator carol through a sign-in link; dave holds 5."""
    await services.credits.grant("dave", 5, "opening balance", "setup")
    link = await services.console.issue_link("carol")
    page = await fresh_page(browser)
    await page.goto(str(site.make_url(f"/console/link/{link.token}")))
    await page.click("#continue")
    await page.wait_for_url("**/console")
    return page


async def test_a_link_from_another_site_keeps_the_session(
    site: Client, browser: BrowserContext, console_services: Services
) -> None:
    page = await carol_signed_in(site, browser, console_services)

    # A support ticket on another site links to the user's page.
    target = str(site.make_url("/console/users/dave"))
    ticket = await browser.new_page()

    async def ticket_site(route: Route) -> None:
        await route.fulfill(content_type="text/html", body=f'<a id="dave" href="{target}">x</a>')

    await ticket.route("http://tickets.test/**", ticket_site)
    await ticket.goto("http://tickets.test/4711")
    async with ticket.expect_navigation():
        await ticket.click("#dave")
    assert ticket.url == target  # not sent to sign in
    assert await ticket.text_content("#balance") == "5"
    await page.goto(str(site.make_url("/console")))
    assert await page.text_content("#operator") == "carol"  # still signed in


async def test_back_after_a_grant_shows_an_empty_form(
    site: Client, browser: BrowserContext, console_services: Services
) -> None:
    page = await carol_signed_in(site, browser, console_services)
    await page.goto(str(site.make_url("/console/users/dave")))
    await page.fill("#amount", "12")
    await page.fill("#reason", "back button")
    await page.click("#grant button[type=submit]")
    await page.wait_for_selector("#notice")
    assert await page.text_content("#balance") == "17"

    # Back shows the page again with a new form key: the browser must not put the
    # values sent back into it, or pressing Grant again would grant twice.
    await page.go_back()
    await page.wait_for_load_state()
    assert page.url.endswith("/console/users/dave")
    assert [await page.input_value(f) for f in ("#amount", "#reason")] == ["", ""]
    assert await page.evaluate("document.querySelector('#grant form').checkValidity()") is False
    assert (await console_services.credits.balance("dave")).balance == 17
