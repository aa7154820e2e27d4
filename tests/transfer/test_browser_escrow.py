"""A sale carried through to the recorded transfer, in headless Chromium against the real
server (docs/rules.md §Transfer of title): a lot taking licence offers closes with a bid,
the decision's deadline lets the hammer stand (a sale made by a licensing decision); the
winner's transfer arrives and the operator records it — the pool manager sees the price
held in escrow, not as a recovery; the bank uploads the release of the pledge, the buyer
the recordal notice (a date before the sale is refused beside its field, nothing saved);
the operator checks and confirms; the pool manager sees the recovery arrive.

The server runs as a sandbox exchange: its operator moves its clock past the decision's
deadline, as a person rehearsing the sale would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from market.cases.services import china_today
from market.clock import FrozenClock, SystemClock
from market.licensing import deciding
from market.lots import services as lots
from market.money import cny_capitals, format_cny
from market.settings import Settings
from tests.licensing.offers_scene import to_deciding
from tests.licensing.test_browser_offers import operator_moves_the_clock, sandbox, signed_in
from tests.pools.scene import ZHONGSHAN, PoolOrg, make_pool
from tests.test_browser import CHROMIUM_ARGS, _chromium
from tests.transfer.factories import PDF

pytestmark = pytest.mark.browser
__all__ = ["sandbox"]  # the fixture, used by name

NOTICE = {"name": "notice.pdf", "mimeType": "application/pdf", "buffer": PDF}


async def operator_records_the_payment(
    browser: Any, server: str, pool: asyncpg.Pool, operator_user: int, sale: Any
) -> None:
    page = await signed_in(browser, server, pool, operator_user)
    await page.goto(server + "/operator/payments")
    balance = sale["balance_due_fen"]
    await page.fill("input[name=payment_reference]", sale["payment_reference"])
    await page.fill("input[name=amount]", f"{balance // 100}.{balance % 100:02d}")
    # The amount to be recorded is said back in capitals before the operator confirms.
    await page.wait_for_selector(
        f"form.card [data-testid=amount-echo-capitals]:text-is('{cny_capitals(balance)}')"
    )
    await page.click("form.card button[type=submit]")
    await page.wait_for_selector("p.ok")
    assert await pool.fetchval("SELECT status FROM sales WHERE id = $1", sale["id"]) == "paid"
    await page.context.close()


async def pool_manager_sees(
    browser: Any, server: str, pool: asyncpg.Pool, zs: PoolOrg
) -> tuple[str | None, str | None]:
    """(held in escrow, recoveries outstanding) on the pool's dashboard."""
    page = await signed_in(browser, server, pool, zs.user_id)
    await page.goto(f"{server}/pool/{zs.pool_id}")
    held = await page.text_content("[data-testid=fig-held-in-escrow]")
    outstanding = await page.text_content("[data-testid=fig-recoveries_outstanding]")
    await page.context.close()
    return held, outstanding


async def upload(page: Any, number: str, issued_on: str) -> None:
    await page.fill("[data-testid=notice-number-input]", number)
    await page.fill("[data-testid=notice-date-input]", issued_on)
    await page.set_input_files("[data-testid=notice-file]", files=[NOTICE])
    await page.click("[data-testid=notice-submit]")
    await page.wait_for_load_state()


async def bank_releases_the_pledge(
    browser: Any, server: str, pool: asyncpg.Pool, bank_user: int, sale_id: int, today: str
) -> None:
    page = await signed_in(browser, server, pool, bank_user)
    await page.click("[data-testid=nav-transfers]")
    row = page.locator(f"[data-testid=transfer-row][data-sale-id='{sale_id}']")
    assert await row.locator("[data-testid=transfer-step]").text_content() == "质押登记注销"
    await row.locator("[data-testid=transfer-link]").click()
    await page.wait_for_selector("[data-testid=notice-form]")
    await upload(page, "ZX2026000123", today)
    await page.wait_for_selector("[data-testid=done]")
    assert await page.text_content("[data-testid=transfer-step]") == "权利转移登记"
    assert await page.locator("[data-testid=notice-form]").count() == 0  # the buyer's turn
    await page.context.close()


