"""A pool manager's day in headless Chromium against the real server: the
dashboard's figures and charts, approving a claim, uploading the bank statement that shows
the recovery arrived, and the dashboard counting it."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from market.cases.services import china_today
from market.clock import SystemClock
from tests.factories import PASSWORD
from tests.pools.scene import SHANGHAI_ADVANCE, file_claim, make_loan, make_pool, receive
from tests.test_browser import CHROMIUM_ARGS, _chromium, server  # noqa: F401  (server is a fixture)

pytestmark = pytest.mark.browser
M = 100_000_000


async def test_pool_manager_approves_a_claim_and_reconciles_the_recovery(
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    now = SystemClock().now()
    sh = await make_pool(pool, now, SHANGHAI_ADVANCE)
    loan = await make_loan(
        pool, now, principal_fen=2 * M, default_date=date(2025, 6, 1), enrol_in=sh
    )
    claim = await file_claim(pool, now, loan)

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(server + "/login")
            await page.fill("input[name=email]", sh.email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.card button[type=submit]")
            await page.goto(server + "/pool")
            assert await page.text_content("[data-testid=fig-exposure]") == "¥2,000,000.00"
            assert await page.text_content("[data-testid=fig-claims-pending]") == "1"
            assert await page.locator("svg").count() >= 1

            # 55 % of the CNY 2 m net loss, approved on the claims page.
            await page.goto(server + "/pool/claims")
            amount = page.locator(f"[data-testid=claim-{claim.id}-amount]")
            assert await amount.text_content() == "¥1,100,000.00"
            await page.locator(f"[data-testid=approve-{claim.id}] button").click()
            await page.wait_for_selector("[data-testid=decided]")
            status = page.locator(f"[data-testid=claim-{claim.id}-status]")
            assert await status.get_attribute("class") == "badge approved"

            # A sale brings CNY 800,000 back: the pool is owed 55 % = 440,000.
            receipt = await receive(pool, now, loan.case_id, 80_000_000)
            payout = await pool.fetchrow(
                "SELECT reference, amount_fen FROM payouts WHERE receipt_id = $1 AND payee_kind = 'pool'",
                receipt.id,
            )
            assert payout["amount_fen"] == 44_000_000
            statement = (
                "交易日期,金额,附言,对方户名\n"
                f"{china_today(now).isoformat()},440000.00,{payout['reference']} 处置回款,交易所结算户\n"
            )
            await page.goto(server + "/reconciliation")
            await page.set_input_files(
                "input[type=file][name=file]",
                {"name": "statement.csv", "mimeType": "text/csv", "buffer": statement.encode()},
            )
            await page.locator(
                "form[action='/reconciliation/statements'] button[type=submit]"
            ).click()
            await page.wait_for_load_state()
            assert await pool.fetchval("SELECT status FROM statement_lines") == "matched"

            await page.goto(server + "/pool")
            assert await page.text_content("[data-testid=fig-recoveries_received]") == "¥440,000.00"
            assert await page.text_content("[data-testid=fig-recovery_rate]") == "40.00 %"
        finally:
            await browser.close()
