"""The bank's case pages: list, new case, the case page with its forms, and who may see them."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.cases.valuation import INDICATORS
from market.clock import FrozenClock
from tests.cases.factories import make_bank, make_flag, make_loan, make_lot
from tests.cases.test_documents import PDF, PNG
from tests.factories import csrf, make_org, sign_in

Client = AsyncTestClient[Any]


async def signed_in_bank(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> int:
    bank, _, email = await make_bank(pool, clock.now())
    r = await sign_in(client, email)
    assert r.status_code in (302, 303)
    return bank


async def open_via_page(client: Client, loan_id: int, **fields: Any) -> Any:
    form = {
        "_csrf_token": await csrf(client),
        "loan_id": str(loan_id),
        "principal": "4,200,000.00",
        "interest": "137,500.50",
        "costs": "8,000",
        **fields,
    }
    return await client.post("/bank/cases/new", data=form, follow_redirects=False)


async def test_new_case_lists_defaulted_loans_and_prefills_the_claim(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    defaulted = await make_loan(pool, clock.now(), bank)
    performing = await make_loan(pool, clock.now(), bank, default_date=None, npl_class=None)
    r = await client.get("/bank/cases/new")
    assert r.status_code == 200
    assert defaulted.loan_no in r.text and performing.loan_no not in r.text
    r = await client.get(f"/bank/cases/new?loan_id={defaulted.loan_id}")
    assert r.status_code == 200
    assert 'value="4,200,000.00"' in r.text and 'value="137,500.50"' in r.text
    for asset_id in defaulted.asset_ids:
        assert f'name="asset_ids" value="{asset_id}" checked' in r.text


async def test_open_a_case_through_the_page(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank, kinds=("patent", "trademark"))
    await make_flag(pool, clock.now(), bank, loan.asset_ids[0], "annuity_grace")
    r = await open_via_page(client, loan.loan_id, asset_ids=[str(a) for a in loan.asset_ids])
    assert r.status_code == 303, r.text
    case_url = r.headers["location"]
    assert re.fullmatch(r"/bank/cases/\d+", case_url)
    page = await client.get(case_url)
    assert page.status_code == 200
    assert "CZ-2026-" in page.text
    assert "¥4,345,500.50" in page.text  # principal + interest + CNY 8,000 costs
    assert 'data-testid="flag-annuity_grace"' in page.text and "年费滞纳" in page.text
    assert 'data-testid="item-annuity_status"' in page.text  # a patent case: patent items
    assert page.text.count("✗") == 9
    assert f'href="{case_url}/lots/new"' in page.text and "新建拍品" in page.text
    # the loan now has an open case: it leaves the list, and a second open is a conflict
    assert loan.loan_no not in (await client.get("/bank/cases/new")).text
    again = await open_via_page(client, loan.loan_id, asset_ids=[str(loan.asset_ids[0])])
    assert again.status_code == 409 and "已有未结处置案件" in again.text
    listing = await client.get("/bank/cases")
    assert listing.status_code == 200 and loan.loan_no in listing.text


async def test_new_case_form_errors_are_next_to_the_fields(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    r = await open_via_page(client, loan.loan_id, principal="12,34", costs="-5")
    assert r.status_code == 422
    assert 'id="err-principal"' in r.text and 'id="err-asset_ids"' in r.text
    assert 'id="err-costs"' in r.text
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM disposal_cases") == 0


async def test_valuation_forms(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case_url = (
        await open_via_page(client, loan.loan_id, asset_ids=[str(a) for a in loan.asset_ids])
    ).headers["location"]
    token = await csrf(client)
    r = await client.post(
        f"{case_url}/valuations",
        data={
            "_csrf_token": token,
            "method": "appraisal",
            "appraiser": "四川天健资产评估有限公司",
            "report_no": "川天健评报字〔2026〕第 1 号",
            "value": "3,600,000",
            "valued_on": "2026-01-09",
        },
    )
    assert r.status_code == 422
    assert 'data-testid="err-appraisal-valued_on"' in r.text and "晚于今天" in r.text
    assert "in the future" not in r.text  # the page's language only
    assert 'value="四川天健资产评估有限公司"' in r.text  # what was typed stays
    scores = {f"score_{k}": "80" for k in INDICATORS}
    r = await client.post(
        f"{case_url}/valuations",
        data={
            "_csrf_token": token,
            "method": "internal",
            "base_value": "2,000,000",
            "basis": "收益法",
            **scores,
            "score_market_size": "180",
        },
    )
    assert r.status_code == 422 and 'data-testid="err-internal-score_market_size"' in r.text
    r = await client.post(
        f"{case_url}/valuations",
        data={
            "_csrf_token": token,
            "method": "internal",
            "base_value": "2,000,000",
            "basis": "收益法：许可费节省法",
            **scores,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = await client.get(case_url)
    assert 'data-testid="explanation"' in page.text and "综合得分" in page.text
    assert "¥2,666,600.00" in page.text  # 80 / 60 = 1.3333
    assert "由内部评估说明满足" in page.text


async def test_documents_through_the_page(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank, kinds=("trademark",))
    case_url = (
        await open_via_page(client, loan.loan_id, asset_ids=[str(a) for a in loan.asset_ids])
    ).headers["location"]
    token = await csrf(client)
    r = await client.post(
        f"{case_url}/documents",
        data={"_csrf_token": token, "item": "payment_accounts"},
        files={"file": ("收款账户.pdf", PNG, "application/pdf")},
    )
    assert r.status_code == 422 and "PNG" in r.text
    assert 'data-testid="err-doc.payment_accounts-file"' in r.text
    r = await client.post(
        f"{case_url}/documents",
        data={"_csrf_token": token, "item": "payment_accounts"},
        files={"file": ("收款账户.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = await client.get(case_url)
    assert "收款账户.pdf" in page.text and hashlib.sha256(PDF).hexdigest()[:12] in page.text
    link = re.search(rf'href="({case_url}/documents/\d+)"', page.text)
    assert link
    download = await client.get(link.group(1))
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert page.text.count("✗") == 4  # trademark case: 5 general items, one present
    # a published lot freezes the claim and the documents
    case_id = int(case_url.rsplit("/", 1)[1])
    await make_lot(pool, clock.now(), bank, case_id, status="announced")
    page = await client.get(case_url)
    assert 'data-testid="claim-form"' not in page.text and "撤下" not in page.text
    assert "电池热管理专利包" in page.text  # the lot is listed


async def test_who_may_see_case_pages(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    assert (await client.get("/bank/cases", follow_redirects=False)).status_code in (302, 303)
    bank_a = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank_a, kinds=("trademark",))
    case_url = (
        await open_via_page(client, loan.loan_id, asset_ids=[str(a) for a in loan.asset_ids])
    ).headers["location"]
    r = await client.post(
        f"{case_url}/documents",
        data={"_csrf_token": await csrf(client), "item": "taxes_fees"},
        files={"file": ("税费.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    doc_url = re.search(rf'href="({case_url}/documents/\d+)"', (await client.get(case_url)).text)
    assert r.status_code == 303 and doc_url

    _, _, buyer_email = await make_org(pool, clock.now(), kind="buyer")
    await sign_in(client, buyer_email)
    assert (await client.get("/bank/cases")).status_code == 403
    assert (await client.get(case_url)).status_code == 403

    await signed_in_bank(client, pool, clock)  # bank B
    assert (await client.get(case_url)).status_code == 404
    assert (await client.get(doc_url.group(1))).status_code == 404
    r = await client.post(
        f"{case_url}/claim",
        data={"_csrf_token": await csrf(client), "principal": "1", "interest": "1", "costs": "1"},
    )
    assert r.status_code == 404
    r = await client.get(f"/bank/cases/new?loan_id={loan.loan_id}")
    assert r.status_code == 404
    assert loan.loan_no not in (await client.get("/bank/cases")).text


async def test_numbers_that_are_not_ascii_digits_are_named_not_500(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    assets = [str(a) for a in loan.asset_ids]
    for bad in ("²", "abc", str(2**63)):  # "²".isdigit() is true; int("²") fails
        r = await open_via_page(client, bad, asset_ids=assets)
        assert r.status_code == 422, bad
        assert 'id="err-loan_id"' in r.text, bad  # a hidden field: said above the list
    r = await open_via_page(client, loan.loan_id, asset_ids=["²", str(2**63)])
    assert r.status_code == 422 and 'id="err-asset_ids"' in r.text
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM disposal_cases") == 0

    case_url = (await open_via_page(client, loan.loan_id, asset_ids=assets)).headers["location"]
    scores = {f"score_{k}": "80" for k in INDICATORS}
    r = await client.post(
        f"{case_url}/valuations",
        data={
            "_csrf_token": await csrf(client),
            "method": "internal",
            "base_value": "2,000,000",
            "basis": "收益法",
            **scores,
            "score_market_size": "⁸⁰",
        },
    )
    assert r.status_code == 422 and 'data-testid="err-internal-score_market_size"' in r.text


async def test_a_case_page_speaks_its_readers_language(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case_url = (
        await open_via_page(client, loan.loan_id, asset_ids=[str(a) for a in loan.asset_ids])
    ).headers["location"]
    scores = {f"score_{k}": "80" for k in INDICATORS}
    r = await client.post(
        f"{case_url}/valuations",
        data={
            "_csrf_token": await csrf(client),
            "method": "internal",
            "base_value": "2,000,000",
            "basis": "收益法",
            **scores,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    zh = (await client.get(case_url)).text
    assert "综合得分" in zh and "法律稳定性（有效性）" in zh and "Weighted score" not in zh
    client.cookies.set("ipx_lang", "en")
    en = (await client.get(case_url)).text
    assert "Weighted score" in en and "Legal stability (validity)" in en
    assert "¥2,666,600.00" in en and "综合得分" not in en and "法律稳定性" not in en
    r = await client.post(
        f"{case_url}/valuations",
        data={
            "_csrf_token": await csrf(client),
            "method": "appraisal",
            "appraiser": "四川天健资产评估有限公司",
            "report_no": "川天健评报字〔2026〕第 1 号",
            "value": "3,600,000",
            "valued_on": "2026-01-09",
        },
    )
    assert r.status_code == 422 and "is in the future" in r.text and "晚于今天" not in r.text


async def test_upload_and_removal_refusals_are_shown(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await signed_in_bank(client, pool, clock)
    loan = await make_loan(pool, clock.now(), bank, kinds=("trademark",))
    case_url = (
        await open_via_page(client, loan.loan_id, asset_ids=[str(a) for a in loan.asset_ids])
    ).headers["location"]
    token = await csrf(client)
    # no file chosen: beside the item's file field
    r = await client.post(
        f"{case_url}/documents",
        data={"_csrf_token": token, "item": "taxes_fees"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert r.status_code == 422 and 'data-testid="err-doc.taxes_fees-file"' in r.text
    # an item that is not on the checklist (a patent item on a trademark case): above the forms
    r = await client.post(
        f"{case_url}/documents",
        data={"_csrf_token": token, "item": "file_history"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 422 and "不是本案披露清单中的项目" in r.text
    r = await client.post(
        f"{case_url}/documents",
        data={"_csrf_token": token, "item": "taxes_fees"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    doc_url = re.search(rf'href="({case_url}/documents/\d+)"', (await client.get(case_url)).text)
    assert doc_url
    case_id = int(case_url.rsplit("/", 1)[1])
    await make_lot(pool, clock.now(), bank, case_id, status="announced")
    r = await client.post(f"{doc_url.group(1)}/remove", data={"_csrf_token": token})
    assert r.status_code == 409 and "披露文件不可撤下" in r.text
    assert (await client.get(doc_url.group(1))).status_code == 200  # still there
