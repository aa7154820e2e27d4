"""Every page, as every role of the demo exchange sees it, in Chinese, in headless Chromium.

The pages are read off the app's route table (each GET page a role's permission admits,
with ids of that role's own objects), so a new page is visited without anyone adding it
here. On each, the text a person reads must hold no message id (a catalog key shown
instead of its text — a missing translation) and no internal code (a snake_case name, a
status or kind as the database spells it, a ledger account code). Every page must be
visited by at least one role.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from litestar.handlers import HTTPRouteHandler

from market import i18n
from market.accounts.models import Viewer
from market.accounts.permissions import PUBLIC_PATHS, permission_of, refusal
from market.app import create_app
from market.clock import FrozenClock
from market.demo import DEMO_PASSWORD, seed_demo
from market.money import format_cny
from market.settings import ROOT, Settings
from tests.acquisition.scene import demo_attempt
from tests.cases.paths_scene import EXPECTED, SOLD_PRICE, whole_history
from tests.factories import viewer
from tests.licensing.test_browser_offers import signed_in
from tests.servers import running_server
from tests.test_browser import CHROMIUM_ARGS, _chromium

pytestmark = pytest.mark.browser

# GET routes that answer no page: files, streams, probes.
NOT_PAGES = {
    "healthz",
    "web_collateral_csv_template",
    "web_download_document",
    "web_lot_document",
    "web_lot_events",
    "web_licence_recordal_document",
    "web_transfer_notice_document",
    "web_operator_transfer_document",
    "web_operator_org_document",
    "web_operator_invoice_export_file",
    "web_operator_payment_file",
    "web_reconciliation_export_bank",
    "web_reconciliation_export_case",
    "web_reconciliation_export_pool",
    "web_reconciliation_template",
    "web_download_sale_document",
}
# The demo's people, one of each role (market/demo.py); None is nobody signed in.
ROLES = [
    None,
    "operator@ipx.demo",
    "bank@ipx.demo",
    "pool@ipx.demo",
    "buyer@ipx.demo",
    "newbuyer@ipx.demo",  # a buyer awaiting approval
    "pledgor@ipx.demo",
    "acquirer@ipx.demo",
]
# Ids of the signed-in organisation's own objects ($1), or of anything public.
OWN_IDS = {
    # A bank's own case; a pledgor's case of a loan it borrowed (by credit code).
    # The operator reads any case's paths.
    "case_id": "SELECT c.id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id"
    " JOIN pledgors p ON p.id = l.pledgor_id JOIN organisations o ON o.id = $1"
    " WHERE c.bank_org_id = $1 OR (o.kind = 'pledgor' AND p.credit_code = o.credit_code)"
    " OR o.kind = 'operator'",
    "open_licence_id": "SELECT id FROM open_licences WHERE status <> 'proposed'"
    " AND $1::bigint >= 0",
    "loan_id": "SELECT id FROM loans WHERE bank_org_id = $1",
    # A contract the organisation is a party to (the demo buyer took the demo pledgor's
    # open licence from the demo bank); the operator reads any.
    "contract_id": "SELECT k.id FROM licence_contracts k JOIN organisations o ON o.id = $1"
    " WHERE o.kind = 'operator' OR o.id IN (k.bank_org_id, k.licensee_org_id, k.pledgor_org_id)",
    "asset_id": "SELECT id FROM ip_assets WHERE bank_org_id = $1",
    # A sale held in escrow the organisation is party to (its forms show); the operator
    # reads any.
    "sale_id": "SELECT t.sale_id FROM transfers t JOIN sales s ON s.id = t.sale_id"
    " JOIN lots l ON l.id = s.lot_id JOIN organisations o ON o.id = $1"
    " WHERE t.status = 'in_escrow'"
    " AND (o.kind = 'operator' OR $1 IN (s.buyer_org_id, l.bank_org_id))",
    "import_id": "SELECT id FROM collateral_imports WHERE bank_org_id = $1",
    # A bank's own lot; the operator reads any.
    "lot_id": "SELECT l.id FROM lots l JOIN organisations o ON o.id = $1"
    " WHERE l.bank_org_id = $1 OR o.kind = 'operator'",
    "pool_id": "SELECT id FROM pools WHERE org_id = $1",
    "statement_id": "SELECT id FROM statements WHERE org_id = $1",
    "reference": "SELECT reference FROM lots WHERE status <> 'draft' AND $1::bigint IS NOT NULL",
    # The operator reviews every organisation; the demo's pending buyer is the one to see.
    "org_id": "SELECT id FROM organisations WHERE status = 'pending' AND $1::bigint >= 0",
    "version": "SELECT version FROM bidding_agreements WHERE $1::bigint >= 0",
    # A sale document's verification page is public: any code verifies.
    "code": "SELECT code FROM sale_documents WHERE $1::bigint >= 0",
    # The invitation form renders for any link; the link is checked when it is used.
    "token": "SELECT '1.link-from-the-email' WHERE $1::bigint >= 0",
}
PARAM = re.compile(r"\{(\w+):\w+\}")


def _pages(app: typing.Any) -> Iterator[tuple[str, HTTPRouteHandler]]:
    for route in app.routes:
        if route.path.startswith(("/api/", *PUBLIC_PATHS)):
            continue
        for handler in getattr(route, "route_handlers", ()):
            if (
                isinstance(handler, HTTPRouteHandler)
                and "GET" in handler.http_methods
                and str(handler.operation_id) not in NOT_PAGES
            ):
                yield route.path, handler


def _internal_words() -> set[str]:
    """The values the code and the database use for statuses, kinds, roles, events…:
    every string of a `Literal[...]` in the source and of a CHECK (… IN (…)) list."""
    words: set[str] = set()
    for folder in ("market", "auctions"):
        for path in (ROOT / folder).rglob("*.py"):
            for literal in re.findall(r"Literal\[([^\]]+)\]", path.read_text(encoding="utf-8")):
                words |= set(re.findall(r'"([a-z][a-z_]*)"', literal))
    for path in (ROOT / "sql" / "migrations").glob("*.sql"):
        for listed in re.findall(r"IN \(([^)]*)\)", path.read_text(encoding="utf-8")):
            words |= set(re.findall(r"'([a-z][a-z_]*)'", listed))
    return words


KEY_PREFIXES = {key.split(".")[0] for key in i18n.message_ids()}
UNTRANSLATED = re.compile(
    r"(?<![\w@/.-])(?:" + "|".join(sorted(KEY_PREFIXES)) + r")\.[a-z0-9_.]*[a-z0-9_]"
)
SNAKE = re.compile(r"(?<![\w./@-])[a-z]+(?:_[a-z0-9]+)+(?![\w.@-])")
LEDGER_CODE = re.compile(r"\b[a-z_]+:[a-z_]+:\d+\b")
ASCII_WORD = re.compile(r"(?<![\w./@:-])[a-z]+(?![\w.@:-])")

# The text a person reads: what the browser renders, without code samples (an API scope
# or a file's column name is shown as code on purpose) and without what people typed.
VISIBLE_TEXT = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('code, pre, script, style, template, textarea, select, noscript')
      .forEach((e) => e.remove());
  document.body.appendChild(body);
  body.style.position = 'absolute';
  const text = body.innerText;
  body.remove();
  return text;
}"""


