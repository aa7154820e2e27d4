"""The catalogue over HTTP: API, search page, htmx fragment, lot page, document downloads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from tests.catalogue.factories import (
    Bank,
    Lot,
    flag,
    make_asset,
    make_bank_case,
    make_document,
    make_lot,
    make_valuation,
    preemptive,
)
from tests.factories import make_org, sign_in

SECRET_NOTE = "内部备注：借款人实控人已失联"

Client = AsyncTestClient[Any]


async def published_lot(pool: asyncpg.Pool, clock: FrozenClock) -> tuple[Bank, Lot, dict[str, int]]:
    at = clock.now()
    bank = await make_bank_case(pool, at, notes=SECRET_NOTE, name="成都农商银行")
    patent = await make_asset(
        pool,
        at,
        bank,
        number="202110123456.7",
        licences="2023 年起普通许可予某电池厂，期限 5 年",
        encumbrances="无其他质押",
    )
    mark = await make_asset(pool, at, bank, kind="trademark", title="蜀锦", number="12345678")
    lot = await make_lot(
        pool,
        at,
        bank,
        status="bidding",
        current_price_fen=1_050_000_00,
        ends_in=timedelta(hours=5),
        assets=[patent, mark],
        valuation_fen=1_500_000_00,  # all the case's assets: the whole valuation
        kinds=("patent", "trademark"),
        description="含发明专利一项及注册商标一件，打包处置。",
        terms={
            "extension_window_s": 300,
            "extension_s": 300,
            "payment_days": 10,
            "fee": {
                "kind": "commission",
                "tiers": [
                    {"up_to_fen": 2_000_000_00, "rate_bp": 500},
                    {"up_to_fen": None, "rate_bp": 300},
                ],
                "premium_bp": 0,
            },
        },
    )
    await make_valuation(pool, at, bank)
    await flag(pool, at, bank, patent[0], "annuity_grace")
    await preemptive(pool, lot, ["四川某大学", "某电池厂"])
    docs = {
        "report": await make_document(pool, at, bank, filename="评估报告.pdf"),
        "hidden": await make_document(
            pool, at, bank, item="payment_accounts", filename="账户.pdf", public=False
        ),
        "removed": await make_document(
            pool, at, bank, item="chain_of_title", filename="旧版.pdf", removed=True
        ),
    }
    return bank, lot, docs


# --- API --------------------------------------------------------------------------------


async def test_api_search_and_validation(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, _ = await published_lot(pool, clock)
    bank = await make_bank_case(pool, clock.now())
    await make_lot(pool, clock.now(), bank, title="锂电池草稿", status="draft")

    response = await client.get("/api/v1/lots", params={"q": "锂电池"})
    assert response.status_code == 200
    body = response.json()
    assert [i["reference"] for i in body["items"]] == [lot.reference]
    assert body["total"] == 1 and body["has_next"] is False and body["sort"] == "ending"

    response = await client.get("/api/v1/lots", params={"price_min": "9", "price_max": "1"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "price_range_reversed" and problem["field"] == "price_min"
    assert problem["params"] == {"min_fen": 900, "max_fen": 100}
    assert problem["detail"] == "price_min：最低价 ¥9.00 高于最高价 ¥1.00。"  # Chinese by default
    response = await client.get("/api/v1/lots", params={"sort": "random"})
    assert response.status_code == 422 and response.json()["field"] == "sort"
    assert response.json()["code"] == "not_a_choice"
    assert response.json()["params"]["value"] == "random"
    response = await client.get(
        "/api/v1/lots", params={"status": "draft"}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 422 and response.json()["field"] == "status"
    assert response.json()["code"] == "draft_not_public"
    assert response.json()["detail"].startswith("status: Draft lots are not public")
    # amounts typed in yuan go through the one parser, and its refusals name the parameter
    assert (await client.get("/api/v1/lots", params={"price_max": "120万"})).status_code == 200
    response = await client.get("/api/v1/lots", params={"price_max": "2万3亿"})
    assert response.status_code == 422
    assert response.json()["code"] == "amount_in_wan"
    assert response.json()["field"] == "price_max"


async def test_api_lot_detail_is_public_only(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, docs = await published_lot(pool, clock)
    response = await client.get(f"/api/v1/lots/{lot.reference}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "bidding" and body["seller"] == "成都农商银行"
    assert body["terms"]["payment_days"] == 10 and body["terms"]["preemptive_holders"] == 2
    assert body["valuation"]["value_fen"] == 1_500_000_00  # the current one, not the superseded
    assert {a["number"] for a in body["assets"]} == {"202110123456.7", "12345678"}
    assert [w["kind"] for w in body["warnings"]] == ["annuity_grace"]
    assert [d["id"] for d in body["documents"]] == [docs["report"]]
    text = response.text
    for private in (SECRET_NOTE, "LN-", "outstanding", "claim_", "credit_code", "420000000"):
        assert private not in text


async def test_api_draft_lot_is_not_found(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await make_bank_case(pool, clock.now())
    draft = await make_lot(pool, clock.now(), bank, status="draft")
    response = await client.get(f"/api/v1/lots/{draft.reference}")
    assert response.status_code == 404
    assert response.json()["code"] == "no_published_lot"
    assert (await client.get("/api/v1/lots/LOT-0000-000000")).status_code == 404


# --- pages ------------------------------------------------------------------------------


async def test_catalogue_page_lists_lots_without_javascript(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, _ = await published_lot(pool, clock)
    response = await client.get("/lots", params={"q": "锂电池", "region": "四川"})
    assert response.status_code == 200
    html = response.text
    assert "<form" in html and 'action="/lots"' in html and 'hx-get="/lots/results"' in html
    assert f'data-reference="{lot.reference}"' in html
    assert "¥1,050,000.00" in html  # current price
    assert "竞价中" in html and "距结束 5 小时" in html
    assert "H01M 4/525" in html


async def test_results_fragment_is_only_the_results(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, _ = await published_lot(pool, clock)
    response = await client.get(
        "/lots/results",
        params={"q": "锂电池", "status": ["bidding"]},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.text
    assert lot.reference in html
    assert "<html" not in html and "<form" not in html and "<header" not in html
    assert html.lstrip().startswith('<div class="results"')
    pushed = unquote(response.headers["hx-push-url"])
    assert pushed.startswith("/lots?") and "q=锂电池" in pushed and "status=bidding" in pushed


async def test_bad_search_says_which_field(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    response = await client.get("/lots", params={"price_min": "一百", "q": "锂电池"})
    assert response.status_code == 422
    html = response.text
    assert 'id="err-price_min"' in html and 'aria-invalid="true"' in html
    assert "“一百”是用汉字写的金额" in html
    assert 'value="锂电池"' in html  # what was typed stays in the form
    fragment = await client.get("/lots/results", params={"ipc": "X99"})
    assert fragment.status_code == 422
    assert 'data-field="ipc"' in fragment.text
    # the English page says it in English alone
    client.cookies.set("ipx_lang", "en")
    english = await client.get("/lots", params={"price_min": "5", "price_max": "1"})
    assert english.status_code == 422
    error = english.text.split('id="err-price_min">', 1)[1].split("</span>", 1)[0]
    assert error == "The lowest price, ¥5.00, is above the highest, ¥1.00."


async def test_pagination_links_keep_the_search(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await make_bank_case(pool, clock.now())
    for n in range(3):
        await make_lot(
            pool, clock.now(), bank, title=f"锂电池方案{n}", ends_in=timedelta(days=n + 1)
        )
    response = await client.get("/lots", params={"q": "锂电池", "page_size": "2"})
    assert response.status_code == 200
    html = unquote(response.text).replace("&amp;", "&")
    assert "/lots?q=锂电池&page_size=2&page=2" in html
    assert "/lots/results?q=锂电池&page_size=2&page=2" in html


async def test_lot_page_shows_terms_assets_warnings_and_documents(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, docs = await published_lot(pool, clock)
    response = await client.get(f"/lots/{lot.reference}")
    assert response.status_code == 200
    html = response.text
    # terms
    assert "¥1,000,000.00" in html and "¥100,000.00" in html  # start price, deposit
    assert "5 分钟内有人出价" in html and "10 日内" in html
    assert "¥2,000,000.00 以内部分 5%" in html and "超出部分 3%" in html
    assert "2 名" in html  # pre-emptive right holders
    # valuation: the current one
    assert "¥1,500,000.00" in html and "四川天府资产评估有限公司" in html and "旧评估所" not in html
    # assets
    assert "202110123456.7" in html and "12345678" in html and "发明专利" in html
    assert "普通许可予某电池厂" in html and "2026-08-31" in html
    # 风险提示
    assert "风险提示" in html and "年费已逾期" in html
    # documents: public ones only, with their checklist label
    assert f"/lots/{lot.reference}/documents/{docs['report']}" in html and "评估报告" in html
    assert "账户.pdf" not in html and "旧版.pdf" not in html
    assert SECRET_NOTE not in html
    # the English page uses English texts
    client.cookies.set("ipx_lang", "en")
    english = await client.get(f"/lots/{lot.reference}")
    assert "Risk warnings" in english.text and "Valuation report" in english.text


async def test_lot_page_of_a_draft_is_not_found(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await make_bank_case(pool, clock.now())
    draft = await make_lot(pool, clock.now(), bank, status="draft")
    assert (await client.get(f"/lots/{draft.reference}")).status_code == 404


async def test_lot_page_renders_with_sparse_terms(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await make_bank_case(pool, clock.now())
    lot = await make_lot(pool, clock.now(), bank, terms={"fee": "odd", "payment_days": -1})
    response = await client.get(f"/lots/{lot.reference}")
    assert response.status_code == 200
    assert "未载明" in response.text and "暂无评估信息" in response.text


# --- documents --------------------------------------------------------------------------


async def test_document_download(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, lot, docs = await published_lot(pool, clock)
    response = await client.get(f"/lots/{lot.reference}/documents/{docs['report']}")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-1.7 report")
    assert response.headers["content-type"].startswith("application/pdf")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("''", 1)[1]) == "评估报告.pdf"
    assert response.headers["x-content-type-options"] == "nosniff"

    for hidden in (docs["hidden"], docs["removed"]):
        assert (await client.get(f"/lots/{lot.reference}/documents/{hidden}")).status_code == 404


async def test_document_download_over_the_public_api(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, docs = await published_lot(pool, clock)
    listed = (await client.get(f"/api/v1/lots/{lot.reference}")).json()["documents"]
    assert docs["report"] in {d["id"] for d in listed}
    url = f"/api/v1/lots/{lot.reference}/documents/{docs['report']}"
    response = await client.get(url)  # no token: what any visitor may download
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-1.7 report")
    assert response.headers["content-type"].startswith("application/pdf")
    assert unquote(response.headers["content-disposition"].split("''", 1)[1]) == "评估报告.pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    # A document not disclosed, and a draft's: 404 as problem details, nothing served.
    other = await make_bank_case(pool, clock.now())
    draft = await make_lot(pool, clock.now(), other, status="draft")
    draft_doc = await make_document(pool, clock.now(), other)
    for path in (
        f"/api/v1/lots/{lot.reference}/documents/{docs['hidden']}",
        f"/api/v1/lots/{lot.reference}/documents/{draft_doc}",
        f"/api/v1/lots/{draft.reference}/documents/{draft_doc}",
    ):
        refused = await client.get(path)
        assert refused.status_code == 404, path
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "no_public_document"


async def test_html_document_is_served_as_bytes(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await make_bank_case(pool, clock.now())
    lot = await make_lot(pool, clock.now(), bank)
    doc = await make_document(
        pool, clock.now(), bank, filename='x".html', content=b"<script>1</script>",
        content_type="text/html",
    )  # fmt: skip
    response = await client.get(f"/lots/{lot.reference}/documents/{doc}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert 'filename="x_.html"' in response.headers["content-disposition"]


async def test_documents_of_drafts_and_of_other_cases_are_not_found(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, docs = await published_lot(pool, clock)
    other = await make_bank_case(pool, clock.now())
    draft = await make_lot(pool, clock.now(), other, status="draft")
    draft_doc = await make_document(pool, clock.now(), other)
    assert (await client.get(f"/lots/{draft.reference}/documents/{draft_doc}")).status_code == 404
    # a published lot cannot serve another case's document
    assert (await client.get(f"/lots/{lot.reference}/documents/{draft_doc}")).status_code == 404
    # nor the draft lot's page serve the published case's document
    cross = f"/lots/{draft.reference}/documents/{docs['report']}"
    assert (await client.get(cross)).status_code == 404


async def test_odd_addresses_are_not_found_rather_than_errors(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, lot, _ = await published_lot(pool, clock)
    for path in (
        "/lots/%00",
        "/lots/" + "L" * 500,
        f"/lots/{lot.reference}/documents/99999999999999999999999",
        f"/lots/{lot.reference}/documents/0",
        "/api/v1/lots/%00",
    ):
        assert (await client.get(path)).status_code == 404, path
    response = await client.get("/api/v1/lots", params={"region": "四川\x00", "q": "\x00锂电池"})
    assert response.status_code == 200
    assert [i["reference"] for i in response.json()["items"]] == [lot.reference]


async def test_api_operations_are_in_the_schema(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    ops = {op["operationId"] for path in response.json()["paths"].values() for op in path.values()}
    assert {"search_lots", "get_public_lot"} <= ops
    assert not {"web_catalogue", "web_lot"} & ops  # pages stay out of the API schema


async def test_lot_page_labels_every_code_in_the_pages_language(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    at = clock.now()
    bank = await make_bank_case(pool, at)
    patent = await make_asset(pool, at, bank, ipc=("H01M 4/525", "G06V 10/82"))
    mark = await make_asset(pool, at, bank, kind="trademark", title="蜀锦")
    lot = await make_lot(
        pool, at, bank, status="announced", assets=[patent, mark], kinds=("patent", "trademark")
    )
    await make_document(pool, at, bank, item="chain_of_title", filename="转让.pdf")
    await make_document(pool, at, bank, item="site_photos", filename="照片.zip")

    html = (await client.get(f"/lots/{lot.reference}")).text
    assert "<dt>IPC 分类号</dt>" in html and 'title="H 部：电学"' in html
    assert "第 9 类" in html  # the trademark's Nice class
    assert "权利转移记录：" in html  # the document's checklist item
    assert "其他文件：" in html and "site_photos" not in html  # an item the list lacks
    assert "公告中" in html and "一拍" in html and "发明专利" in html
    assert "时间均为北京时间" in html and "Asia/Shanghai</small>" not in html  # the footer

    client.cookies.set("ipx_lang", "en")
    html = (await client.get(f"/lots/{lot.reference}")).text
    assert "<dt>IPC classes</dt>" in html and 'title="Section G: physics"' in html
    assert "Class 9" in html and "Chain of title: " in html and "Other document: " in html
    assert "Announced" in html and "First auction" in html and "Patent (Invention patent)" in html
    assert "Times are Beijing time" in html
    # the page's own punctuation is English too (data such as names stay as written)
    head = html.split('<div class="lot-head">', 1)[1].split("</div>", 1)[0]
    assets_and_documents = html.split('data-testid="assets"', 1)[1]
    for part in (head, assets_and_documents):
        for mark_ in ("：", "（", "）", "、"):
            assert mark_ not in part, mark_
    assert "Disposed of by: " in head
    assert "成都某新材料科技有限公司, 四川某大学" in assets_and_documents  # owners
    assert "转让.pdf</a> <small> (1 KB)</small>" in assets_and_documents


async def test_results_label_kinds_statuses_and_ipc_sections(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank = await make_bank_case(pool, clock.now())
    await make_lot(pool, clock.now(), bank, kinds=("patent", "trademark"), status="bidding")
    html = (await client.get("/lots")).text
    assert "专利、商标" in html and "竞价中" in html and 'title="H 部：电学"' in html
    client.cookies.set("ipx_lang", "en")
    html = (await client.get("/lots")).text
    assert "Patent, Trademark" in html and "Bidding" in html
    assert 'title="Section H: electricity"' in html


async def test_who_may_register_is_the_permission_tables_answer(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """The lot page's registration panel words refusal(BID, …); it decides nothing itself."""
    bank = await make_bank_case(pool, clock.now())
    lot = await make_lot(pool, clock.now(), bank, status="announced")
    register = f'action="/lots/{lot.reference}/register"'

    async def panel(kind: str, status: str) -> str:
        client.cookies.clear()
        _, _, email = await make_org(pool, clock.now(), kind=kind, status=status)
        assert (await sign_in(client, email)).status_code in (302, 303)
        response = await client.get(f"/lots/{lot.reference}")
        assert response.status_code == 200
        return response.text.split('data-testid="registration"', 1)[1].split("</section>")[0]

    assert register in await panel("buyer", "approved")
    assert register in await panel("acquirer", "approved")
    pending = await panel("buyer", "pending")
    assert register not in pending and "尚未通过交易所审核" in pending
    suspended = await panel("acquirer", "suspended")
    assert register not in suspended and "尚未通过交易所审核" in suspended
    for kind in ("bank", "pool", "operator"):
        other = await panel(kind, "approved")
        assert register not in other and "仅经交易所审核的竞买人" in other, kind
