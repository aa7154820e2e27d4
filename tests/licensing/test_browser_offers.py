"""Licensing as a way out, in headless Chromium against the real server (docs/rules.md
§Licence offers and decision, §Licensing royalties): a lot took a bid and two licence
offers and is deciding; the bank compares them in money of today and chooses the reverse
licence, and sees the decision recorded with its licence contract. The licensee (the
pledgor: a reverse licence is the pledgor's own) reports its first quarter's net sales on
the contract's page and sees what is due with the payment reference; the payment arrives
and the operator records it on the clearing page; the manager of the pool that bore the
loan's loss sees the receipt among its licence streams.

The server runs as a sandbox exchange: its operator moves its clock to the day after the
first quarter, as a person rehearsing the year would. The steps are functions of their
own, each returning what the next needs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from market.clock import FrozenClock, SystemClock
from market.licensing import deciding
from market.licensing.contracts import contract_out
from market.licensing.royalties import Period, periods
from market.money import format_cny
from market.settings import Settings
from tests.factories import PASSWORD
from tests.licensing.offers_scene import BID, Deciding, to_deciding
from tests.pools.scene import ZHONGSHAN, PoolOrg, make_pool
from tests.servers import running_server
from tests.test_browser import CHROMIUM_ARGS, _chromium

pytestmark = pytest.mark.browser


async def sign_in(page: Any, server: str, pool: asyncpg.Pool, user_id: int) -> None:
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    await page.goto(server + "/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.card button[type=submit]")
    await page.wait_for_load_state()


async def bank_chooses_the_reverse_licence(
    page: Any,
    server: str,
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
    # The worked example's reverse licence paid quarterly (docs/rules.md §Licensing): each
    # value as the comparison computes it, the explanation line by line in Chinese — the
    # upfront fee and twenty quarters.
    compared = await deciding.get_decision(pool, scene.bank.org_id, scene.lot.id)
    values = {v.offer_id: v for s in compared.comparison.sets for v in s.values}
    ours = values[f"offer-{found.reverse.id}"]
    assert await reverse.locator("[data-testid=offer-pv]").text_content() == format_cny(
        ours.total_fen
    )
    assert ours.total_fen > BID * 11 // 10  # it beats the hammer by the margin
    plain_pv = await plain.locator("[data-testid=offer-pv]").text_content()
    assert plain_pv == format_cny(values[f"offer-{found.plain.id}"].total_fen)
    lines = await reverse.locator("[data-testid=offer-lines] li").all_text_contents()
    assert len(lines) == 21 and "入门费" in lines[0] and "第 20 期" in lines[-1]
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


CHINA = ZoneInfo("Asia/Shanghai")
SALES_FEN = 1_250_000_00  # a quarter of the forecast's year of net sales


@pytest.fixture
def sandbox(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    """The server as a sandbox exchange (its operator may move its clock forward)."""
    with running_server(settings, env={"MARKET_MODE": "sandbox"}) as url:
        yield url


async def signed_in(browser: Any, server: str, pool: asyncpg.Pool, user_id: int) -> Any:
    """A page of a browser context of its own, signed in as the user."""
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await sign_in(page, server, pool, user_id)
    return page


async def operator_moves_the_clock(
    browser: Any,
    server: str,
    pool: asyncpg.Pool,
    operator_user: int,
    to: datetime,
) -> None:
    """On the sandbox's clock page, in steps of at most half a year."""
    page = await signed_in(browser, server, pool, operator_user)
    now = SystemClock().now()
    stops = [now + timedelta(days=d) for d in range(180, (to - now).days, 180)] + [to]
    for stop in stops:
        await page.goto(server + "/operator/sandbox")
        form = page.locator("[data-testid=sandbox-move-to]")
        await form.locator("input[name=to]").fill(stop.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M"))
        await form.locator("button[type=submit]").click()
        await page.wait_for_load_state()
    moved = await pool.fetchval("SELECT max(offset_ms) FROM exchange_clock")
    assert moved is not None and now + timedelta(milliseconds=moved) >= to - timedelta(minutes=5)
    await page.context.close()


async def first_period(pool: asyncpg.Pool, contract_id: int) -> tuple[str, Period]:
    """The contract's reference and its first royalty period."""
    row = await pool.fetchrow("SELECT * FROM licence_contracts WHERE id = $1", contract_id)
    contract = contract_out(row)
    return contract.reference, periods(contract.terms)[0]


async def licensee_reports_the_first_period(
    browser: Any,
    server: str,
    pool: asyncpg.Pool,
    found: Deciding,
    contract_id: int,
) -> int:
    """The pledgor, licensee of the reverse licence, finds the contract among its own,
    reports the period's net sales by the form, and reads what is due and the reference
    to write on its transfer; returns the amount due in fen."""
    reference, period = await first_period(pool, contract_id)
    page = await signed_in(browser, server, pool, found.scene.pledgor.user_id)
    await page.click("[data-testid=nav-licences]")
    row = page.locator(f"[data-testid=contract-row][data-contract-id='{contract_id}']")
    assert await row.locator("[data-testid=contract-status]").text_content() == "履行中"
    await row.locator("a").click()
    await page.wait_for_selector("[data-testid=report-form]")
    assert await page.text_content("[data-testid=party-licensee]") == "成都锂能科技有限公司"

    # A wrong amount is refused beside its field; nothing is recorded.
    await page.fill("[data-testid=report-period]", period.label)
    await page.fill("[data-testid=report-net-sales]", "五百万")
    await page.click("[data-testid=report-submit]")
    await page.wait_for_selector("[data-testid=err-report-net_sales]")
    assert await pool.fetchval("SELECT count(*) FROM royalty_reports") == 0

    await page.fill("[data-testid=report-period]", period.label)
    await page.fill("[data-testid=report-net-sales]", "1,250,000.00")
    await page.click("[data-testid=report-submit]")
    await page.wait_for_selector("[data-testid=done]")
    item = page.locator(f"[data-testid=item][data-item='{period.label}']")
    # 6 % of the quarter's net sales; the year's minimum is settled in its last period.
    assert not period.closes_year
    due = SALES_FEN * 600 // 10_000
    assert await item.locator("[data-testid=item-due]").text_content() == format_cny(due)
    assert await item.locator("[data-testid=item-owed]").text_content() == format_cny(due)
    shown = await item.locator("[data-testid=item-reference]").text_content()
    assert shown == f"{reference}-{period.label}"
    await page.context.close()
    return due


async def operator_records_the_payment(
    browser: Any,
    server: str,
    pool: asyncpg.Pool,
    found: Deciding,
    contract_id: int,
    amount_fen: int,
    paid_on: datetime,
) -> None:
    """The transfer reached the clearing account: the operator records it by hand."""
    reference, period = await first_period(pool, contract_id)
    page = await signed_in(browser, server, pool, found.scene.operator.user_id)
    await page.click("[data-testid=nav-clearing]")
    await page.fill("[data-testid=payment-contract]", reference)
    await page.fill("[data-testid=payment-period]", period.label)
    await page.fill("[data-testid=payment-amount]", f"{amount_fen // 100}.{amount_fen % 100:02d}")
    await page.fill("[data-testid=payment-paid-on]", paid_on.astimezone(CHINA).date().isoformat())
    await page.click("[data-testid=payment-submit]")
    await page.wait_for_selector("[data-testid=payment-recorded]")
    assert await pool.fetchval("SELECT count(*) FROM royalty_payments") == 1
    await page.context.close()


async def pool_manager_sees_the_receipt(
    browser: Any,
    server: str,
    pool: asyncpg.Pool,
    zs: PoolOrg,
    amount_fen: int,
) -> None:
    """The pool that bore the loan's loss: the stream received, and its own share."""
    receipt = await pool.fetchval("SELECT receipt_id FROM royalty_payments")
    share = await pool.fetchval(
        "SELECT coalesce(sum(amount_fen), 0)::bigint FROM payouts WHERE receipt_id = $1 AND pool_id = $2",
        receipt,
        zs.pool_id,
    )
    assert share > 0
    page = await signed_in(browser, server, pool, zs.user_id)
    await page.goto(f"{server}/pool/{zs.pool_id}/streams")
    assert await page.text_content("[data-testid=streams-contracts]") == "1"
    assert await page.text_content("[data-testid=streams-received]") == format_cny(amount_fen)
    assert await page.text_content("[data-testid=streams-pool-awaiting]") == format_cny(share)
    await page.context.close()


async def test_a_bank_chooses_a_licence_the_licensee_reports_the_pool_sees_the_receipt(
    sandbox: str,
    pool: asyncpg.Pool,
    settings: Settings,
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    # The server runs on the system clock: the scene is set up from now, so the decision
    # falls within its deadline.
    now = SystemClock().now()
    zs = await make_pool(pool, now, ZHONGSHAN)
    found = await to_deciding(
        pool, FrozenClock(now), settings, enrol_in=zs, reverse_period="quarterly"
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            contract_id = await bank_chooses_the_reverse_licence(page, sandbox, pool, found)
            await page.context.close()
            _, period = await first_period(pool, contract_id)
            # The day after the first period, before its payment date: no interest.
            after = datetime.combine(period.end + timedelta(days=2), time(10), CHINA)
            assert after.date() < period.payment_due
            await operator_moves_the_clock(
                browser, sandbox, pool, found.scene.operator.user_id, after
            )
            due = await licensee_reports_the_first_period(
                browser, sandbox, pool, found, contract_id
            )
            await operator_records_the_payment(
                browser, sandbox, pool, found, contract_id, due, after
            )
            await pool_manager_sees_the_receipt(browser, sandbox, pool, zs, due)
        finally:
            await browser.close()