async def buyer_records_the_transfer(
    browser: Any,
    server: str,
    pool: asyncpg.Pool,
    buyer_user: int,
    sale_id: int,
    sale_day: str,
    today: str,
) -> None:
    page = await signed_in(browser, server, pool, buyer_user)
    await page.goto(f"{server}/transfers/{sale_id}")
    await page.wait_for_selector("[data-testid=notice-form]")
    assert await page.locator("[data-testid=notice-kind] option").all_text_contents() == [
        "著录项目变更手续合格通知书"
    ]
    # Dated before the sale: refused beside the date, nothing saved.
    before = (china_today(SystemClock().now()) - timedelta(days=400)).isoformat()
    assert before < sale_day
    await upload(page, "BG2026000456", before)
    error = await page.text_content("[data-testid=err-notice-issued_on]")
    assert error and sale_day in error
    assert await pool.fetchval("SELECT count(*) FROM transfer_notices") == 1
    await upload(page, "BG2026000456", today)
    await page.wait_for_selector("[data-testid=done]")
    assert await page.text_content("[data-testid=transfer-step]") == "交易所审核"
    await page.context.close()


async def operator_confirms(
    browser: Any, server: str, pool: asyncpg.Pool, operator_user: int, sale_id: int
) -> None:
    page = await signed_in(browser, server, pool, operator_user)
    await page.click("[data-testid=nav-escrow]")
    row = page.locator(f"[data-testid=transfer-row][data-sale-id='{sale_id}']")
    assert await row.locator("[data-testid=transfer-step]").text_content() == "交易所审核"
    await row.locator("[data-testid=transfer-link]").click()
    numbers = await page.locator("[data-testid=notice-number]").all_text_contents()
    assert numbers == ["ZX2026000123", "BG2026000456"]
    await page.click("[data-testid=confirm-submit]")
    await page.wait_for_selector("[data-testid=done]")
    assert await page.text_content("[data-testid=transfer-status]") == "已完成"
    await page.context.close()


async def test_the_winner_pays_the_title_moves_and_the_pool_sees_the_recovery(
    sandbox: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    now = SystemClock().now()
    zs = await make_pool(pool, now, ZHONGSHAN)
    found = await to_deciding(pool, FrozenClock(now), settings, enrol_in=zs)
    deadline = found.end + timedelta(days=10)
    decided = await deciding.decide_due(pool, deadline, lots.policy_for(settings))
    assert decided == [found.scene.lot.id]  # the hammer stands: a sale
    sale = await pool.fetchrow("SELECT * FROM sales WHERE lot_id = $1", found.scene.lot.id)
    scene = found.scene
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            after = deadline + timedelta(days=1)
            await operator_moves_the_clock(browser, sandbox, pool, scene.operator.user_id, after)
            today = china_today(after).isoformat()
            await operator_records_the_payment(browser, sandbox, pool, scene.operator.user_id, sale)
            # Held in escrow: seen as such, not as a recovery.
            held, outstanding = await pool_manager_sees(browser, sandbox, pool, zs)
            assert (held, outstanding) == (format_cny(sale["price_fen"]), format_cny(0))
            await bank_releases_the_pledge(
                browser, sandbox, pool, scene.bank.user_id, sale["id"], today
            )
            sale_day = china_today(sale["closed_at"]).isoformat()
            await buyer_records_the_transfer(
                browser, sandbox, pool, scene.bidder.user_id, sale["id"], sale_day, today
            )
            await operator_confirms(browser, sandbox, pool, scene.operator.user_id, sale["id"])
            share = await pool.fetchval(
                "SELECT coalesce(sum(p.amount_fen), 0)::bigint FROM payouts p JOIN receipts r"
                " ON r.id = p.receipt_id WHERE r.source = $1 AND p.pool_id = $2",
                f"sale:{sale['id']}",
                zs.pool_id,
            )
            assert share > 0
            held, outstanding = await pool_manager_sees(browser, sandbox, pool, zs)
            assert (held, outstanding) == (format_cny(0), format_cny(share))
        finally:
            await browser.close()
