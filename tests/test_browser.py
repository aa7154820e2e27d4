"""A smoke test in a real headless Chromium against the real server (granian)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from market.clock import SystemClock
from market.screenshots import CHROMIUM_ARGS
from market.settings import Settings
from tests.factories import PASSWORD, credit_code, make_org
from tests.servers import running_server

CHROMIUM = os.environ.get("MARKET_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.browser
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path:
        return path
    message = "Chromium is missing: install Debian's package with 'apt-get install chromium'"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must never pass by skipping the browser
    pytest.skip(message)


@pytest.fixture
def server(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


async def test_register_then_operator_approves_in_chromium(
    server: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    _, _, operator_email = await make_org(pool, SystemClock().now(), kind="operator")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(server + "/")
            assert "知识产权质物处置" in await page.inner_text("h1")
            await page.click("[data-testid=lang-switch]")
            assert "Disposal of pledged IP" in await page.inner_text("h1")
            await page.click("[data-testid=lang-switch]")

            # A buyer registers; a wrong credit code is refused next to its field.
            await page.goto(server + "/register")
            await page.fill("input[name=name]", "无锡芯动半导体有限公司")
            good = credit_code(909090)
            await page.fill(
                "input[name=credit_code]", good[:-1] + ("1" if good[-1] != "1" else "2")
            )
            await page.fill("input[name=display_name]", "吴工")
            await page.fill("input[name=email]", "wu@xindong.test")
            await page.fill("input[name=password]", "a long password 123")
            await page.click("form.card button[type=submit]")
            assert "校验码" in await page.inner_text("#err-credit_code")
            await page.fill("input[name=credit_code]", good)
            await page.fill("input[name=password]", "a long password 123")
            await page.set_input_files(
                "input[name=doc_business_licence]",
                files=[{"name": "营业执照.pdf", "mimeType": "application/pdf", "buffer": PDF}],
            )
            await page.click("form.card button[type=submit]")
            assert "待" in await page.inner_text("[role=status]")

            # The operator signs in and approves it.
            await page.goto(server + "/login")
            await page.fill("input[name=email]", operator_email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.card button[type=submit]")
            await page.goto(server + "/operator/organisations")
            row = page.locator("tr", has_text="无锡芯动半导体有限公司")
            await row.locator("a", has_text="审核").click()
            # The licence the buyer uploaded is there to look at before approving.
            assert "营业执照.pdf" in await page.inner_text("main")
            await page.locator("button", has_text="通过").click()
            await page.wait_for_load_state()
            assert "已通过" in await page.inner_text("[data-testid=org-status]")
            await page.goto(server + "/operator/organisations")
            assert await page.locator("tr", has_text="无锡芯动半导体有限公司").count() == 0
            await page.screenshot(path=str(tmp_path / "operator.png"))
        finally:
            await browser.close()
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM organisations WHERE credit_code = $1", good
        )
    assert status == "approved"


async def test_operator_onboards_a_bank_whose_admin_joins_and_invites_in_chromium(
    server: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    from playwright.async_api import async_playwright

    from market.accounts.people import invitation_link

    executable = _chromium()
    _, _, operator_email = await make_org(pool, SystemClock().now(), kind="operator")
    pdf = {"mimeType": "application/pdf", "buffer": PDF}
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(server + "/login")
            await page.fill("input[name=email]", operator_email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.card button[type=submit]")
            await page.goto(server + "/operator/organisations")
            await page.select_option("select[name=kind]", "bank")
            await page.fill("input[name=name]", "宁波银行科技支行")
            await page.fill("input[name=credit_code]", credit_code(818181))
            await page.fill("input[name=admin_email]", "admin@nbbank.test")
            await page.set_input_files(
                "input[name=doc_business_licence]", files=[{"name": "licence.pdf", **pdf}]
            )
            await page.set_input_files(
                "input[name=doc_authorisation_letter]", files=[{"name": "letter.pdf", **pdf}]
            )
            await page.click("form.card button[type=submit]")
            await page.wait_for_url("**/operator/organisations/*")
            text = await page.inner_text("main")
            assert "宁波银行科技支行" in text and "licence.pdf" in text and "letter.pdf" in text
            await page.locator("button", has_text="通过").click()
            await page.wait_for_load_state()
            assert "已通过" in await page.inner_text("[data-testid=org-status]")

            # The administrator follows the e-mail's link and joins.
            invitation = await pool.fetchval(
                "SELECT id FROM invitations WHERE email = 'admin@nbbank.test'"
            )
            async with pool.acquire() as conn:
                link = await invitation_link(conn, settings.secret_key, server, invitation)
            admin = await browser.new_page()
            await admin.goto(link)
            await admin.fill("input[name=display_name]", "宁管理")
            await admin.fill("input[name=password]", "a long password 77")
            await admin.click("form.card button[type=submit]")
            await admin.wait_for_url("**/login**")
            await admin.fill("input[name=email]", "admin@nbbank.test")
            await admin.fill("input[name=password]", "a long password 77")
            await admin.click("form.card button[type=submit]")
            await admin.goto(server + "/account/people")
            await admin.fill("form.card input[name=email]", "clerk@nbbank.test")
            await admin.select_option("form.card select[name=role]", "read_only")
            await admin.click("form.card button[type=submit]")
            await admin.wait_for_load_state()
            row = admin.locator("tr", has_text="clerk@nbbank.test")
            assert "只读" in await row.inner_text() and "待接受" in await row.inner_text()
        finally:
            await browser.close()
    role = await pool.fetchval(
        "SELECT role FROM invitations WHERE email = 'clerk@nbbank.test' AND accepted_at IS NULL"
    )
    assert role == "read_only"
