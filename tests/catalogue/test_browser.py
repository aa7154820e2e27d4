"""The catalogue in headless Chromium: the search form swaps results in place with htmx."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from market.clock import SystemClock
from tests.catalogue.factories import make_bank_case, make_lot
from tests.factories import PASSWORD, make_org
from tests.test_browser import CHROMIUM_ARGS, _chromium, server  # noqa: F401  (server is a fixture)

pytestmark = pytest.mark.browser


async def test_search_updates_results_in_place_and_the_address(
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    now = SystemClock().now()
    bank = await make_bank_case(pool, now)
    battery = await make_lot(pool, now, bank, title="一种锂电池正极材料的制备方法")
    drone = await make_lot(
        pool, now, bank, title="基于图像识别的无人机巡检方法", ends_in=timedelta(days=2)
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(server + "/lots")
            rows = page.locator("tr[data-reference]")
            assert await rows.count() == 2
            # a marker that a full page load would wipe out
            await page.evaluate("window.stillHere = true")

            await page.fill("input[name=q]", "锂电池")
            await page.press("input[name=q]", "Enter")
            await page.wait_for_url("**/lots?q=*")
            await page.wait_for_function(
                "document.querySelectorAll('tr[data-reference]').length === 1"
            )
            assert await rows.first.get_attribute("data-reference") == battery.reference
            assert await page.evaluate("window.stillHere === true")
            assert "/lots/results" not in page.url

            # a bad IPC answers 422; the fragment saying why is swapped in all the same
            await page.fill("input[name=q]", "")
            await page.fill("input[name=ipc]", "X99")
            await page.press("input[name=ipc]", "Enter")
            await page.wait_for_selector("[data-field=ipc]")
            assert await page.evaluate("window.stillHere === true")

            # the same address loaded afresh renders the whole page
            await page.fill("input[name=ipc]", "")
            await page.fill("input[name=q]", "无人机")
            await page.press("input[name=q]", "Enter")
            await page.wait_for_url("**q=%E6%97%A0%E4%BA%BA%E6%9C%BA*")
            await page.reload()
            assert await page.locator("form[role=search]").count() == 1
            assert await rows.first.get_attribute("data-reference") == drone.reference
        finally:
            await browser.close()


PHONE = {"width": 390, "height": 844}  # an everyday phone's CSS width


async def test_a_phone_needs_no_sideways_scroll(
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """At 390 px: catalogue, lot page (its bid panel), the buyer's pages — none wider than
    the screen, and a lot's title reads across the card, not a character per line."""
    from playwright.async_api import async_playwright

    executable = _chromium()
    now = SystemClock().now()
    bank = await make_bank_case(pool, now)
    title = "一种基于深度学习的锂离子动力电池健康状态在线估计方法及其管理系统"
    lot = await make_lot(pool, now, bank, title=title)
    _, _, email = await make_org(pool, now, kind="buyer")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport=PHONE)
            for path in ("/register", "/login"):  # a buyer signs up on the phone too
                await page.goto(server + path)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], (path, width)
            await page.fill("input[name=email]", email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("main form button[type=submit]")
            await page.wait_for_url(lambda url: "/login" not in url)
            for path in (
                "/",
                "/lots",
                f"/lots/{lot.reference}",
                "/inbox",
                "/my/auctions",
                "/my/activity",
            ):
                await page.goto(server + path)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], (path, width)
            await page.goto(server + "/lots")
            link = page.locator(f"tr[data-reference='{lot.reference}'] a").first
            box = await link.bounding_box()
            assert box is not None and box["width"] >= 250, box  # a line, not a column
            assert await page.locator("table.cards thead").is_hidden()
            await page.goto(server + f"/lots/{lot.reference}")
            assert await page.locator("h1").is_visible()
        finally:
            await browser.close()
