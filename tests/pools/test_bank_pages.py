"""The bank's side of the pools: enrolment, claim previews and filing, write-off,
case costs and closing, where each fen of a receipt landed — through the pages and the API —
and the operator's manual receipts and reversals. Tenancy: a bank sees only its own loans
and cases (another's: 404); bad input answers 4xx naming the field and writes nothing."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.pools import bank, dashboard, services
from tests.factories import act_as, csrf, make_org, make_token, sign_in
from tests.pools.scene import (
    SHANGHAI_ADVANCE,
    ZHONGSHAN,
    Loan,
    as_user,
    claim_and_pay,
    decide,
    make_loan,
    make_pool,
    mark_received,
    receive,
    write_off,
)

Client = AsyncTestClient[Any]
M = 100_000_000  # CNY 1 m in fen
RW = ["pools:read", "pools:write"]
PARKED = {
    "shares": [{"name": "fund", "weight": 80}, {"name": "bank", "weight": 20}],
    "timing": "parked",
    "wait_months": 2,
}


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    out = {}
    for table in (
        "pool_enrolments",
        "compensation_claims",
        "case_costs",
        "receipts",
        "payouts",
        "ledger_entries",
        "audit_log",
    ):
        out[table] = int(await pool.fetchval(f"SELECT count(*) FROM {table}"))
    return out


async def bank_loan(
    pool: asyncpg.Pool, clock: FrozenClock, **kw: Any
) -> tuple[Loan, dict[str, str]]:
    """A defaulted loan of a new bank (not enrolled) and that bank's API token."""
    loan = await make_loan(pool, clock.now(), principal_fen=3 * M, **kw)
    token = await make_token(pool, clock.now(), loan.bank_user, RW)
    return loan, {"Authorization": f"Bearer {token}"}


async def operator(pool: asyncpg.Pool, clock: FrozenClock) -> tuple[int, int, str, dict[str, str]]:
    org, user, email = await make_org(pool, clock.now(), kind="operator")
    token = await make_token(pool, clock.now(), user, ["operator:write"])
    return org, user, email, {"Authorization": f"Bearer {token}"}


async def sign_in_bank(client: Client, pool: asyncpg.Pool, loan: Loan) -> None:
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", loan.bank_user)
    r = await sign_in(client, email)
    assert r.status_code in (302, 303)


# --- API ------------------------------------------------------------------------------------