def problems_on(text: str, internal: set[str]) -> list[str]:
    found = [f"message id {m}" for m in UNTRANSLATED.findall(text)]
    found += [f"code {m}" for m in SNAKE.findall(text)]
    found += [f"ledger account {m}" for m in LEDGER_CODE.findall(text)]
    found += [f"internal word {w}" for w in ASCII_WORD.findall(text) if w in internal]
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    internal = _internal_words()
    assert {"pending", "approved", "bidding", "fixed_price"} <= internal
    assert problems_on("状态：pending", internal) == ["internal word pending"]
    assert problems_on("拍品 cases.status.open", internal) == ["message id cases.status.open"]
    assert problems_on("账户 payable:pool:12", internal) == ["ledger account payable:pool:12"]
    assert problems_on("方式 fixed_price", internal) == ["code fixed_price"]
    assert problems_on("邮箱 bank@ipx.demo，文件 a_b.csv，专利 CN202110001234.5", internal) == []


@pytest.fixture
def server(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


async def _urls(
    pool: asyncpg.Pool, app: typing.Any, me: Viewer | None
) -> tuple[list[str], set[str]]:
    """The pages `me` may open, with ids of its own; and the operation ids opened."""
    urls, opened = [], set()
    for path, handler in _pages(app):
        permission = permission_of(handler)
        if permission is not None and (
            me is None or refusal(permission, me.org_kind, me.org_status, me.role) is not None
        ):
            continue
        values = {}
        for param in PARAM.findall(path):
            values[param] = await pool.fetchval(
                OWN_IDS[param] + " ORDER BY 1 LIMIT 1", me.org_id if me else 0
            )
        if any(v is None for v in values.values()):
            continue
        urls.append(PARAM.sub(lambda m, v=values: str(v[m.group(1)]), path))
        opened.add(str(handler.operation_id))
    return urls, opened


async def test_every_page_of_every_role_speaks_chinese_without_codes(
    server: str, settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    await seed_demo(settings, force=True)
    # An acquisition at an agreed price in its pools' objection window, by the demo
    # acquisition institution: the bank's section, the pool manager's objection form, the
    # acquirer's answer and the operator's list show it.
    await demo_attempt(pool, datetime.now(UTC), taker=True)
    app = create_app(settings)
    internal = _internal_words()
    every_page = {str(h.operation_id) for _, h in _pages(app)}
    opened_by_someone: set[str] = set()
    found: list[str] = []
    visits = 0
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for email in ROLES:
                me = None
                context = await browser.new_context(locale="zh-CN")
                page = await context.new_page()
                if email is not None:
                    user_id = await pool.fetchval("SELECT id FROM users WHERE email = $1", email)
                    me = await viewer(pool, user_id)
                    await page.goto(server + "/login")
                    await page.fill("input[name=email]", email)
                    await page.fill("input[name=password]", DEMO_PASSWORD)
                    await page.click("form[action='/login'] button[type=submit]")
                    await page.wait_for_load_state()
                if email == "pool@ipx.demo":  # the demo's statement, reconciled as it says
                    await page.goto(server + "/reconciliation")
                    await page.set_input_files(
                        "input[type=file]", str(settings.data_dir / "demo" / "demo-statement.csv")
                    )
                    await page.click("form[enctype='multipart/form-data'] button[type=submit]")
                    await page.wait_for_load_state()
                urls, opened = await _urls(pool, app, me)
                opened_by_someone |= opened
                for url in urls:
                    response = await page.goto(server + url)
                    assert response is not None
                    visits += 1
                    if response.status >= 500:
                        found.append(f"{email}: {url} answered {response.status}")
                        continue
                    text = await page.evaluate(VISIBLE_TEXT)
                    found += [f"{email}: {url}: {what}" for what in problems_on(text, internal)]
                await context.close()
        finally:
            await browser.close()
    assert found == [], "\n".join(sorted(set(found)))
    assert visits > 30
    assert every_page - opened_by_someone == set(), "pages no role opened"


async def test_a_case_shows_every_path_it_tried_in_order_in_chinese(
    server: str, settings: Settings, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """The case that went listing (no intent) → extended → auction unsold → relisted and
    sold, on the bank's case page and the operator's view (docs/rules.md §Moving between
    paths): each try in order, its kind and outcome in Chinese, the sale's price, and no
    code or message id anywhere on the page."""
    from playwright.async_api import async_playwright

    h = await whole_history(pool, clock, settings)
    # The factories name an organisation after its kind ("bank 3 有限公司"), a word the scan
    # flags: the people here have Chinese names, as the demo's do.
    await pool.execute(
        "UPDATE organisations SET name = '成都农商银行' WHERE id = $1", h.scene.bank.org_id
    )
    await pool.execute(
        "UPDATE organisations SET name = '知识产权交易所' WHERE id = $1", h.scene.operator.org_id
    )
    internal = _internal_words()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            for user_id, url in (
                (h.scene.bank.user_id, f"/bank/cases/{h.case_id}"),
                (h.scene.operator.user_id, f"/operator/cases/{h.case_id}/paths"),
            ):
                page = await signed_in(browser, server, pool, user_id)
                response = await page.goto(server + url)
                assert response is not None and response.status == 200, url
                tries = page.locator("[data-testid=try]")
                shown = [
                    (
                        await tries.nth(i).get_attribute("data-kind"),
                        await tries.nth(i).get_attribute("data-outcome"),
                    )
                    for i in range(await tries.count())
                ]
                assert shown == [(kind, outcome) for kind, _, outcome, _ in EXPECTED], url
                words = [
                    (
                        await tries.nth(i).locator("[data-testid=try-kind]").inner_text(),
                        await tries.nth(i).locator("[data-testid=try-outcome]").inner_text(),
                    )
                    for i in range(await tries.count())
                ]
                assert words == [
                    ("挂牌转让", "无合格意向，已延期挂牌"),
                    ("挂牌转让", "两个以上合格意向方，转为网络竞价"),
                    ("第 1 轮拍卖", "流拍"),
                    ("第 2 轮拍卖", "成交"),
                ], url
                amount = await tries.nth(3).locator("[data-testid=try-amount]").inner_text()
                assert amount == format_cny(SOLD_PRICE)
                assert await page.locator("[data-testid=no-next-path]").count() == 1
                text = await page.evaluate(VISIBLE_TEXT)
                assert problems_on(text, internal) == [], url
                # No sideways scroll at 390 px.
                await page.set_viewport_size({"width": 390, "height": 800})
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (url, width)
                await page.context.close()
        finally:
            await browser.close()
