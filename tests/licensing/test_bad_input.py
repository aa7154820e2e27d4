"""Every licence-contract endpoint answers a wrong value with a 4xx naming the field (or the
CSV line and column) and writes nothing (docs/rules.md §Licence contracts)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from tests.factories import make_token
from tests.licensing.scene import beijing
from tests.licensing.test_royalty_commands import _counts, _report_q1, scene


async def test_wrong_values_get_a_4xx_naming_the_field_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool)
    await _report_q1(pool, s)
    clock.set(beijing(date(2027, 5, 10)))
    at = clock.now()
    lic = await make_token(pool, at, s.licensee_user, ["licences:read", "licences:write"])
    bank = await make_token(pool, at, s.bank_user, ["licences:read", "licences:write"])
    op = await make_token(pool, at, s.operator_user, ["operator:write"])
    L, B, OP = ({"Authorization": f"Bearer {t}"} for t in (lic, bank, op))
    k = f"/api/v1/licences/{s.contract.id}"
    pay = f"/api/v1/operator/licences/{s.contract.id}/payments"
    probes: list[tuple[str, dict[str, str], dict[str, Any], int, str | None]] = [
        (f"{k}/reports", L, {"period": "2027Q2", "net_sales_fen": 5}, 422, "period"),
        (f"{k}/reports", L, {"period": "2027Q1", "net_sales_fen": 5}, 409, "period"),
        (f"{k}/reports", L, {"period": "x", "net_sales_fen": 5}, 400, "period"),
        (f"{k}/reports", L, {"period": "2027Q1", "net_sales_fen": -5}, 400, "net_sales_fen"),
        (f"{k}/reports", L, {"period": "2027Q1", "net_sales_fen": 5, "units": "a"}, 400, "units"),
        (f"{k}/reports", B, {"period": "2027Q1", "net_sales_fen": 5}, 403, None),
        (
            f"{k}/recordal",
            L,
            {
                "recordal_number": "备案",
                "recorded_on": "2027-05-01",
                "filename": "a.pdf",
                "content": "JVBERi0xLjcKJSVFT0YK",
            },
            422,
            "recordal_number",
        ),
        (
            f"{k}/recordal",
            L,
            {
                "recordal_number": "2027990000042",
                "recorded_on": "2027-13-01",
                "filename": "a.pdf",
                "content": "JVBERi0xLjcKJSVFT0YK",
            },
            400,
            "recorded_on",
        ),
        (
            f"{k}/recordal",
            L,
            {
                "recordal_number": "2027990000042",
                "recorded_on": "2027-05-01",
                "filename": "a.pdf",
                "content": "bm90IGEgZG9j",
            },
            422,
            "file",
        ),
        (
            f"{k}/adjustments",
            B,
            {"period": "2027Q3", "net_sales_fen": 5, "reason": "审计"},
            422,
            "period",
        ),
        (
            f"{k}/adjustments",
            B,
            {"period": "2027Q1", "net_sales_fen": 5, "reason": ""},
            400,
            "reason",
        ),
        (
            f"{k}/adjustments",
            B,
            {"period": "2027Q1", "net_sales_fen": 5, "reason": "  "},
            422,
            "reason",
        ),
        (f"{k}/termination", B, {"reason": "逾期"}, 409, "contract_id"),
        (f"{k}/termination", B, {"reason": ""}, 400, "reason"),
        (
            f"{k}/recordal-cancellation",
            B,
            {"cancellation_number": "X-1", "cancelled_on": "2027-05-01"},
            409,
            "contract_id",
        ),
        (
            pay,
            OP,
            {"period": "2027Q1", "amount_fen": 6_000_000, "paid_on": "2027-05-10"},
            422,
            "amount_fen",
        ),
        (
            pay,
            OP,
            {"period": "2027Q1", "amount_fen": 0, "paid_on": "2027-05-10"},
            400,
            "amount_fen",
        ),
        (
            pay,
            OP,
            {"period": "2027Q1", "amount_fen": 6_007_397, "paid_on": "2027-06-01"},
            422,
            "paid_on",
        ),
        (pay, OP, {"period": "2027Q3", "amount_fen": 1, "paid_on": "2027-05-10"}, 409, "period"),
        (
            pay,
            OP,
            {
                "period": "2027Q1",
                "amount_fen": 1,
                "paid_on": "2027-05-10",
                "statement_line_id": 999,
            },
            404,
            "statement_line_id",
        ),
    ]
    before = await _counts(pool)
    for url, headers, body, status, field in probes:
        r = await client.post(url, json=body, headers=headers)
        assert r.status_code == status, (url, body, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), url
        got = r.json()
        assert got.get("field") == field or field is None, (url, body, got)
    # The CSV report: one bad line, nothing recorded, the line and the column named.
    bad = "期间,净销售额(元),数量\r\n2027Q1,abc,0\r\n".encode()
    r = await client.post(
        f"{k}/reports.csv", content=bad, headers={**L, "Content-Type": "text/csv"}
    )
    assert r.status_code == 422, r.text
    problem = r.json()["errors"][0]
    assert (problem["line"], problem["field"], problem["params"]["column"]) == (
        2,
        "net_sales",
        "净销售额(元)",
    )
    r = await client.post(
        f"{k}/reports.csv", content=bad, headers={**L, "Content-Type": "application/json"}
    )
    assert r.status_code == 415
    # The clearing statement: a bad line, nothing imported.
    bad_statement = "交易日期,金额,附言\r\n2027-13-01,abc,XK\r\n".encode()
    r = await client.post(
        "/api/v1/operator/clearing/statements",
        content=bad_statement,
        headers={**OP, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 2, r.text
    # Another organisation's contract: 404.
    r = await client.get(f"/api/v1/licences/{s.contract.id}", headers=OP)
    assert r.status_code in (403, 404)
    assert await _counts(pool) == before
