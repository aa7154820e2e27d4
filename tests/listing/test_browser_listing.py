"""A listing from publication to negotiated transfer, in headless Chromium against the real
server (docs/rules.md §Listing). The bank publishes its listing on its lot page; the public
catalogue shows it beside the auctions with its period's end; one buyer's intent qualifies.
The sandbox's operator moves the exchange's clock past the period's end and the lots' timed
job ends the period: one qualified intent, a negotiated transfer. The buyer signs on the
listing's page (a price under the listing price is refused beside its field, nothing
written), the bank countersigns, and the sale is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from market.clock import FrozenClock, SystemClock
from market.lots import services as lots
from market.money import format_cny
from market.settings import Settings
from tests.factories import make_org, viewer
from tests.licensing.test_browser_offers import operator_moves_the_clock, signed_in
from tests.listing.scene import PRICE, VALUATION, ListingScene, Party, listing_draft
from tests.lots.factories import draft_lot, make_case
from tests.servers import running_server
from tests.test_browser import CHROMIUM_ARGS, _chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def sandbox(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    with running_server(settings, env={"MARKET_MODE": "sandbox"}) as url:
        yield url


async def bank_publishes(browser: Any, server: str, scene: ListingScene) -> None:
    page = await signed_in(browser, server, scene.pool, scene.bank.user_id)
    await page.goto(f"{server}/bank/lots/{scene.lot.id}")
    await page.click("[data-testid=publish]")
    await page.wait_for_selector("[data-testid=listing-link]")
    await page.click("[data-testid=listing-link]")
    await page.wait_for_selector("[data-testid=listing-state]")
    assert await page.text_content("[data-testid=listing-state]") == "挂牌中"
    assert await page.text_content("[data-testid=listing-price]") == format_cny(PRICE)
    await page.context.close()


async def the_catalogue_shows_it(browser: Any, server: str, scene: ListingScene) -> str:
    """Anyone: the listing in the catalogue with its period's end; returns that text."""
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{server}/lots")
    row = page.locator(f"tr[data-reference='{scene.lot.reference}']")
    assert await row.locator("[data-testid=listing]").text_content() == "挂牌"
    ends = await row.locator("[data-testid=listing-ends]").text_content() or ""
    assert ends.startswith("挂牌期满")
    await page.goto(f"{server}/lots/{scene.lot.reference}")
    assert await page.locator("[data-testid=listing]").count() == 1
    await context.close()
    return ends


async def buyer_signs(browser: Any, server: str, scene: ListingScene, buyer: Party) -> None:
    page = await signed_in(browser, server, scene.pool, buyer.user_id)
    await page.goto(f"{server}/listings/{scene.lot.reference}")
    assert await page.text_content("[data-testid=listing-state]") == "协议转让待确认"
    await page.fill("[data-testid=transfer-price-input]", f"{(PRICE - 100) // 100}")
    await page.click("[data-testid=buyer-confirm]")
    await page.wait_for_selector("[data-testid=err-price]")
    signed = await scene.pool.fetchval("SELECT buyer_confirmed_at FROM listing_transfers")
    assert signed is None
    await page.fill("[data-testid=transfer-price-input]", "")
    await page.click("[data-testid=buyer-confirm]")
    await page.wait_for_selector("[data-testid=transfer-price]")
    assert await page.text_content("[data-testid=transfer-price]") == format_cny(PRICE)
    await page.context.close()


async def bank_countersigns(browser: Any, server: str, scene: ListingScene) -> None:
    page = await signed_in(browser, server, scene.pool, scene.bank.user_id)
    await page.goto(f"{server}/listings/{scene.lot.reference}")
    await page.click("[data-testid=bank-confirm]")
    await page.wait_for_selector("[data-testid=listing-state][data-state=transferred]")
    assert await page.text_content("[data-testid=transfer-status]") == "已成交"
    await page.context.close()


async def test_a_listing_from_publication_to_negotiated_transfer(
    sandbox: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    from playwright.async_api import async_playwright

    now = SystemClock().now()
    clock = FrozenClock(now)
    bank_org, bank_user, _ = await make_org(pool, now, kind="bank")
    _, op_user, _ = await make_org(pool, now, kind="operator")
    me = await viewer(pool, bank_user)
    policy = lots.policy_for(settings)
    case_id, _ = await make_case(pool, now, bank_org, bank_user, valuation_fen=VALUATION)
    lot = await draft_lot(pool, now, policy, me, case_id, listing_draft())
    scene = ListingScene(
        lot=lot,
        bank=Party(bank_org, bank_user),
        operator=Party(0, op_user),
        policy=policy,
        pool=pool,
        clock=clock,
        settings=settings,
        ctx={"pool": pool, "clock": clock, "settings": settings},
    )
    executable = _chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            await bank_publishes(browser, sandbox, scene)
            lot = await scene.reload()
            assert lot.status == "announced" and lot.bidding_starts_at is not None
            await the_catalogue_shows_it(browser, sandbox, scene)
            clock.set(SystemClock().now())
            buyer, _ = await scene.buyer()
            # The sandbox's clock past the period's end; the timed job ends the period.
            after = lot.bidding_starts_at + timedelta(hours=10)
            await operator_moves_the_clock(browser, sandbox, pool, op_user, after)
            await scene.advance(after)
            assert scene.lot.status == "deciding"
            await buyer_signs(browser, sandbox, scene, buyer)
            await bank_countersigns(browser, sandbox, scene)
        finally:
            await browser.close()
    sale = await pool.fetchrow("SELECT price_fen, status FROM sales WHERE lot_id = $1", lot.id)
    assert (sale["price_fen"], sale["status"]) == (PRICE, "awaiting_payment")
    assert (await scene.reload()).status == "sold"
