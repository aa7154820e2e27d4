"""The cases API: scopes, the tagged valuation union, multipart documents, tenancy."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.cases.valuation import INDICATORS
from market.clock import FrozenClock
from tests.cases.factories import Loan, make_bank, make_loan
from tests.cases.test_documents import PDF, PNG
from tests.factories import make_token

Client = AsyncTestClient[Any]
RW = ["collateral:read", "collateral:write"]


async def bank_with_loan(
    pool: asyncpg.Pool, clock: FrozenClock, scopes: list[str] = RW, **loan: Any
) -> tuple[dict[str, str], Loan]:
    bank, user, _ = await make_bank(pool, clock.now())
    token = await make_token(pool, clock.now(), user, scopes)
    return {"Authorization": f"Bearer {token}"}, await make_loan(pool, clock.now(), bank, **loan)


async def test_open_list_and_get(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> None:
    auth, loan = await bank_with_loan(pool, clock)
    r = await client.post(
        "/api/v1/cases", json={"loan_id": loan.loan_id, "costs_fen": 500_00}, headers=auth
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["reference"].startswith("CZ-2026-")
    assert case["claim"] == {
        "principal_fen": 4_200_000_00,
        "interest_fen": 137_500_50,
        "costs_fen": 500_00,
        "total_fen": 4_200_000_00 + 137_500_50 + 500_00,
    }
    assert case["disclosure"]["missing"][0] == "valuation_report"
    r = await client.get("/api/v1/cases", headers=auth)
    assert r.status_code == 200 and [c["id"] for c in r.json()["items"]] == [case["id"]]
    assert r.json()["items"][0]["missing_items"] == case["disclosure"]["missing"]
    assert r.json()["next_cursor"] is None
    r = await client.get(f"/api/v1/cases/{case['id']}", headers=auth)
    assert r.status_code == 200 and r.json()["loan_no"] == loan.loan_no
    r = await client.get("/api/v1/cases?status=closed", headers=auth)
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    r = await client.get("/api/v1/cases?status=open&limit=1", headers=auth)
    assert [c["id"] for c in r.json()["items"]] == [case["id"]]
    r = await client.get("/api/v1/cases?limit=0", headers=auth)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (r.json()["code"], r.json()["field"], r.json()["params"]) == (
        "too_small",
        "limit",
        {"min": "1"},
    )
    r = await client.get("/api/v1/cases?limit=201", headers=auth)
    assert r.status_code == 400 and r.json()["code"] == "too_large"
    r = await client.get("/api/v1/cases?cursor=bm9wZQ", headers=auth)
    assert r.status_code == 400 and (r.json()["code"], r.json()["field"]) == (
        "bad_cursor",
        "cursor",
    )
    r = await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth)
    assert r.status_code == 409
    assert (r.json()["code"], r.json()["field"]) == ("case_already_open", "loan_id")


async def test_performing_loan_and_bad_bodies(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    auth, loan = await bank_with_loan(pool, clock, default_date=None, npl_class=None)
    r = await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth)
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("loan_not_defaulted", "loan_id")
    assert r.json()["detail"].startswith("loan_id：") and "未违约" in r.json()["detail"]
    r = await client.post(
        "/api/v1/cases",
        json={"loan_id": loan.loan_id},
        headers={**auth, "Accept-Language": "en"},
    )
    assert "loan is performing" in r.json()["detail"] and "未违约" not in r.json()["detail"]
    r = await client.post(
        "/api/v1/cases", json={"loan_id": loan.loan_id, "costs_fen": -1}, headers=auth
    )
    assert r.status_code == 400 and r.json()["field"] == "costs_fen"
    # amounts are integer fen: a string or a float is refused, naming the field
    for bad in ("100", 1.5):
        r = await client.post(
            "/api/v1/cases", json={"loan_id": loan.loan_id, "costs_fen": bad}, headers=auth
        )
        assert r.status_code == 400 and r.json()["field"] == "costs_fen", (bad, r.text)
    r = await client.post("/api/v1/cases", json={"loan_id": loan.loan_id, "x": 1}, headers=auth)
    assert r.status_code == 400 and r.json()["code"] == "unknown_field"


async def test_scopes(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> None:
    auth, loan = await bank_with_loan(pool, clock, scopes=["collateral:read"])
    r = await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth)
    assert r.status_code == 403
    assert (await client.get("/api/v1/cases", headers=auth)).status_code == 200
    assert (await client.get("/api/v1/cases")).status_code == 401


async def test_valuation_union(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> None:
    auth, loan = await bank_with_loan(pool, clock)
    case = (await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth)).json()
    url = f"/api/v1/cases/{case['id']}/valuations"
    r = await client.post(
        url,
        json={
            "method": "appraisal",
            "appraiser": "北京中企华资产评估有限责任公司",
            "report_no": "中企华评报字(2025)第 6021 号",
            "value_fen": 3_000_000_00,
            "valued_on": "2026-01-06",
        },
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["field"] == "valued_on"
    r = await client.post(
        url,
        json={
            "method": "internal",
            "base_value_fen": 1_000_000_00,
            "basis": "收益法",
            "scores": dict.fromkeys(INDICATORS, 90),
            "dimension_weights": {"legal": 0.2, "technical": 0.2, "economic": 0.6},
            "indicator_weights": {
                "legal_stability": "0.25",
                "remaining_term": "0.25",
                "ownership_clarity": "0.25",
                "encumbrance": "0.25",
                "advancement": "0.25",
                "maturity": "0.25",
                "substitutability": "0.25",
                "claim_breadth": "0.25",
                "market_size": "0.5",
                "profitability": "0.3",
                "licence_history": "0.2",
            },
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["method"] == "internal" and body["value_fen"] == 1_500_000_00
    assert body["inputs"]["dimension_weights"]["economic"] == "0.6"
    # the explanation: catalog keys with their parameters, in order
    assert body["explanation"][0] == {"key": "cases.explain.title"}
    assert body["explanation"][-1] == {
        "key": "cases.explain.value",
        "params": {"base_value_fen": 1_000_000_00, "factor": "1.5000", "value_fen": 1_500_000_00},
    }
    r = await client.post(url, json={"method": "guess", "value_fen": 1}, headers=auth)
    assert r.status_code == 400
    r = await client.post(
        url,
        json={
            "method": "appraisal",
            "appraiser": "北京中企华资产评估有限责任公司",
            "report_no": "中企华评报字(2025)第 6021 号",
            "value_fen": "300000000",  # a string where integer fen belong
            "valued_on": "2026-01-05",
        },
        headers=auth,
    )
    assert r.status_code == 400 and r.json()["field"] == "value_fen"
    r = await client.patch(f"/api/v1/cases/{case['id']}", json={"costs_fen": "1"}, headers=auth)
    assert r.status_code == 400 and r.json()["field"] == "costs_fen"
    r = await client.post(
        url,
        json={
            "method": "internal",
            "base_value_fen": 1_000_000_00,
            "basis": "收益法",
            "scores": {**dict.fromkeys(INDICATORS, 90), "market_size": 101},
        },
        headers=auth,
    )
    assert r.status_code == 400 and r.json()["field"] == "scores.market_size"
    assert r.json()["code"] == "too_large" and r.json()["params"] == {"max": "100"}


async def test_documents_over_multipart(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    auth, loan = await bank_with_loan(pool, clock)
    case = (await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth)).json()
    url = f"/api/v1/cases/{case['id']}/documents"
    r = await client.post(
        url,
        data={"item": "file_history"},
        files={"file": ("审查档案.pdf", PDF, "application/pdf")},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["item"] == "file_history"
    r = await client.post(
        url,
        data={"item": "file_history"},
        files={"file": ("审查档案.pdf", PNG, "application/pdf")},  # the name and type lie
        headers=auth,
    )
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("file_extension_mismatch", "file")
    assert r.json()["params"] == {"kind": "PNG", "suffix": ".pdf", "expected": ".png"}
    r = await client.post(
        url,
        data={"item": "no_such_item"},
        files={"file": ("审查档案.pdf", PDF, "application/pdf")},
        headers=auth,
    )
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("item_not_in_checklist", "item")
    r = await client.get(f"{url}/{doc['id']}", headers=auth)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "filename*=UTF-8''%E5%AE%A1" in r.headers["content-disposition"]
    r = await client.get(f"/api/v1/cases/{case['id']}/disclosure", headers=auth)
    assert "file_history" in r.json()["present"]
    r = await client.delete(f"{url}/{doc['id']}", headers=auth)
    assert r.status_code == 204
    assert (await client.get(f"{url}/{doc['id']}", headers=auth)).status_code == 404


async def test_another_bank_gets_404_everywhere(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    auth_a, loan = await bank_with_loan(pool, clock)
    auth_b, _ = await bank_with_loan(pool, clock)
    case = (
        await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth_a)
    ).json()
    doc = (
        await client.post(
            f"/api/v1/cases/{case['id']}/documents",
            data={"item": "taxes_fees"},
            files={"file": ("税费.pdf", PDF, "application/pdf")},
            headers=auth_a,
        )
    ).json()
    base = f"/api/v1/cases/{case['id']}"
    for method, url, kwargs in [
        ("GET", base, {}),
        ("PATCH", base, {"json": {"costs_fen": 1}}),
        ("GET", f"{base}/disclosure", {}),
        ("GET", f"{base}/documents/{doc['id']}", {}),
        ("DELETE", f"{base}/documents/{doc['id']}", {}),
        (
            "POST",
            f"{base}/valuations",
            {
                "json": {
                    "method": "internal",
                    "base_value_fen": 100_00,
                    "basis": "x",
                    "scores": dict.fromkeys(INDICATORS, 50),
                }
            },
        ),
        (
            "POST",
            f"{base}/documents",
            {"data": {"item": "taxes_fees"}, "files": {"file": ("a.pdf", PDF, "application/pdf")}},
        ),
        ("POST", "/api/v1/cases", {"json": {"loan_id": loan.loan_id}}),
    ]:
        r = await client.request(method, url, headers=auth_b, **kwargs)
        assert r.status_code == 404, (method, url, r.text)
    assert (await client.get("/api/v1/cases", headers=auth_b)).json()["items"] == []
    # and bank A still sees everything unchanged
    r = await client.get(base, headers=auth_a)
    assert r.json()["claim"]["costs_fen"] == 0 and len(r.json()["documents"]) == 1


async def test_operation_ids_are_stable(client: Client) -> None:
    r = await client.get("/schema/openapi.json")
    ops = {op["operationId"] for path in r.json()["paths"].values() for op in path.values()}
    assert {
        "open_case",
        "list_cases",
        "get_case",
        "change_case_claim",
        "record_case_valuation",
        "get_case_disclosure",
        "upload_case_document",
        "download_case_document",
        "remove_case_document",
    } <= ops
