"""The lot wizard: a case's lot filled in from the case and published through the lots'
own commands; in Chromium, from the case page to a published lot in at most 15 actions."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock, SystemClock
from market.lots import services, wizard
from market.settings import Settings
from tests.factories import PASSWORD, csrf, sign_in
from tests.lots.factories import make_case
from tests.lots.test_lots import bank, count
from tests.test_browser import CHROMIUM_ARGS, _chromium, server  # noqa: F401 (fixture)

BEIJING = ZoneInfo("Asia/Shanghai")
MAX_ACTIONS = 15


def _fields(html: str) -> dict[str, str]:
    """The wizard's text inputs as the page fills them in."""
    return dict(re.findall(r'<input type="[a-z-]+" name="([a-z_]+)" value="([^"]*)"', html))


async def _wizard_form(client: AsyncTestClient[Any], case_id: int) -> dict[str, Any]:
    page = await client.get(f"/bank/cases/{case_id}/lots/wizard")
    assert page.status_code == 200, page.text
    form: dict[str, Any] = _fields(page.text)
    form["asset_ids"] = re.findall(r'name="asset_ids" value="(\d+)" checked', page.text)
    form["_csrf_token"] = await csrf(client)
    return form


async def test_wizard_fills_in_from_the_case_and_publishes(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, assets = await make_case(pool, clock.now(), org, user, assets=2)
    await sign_in(client, email)
    page = await client.get(f"/bank/cases/{case_id}/lots/wizard")
    # The case's documents are listed, by reference: nothing to upload.
    assert page.text.count('data-testid="wizard-document"') == 9
    assert 'type="file"' not in page.text
    form = await _wizard_form(client, case_id)
    assert sorted(int(a) for a in form["asset_ids"]) == assets
    assert form["start_price"] == "1000000.00"  # the whole valuation
    assert form["deposit_pct"] == "10" and form["increment"] == "5000.00"
    # 2026-01-05 10:00 Beijing + 30 days + the margin: the next 10:00 is 2026-02-05.
    assert form["bidding_starts_at"] == "2026-02-05T10:00"
    assert form["bidding_ends_at"] == "2026-02-06T10:00"
    r = await client.post(f"/bank/cases/{case_id}/lots/wizard", data=form, follow_redirects=False)
    assert r.status_code in (302, 303), r.text
    lot_id = int(r.headers["location"].rsplit("/", 1)[1])
    lot = await services.get_lot(pool, org, lot_id)
    assert lot.status == "announced" and lot.reference == "LOT-2026-000001"
    assert lot.deposit_fen == 100_000_00 and lot.start_price_fen == 1_000_000_00
    assert lot.bidding_starts_at == datetime(2026, 2, 5, 10, tzinfo=BEIJING)
    assert sorted(lot.asset_ids) == assets
    # Its assets are taken now: a second wizard of the case offers none.
    again = await client.get(f"/bank/cases/{case_id}/lots/wizard")
    assert "LOT-2026-000001" in again.text
    assert "checked" not in again.text


async def test_wizard_refusals_are_named_beside_their_fields_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    await sign_in(client, email)
    form = await _wizard_form(client, case_id)
    r = await client.post(f"/bank/cases/{case_id}/lots/wizard", data={**form, "deposit_pct": "25"})
    assert r.status_code == 422
    assert 'id="err-deposit_pct"' in r.text and "20%" in r.text
    r = await client.post(
        f"/bank/cases/{case_id}/lots/wizard", data={**form, "start_price": "600,000"}
    )
    assert r.status_code == 422 and 'id="err-start_price"' in r.text
    soon = (clock.now() + timedelta(days=2)).astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M")
    r = await client.post(
        f"/bank/cases/{case_id}/lots/wizard", data={**form, "bidding_starts_at": soon}
    )
    assert r.status_code == 422 and 'id="err-bidding_starts_at"' in r.text
    assert "北京时间 2026-02-04 10:00" in r.text
    assert await count(pool, "lots") == 0


async def test_wizard_publication_refused_leaves_a_draft_without_a_number(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, disclosed=False)
    await sign_in(client, email)
    form = await _wizard_form(client, case_id)
    page = await client.get(f"/bank/cases/{case_id}/lots/wizard")
    assert 'data-testid="wizard-missing"' in page.text
    r = await client.post(f"/bank/cases/{case_id}/lots/wizard", data=form)
    assert r.status_code == 409
    assert 'data-testid="action-error"' in r.text and 'data-testid="publish-blockers"' in r.text
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT status, reference FROM lots")
        numbers = await conn.fetchval("SELECT count(*) FROM lot_numbers WHERE last_number > 0")
    assert [(r["status"], r["reference"][:6]) for r in rows] == [("draft", "DRAFT-")]
    assert numbers == 0
    # "Save as draft only" stops before publication.
    case_id, _ = await make_case(pool, clock.now(), org, user)
    form = await _wizard_form(client, case_id)
    r = await client.post(
        f"/bank/cases/{case_id}/lots/wizard",
        data={**form, "intent": "draft"},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    lot = await services.get_lot(pool, org, int(r.headers["location"].rsplit("/", 1)[1]))
    assert lot.status == "draft" and lot.reference.startswith("DRAFT-")


def test_the_opening_suggested_is_the_first_morning_the_rules_allow() -> None:
    policy = services.policy_for(Settings())
    # 23:30 Beijing: + 30 days + 1 hour is 00:30 on 5 February, so 10:00 that day.
    now = datetime(2026, 1, 5, 23, 30, tzinfo=BEIJING)
    assert wizard.opening(policy, now, BEIJING) == datetime(2026, 2, 5, 10, tzinfo=BEIJING)
    # 08:00 Beijing: + 30 days + 1 hour is 09:00 on 4 February: 10:00 that day.
    now = datetime(2026, 1, 5, 8, 0, tzinfo=BEIJING)
    assert wizard.opening(policy, now, BEIJING) == datetime(2026, 2, 4, 10, tzinfo=BEIJING)
    # 09:30 Beijing: + 30 days + 1 hour is 10:30, past 10:00: the next morning.
    now = datetime(2026, 1, 5, 9, 30, tzinfo=BEIJING)
    assert wizard.opening(policy, now, BEIJING) == datetime(2026, 2, 5, 10, tzinfo=BEIJING)
    assert wizard.opening(policy, now, BEIJING) >= now + policy.announcement_period


class Counted:
    """The page's actions a person takes (clicks, fields filled, choices, files), counted."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.actions: list[str] = []

    async def click(self, selector: str) -> None:
        self.actions.append(f"click {selector}")
        await self.page.click(selector)

    async def fill(self, selector: str, value: str) -> None:
        self.actions.append(f"fill {selector}")
        await self.page.fill(selector, value)

    async def select_option(self, selector: str, value: str) -> None:
        self.actions.append(f"select {selector}")
        await self.page.select_option(selector, value)

    async def set_input_files(self, selector: str, files: Any) -> None:
        self.actions.append(f"upload {selector}")
        await self.page.set_input_files(selector, files=files)


@pytest.mark.browser
async def test_bank_goes_from_case_to_published_lot_in_few_actions_in_chromium(
    server: str,  # noqa: F811 (the fixture)
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    clock = FrozenClock(SystemClock().now())
    org, user, email, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, assets=3)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(server + "/login")
            await page.fill("input[name=email]", email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.card button[type=submit]")
            await page.goto(f"{server}/bank/cases/{case_id}")
            # From here on, the bank's actions are counted.
            bank_page = Counted(page)
            await bank_page.click("[data-testid=lot-wizard]")
            await page.wait_for_selector("[data-testid=wizard-form]")
            await bank_page.fill("[data-testid=wizard-title]", "锂电池正极材料专利包（3项）")
            await bank_page.click("[data-testid=wizard-publish]")
            await page.wait_for_selector("[data-testid=lot-status]")
            status = await page.inner_text("[data-testid=lot-status]")
            width = await page.evaluate("document.documentElement.scrollWidth")
            await page.screenshot(path=str(tmp_path / "wizard.png"))
        finally:
            await browser.close()
    assert status == "公告中"
    assert len(bank_page.actions) <= MAX_ACTIONS, bank_page.actions
    assert width <= 390  # no sideways scroll on a phone
    async with pool.acquire() as conn:
        lot = await conn.fetchrow("SELECT status, reference, title FROM lots")
    year = SystemClock().now().astimezone(BEIJING).year
    assert (lot["status"], lot["reference"]) == ("announced", f"LOT-{year}-000001")
    assert lot["title"] == "锂电池正极材料专利包（3项）"
