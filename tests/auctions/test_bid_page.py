"""The buyer's lot page: who sees which forms, bids posted from the page
(htmx and plain), their answers in Chinese and English, and — in headless Chromium against
the real server — a bid that updates the bidder's page and another buyer's page without a
reload, with a countdown that runs, moves on an extension and ends."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from market.app import create_app
from market.clock import FrozenClock, SystemClock
from market.money import cny_capitals, format_cny
from market.notify import inbox
from market.settings import ROOT, Settings
from tests.auctions.test_live import START, Scene, bidding_scene, numsub
from tests.factories import PASSWORD, csrf, make_org, sign_in
from tests.servers import running_server, running_worker
from tests.test_browser import CHROMIUM_ARGS, _chromium


@pytest.fixture
async def client(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, clock)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as c:
        yield c


async def as_user(client: AsyncTestClient[Any], email: str) -> str:
    client.cookies.clear()
    assert (await sign_in(client, email)).status_code in (302, 303)
    return await csrf(client)


async def post_bid(
    client: AsyncTestClient[Any],
    scene: Scene,
    token: str,
    *,
    htmx: bool = True,
    **form: str,
) -> httpx.Response:
    headers = {"x-csrftoken": token}
    if htmx:
        headers["HX-Request"] = "true"
    return await client.post(
        f"/lots/{scene.lot.reference}/bids",
        data={"_csrf_token": token, **form},
        headers=headers,
        follow_redirects=False,
    )


async def bids_of(pool: asyncpg.Pool, lot_id: int) -> list[tuple[int, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT amount_fen, kind FROM bids WHERE lot_id = $1 ORDER BY seq", lot_id
        )
    return [(r["amount_fen"], r["kind"]) for r in rows]


# The "you lead" badge, shown or hidden (static/auction.js toggles it as the stream goes).
LEADS = 'data-live="you-lead" >'
BEHIND = 'data-live="you-lead" hidden>'


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


async def test_everyone_sees_the_board_only_a_confirmed_buyer_the_forms(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    # buyer 0 holds a pre-emptive right; buyers 0 and 1 paid their deposits, 2 did not.
    scene = await bidding_scene(pool, settings, clock.now(), buyers=3, holders=1, confirmed=2)
    holder, plain, unpaid = scene.buyers
    token = await as_user(client, plain.email)
    assert (await post_bid(client, scene, token, type="bid", amount=yuan(START))).status_code == 201
    url = f"/lots/{scene.lot.reference}"

    client.cookies.clear()
    page = (await client.get(url)).text  # a visitor
    assert 'data-testid="live"' in page and 'data-testid="bid-form"' not in page
    assert f"/lots/{scene.lot.reference}/events" in page and "/static/auction.js" in page
    assert format_cny(START) in page and plain.registration.bidder_code in page
    assert re.search(r'data-testid="countdown" role="timer">23:00:00<', page)  # opened 1 h ago
    assert 'data-testid="bid-history"' in page and "出价记录" in page
    for who in scene.buyers:  # codes only: no buyer's name on the public page
        async with pool.acquire() as conn:
            name = await conn.fetchval("SELECT name FROM organisations WHERE id=$1", who.org_id)
        assert name not in page

    await as_user(client, unpaid.email)
    page = (await client.get(url)).text
    assert 'data-testid="bid-form"' not in page and "保证金确认到账后方可出价" in page

    await as_user(client, plain.email)
    page = (await client.get(url)).text
    next_min = START + scene.increment_fen
    assert 'data-testid="bid-form"' in page and 'data-testid="proxy-form"' in page
    assert f'value="{yuan(next_min)}"' in page  # prefilled with the least next bid
    assert 'data-testid="match-form"' not in page and LEADS in page

    await as_user(client, holder.email)
    page = (await client.get(url)).text
    assert 'data-testid="match-form"' in page and "行使优先购买权" in page
    assert BEHIND in page
    keys = re.findall(r'name="idempotency_key" value="([0-9a-f]{32})"', page)
    assert len(keys) == 3 and len(set(keys)) == 3  # one fresh key per form

    bank_email = await _bank_email(pool, scene)
    await as_user(client, bank_email)
    page = (await client.get(url)).text
    assert 'data-testid="live"' in page and 'data-testid="bid-form"' not in page


async def _bank_email(pool: asyncpg.Pool, scene: Scene) -> str:
    async with pool.acquire() as conn:
        email: str = await conn.fetchval(
            "SELECT u.email FROM users u JOIN lots l ON l.bank_org_id = u.org_id WHERE l.id = $1",
            scene.lot.id,
        )
    return email


async def test_bids_from_the_page_with_their_answers(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=2, holders=1)
    holder, plain = scene.buyers
    inc = scene.increment_fen
    token = await as_user(client, plain.email)

    first = await post_bid(
        client, scene, token, type="bid", amount=yuan(START), idempotency_key="k1"
    )
    assert first.status_code == 201 and first.headers["X-Bid-Panel"] == "1"
    assert "出价成功 ¥700,000.00" in first.text and LEADS in first.text
    assert first.text.lstrip().startswith('<div id="bid-forms"')  # only the panel: htmx swaps it
    assert f'value="{yuan(START + inc)}"' in first.text  # the next least bid, prefilled anew
    # A double click: the same form again records nothing more and answers the same.
    again = await post_bid(
        client, scene, token, type="bid", amount=yuan(START), idempotency_key="k1"
    )
    assert again.status_code == 201 and "出价成功 ¥700,000.00" in again.text
    assert await bids_of(pool, scene.lot.id) == [(START, "manual")]
    # The same key for another bid is refused.
    reused = await post_bid(
        client, scene, token, type="bid", amount=yuan(START + 9 * inc), idempotency_key="k1"
    )
    assert reused.status_code == 422 and 'data-code="idempotency_key_reused"' in reused.text

    token = await as_user(client, holder.email)
    low = await post_bid(client, scene, token, type="bid", amount=yuan(START))
    assert low.status_code == 409 and 'data-code="too_low"' in low.text
    assert f"出价过低：最低可出价 {format_cny(START + inc)}" in low.text
    assert f'value="{yuan(START)}"' in low.text  # what the buyer typed stays for correction
    off = await post_bid(client, scene, token, type="bid", amount=yuan(START + inc + 1))
    assert off.status_code == 409 and 'data-code="not_on_increment"' in off.text
    bad = await post_bid(client, scene, token, type="bid", amount="七十万")
    assert bad.status_code == 422 and 'id="err-amount"' in bad.text and "请输入有效金额" in bad.text

    match = await post_bid(client, scene, token, type="match", idempotency_key="m1")
    assert match.status_code == 201 and "已行使优先购买权，跟价 ¥700,000.00" in match.text
    assert LEADS in match.text

    token = await as_user(client, plain.email)
    proxy = await post_bid(client, scene, token, type="proxy", max_amount=yuan(START + 10 * inc))
    assert (
        proxy.status_code == 201
        and f"代理出价已设置，最高 {format_cny(START + 10 * inc)}" in proxy.text
    )
    assert 'data-testid="proxy-standing"' in proxy.text
    not_holder = await post_bid(client, scene, token, type="match")
    assert not_holder.status_code == 409 and "只有优先购买权人可以跟价" in not_holder.text
    assert await bids_of(pool, scene.lot.id) == [
        (START, "manual"),
        (START, "match"),
        (START + inc, "proxy"),
    ]

    # The holder raises; the other buyer's proxy answers at once. In English this time.
    token = await as_user(client, holder.email)
    client.cookies["ipx_lang"] = "en"
    english = await post_bid(client, scene, token, type="bid", amount=yuan(START + 3 * inc))
    assert english.status_code == 201
    assert f"Bid accepted: {format_cny(START + 3 * inc)}" in english.text
    said = html.unescape(english.text)
    assert (
        f"Another bidder's proxy outbid you; the price is now {format_cny(START + 4 * inc)}" in said
    )


async def test_who_may_not_bid_is_told_why(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=2, confirmed=1)
    unpaid = scene.buyers[1]
    token = await as_user(client, unpaid.email)
    refused = await post_bid(client, scene, token, type="bid", amount=yuan(START))
    assert refused.status_code == 403 and "保证金尚未确认到账" in refused.text

    _, _, stranger = await make_org(pool, clock.now(), kind="buyer")
    token = await as_user(client, stranger)
    refused = await post_bid(client, scene, token, type="bid", amount=yuan(START))
    assert refused.status_code == 403 and "请先报名本轮竞价" in refused.text

    token = await as_user(client, await _bank_email(pool, scene))
    refused = await post_bid(client, scene, token, type="bid", amount=yuan(START))
    assert refused.status_code == 403 and "您所在单位的类型无权执行此操作" in refused.text

    _, _, pending = await make_org(pool, clock.now(), kind="buyer", status="pending")
    token = await as_user(client, pending)
    refused = await post_bid(client, scene, token, type="bid", amount=yuan(START))
    assert refused.status_code == 403 and "尚未通过交易所审核" in refused.text

    client.cookies.clear()
    token = await csrf(client)
    anonymous = await post_bid(client, scene, token, type="bid", amount=yuan(START))
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
    assert await bids_of(pool, scene.lot.id) == []


async def test_the_form_needs_its_csrf_token(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=1)
    await as_user(client, scene.buyers[0].email)
    forged = await client.post(
        f"/lots/{scene.lot.reference}/bids", data={"type": "bid", "amount": yuan(START)}
    )
    assert forged.status_code == 403
    assert await bids_of(pool, scene.lot.id) == []


async def test_without_javascript_the_whole_page_answers(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=1)
    token = await as_user(client, scene.buyers[0].email)
    page = await post_bid(client, scene, token, htmx=False, type="bid", amount=yuan(START))
    assert page.status_code == 201 and "<html" in page.text and scene.lot.title in page.text
    assert "出价成功 ¥700,000.00" in page.text
    assert re.search(r'data-testid="live-price">¥700,000.00<', page.text)
    low = await post_bid(client, scene, token, htmx=False, type="bid", amount="1")
    assert low.status_code == 409 and "<html" in low.text and 'data-code="too_low"' in low.text


async def test_a_lot_not_yet_open_shows_when_it_starts(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=1)
    async with pool.acquire() as conn:  # back to its announcement, two hours before bidding
        await conn.execute(
            "UPDATE lots SET status = 'announced', bidding_starts_at = $2 WHERE id = $1",
            scene.lot.id,
            clock.now() + timedelta(hours=2),
        )
    await as_user(client, scene.buyers[0].email)
    page = (await client.get(f"/lots/{scene.lot.reference}")).text
    assert "距开始" in page and re.search(r'role="timer">02:00:00<', page)
    assert 'data-testid="bid-form"' not in page and "竞价开始后方可出价" in page


# --- in Chromium, against the real server --------------------------------------------------


@pytest.fixture
def server(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


@pytest.fixture
def worker(settings: Settings) -> Iterator[None]:
    """The worker relays the outbid notices to the inbox."""
    with running_worker(settings):
        yield


@pytest.mark.browser
async def test_live_bidding_in_chromium(
    server: str,
    worker: None,
    pool: asyncpg.Pool,
    settings: Settings,
    redis: Redis,
    tmp_path: Path,
) -> None:
    from playwright.async_api import Page, async_playwright, expect

    executable = _chromium()
    now = SystemClock().now()
    scene = await bidding_scene(pool, settings, now, buyers=2)
    a, b = scene.buyers
    inc = scene.increment_fen
    # Three minutes left: inside the 5-minute extension window (the catalogue's default).
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE lots SET bidding_ends_at = $2 WHERE id = $1",
            scene.lot.id,
            now + timedelta(minutes=3),
        )
    url = f"{server}/lots/{scene.lot.reference}"

    async def signed_in(page: Page, email: str) -> None:
        await page.goto(server + "/login")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form.card button[type=submit]")
        await page.wait_for_load_state()
        await page.goto(url)
        await page.evaluate("window.__same_page = true")  # gone if the page reloads

    async def seconds_left(page: Page) -> int:
        text = await page.inner_text("[data-testid=countdown]")
        h, m, s = (int(x) for x in text.split(":"))
        return h * 3600 + m * 60 + s

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page_a = await (await browser.new_context()).new_page()
            # B's PC clock is an hour slow: its countdown must still follow the server's.
            context_b = await browser.new_context()
            await context_b.add_init_script(
                "const realNow = Date.now; Date.now = () => realNow() - 3600 * 1000;"
            )
            page_b = await context_b.new_page()
            await signed_in(page_a, a.email)
            await signed_in(page_b, b.email)
            # Both pages listen on one subscription of the server process.
            for _ in range(100):
                if await numsub(redis, scene.lot.id) == 1:
                    break
                await asyncio.sleep(0.05)
            assert await numsub(redis, scene.lot.id) == 1

            # The countdown shows and runs on the server's clock, whatever the PC's says.
            await expect(page_b.locator("[data-testid=countdown]")).to_have_text(
                re.compile(r"^00:0[23]:\d\d$")
            )
            await expect(page_a.locator("[data-testid=countdown]")).to_have_text(
                re.compile(r"^00:0[23]:\d\d$")
            )
            before = await seconds_left(page_a)
            await page_a.wait_for_timeout(1_300)
            assert 0 < before - await seconds_left(page_a) <= 2
            await expect(page_a.locator("[data-testid=live-price]")).to_have_text(format_cny(START))
            await expect(page_a.locator("[data-testid=live-leader]")).to_have_text("暂无")

            # A bids the prefilled least bid; its page shows it without a reload...
            await expect(page_a.locator("#bid-amount")).to_have_value(yuan(START))
            await page_a.click("[data-testid=bid-submit]")
            await expect(page_a.locator("[data-testid=bid-result]")).to_have_text(
                f"出价成功 {format_cny(START)}"
            )
            await expect(page_a.locator("[data-testid=live-leader]")).to_have_text(
                a.registration.bidder_code
            )
            await expect(page_a.locator("[data-testid=live-bid-count]")).to_have_text("1")
            # ...and B's page is told by the stream: price, leader, history, the extension.
            await expect(page_b.locator("[data-testid=live-leader]")).to_have_text(
                a.registration.bidder_code
            )
            await expect(page_b.locator("[data-testid=live-bid-count]")).to_have_text("1")
            await expect(page_b.locator("[data-testid=bid-history] tbody tr")).to_have_count(1)
            await expect(page_b.locator("#bid-amount")).to_have_value(yuan(START + inc))
            await expect(page_b.locator("[data-testid=countdown]")).to_have_text(
                re.compile(r"^00:0[45]:\d\d$")
            )

            # B raises by five increments with the quick button; A sees it pushed.
            await page_b.click("[data-testid=plus5]")
            await expect(page_b.locator("#bid-amount")).to_have_value(yuan(START + 5 * inc))
            # The amount about to be bid is said back in figures and capitals first.
            echo = page_b.locator("form.bid [data-testid=amount-echo]")
            await expect(echo).to_have_text(
                f"{format_cny(START + 5 * inc)} · {cny_capitals(START + 5 * inc)}"
            )
            await page_b.click("[data-testid=bid-submit]")
            await expect(page_b.locator("[data-testid=bid-result]")).to_have_text(
                f"出价成功 {format_cny(START + 5 * inc)}"
            )
            await expect(page_a.locator("[data-testid=live-price]")).to_have_text(
                format_cny(START + 5 * inc)
            )
            await expect(page_a.locator("[data-testid=live-leader]")).to_have_text(
                b.registration.bidder_code
            )
            await expect(page_a.locator("[data-testid=bid-history] tbody tr")).to_have_count(2)
            await expect(page_a.locator("#bid-amount")).to_have_value(yuan(START + 6 * inc))
            # A is told at once, by the same message, that it is behind and what to bid now;
            # its "出价成功" is no longer the truth and goes; the inbox count follows live.
            await expect(page_a.locator("[data-testid=outbid]")).to_have_text(
                f"您的出价已被超越：当前价 {format_cny(START + 5 * inc)}，"
                f"最低可出价 {format_cny(START + 6 * inc)}。"
            )
            await expect(page_a.locator("[data-testid=you-lead]")).to_be_hidden()
            await expect(page_a.locator("[data-testid=bid-result]")).to_be_hidden()
            await expect(page_b.locator("[data-testid=you-lead]")).to_be_visible()
            await expect(page_b.locator("[data-testid=outbid]")).to_be_hidden()
            for _ in range(100):  # the relay writes A's outbid notice to its inbox …
                async with pool.acquire() as conn:
                    if await conn.fetchval(
                        "SELECT count(*) FROM inbox WHERE user_id = $1 AND event = 'outbid'",
                        a.user_id,
                    ):
                        break
                await asyncio.sleep(0.05)
            unread = await inbox.unread_count(pool, a.user_id)
            # … and the header's count shows it without waiting for its 15-second poll
            await expect(page_a.locator("[data-testid=unread-count]")).to_have_text(
                str(unread), timeout=6_000
            )
            times = await page_a.locator("[data-testid=bid-history] time").all_inner_texts()
            assert all(re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times), times

            # A leads again, then B's proxy overtakes it: A is told it was a proxy.
            await page_a.click("[data-testid=bid-submit]")
            await expect(page_a.locator("[data-testid=you-lead]")).to_be_visible()
            await expect(page_a.locator("[data-testid=outbid]")).to_be_hidden()
            await page_b.fill("#proxy-max", yuan(START + 20 * inc))
            await expect(
                page_b.locator("form.proxy [data-testid=amount-echo-capitals]")
            ).to_have_text(cny_capitals(START + 20 * inc))
            await page_b.click("[data-testid=proxy-submit]")
            await expect(page_a.locator("[data-testid=outbid]")).to_have_text(
                f"其他竞买人的代理出价已超过您：当前价 {format_cny(START + 7 * inc)}，"
                f"最低可出价 {format_cny(START + 8 * inc)}。"
            )
            await expect(page_a.locator("[data-testid=you-lead]")).to_be_hidden()
            assert await page_a.evaluate("window.__same_page === true")
            assert await page_b.evaluate("window.__same_page === true")
            assert await page_a.locator("[data-live=reconnecting]").is_hidden()
            await page_b.screenshot(path=str(tmp_path / "lot-b.png"), full_page=True)

            # The end comes: the countdown says the round is over and the forms stop.
            async with pool.acquire() as conn:
                await conn.execute(
                    "UPDATE lots SET bidding_ends_at = $2 WHERE id = $1",
                    scene.lot.id,
                    SystemClock().now() + timedelta(seconds=3),
                )
            await page_a.reload()
            await expect(page_a.locator("[data-testid=countdown]")).to_have_text(
                re.compile(r"^00:00:0[0-3]$")
            )
            await expect(page_a.locator("[data-testid=countdown]")).to_have_text(
                "已结束，等待成交确认", timeout=8_000
            )
            await expect(page_a.locator("[data-testid=bid-submit]")).to_be_disabled()
        finally:
            await browser.close()
    assert await _amounts(pool, scene.lot.id) == [
        START,
        START + 5 * inc,
        START + 6 * inc,
        START + 7 * inc,
    ]


async def _amounts(pool: asyncpg.Pool, lot_id: int) -> list[int]:
    return [amount for amount, _ in await bids_of(pool, lot_id)]


def test_panel_header_name_matches_the_script() -> None:
    script = (ROOT / "static" / "auction.js").read_text(encoding="utf-8")
    from auctions.web_bidding import PANEL_HEADER

    assert f'getResponseHeader("{PANEL_HEADER}")' in script


async def test_a_large_bid_is_confirmed_on_the_page_with_its_amount_in_capitals(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=1)
    token = await as_user(client, scene.buyers[0].email)
    # Ten times the start: one zero too many, above the line of 3 × the valuation.
    typo = START * 10
    asked = await post_bid(client, scene, token, type="bid", amount=yuan(typo))
    assert asked.status_code == 409 and 'data-code="bid_needs_confirmation"' in asked.text
    assert 'data-testid="confirm-form"' in asked.text
    assert f'<strong data-testid="confirm-capitals">{cny_capitals(typo)}</strong>' in asked.text
    assert await bids_of(pool, scene.lot.id) == []
    confirmed = await post_bid(
        client, scene, token, type="bid", amount=yuan(typo), confirm="1", idempotency_key="c1"
    )
    assert confirmed.status_code == 201, confirmed.text
    assert await bids_of(pool, scene.lot.id) == [(typo, "manual")]


async def test_a_proxy_off_the_grid_is_rounded_down_with_a_note(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now(), buyers=1)
    async with pool.acquire() as conn:
        inc = await conn.fetchval("SELECT increment_fen FROM lots WHERE id=$1", scene.lot.id)
    token = await as_user(client, scene.buyers[0].email)
    typed = START + 5 * inc + inc // 3
    proxy = await post_bid(client, scene, token, type="proxy", max_amount=yuan(typed))
    said = html.unescape(proxy.text)
    assert proxy.status_code == 201
    assert f"代理出价已设置，最高 {format_cny(START + 5 * inc)}" in said
    assert (
        f"您填写的 {format_cny(typed)} 不在加价幅度上，已向下取整为 {format_cny(START + 5 * inc)}"
        in said
    )


async def test_an_amount_is_said_back_in_figures_and_capitals(
    client: AsyncTestClient[Any],
) -> None:
    echo = await client.get("/amounts/echo", params={"max_amount": "40万"})
    assert echo.status_code == 200
    assert "¥400,000.00" in echo.text and cny_capitals(40_000_000) in echo.text
    assert cny_capitals(40_000_000) == "肆拾万元整"
    wrong = await client.get("/amounts/echo", params={"amount": "3万4亿"})
    assert wrong.status_code == 200 and 'data-testid="amount-echo-error"' in wrong.text
    assert "¥" not in wrong.text
    client.cookies["ipx_lang"] = "en"
    english = await client.get("/amounts/echo", params={"amount": "1.2亿"})
    assert "¥120,000,000.00" in english.text and "壹亿贰仟万元整" in english.text
    empty = await client.get("/amounts/echo", params={"amount": " "})
    assert empty.status_code == 200 and empty.text.strip() == ""
