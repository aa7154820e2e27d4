"""The buyer's page (/my/activity) and its API (GET /api/v1/activity): every kind of item
of a bidder with a history, in Chinese in Chromium and on a phone; another bidder sees
none of it."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.buyer import views
from market.clock import FrozenClock, SystemClock
from market.money import format_cny
from market.settings import Settings
from tests.auctions.test_closing import DEPOSIT, START
from tests.buyer.scene import History, buyer_history
from tests.factories import PASSWORD, make_org, make_token, sign_in
from tests.servers import running_server
from tests.test_browser import CHROMIUM_ARGS, _chromium

PHONE = {"width": 390, "height": 844}


async def _history(pool: asyncpg.Pool, settings: Settings) -> tuple[History, FrozenClock]:
    """The history made at the real time, so that a server on the system clock reads its
    deadlines as still ahead."""
    clock = FrozenClock(SystemClock().now())
    return await buyer_history(pool, clock, settings), clock


async def test_the_activity_holds_each_kind_of_item(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    h = await buyer_history(pool, clock, settings)
    a = await views.activity(pool, settings, h.buyer.org_id, clock.now())
    by_lot = {r.lot_reference: r for r in a.registrations}
    assert len(a.registrations) == 6
    assert (by_lot[h.owed.reference].deposit_state, by_lot[h.owed.reference].bid_state) == (
        "owed",
        "no_bid",
    )
    assert by_lot[h.owed.reference].deposit_deadline == h.owed.bidding_ends_at
    lead = by_lot[h.lead.reference]
    assert (lead.bid_state, lead.deposit_state, lead.proxy_max_fen) == (
        "leading",
        "confirmed",
        h.proxy_max_fen,
    )
    assert lead.current_price_fen is not None and lead.current_price_fen > START
    assert lead.ends_at == h.lead.bidding_ends_at
    assert by_lot[h.outbid.reference].bid_state == "outbid"
    assert (by_lot[h.lost.reference].bid_state, by_lot[h.lost.reference].deposit_state) == (
        "lost",
        "released",
    )
    # A win's deposit is held until the balance is paid, then counted towards the price.
    assert (by_lot[h.to_pay.reference].bid_state, by_lot[h.to_pay.reference].deposit_state) == (
        "won",
        "confirmed",
    )
    assert (by_lot[h.bought.reference].bid_state, by_lot[h.bought.reference].deposit_state) == (
        "won",
        "applied",
    )
    wins = {w.sale_id: w for w in a.wins}
    assert set(wins) == {h.to_pay_sale, h.bought_sale}
    assert a.wins[0].sale_id == h.to_pay_sale  # what is to pay comes first
    due = wins[h.to_pay_sale]
    assert due.status == "awaiting_payment" and due.balance_due_fen > 0
    assert due.payment_reference and not due.overdue
    assert a.pay_to.account_number == settings.deposit_account_number
    assert (wins[h.bought_sale].status, wins[h.bought_sale].transfer_status) == (
        "paid",
        "in_escrow",
    )
    [transfer] = a.transfers
    assert transfer.sale_id == h.bought_sale
    assert transfer.step == "release" and transfer.missing[0] == "pledge_release"
    assert transfer.yours == ["patent_recordal"]
    [refund] = a.refunds
    assert (refund.purpose, refund.amount_fen, refund.status, refund.lot_reference) == (
        "deposit_refund",
        DEPOSIT,
        "pending",
        h.lost.reference,
    )
    # 成交确认书 at the close, 交易凭证 once paid (docs/rules.md §Sale documents).
    assert sorted((d.sale_id, d.kind) for d in a.documents) == sorted(
        [
            (h.to_pay_sale, "confirmation"),
            (h.bought_sale, "confirmation"),
            (h.bought_sale, "certificate"),
        ]
    )
    assert a.summary.to_pay_fen == DEPOSIT + due.balance_due_fen
    assert (a.summary.leading, a.summary.outbid) == (1, 1)
    assert a.summary.transfer_steps_yours == 1
    assert a.summary.refunds_pending_fen == DEPOSIT


async def test_another_bidder_sees_none_of_it(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    h = await buyer_history(pool, clock, settings)
    mine = await views.activity(pool, settings, h.buyer.org_id, clock.now())
    theirs = await views.activity(pool, settings, h.other.org_id, clock.now())
    # The other bidder's own registrations only: none of the buyer's rows or references.
    assert {r.registration_id for r in theirs.registrations}.isdisjoint(
        r.registration_id for r in mine.registrations
    )
    # It won the lot the buyer lost: that sale and its document, not the buyer's.
    assert [w.lot_reference for w in theirs.wins] == [h.lost.reference]
    assert {d.sale_id for d in theirs.documents} == {theirs.wins[0].sale_id}
    assert theirs.transfers == []
    assert {r.id for r in theirs.refunds}.isdisjoint(r.id for r in mine.refunds)
    _, stranger_user, stranger_email = await make_org(pool, clock.now(), kind="acquirer")
    token = await make_token(pool, clock.now(), stranger_user, ["account:read"])
    app = create_app(settings, clock)
    async with AsyncTestClient(app=app) as client:
        r = await client.get("/api/v1/activity", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [
            body[k] for k in ("registrations", "wins", "transfers", "refunds", "documents")
        ] == [
            [],
            [],
            [],
            [],
            [],
        ]
        assert body["summary"]["to_pay_fen"] == 0
        await sign_in(client, stranger_email)
        page = await client.get("/my/activity")
        assert page.status_code == 200
        for reference in (h.lead.reference, h.to_pay.reference, h.bought.reference):
            assert reference not in page.text
        assert 'data-testid="no-registrations"' in page.text
        # A bank may not open it at all.
        _, _, bank_email = await make_org(pool, clock.now(), kind="bank")
    async with AsyncTestClient(app=app) as client:
        await sign_in(client, bank_email)
        assert (await client.get("/my/activity")).status_code == 403


@pytest.fixture
def server(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


@pytest.mark.browser
async def test_the_buyers_page_in_chinese_and_on_a_phone(
    server: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    h, _ = await _history(pool, settings)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for viewport in ({"width": 1280, "height": 900}, PHONE):
                page = await browser.new_page(viewport=viewport)
                await page.goto(server + "/login")
                await page.fill("input[name=email]", h.buyer.email)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("main form button[type=submit]")
                await page.wait_for_url(lambda url: "/login" not in url)
                if viewport is PHONE:
                    await page.goto(server + "/my/activity")
                    width = await page.evaluate("document.documentElement.scrollWidth")
                    assert width <= PHONE["width"], width
                    continue
                await page.click("[data-testid=nav-activity]")
                await page.wait_for_url("**/my/activity")
                assert await page.inner_text("h1") == "我的交易"
                states = {
                    ref: await page.get_attribute(
                        f"tr[data-registration]:has(a[href='/lots/{ref}'])", "data-bid-state"
                    )
                    for ref in (h.lead.reference, h.outbid.reference, h.owed.reference)
                }
                assert states == {
                    h.lead.reference: "leading",
                    h.outbid.reference: "outbid",
                    h.owed.reference: "no_bid",
                }
                rows = page.locator("[data-testid=registrations]")
                text = await rows.inner_text()
                for word in (
                    "领先",
                    "已被超越",
                    "待缴纳",
                    "已到账",
                    "已退还",
                    "已转为价款",
                    "竞得",
                    "未竞得",
                ):
                    assert word in text, word
                assert format_cny(h.proxy_max_fen) in text
                pay = await page.inner_text("[data-testid=pay-to]")
                assert settings.deposit_account_number in pay
                assert "成交余款" in pay and "竞买保证金" in pay
                wins = await page.inner_text("[data-testid=wins]")
                assert "待付款" in wins and "已付款" in wins
                transfers = await page.inner_text("[data-testid=transfers]")
                assert "等待银行注销质押登记" in transfers and "（由您提交）" in transfers
                refunds = await page.inner_text("[data-testid=refunds]")
                assert "保证金退还" in refunds and format_cny(DEPOSIT) in refunds
                assert "待付" in refunds
                documents = await page.inner_text("[data-testid=documents]")
                assert "成交确认书" in documents
                # Each item leads to its own page.
                await page.click(f"tr[data-transfer='{h.bought_sale}'] a")
                await page.wait_for_url(f"**/transfers/{h.bought_sale}")
                await page.close()
        finally:
            await browser.close()


def test_every_state_the_page_shows_has_its_words() -> None:
    from typing import get_args

    from market import i18n
    from market.payments.instructions import Status
    from market.transfer.models import NoticeKind, Step

    keys = [f"buyer.deposit.{s}" for s in get_args(views.DepositState)]
    keys += [f"buyer.bid.{s}" for s in get_args(views.BidState)]
    keys += [f"buyer.step.{s}" for s in get_args(Step)]
    keys += [f"escrow.kind.{k}" for k in get_args(NoticeKind)]
    keys += [f"payout_ins.status.{s}" for s in get_args(Status)]
    keys += [f"payout_ins.purpose.{p}" for p in get_args(views.RefundPurpose)]
    for lang in ("zh", "en"):
        assert [k for k in keys if k not in i18n.catalog(lang)] == [], lang
