"""Wrong values on every pools endpoint: each gets a 4xx problem naming what is wrong, and
nothing is written — no row in any pools table, the ledger or the audit log.
Includes an id beyond bigint, which the driver refuses (400 out_of_range, not a 500)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from tests.factories import make_org, make_token
from tests.pools.scene import SHANGHAI_ADVANCE, make_loan, make_pool

TABLES = [
    "pool_enrolments",
    "compensation_claims",
    "claim_shares",
    "case_costs",
    "receipts",
    "payouts",
    "distributions",
    "statements",
    "statement_lines",
    "ledger_entries",
    "audit_log",
    "pool_rule_versions",
]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def test_wrong_values_get_a_4xx_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    loan = await make_loan(
        pool, clock.now(), principal_fen=100_000_000, default_date=date(2025, 6, 1)
    )
    bank_t = await make_token(pool, clock.now(), loan.bank_user, ["pools:read", "pools:write"])
    pool_t = await make_token(pool, clock.now(), sh.user_id, ["pools:read", "pools:write"])
    _, op_user, _ = await make_org(pool, clock.now(), kind="operator")
    op_t = await make_token(pool, clock.now(), op_user, ["operator:write"])
    B = {"Authorization": f"Bearer {bank_t}"}
    P = {"Authorization": f"Bearer {pool_t}"}
    OP = {"Authorization": f"Bearer {op_t}"}
    before = await counts(pool)
    probes = [
        ("/api/v1/bank/pools/enrolments", B, {"loan_id": "x", "pool_code": sh.code}),
        ("/api/v1/bank/pools/enrolments", B, {"loan_id": loan.loan_id, "pool_code": "NOPE"}),
        ("/api/v1/bank/pools/enrolments", B, {"loan_id": loan.loan_id}),
        (
            "/api/v1/bank/pools/enrolments",
            B,
            {"loan_id": loan.loan_id, "pool_code": sh.code, "x": 1},
        ),
        ("/api/v1/bank/pools/enrolments", B, {"loan_id": 10**18, "pool_code": sh.code}),
        ("/api/v1/bank/pools/enrolments", B, {"loan_id": 2**70, "pool_code": sh.code}),
        (f"/api/v1/bank/loans/{loan.loan_id}/claims", B, {}),
        (f"/api/v1/bank/loans/{loan.loan_id}/write-off", B, {"written_off_on": "2099-01-01"}),
        (f"/api/v1/bank/loans/{loan.loan_id}/write-off", B, {"written_off_on": "yesterday"}),
        (f"/api/v1/bank/cases/{loan.case_id}/costs", B, {"kind": "lunch", "amount_fen": 5}),
        (f"/api/v1/bank/cases/{loan.case_id}/costs", B, {"kind": "other", "amount_fen": -5}),
        (f"/api/v1/bank/cases/{loan.case_id}/costs", B, {"kind": "other", "amount_fen": 2**63}),
        (
            f"/api/v1/operator/cases/{loan.case_id}/receipts",
            OP,
            {"kind": "royalty", "reference": "R1", "amount_fen": 0},
        ),
        (
            f"/api/v1/operator/cases/{loan.case_id}/receipts",
            OP,
            {"kind": "royalty", "reference": "R1", "amount_fen": 5, "commission_fen": 9},
        ),
        (
            f"/api/v1/operator/cases/{loan.case_id}/receipts",
            OP,
            {"kind": "auction", "reference": "R1", "amount_fen": 5},
        ),
        (
            "/api/v1/operator/cases/999999/receipts",
            OP,
            {"kind": "royalty", "reference": "R1", "amount_fen": 5},
        ),
        (
            f"/api/v1/pools/{sh.pool_id}/rules",
            P,
            {"rule": {"shares": []}, "effective_from": "2027-01-01"},
        ),
        (
            f"/api/v1/pools/{sh.pool_id}/rules",
            P,
            {"rule": SHANGHAI_ADVANCE, "effective_from": "nope"},
        ),
        (f"/api/v1/pools/{sh.pool_id}/rules", P, {"rule": "x"}),
        (f"/api/v1/pools/{sh.pool_id}/claims/999/decision", P, {"decision": "approve"}),
        (f"/api/v1/pools/{sh.pool_id}/claims/999/decision", P, {"decision": "maybe"}),
        ("/api/v1/reconciliation/lines/999/match", P, {"payout_id": 1}),
        ("/api/v1/reconciliation/lines/999/match", P, {"payout_id": "x"}),
    ]
    for url, h, body in probes:
        r = await client.post(url, json=body, headers=h)
        assert 400 <= r.status_code < 500, (url, body, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), url
        assert r.json()["code"] and r.json()["detail"], (url, body)
        if body.get("loan_id") == 2**70:
            assert r.json()["code"] == "out_of_range"
    for data in (b"garbage\x00\xff", "交易日期,金额,附言\n2026-13-01,abc,HKX\n".encode(), b""):
        r = await client.post(
            "/api/v1/reconciliation/statements",
            files={"file": ("s.csv", data, "text/csv")},
            headers=P,
        )
        assert 400 <= r.status_code < 500
    assert await counts(pool) == before