async def test_api_enrol_preview_write_off_and_file(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    # defaulted before the write-off below (a write-off before the default is refused)
    loan, auth = await bank_loan(pool, clock, default_date=date(2025, 12, 1))

    # Enrolled before it defaulted (docs/rules.md §Guarantee pools): today it is refused.
    r = await client.post(
        "/api/v1/bank/pools/enrolments",
        json={"loan_id": loan.loan_id, "pool_code": zs.code},
        headers=auth,
    )
    assert (r.status_code, r.json()["code"]) == (422, "loan_defaulted_before_enrolment")
    today = clock.now()
    clock.set(datetime(2025, 11, 30, 2, 0, tzinfo=UTC))
    r = await client.post(
        "/api/v1/bank/pools/enrolments",
        json={"loan_id": loan.loan_id, "pool_code": zs.code.lower(), "renewal": True},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    assert r.json() | {"id": 0} == {
        "id": 0,
        "loan_id": loan.loan_id,
        "pool_code": zs.code,
        "rule_version": 1,
        "enrolled_principal_fen": 3 * M,
        "renewal": True,
        "enrolled_on": "2025-11-30",
    }
    r = await client.post(
        "/api/v1/bank/pools/enrolments",
        json={"loan_id": loan.loan_id, "pool_code": zs.code},
        headers=auth,
    )
    assert r.status_code == 409 and r.json()["field"] == "loan_id"
    clock.set(today)

    r = await client.get("/api/v1/bank/pools/loans", headers=auth)
    assert r.status_code == 200
    [row] = r.json()
    assert row["pool_code"] == zs.code and row["rule_version"] == 1
    assert row["status"] == "defaulted" and row["claims"] == [] and row["timing"] == "after_loss"
    assert row["case_id"] == loan.case_id

    # Zhongshan pays once the loss is realised: the preview says why not yet, filing is 422.
    r = await client.get(f"/api/v1/bank/loans/{loan.loan_id}/claim-preview", headers=auth)
    assert r.status_code == 200
    preview = r.json()
    assert preview["eligible"] is False and preview["amount_fen"] == 0
    assert preview["lines"][-1] == {"key": "problem.claim_loss_not_realised", "params": {}}
    before = await counts(pool)
    r = await client.post(f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert (problem["code"], problem["field"]) == ("claim_loss_not_realised", "loan_id")
    assert "损失尚未确定" in problem["detail"] and "not realised" not in problem["detail"]
    r = await client.post(
        f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth | {"Accept-Language": "en"}
    )
    assert r.status_code == 422 and "The loss is not realised yet" in r.json()["detail"]
    assert await counts(pool) == before

    # Write-off: a future date is refused, naming the field; nothing written.
    future = (clock.now() + timedelta(days=3)).date().isoformat()
    r = await client.post(
        f"/api/v1/bank/loans/{loan.loan_id}/write-off",
        json={"written_off_on": future},
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["field"] == "written_off_on"
    r = await client.post(
        f"/api/v1/bank/loans/{loan.loan_id}/write-off", json={"on": "2026-01-04"}, headers=auth
    )
    assert r.status_code == 400 and r.json()["field"] in ("on", "written_off_on")
    assert await counts(pool) == before
    r = await client.post(
        f"/api/v1/bank/loans/{loan.loan_id}/write-off",
        json={"written_off_on": "2026-01-04"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "loan_id": loan.loan_id,
        "written_off_on": "2026-01-04",
        "released_claims": 0,
    }
    r = await client.post(
        f"/api/v1/bank/loans/{loan.loan_id}/write-off",
        json={"written_off_on": "2026-01-04"},
        headers=auth,
    )
    assert r.status_code == 409

    # Now due: 54 % of CNY 3 m.
    r = await client.get(f"/api/v1/bank/loans/{loan.loan_id}/claim-preview", headers=auth)
    preview = r.json()
    assert preview["eligible"] is True and preview["amount_fen"] == 162_000_000
    assert preview["lines"][-1] == {"key": "pool.line.owed", "params": {"amount_fen": 162_000_000}}
    r = await client.post(f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth)
    assert r.status_code == 201, r.text
    claim = r.json()
    assert claim["status"] == "filed" and claim["amount_fen"] == 162_000_000
    assert claim["explanation"] == preview["lines"] and claim["pool_code"] == zs.code
    r = await client.post(f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "claim_already_waiting"
    r = await client.get(f"/api/v1/bank/loans/{loan.loan_id}/claim-preview", headers=auth)
    assert r.json()["pending_claim_id"] == claim["id"] and r.json()["eligible"] is False

    # The pool rejects with a reason: the bank reads it back.
    await decide(pool, clock.now(), zs, claim["id"], reject="缺少核销证明")
    r = await client.get(f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth)
    assert r.status_code == 200
    assert [(c["status"], c["reason"]) for c in r.json()] == [("rejected", "缺少核销证明")]


async def test_api_tenancy_scopes_and_bad_bodies(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    mine, auth = await bank_loan(pool, clock, enrol_in=zs)
    theirs, _ = await bank_loan(pool, clock, enrol_in=zs)
    await receive(pool, clock.now(), theirs.case_id, 1_000_00, source="x:1")
    free = await make_loan(pool, clock.now(), principal_fen=M, bank=(mine.bank_org, mine.bank_user))
    ro = await make_token(pool, clock.now(), mine.bank_user, ["pools:read"])
    pool_token = await make_token(pool, clock.now(), zs.user_id, ["pools:read", "pools:write"])
    before = await counts(pool)

    for method, url, body in [
        ("GET", f"/api/v1/bank/loans/{theirs.loan_id}/claim-preview", None),
        ("GET", f"/api/v1/bank/loans/{theirs.loan_id}/claims", None),
        ("POST", f"/api/v1/bank/loans/{theirs.loan_id}/claims", None),
        (
            "POST",
            f"/api/v1/bank/loans/{theirs.loan_id}/write-off",
            {"written_off_on": "2026-01-01"},
        ),
        ("GET", f"/api/v1/bank/cases/{theirs.case_id}/receipts", None),
        ("POST", f"/api/v1/bank/cases/{theirs.case_id}/costs", {"kind": "other", "amount_fen": 1}),
        ("POST", f"/api/v1/bank/cases/{theirs.case_id}/close", None),
        ("GET", "/api/v1/bank/loans/999999/claim-preview", None),
    ]:
        r = await client.request(method, url, json=body, headers=auth)
        assert r.status_code == 404, (url, r.text)
    r = await client.post(
        "/api/v1/bank/pools/enrolments",
        json={"loan_id": theirs.loan_id, "pool_code": zs.code},
        headers=auth,
    )
    assert r.status_code == 404
    loans = (await client.get("/api/v1/bank/pools/loans", headers=auth)).json()
    assert [x["loan_id"] for x in loans] == [mine.loan_id]

    # bad input names the field
    r = await client.post(
        "/api/v1/bank/pools/enrolments",
        json={"loan_id": free.loan_id, "pool_code": "nope"},
        headers=auth | {"Accept-Language": "en"},
    )
    assert (r.json()["code"], r.json()["params"]) == ("no_pool_with_code", {"pool_code": "NOPE"})
    assert r.json()["detail"] == "pool_code: No pool has the code NOPE."
    for body, field, status in [
        ({"loan_id": free.loan_id, "pool_code": "NOPE"}, "pool_code", 422),
        ({"loan_id": free.loan_id, "pool_code": ""}, "pool_code", 400),
        ({"loan_id": free.loan_id, "pool_code": zs.code, "extra": 1}, "extra", 400),
        ({"pool_code": zs.code}, "loan_id", 400),
        ({"loan_id": "x", "pool_code": zs.code}, "loan_id", 400),
    ]:
        r = await client.post("/api/v1/bank/pools/enrolments", json=body, headers=auth)
        assert r.status_code == status and r.json()["field"] == field, (body, r.text)
    for body, field in [
        ({"kind": "lunch", "amount_fen": 100}, "kind"),
        ({"kind": "other", "amount_fen": 0}, "amount_fen"),
        ({"kind": "other"}, "amount_fen"),
    ]:
        r = await client.post(f"/api/v1/bank/cases/{mine.case_id}/costs", json=body, headers=auth)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
    assert await counts(pool) == before

    # scopes and kinds
    r = await client.post(
        f"/api/v1/bank/loans/{mine.loan_id}/claims", headers={"Authorization": f"Bearer {ro}"}
    )
    assert r.status_code == 403
    r = await client.get(
        "/api/v1/bank/pools/loans", headers={"Authorization": f"Bearer {pool_token}"}
    )
    assert r.status_code == 403
    r = await client.get("/api/v1/bank/pools/loans")
    assert r.status_code == 401
    r = await client.post(
        f"/api/v1/operator/cases/{mine.case_id}/receipts",
        json={"kind": "royalty", "reference": "R1", "amount_fen": 100},
        headers=auth,
    )
    assert r.status_code == 403
    assert await counts(pool) == before


async def test_api_costs_receipts_and_where_each_fen_landed(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan, auth = await bank_loan(pool, clock, enrol_in=zs)
    _op, _op_user, _email, op_auth = await operator(pool, clock)
    r = await client.post(
        f"/api/v1/bank/cases/{loan.case_id}/costs",
        json={"kind": "appraisal", "amount_fen": 2_000_000, "memo": " 评估费 "},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    assert r.json()["memo"] == "评估费" and r.json()["repaid_fen"] == 0
    r = await client.post(f"/api/v1/bank/cases/{loan.case_id}/close", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    r = await client.post(f"/api/v1/bank/cases/{loan.case_id}/close", headers=auth)
    assert r.status_code == 409
    r = await client.post(f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth)
    assert r.status_code == 201, r.text  # the closed case realised the loss
    await decide(pool, clock.now(), zs, r.json()["id"])

    # A royalty of CNY 120,000 (5 % commission): commission 6,000, the appraisal 20,000,
    # then the claim's principal 94,000 among those who bore the CNY 3 m loss:
    # fund 54 %, insurer 16 %, evaluator 4 %, bank 26 %.
    body = {
        "kind": "royalty",
        "reference": "LIC-2026-001",
        "amount_fen": 12_000_000,
        "commission_fen": 600_000,
    }
    r = await client.post(
        f"/api/v1/operator/cases/{loan.case_id}/receipts", json=body, headers=op_auth
    )
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["source"] == "manual:LIC-2026-001" and receipt["status"] == "routed"
    assert [
        (d["step"], d["payee_kind"], d["party"], d["amount_fen"]) for d in receipt["distributions"]
    ] == [
        ("commission", "platform", None, 600_000),
        ("cost", "bank", None, 2_000_000),
        ("claim_principal", "pool", "fund", 5_076_000),
        ("claim_principal", "party", "insurer", 1_504_000),
        ("claim_principal", "party", "evaluator", 376_000),
        ("claim_principal", "bank", None, 2_444_000),
    ]
    by_payee = {(p["payee_kind"], p["party"]): p for p in receipt["payouts"]}
    assert by_payee[("bank", None)]["amount_fen"] == 2_000_000 + 2_444_000
    assert by_payee[("pool", None)]["amount_fen"] == 5_076_000
    assert by_payee[("pool", None)]["payee"] == zs.code
    assert all(
        p["status"] == "expected" and p["reference"].startswith("HK") for p in receipt["payouts"]
    )
    assert sum(d["amount_fen"] for d in receipt["distributions"]) == 12_000_000
    pool_dist = receipt["distributions"][2]
    assert pool_dist["payout_reference"] == by_payee[("pool", None)]["reference"]

    # The same reference and amount again is the same receipt; another amount is 409.
    again = await client.post(
        f"/api/v1/operator/cases/{loan.case_id}/receipts", json=body, headers=op_auth
    )
    assert again.status_code == 201 and again.json()["id"] == receipt["id"]
    before = await counts(pool)
    r = await client.post(
        f"/api/v1/operator/cases/{loan.case_id}/receipts",
        json=body | {"amount_fen": 13_000_000},
        headers=op_auth,
    )
    assert r.status_code == 409 and r.json()["field"] == "reference"
    assert (r.json()["code"], r.json()["params"]) == (
        "receipt_reference_taken",
        {"reference": "LIC-2026-001"},
    )
    for bad, field, status in [
        (body | {"kind": "auction"}, "kind", 400),
        (body | {"amount_fen": -5}, "amount_fen", 400),
        (body | {"reference": "LIC 2"}, "reference", 422),
        (body | {"reference": "LIC-3", "commission_fen": 20_000_000}, "commission_fen", 422),
    ]:
        r = await client.post(
            f"/api/v1/operator/cases/{loan.case_id}/receipts", json=bad, headers=op_auth
        )
        assert r.status_code == status and r.json()["field"] == field, (bad, r.text)
    r = await client.post(
        "/api/v1/operator/cases/999999/receipts", json=body | {"reference": "X9"}, headers=op_auth
    )
    assert r.status_code == 404
    assert await counts(pool) == before

    # The bank reads the same distributions back; the cost shows as repaid.
    r = await client.get(f"/api/v1/bank/cases/{loan.case_id}/receipts", headers=auth)
    assert r.status_code == 200
    money = r.json()
    assert money["costs"][0]["repaid_fen"] == 2_000_000
    assert [x["id"] for x in money["receipts"]] == [receipt["id"]]
    assert money["receipts"][0]["distributions"] == receipt["distributions"]

    # Reversal: a reason is required; then a negating posting, payouts reversed.
    r = await client.post(
        f"/api/v1/operator/receipts/{receipt['id']}/reverse", json={"reason": " "}, headers=op_auth
    )
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = await client.post(
        f"/api/v1/operator/receipts/{receipt['id']}/reverse",
        json={"reason": "退票"},
        headers=op_auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "reversed"
    assert {p["status"] for p in r.json()["payouts"]} == {"reversed"}
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action IN ('receipt.record', 'receipt.reverse')"
        )
        == 2
    )
    r = await client.post(
        "/api/v1/operator/receipts/999999/reverse", json={"reason": "x"}, headers=op_auth
    )
    assert r.status_code == 404


async def test_reversal_refused_once_a_payout_was_received(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan, _auth = await bank_loan(pool, clock, enrol_in=zs)
    _op, _user, _email, op_auth = await operator(pool, clock)
    r = await client.post(
        f"/api/v1/operator/cases/{loan.case_id}/receipts",
        json={"kind": "licence_fee", "reference": "FEE-1", "amount_fen": 50_000_00},
        headers=op_auth,
    )
    receipt = r.json()
    await mark_received(pool, clock.now(), receipt["payouts"][0]["id"])
    before = await counts(pool)
    r = await client.post(
        f"/api/v1/operator/receipts/{receipt['id']}/reverse", json={"reason": "x"}, headers=op_auth
    )
    assert r.status_code == 409 and r.json()["code"] == "receipt_paid_out"
    assert await counts(pool) == before


async def test_api_lists_the_latest_receipts_for_the_operator_only(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan, bank_auth = await bank_loan(pool, clock, enrol_in=zs)
    _op, _user, _email, op_auth = await operator(pool, clock)
    received = []
    for kind, reference, amount in (
        ("licence_fee", "FEE-1", 50_000_00),
        ("royalty", "ROY-1", 20_000_00),
    ):
        body = {"kind": kind, "reference": reference, "amount_fen": amount}
        url = f"/api/v1/operator/cases/{loan.case_id}/receipts"
        received.append((await client.post(url, json=body, headers=op_auth)).json())
        clock.advance(seconds=60)
    paid_out, royalty = received
    await mark_received(pool, clock.now(), paid_out["payouts"][0]["id"])
    r = await client.get("/api/v1/operator/receipts", headers=op_auth)
    assert r.status_code == 200
    assert [x["id"] for x in r.json()] == [royalty["id"], paid_out["id"]]  # newest first
    newest, oldest = r.json()
    case_reference = await pool.fetchval(
        "SELECT reference FROM disposal_cases WHERE id = $1", loan.case_id
    )
    assert (newest["case_reference"], newest["kind"], newest["amount_fen"]) == (
        case_reference,
        "royalty",
        20_000_00,
    )
    assert newest["status"] == "routed" and newest["received_payouts"] == 0
    assert oldest["received_payouts"] == 1  # no longer reversible
    # The bank reads its own case's receipts (bank_case_receipts), not everyone's.
    refused = await client.get("/api/v1/operator/receipts", headers=bank_auth)
    assert refused.status_code == 403


async def test_parked_deposit_released_by_write_off(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), PARKED)
    loan, auth = await bank_loan(pool, clock, enrol_in=sh, default_date=date(2025, 9, 1))
    parked = await claim_and_pay(pool, clock.now(), loan, sh)
    assert parked.status == "parked" and parked.amount_fen == 240_000_000
    r = await client.post(
        f"/api/v1/bank/loans/{loan.loan_id}/write-off",
        json={"written_off_on": "2026-01-05"},
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["released_claims"] == 1
    [row] = (await client.get("/api/v1/bank/pools/loans", headers=auth)).json()
    assert row["status"] == "written_off" and row["timing"] == "parked"
    assert [c["status"] for c in row["claims"]] == ["paid"]
    assert row["compensated_fen"] == 240_000_000


async def test_two_operators_recording_one_transfer_make_one_receipt(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    _op, user, _ = await make_org(pool, clock.now(), kind="operator")
    act = await act_as(pool, FrozenClock(clock.now()), user)
    data = bank.ManualReceipt(
        case_id=loan.case_id, kind="royalty", reference="ROY-Q1", amount_fen=10_000_00
    )

    # Both recordings are under way while the case row is held: each must wait for it.
    holder = await pool.acquire()
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM disposal_cases WHERE id = $1 FOR UPDATE", loan.case_id)
        both = asyncio.gather(act(bank.record_receipt, data), act(bank.record_receipt, data))
        await asyncio.sleep(0.2)
        assert await pool.fetchval("SELECT count(*) FROM receipts") == 0
        await tx.rollback()
    finally:
        await pool.release(holder)
    recorded = await both
    assert sorted(r.created for r in recorded) == [False, True]
    assert recorded[0].receipt.id == recorded[1].receipt.id
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'receipt.record'") == 1
    )


# --- pages ----------------------------------------------------------------------------------


async def test_bank_pools_page_enrol_preview_file_and_write_off(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(
        pool,
        clock.now(),
        {
            **SHANGHAI_ADVANCE,
            "shares": [{"name": "fund", "weight": 25}, {"name": "bank", "weight": 75}],
        },
    )
    loan = await make_loan(pool, clock.now(), principal_fen=2 * M, default_date=date(2025, 6, 1))
    await sign_in_bank(client, pool, loan)

    r = await client.get("/bank/pools")
    assert r.status_code == 200
    number = await pool.fetchval("SELECT loan_no FROM loans WHERE id = $1", loan.loan_id)
    assert number in r.text and 'data-testid="enrol-form"' in r.text
    token = await csrf(client)
    before = await counts(pool)
    r = await client.post(
        "/bank/pools/enrolments",
        data={"_csrf_token": token, "loan_id": str(loan.loan_id), "pool_code": "NOPE"},
    )
    assert r.status_code == 422 and 'data-testid="err-enrol-pool_code"' in r.text
    assert "NOPE" in r.text  # what was typed stays
    r = await client.post(
        "/bank/pools/enrolments", data={"_csrf_token": token, "pool_code": sh.code}
    )
    assert r.status_code == 422 and 'data-testid="err-enrol-loan_id"' in r.text
    assert await counts(pool) == before
    r = await client.post(
        "/bank/pools/enrolments",
        data={"_csrf_token": token, "loan_id": str(loan.loan_id), "pool_code": sh.code},
    )
    assert r.status_code == 422 and 'data-testid="err-enrol-loan_id"' in r.text
    # Enrolled on the eve of its default (docs/rules.md §Guarantee pools).
    today = clock.now()
    clock.set(datetime(2025, 5, 31, 2, 0, tzinfo=UTC))
    r = await client.post(
        "/bank/pools/enrolments",
        data={"_csrf_token": token, "loan_id": str(loan.loan_id), "pool_code": sh.code},
        follow_redirects=False,
    )
    clock.set(today)
    assert r.status_code == 303 and r.headers["location"].startswith("/bank/pools?saved=enrolled")

    # Version 2 (55 %) from today on: the loan keeps version 1 (25 %).
    await as_user(
        pool,
        clock.now(),
        sh.user_id,
        dashboard.add_rule_version,
        dashboard.AddRuleVersion(
            pool_id=sh.pool_id, rule=SHANGHAI_ADVANCE, effective_from=date(2026, 1, 5)
        ),
    )
    r = await client.get("/bank/pools")
    assert f'data-testid="version-{loan.loan_id}">v1' in r.text
    # 25 % of CNY 2 m, explained in the page's language only
    assert f'data-testid="preview-amount-{loan.loan_id}">¥500,000.00' in r.text
    assert "资金池应补偿 ¥500,000.00" in r.text and "分担比例 资金池 25 : 银行 75" in r.text
    assert "The pool owes" not in r.text
    client.cookies.set("ipx_lang", "en")
    english = await client.get("/bank/pools")
    assert (
        "The pool owes ¥500,000.00" in english.text and "Shares pool 25 : bank 75" in english.text
    )
    assert "资金池应补偿" not in english.text
    client.cookies.delete("ipx_lang")
    r = await client.post(
        f"/bank/pools/loans/{loan.loan_id}/claims",
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = await client.get("/bank/pools")
    assert f'data-testid="pending-{loan.loan_id}"' in r.text and "待审核" in r.text
    before = await counts(pool)
    r = await client.post(f"/bank/pools/loans/{loan.loan_id}/claims", data={"_csrf_token": token})
    assert r.status_code == 409 and f'data-testid="claim-error-{loan.loan_id}"' in r.text
    assert await counts(pool) == before

    # write-off form: a bad date is named; a good one is recorded
    r = await client.post(
        f"/bank/pools/loans/{loan.loan_id}/write-off",
        data={"_csrf_token": token, "written_off_on": "2026-13-01"},
    )
    assert r.status_code == 422
    assert f'data-testid="err-writeoff.{loan.loan_id}-written_off_on"' in r.text
    r = await client.post(
        f"/bank/pools/loans/{loan.loan_id}/write-off",
        data={"_csrf_token": token, "written_off_on": "2026-01-06"},
    )
    assert r.status_code == 422
    assert f'data-testid="err-writeoff.{loan.loan_id}-written_off_on"' in r.text
    assert "核销日期不能晚于今天" in r.text
    assert await counts(pool) == before
    r = await client.post(
        f"/bank/pools/loans/{loan.loan_id}/write-off",
        data={"_csrf_token": token, "written_off_on": "2026-01-05"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = await client.get("/bank/pools")
    assert "已核销（2026-01-05）" in r.text


async def test_file_claim_page_shows_the_reason_when_not_due(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    await sign_in_bank(client, pool, loan)
    r = await client.get("/bank/pools")
    assert f'data-testid="not-eligible-{loan.loan_id}"' in r.text
    assert "损失尚未确定" in r.text and "The loss is not realised yet" not in r.text
    client.cookies.set("ipx_lang", "en")
    english = await client.get("/bank/pools")
    assert "Claim preview" in english.text and "No compensation is due now" in english.text
    assert "The loss is not realised yet" in english.text and "损失尚未确定" not in english.text
    client.cookies.delete("ipx_lang")
    before = await counts(pool)
    r = await client.post(
        f"/bank/pools/loans/{loan.loan_id}/claims", data={"_csrf_token": await csrf(client)}
    )
    assert r.status_code == 422
    assert f'data-testid="claim-error-{loan.loan_id}"' in r.text and "损失尚未确定" in r.text
    assert await counts(pool) == before


async def test_case_page_costs_close_and_receipts(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    await sign_in_bank(client, pool, loan)
    token = await csrf(client)
    url = f"/bank/pools/cases/{loan.case_id}"
    r = await client.get(url)
    assert r.status_code == 200 and 'data-testid="close-form"' in r.text
    r = await client.get(f"/bank/cases/{loan.case_id}")  # the case page links here
    assert f'href="{url}" data-testid="case-money"' in r.text

    before = await counts(pool)
    r = await client.post(
        f"{url}/costs", data={"_csrf_token": token, "kind": "appraisal", "amount": "12,34"}
    )
    assert r.status_code == 422 and 'data-testid="err-cost-amount"' in r.text
    r = await client.post(
        f"{url}/costs", data={"_csrf_token": token, "kind": "lunch", "amount": "10"}
    )
    assert r.status_code == 422 and 'data-testid="err-cost-kind"' in r.text
    assert await counts(pool) == before
    r = await client.post(
        f"{url}/costs",
        data={"_csrf_token": token, "kind": "appraisal", "amount": "8,000", "memo": "评估费"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    await receive(pool, clock.now(), loan.case_id, 20_000_00, source="page:1", kind="royalty")
    r = await client.get(url)
    assert "¥8,000.00" in r.text and "评估费" in r.text
    ref = await pool.fetchval("SELECT reference FROM payouts WHERE payee_kind = 'bank'")
    assert ref in r.text and "债权·本金" in r.text and "处置费用" in r.text and "提成费" in r.text

    r = await client.post(f"{url}/close", data={"_csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    r = await client.get(url)
    assert 'data-testid="case-status">已终结' in r.text and 'data-testid="close-form"' not in r.text
    r = await client.post(f"{url}/close", data={"_csrf_token": token})
    assert r.status_code == 409 and 'data-testid="close-error"' in r.text

    # another bank's case and loans: 404; a pool manager: 403
    other = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    assert (await client.get(f"/bank/pools/cases/{other.case_id}")).status_code == 404
    r = await client.post(
        f"/bank/pools/cases/{other.case_id}/costs",
        data={"_csrf_token": token, "kind": "other", "amount": "1"},
    )
    assert r.status_code == 404
    r = await client.post(f"/bank/pools/loans/{other.loan_id}/claims", data={"_csrf_token": token})
    assert r.status_code == 404
    r = await client.post(
        f"/bank/pools/loans/{other.loan_id}/write-off",
        data={"_csrf_token": token, "written_off_on": "2026-01-01"},
    )
    assert r.status_code == 404
    page = await client.get("/bank/pools")
    assert f'data-loan="{other.loan_id}"' not in page.text
    assert f'data-loan="{loan.loan_id}"' in page.text

    client.cookies.clear()
    r = await sign_in(client, zs.email)
    assert (await client.get("/bank/pools")).status_code == 403


async def test_case_page_names_every_payee_in_the_page_language(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    await write_off(pool, clock.now(), loan, date(2026, 1, 5))
    await claim_and_pay(pool, clock.now(), loan, zs)  # fund 54, insurer 16, evaluator 4
    await receive(pool, clock.now(), loan.case_id, 10_000_00, kind="royalty", commission_fen=100)
    await sign_in_bank(client, pool, loan)
    url = f"/bank/pools/cases/{loan.case_id}"
    bank_name = await pool.fetchval("SELECT name FROM organisations WHERE id = $1", loan.bank_org)
    zh = (await client.get(url)).text
    assert f"{zs.code}（资金池）" in zh and f"{bank_name}（银行）" in zh
    assert "<td>保险公司</td>" in zh and "<td>评估机构</td>" in zh and "<td>交易平台</td>" in zh
    assert ">insurer<" not in zh and ">evaluator<" not in zh and ">platform<" not in zh
    client.cookies.set("ipx_lang", "en")
    en = (await client.get(url)).text
    assert f"{zs.code} (pool)" in en and "<td>The exchange</td>" in en and "资金池" not in en


async def test_operator_page_records_and_reverses(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    case_ref = await pool.fetchval(
        "SELECT reference FROM disposal_cases WHERE id = $1", loan.case_id
    )
    _op, _user, email, _auth = await operator(pool, clock)
    await sign_in(client, email)
    token = await csrf(client)
    r = await client.get("/operator/pools/receipts")
    assert r.status_code == 200 and case_ref in r.text

    before = await counts(pool)
    form = {
        "_csrf_token": token,
        "case_reference": "CZ-NOPE",
        "kind": "royalty",
        "reference": "ROY-1",
        "amount": "5,000",
    }
    r = await client.post("/operator/pools/receipts", data=form)
    assert r.status_code == 422 and 'data-testid="err-record-case_reference"' in r.text
    r = await client.post(
        "/operator/pools/receipts", data=form | {"case_reference": case_ref, "amount": "abc"}
    )
    assert r.status_code == 422 and 'data-testid="err-record-amount"' in r.text
    r = await client.post(
        "/operator/pools/receipts",
        data=form | {"case_reference": case_ref, "commission": "6,000"},
    )
    assert r.status_code == 422 and 'data-testid="err-record-commission"' in r.text
    assert await counts(pool) == before
    r = await client.post(
        "/operator/pools/receipts", data=form | {"case_reference": case_ref}, follow_redirects=False
    )
    assert r.status_code == 303 and "saved=recorded" in r.headers["location"]
    r = await client.post(
        "/operator/pools/receipts", data=form | {"case_reference": case_ref}, follow_redirects=False
    )
    assert r.status_code == 303 and "saved=same" in r.headers["location"]
    receipt_id = await pool.fetchval("SELECT id FROM receipts")
    r = await client.get("/operator/pools/receipts")
    assert "人工登记，来款流水号 ROY-1" in r.text and "¥5,000.00" in r.text
    assert "manual:" not in r.text  # the receipt's key is not shown as it is

    r = await client.post(
        f"/operator/pools/receipts/{receipt_id}/reverse", data={"_csrf_token": token}
    )
    assert r.status_code == 422 and f'data-testid="err-reverse-{receipt_id}"' in r.text
    r = await client.post(
        f"/operator/pools/receipts/{receipt_id}/reverse",
        data={"_csrf_token": token, "reason": "退票"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert await pool.fetchval("SELECT status FROM receipts") == "reversed"

    # a bank user may not
    client.cookies.clear()
    await sign_in_bank(client, pool, loan)
    assert (await client.get("/operator/pools/receipts")).status_code == 403


def test_every_shown_value_has_a_text() -> None:
    from typing import get_args

    from market import i18n
    from market.pools.rule_text import KNOWN_PARTIES
    from market.pools.waterfall import PayeeKind, Step
    from market.pools.web_bank import SAVED

    keys = [f"bankpool.saved.{s}" for s in SAVED]
    keys += [f"bankpool.step.{s}" for s in get_args(Step)]
    keys += [f"bankpool.payee.{p}" for p in get_args(PayeeKind)]
    keys += [f"bankpool.receipt.kind.{k}" for k in get_args(services.ReceiptKind)]
    keys += [f"bankpool.cost.kind.{k}" for k in bank.COST_KINDS]
    keys += [f"pool.party.{p}" for p in KNOWN_PARTIES]
    for prefix, values in (
        ("claim.status", ("filed", "rejected", "parked", "paid")),
        ("timing", ("after_loss", "advance", "parked")),
        ("payout.status", ("expected", "received", "reversed")),
        ("receipt.status", ("routed", "reversed")),
        ("case.status", ("open", "closed")),
    ):
        keys += [f"bankpool.{prefix}.{v}" for v in values]
    assert [k for k in keys if not i18n.has(k)] == []


# --- input that is no value, organisations not approved ---------------------------------


async def test_a_loan_id_that_is_no_whole_number_is_named_not_500(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M)
    await sign_in_bank(client, pool, loan)
    token = await csrf(client)
    before = await counts(pool)
    for bad in ("²", "١٢", "abc", "-1", "0", "1.5", str(2**63)):
        r = await client.post(
            "/bank/pools/enrolments",
            data={"_csrf_token": token, "loan_id": bad, "pool_code": zs.code},
        )
        assert r.status_code == 422, (bad, r.status_code)
        assert 'data-testid="err-enrol-loan_id"' in r.text and "须为整数" in r.text, bad
    r = await client.post("/bank/pools/enrolments", data={"_csrf_token": token, "loan_id": " "})
    assert r.status_code == 422 and "必填" in r.text
    assert await counts(pool) == before


async def test_operator_form_names_the_field_msgspec_refuses(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    case_ref = await pool.fetchval(
        "SELECT reference FROM disposal_cases WHERE id = $1", loan.case_id
    )
    _op, _user, email, _auth = await operator(pool, clock)
    await sign_in(client, email)
    token = await csrf(client)
    form = {
        "_csrf_token": token,
        "case_reference": case_ref,
        "kind": "royalty",
        "reference": "ROY-1",
        "amount": "5,000",
    }
    before = await counts(pool)
    r = await client.post("/operator/pools/receipts", data=form | {"amount": "0"})
    assert r.status_code == 422 and 'data-testid="err-record-amount"' in r.text
    assert 'data-testid="err-record-form"' not in r.text
    r = await client.post("/operator/pools/receipts", data=form | {"reference": "R" * 61})
    assert r.status_code == 422 and 'data-testid="err-record-reference"' in r.text
    assert await counts(pool) == before

    # a reversal's reason has the API's cap (500 characters)
    r = await client.post("/operator/pools/receipts", data=form, follow_redirects=False)
    assert r.status_code == 303
    receipt_id = await pool.fetchval("SELECT id FROM receipts")
    before = await counts(pool)
    r = await client.post(
        f"/operator/pools/receipts/{receipt_id}/reverse",
        data={"_csrf_token": token, "reason": "x" * 501},
    )
    assert r.status_code == 422 and f'data-testid="err-reverse-{receipt_id}"' in r.text
    assert await counts(pool) == before
    assert await pool.fetchval("SELECT status FROM receipts") == "routed"
    r = await client.post(
        "/operator/pools/receipts/999999/reverse", data={"_csrf_token": token, "reason": "x"}
    )
    assert r.status_code == 404


async def test_organisations_not_approved_act_on_nothing(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan, auth = await bank_loan(pool, clock, enrol_in=zs)
    op, _user, op_email, op_auth = await operator(pool, clock)
    suspend = "UPDATE organisations SET status = $2 WHERE id = $1"

    await sign_in_bank(client, pool, loan)
    token = await csrf(client)
    assert (await client.get("/bank/pools")).status_code == 200
    await pool.execute(suspend, loan.bank_org, "suspended")
    assert (await client.get("/bank/pools")).status_code == 403
    assert (await client.get(f"/bank/pools/cases/{loan.case_id}")).status_code == 403
    r = await client.post(
        f"/bank/pools/cases/{loan.case_id}/costs",
        data={"_csrf_token": token, "kind": "appraisal", "amount": "100"},
    )
    assert r.status_code == 403
    # (the tokens were not used before: their callers are not cached as approved)
    assert (await client.get("/api/v1/bank/pools/loans", headers=auth)).status_code == 403
    r = await client.post(f"/api/v1/bank/loans/{loan.loan_id}/claims", headers=auth)
    assert r.status_code == 403

    client.cookies.clear()
    await sign_in(client, op_email)
    token = await csrf(client)
    await pool.execute(suspend, op, "pending")
    assert (await client.get("/operator/pools/receipts")).status_code == 403
    r = await client.post(
        f"/api/v1/operator/cases/{loan.case_id}/receipts",
        json={"kind": "royalty", "reference": "ROY-9", "amount_fen": 100_00},
        headers=op_auth,
    )
    assert r.status_code == 403
    for table in ("case_costs", "compensation_claims", "receipts"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_every_bank_pool_page_shows_no_key(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=M, enrol_in=zs)
    await write_off(pool, clock.now(), loan, date(2026, 1, 5))
    await claim_and_pay(pool, clock.now(), loan, zs)
    await receive(pool, clock.now(), loan.case_id, 10_000_00, kind="royalty")
    await sign_in_bank(client, pool, loan)
    key = re.compile(r">[^<]*\b(?:pool|bankpool|problem)\.[a-z_]+(?:\.[a-z_]+)*")
    for lang in ("zh", "en"):
        client.cookies.set("ipx_lang", lang)
        for path in ("/bank/pools", f"/bank/pools/cases/{loan.case_id}"):
            r = await client.get(path)
            assert r.status_code == 200 and not key.search(r.text), (lang, path)
