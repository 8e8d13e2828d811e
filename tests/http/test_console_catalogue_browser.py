"""The packages and gift look-up pages in a real browser (headless chromium): add a
package, see it listed and audited, look a gift up by its code. Screenshots go where
test_console_browser.py puts its own; docs/img/console-packages.png and
console-gift.png are copies of them."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext

from mana_credits_core.gifts import GiftType
from mana_credits_core.ports import Principal
from mana_credits_core.services import Services

from .console_client import Client
from .test_console_browser import artifacts, browser, console_services, site

__all__ = ["artifacts", "browser", "console_services", "site"]  # the fixtures used here


async def test_operator_adds_a_package_and_looks_up_a_gift_in_the_browser(
    site: Client, browser: BrowserContext, console_services: Services, artifacts: Path
) -> None:
    for order, (name, credits, price) in enumerate([("Small", 500, 500), ("Large", 2600, 2000)]):
        await console_services.purchases.add_package(name, credits, price, sort_order=order)
    old = await console_services.purchases.add_package("Legacy", 100, 150, sort_order=9)
    await console_services.purchases.update_package(old.id, active=False)
    await console_services.credits.grant("dave", 500, "opening balance", "setup")
    gift = await console_services.gifts.create(
        Principal("dave", "dave@example.com", name="Dave"),
        120,
        type=GiftType.PERSONALIZED,
        target_email="erin@example.com",
        message="Happy birthday",
    )
    await console_services.gifts.redeem(Principal("erin", "erin@example.com"), gift.code)
    link = await console_services.console.issue_link("carol")
    await browser.clear_cookies()
    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(str(site.make_url(f"/console/link/{link.token}")))
    await page.click("#continue")
    await page.wait_for_url("**/console")

    await page.click("header nav >> text=Packages")
    assert "Legacy" in await page.inner_text("#packages")  # off sale, still listed
    await page.fill("#name", "Mega")
    await page.fill("#description", "For heavy use")
    await page.fill("#credits", "13000")
    await page.fill("#price", "10000")
    await page.fill("#reason", "spring offer")
    await page.click("#add button[type=submit]")
    await page.wait_for_selector("#notice")
    assert await page.text_content("#notice") == "Package added."
    rows = await page.inner_text("#packages tbody")
    assert "Mega" in rows
    assert "13000" in rows
    await page.screenshot(path=artifacts / "console-packages.png", full_page=True)
    mega = [p for p in await console_services.purchases.packages() if p.name == "Mega"]
    assert [(p.credits, p.price_euro_cents) for p in mega] == [(13000, 10000)]

    await page.click("header nav >> text=Gifts")
    await page.fill("#code", gift.code.lower())
    await page.press("#code", "Enter")
    await page.wait_for_selector("#gift")
    assert await page.text_content("#gift-status") == "depleted"
    assert await page.text_content("#target") == "erin@example.com"
    await page.screenshot(path=artifacts / "console-gift.png", full_page=True)
    await page.click("#creator")
    await page.wait_for_url("**/console/users/dave")

    await page.click("header nav >> text=Audit log")
    row = await page.inner_text("table.audit tbody tr:first-child")
    assert "package-add" in row
    assert "spring offer" in row
    assert problems == []
