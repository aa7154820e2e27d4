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
from tests.pools.scene import (
    SHANGHAI_ADVANCE,
    SHENZHEN,
    claim_and_pay,
    file_claim,
    make_loan,
    make_pool,
    receive,
    write_off,
)
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


async def test_the_statement_page_carries_each_lines_actions_in_chinese(
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """A ¥51,280.00 line for a ¥51,300.00 payout is matched short for bank charges on the
    statement page itself, bank interest set aside there, and the ¥20.00 written off —
    at 390 px wide, in Chinese, with no sideways scroll."""
    from playwright.async_api import async_playwright

    executable = _chromium()
    now = SystemClock().now()
    today = china_today(now)
    p = await make_pool(pool, now, SHENZHEN)
    loan = await make_loan(pool, now, principal_fen=3 * M, enrol_in=p)
    await write_off(pool, now, loan, today)
    await claim_and_pay(pool, now, loan, p)
    await receive(pool, now, loan.case_id, 10_260_000)
    payout = await pool.fetchrow(
        "SELECT id, reference, amount_fen FROM payouts WHERE case_id = $1 AND payee_kind = 'pool'",
        loan.case_id,
    )
    assert payout["amount_fen"] == 5_130_000
    statement = (
        "交易日期,金额,附言,对方户名,流水号\n"
        f"{today.isoformat()},51280.00,{payout['reference']} 处置回款,交易所结算户,T1\n"
        f"{today.isoformat()},3.21,结息,本行,T2\n"
    )

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(
                locale="zh-CN", viewport={"width": 390, "height": 844}
            )
            page = await context.new_page()
            await page.goto(server + "/login")
            await page.fill("input[name=email]", p.email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.card button[type=submit]")
            await page.goto(server + "/reconciliation")
            await page.set_input_files(
                "input[type=file][name=file]",
                {"name": "对账单.csv", "mimeType": "text/csv", "buffer": statement.encode()},
            )
            await page.locator(
                "form[action='/reconciliation/statements'] button[type=submit]"
            ).click()
            await page.wait_for_url("**/reconciliation/statements/*")
            short_id, interest_id = [
                r["id"] for r in await pool.fetch("SELECT id FROM statement_lines ORDER BY line_no")
            ]
            wide = await page.evaluate(
                "document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            assert not wide, "the statement page scrolls sideways at 390 px"

            # The short line's own actions: the payout suggested, the ¥20.00 named.
            suggested = await page.text_content(f"[data-testid=suggested-{short_id}]")
            assert suggested is not None
            assert f"建议匹配：{payout['reference']}（¥51,300.00）" in suggested
            assert "短收 ¥20.00" in suggested
            # Matching without a reason: the amounts named, on the same page.
            await page.locator(f"[data-testid=match-{short_id}] button[type=submit]").click()
            await page.wait_for_selector("[data-testid=match-error]")
            error = await page.text_content("[data-testid=match-error]")
            assert error is not None and "应收的 ¥51,300.00 少 ¥20.00" in error
            assert await pool.fetchval("SELECT count(*) FROM payout_shortfalls") == 0
            await page.select_option(f"[data-testid=short-reason-{short_id}]", "bank_charges")
            async with page.expect_navigation():
                await page.locator(f"[data-testid=match-{short_id}] button[type=submit]").click()
            await page.wait_for_selector("[data-testid=done-notice]")
            assert await page.text_content("[data-testid=done-notice]") == "已匹配。"
            shown = await page.text_content("[data-testid=line-short-2]")
            assert shown is not None and "短收 ¥20.00（银行手续费）" in shown and "待补" in shown

            # Bank interest: set aside with its reason, on the statement page.
            aside = page.locator(f"[data-testid=aside-{interest_id}]")
            await aside.locator("input[name=note]").fill("银行结息，非回款")
            async with page.expect_navigation():
                await aside.locator("button[type=submit]").click()
            await page.wait_for_selector("[data-testid=done-notice]")
            assert await page.text_content("[data-testid=done-notice]") == "已另行处理。"
            line = page.locator("[data-testid=line-3]")
            assert await line.get_attribute("data-status") == "set_aside"

            # The ¥20.00 outstanding, written off from the same page.
            gap_id = await pool.fetchval("SELECT id FROM payout_shortfalls")
            amount = await page.text_content(f"[data-testid=shortfall-amount-{gap_id}]")
            assert amount is not None and amount.strip() == "¥20.00"
            write_off_form = page.locator(f"[data-testid=write-off-{gap_id}]")
            await write_off_form.locator("input[name=note]").fill("手续费由本池承担")
            async with page.expect_navigation():
                await write_off_form.locator("button[type=submit]").click()
            await page.wait_for_selector("[data-testid=done-notice]")
            assert await page.text_content("[data-testid=done-notice]") == "短收差额已核销。"
            assert await page.locator(f"[data-testid=shortfall-{gap_id}]").count() == 0
            assert await pool.fetchval("SELECT status FROM payout_shortfalls") == "written_off"
            body = await page.text_content("body")
            assert body is not None and "bank_charges" not in body and "recon." not in body
        finally:
            await browser.close()


async def test_the_rule_form_previews_without_javascript_and_saves_at_390px(
    server: str,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """The preview is a submit button: with JavaScript off, the manager sees what the
    rule typed would pay on the sample loans, then saves it as a new version."""
    from playwright.async_api import async_playwright

    executable = _chromium()
    now = SystemClock().now()
    p = await make_pool(pool, now, SHENZHEN)  # fund 1 : bank 1, at most CNY 2 m a loan
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(
                locale="zh-CN", viewport={"width": 390, "height": 844}, java_script_enabled=False
            )
            page = await context.new_page()
            await page.goto(server + "/login")
            await page.fill("input[name=email]", p.email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.card button[type=submit]")
            await page.goto(server + f"/pool/{p.pool_id}/rules")
            width = await page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert width[0] <= width[1], width
            assert await page.input_value("input[name=cap_per_loan]") == "2,000,000.00"
            await page.fill("input[name=cap_per_loan]", "1,000,000")
            await page.click("[data-testid=preview-button]")
            await page.wait_for_selector("[data-testid=preview]")
            # the medium loan's loss ¥2,200,000.00, half ¥1,100,000.00, capped at ¥1 m
            assert await page.text_content("[data-testid=preview-medium-pool]") == ("¥1,000,000.00")
            assert await page.text_content("[data-testid=preview-small-pool]") == "¥168,117.29"
            assert await page.input_value("input[name=cap_per_loan]") == "1,000,000"
            count = "SELECT count(*) FROM pool_rule_versions WHERE pool_id = $1"
            assert await pool.fetchval(count, p.pool_id) == 1
            await page.click("[data-testid=save-button]")
            await page.wait_for_selector("[data-testid=saved]")
            assert await pool.fetchval(count, p.pool_id) == 2
            rule = await pool.fetchval(
                "SELECT rule FROM pool_rule_versions WHERE pool_id = $1 AND version = 2", p.pool_id
            )
            assert rule["cap_per_loan_fen"] == 100_000_000
        finally:
            await browser.close()
