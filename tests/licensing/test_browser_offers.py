"""Licensing as a way out, in headless Chromium against the real server (docs/rules.md
§Licence offers and decision): a lot took a bid and two licence offers and is deciding;
the bank compares them in money of today and chooses the reverse licence, and sees the
decision recorded with its licence contract.

The steps are functions of their own, each returning what the next needs (the contract's
id), so the story can go on: the licensee reporting a quarter, the pool manager seeing the
receipt on the dashboard."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from market.clock import FrozenClock, SystemClock
from market.money import format_cny
from market.settings import Settings
from tests.factories import PASSWORD
from tests.licensing.offers_scene import BID, Deciding, to_deciding
from tests.test_browser import CHROMIUM_ARGS, _chromium, server  # noqa: F401  (server is a fixture)

pytestmark = pytest.mark.browser


async def sign_in(page: Any, server: str, pool: asyncpg.Pool, user_id: int) -> None:  # noqa: F811
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    await page.goto(server + "/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.card button[type=submit]")
    await page.wait_for_load_state()


async def bank_chooses_the_reverse_licence(
    page: Any,
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
    found: Deciding,
) -> int:
    """The bank opens the comparison, checks the bid and both offers with their present
    values, chooses the reverse licence with a reason; returns the contract's id."""
    scene = found.scene
    await sign_in(page, server, pool, scene.bank.user_id)
    await page.goto(f"{server}/bank/lots/{scene.lot.id}/offers")
    assert await page.text_content("[data-testid=bid-price]") == format_cny(BID)
    assert await page.text_content("[data-testid=bid-pv]") == format_cny(BID)
    rows = page.locator("[data-testid=offer-row]")
    assert await rows.count() == 2
    reverse = page.locator(f"[data-testid=offer-row][data-offer-id='{found.reverse.id}']")
    plain = page.locator(f"[data-testid=offer-row][data-offer-id='{found.plain.id}']")
    # docs/rules.md §Licensing's worked example, valued from the close day.
    assert await reverse.locator("[data-testid=offer-pv]").text_content() == format_cny(
        1_297_995_27
    )
    plain_pv = await plain.locator("[data-testid=offer-pv]").text_content()
    assert plain_pv and plain_pv.startswith("¥")
    # The explanation, line by line in Chinese: the upfront fee and five yearly periods.
    lines = await reverse.locator("[data-testid=offer-lines] li").all_text_contents()
    assert len(lines) == 6 and "入门费" in lines[0] and "第 5 期" in lines[-1]
    assert await page.locator("[data-testid=set-wins]").count() == 1
    assert "该组合胜出" in (await page.text_content("[data-testid=comparison-reason]") or "")

    # A reason is required: refused beside the field, nothing decided.
    await page.check(f"[data-testid=choose-{found.reverse.id}]")
    await page.click("[data-testid=decide]")
    await page.wait_for_selector("[data-testid=err-reason]")
    assert await pool.fetchval("SELECT count(*) FROM licence_contracts") == 0

    await page.check(f"[data-testid=choose-{found.reverse.id}]")
    await page.fill("[data-testid=decision-reason]", "反向许可现值高于最高出价逾 10%，且有银行保函")
    await page.click("[data-testid=decide]")
    await page.wait_for_selector("[data-testid=decision-made]")
    assert await page.text_content("[data-testid=decision-outcome]") == "已许可"
    assert "银行保函" in (await page.text_content("[data-testid=decision-reason-shown]") or "")
    contract = await pool.fetchrow(
        "SELECT id, reference FROM licence_contracts WHERE offer_id = $1", found.reverse.id
    )
    assert contract is not None
    shown = page.locator("[data-testid=contract]")
    assert await shown.get_attribute("data-contract-id") == str(contract["id"])
    assert await page.text_content("[data-testid=contract-reference]") == contract["reference"]
    return int(contract["id"])


async def test_a_bank_compares_a_bid_with_two_licence_offers_and_chooses_one(
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
    settings: Settings,
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    # The server runs on the system clock: the scene is set up from now, so the decision
    # falls within its deadline.
    found = await to_deciding(pool, FrozenClock(SystemClock().now()), settings)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            contract_id = await bank_chooses_the_reverse_licence(page, server, pool, found)
            assert contract_id > 0
        finally:
            await browser.close()
