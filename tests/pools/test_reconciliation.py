"""Reconciliation (docs/rules.md §Reconciliation): a pool or a bank imports the bank
statement of the transfers it received; lines are matched to expected payouts by
reference, amount and date; the rest are listed with reasons (a code and parameters, in
the reader's language) and matched by hand or set aside, audited; statements of payouts
per pool, per bank and per case export as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from market.accounts.permissions import READ_RECONCILIATION, WRITE_RECONCILIATION, permission_of
from market.clock import FrozenClock
from market.errors import AppError, Conflict, Forbidden, Invalid, NotFound
from market.ledger import balance
from market.pools import reconciliation as recon
from market.pools import statement_export
from market.pools.matching import (
    Expected,
    classify,
    decode_reason,
    edit_distance,
    encode_reason,
    reason,
    reason_text,
)
from market.pools.statement_csv import StatementLine, parse_statement
from tests.factories import act_as, csrf, make_token, sign_in
from tests.pools.scene import (
    SHENZHEN,
    Loan,
    PoolOrg,
    claim_and_pay,
    make_loan,
    make_pool,
    receive,
    reverse,
    write_off,
)

Client = AsyncTestClient[Any]
DAY = date(2026, 1, 5)  # the FrozenClock's day in Asia/Shanghai


@dataclass
class Scene:
    pool_org: PoolOrg
    loan: Loan
    pool_payouts: list[asyncpg.Record]  # the pool's expected payouts, oldest first
    bank_payouts: list[asyncpg.Record]


async def scene(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    receipts: tuple[int, ...] = (20_000_000, 10_000_000, 5_000_000, 4_000_000),
) -> Scene:
    """A Shenzhen-rule pool (fund 1 : bank 1) that paid CNY 1.5 m on a CNY 3 m written-off
    loan; each receipt on the case is then split half to the pool, half to the bank."""
    at = clock.now()
    p = await make_pool(pool, at, SHENZHEN)
    loan = await make_loan(pool, at, principal_fen=300_000_000, enrol_in=p)
    await write_off(pool, at, loan, DAY)
    await claim_and_pay(pool, at, loan, p)
    for fen in receipts:
        await receive(pool, at, loan.case_id, fen)
    rows = await pool.fetch("SELECT * FROM payouts WHERE case_id = $1 ORDER BY id", loan.case_id)
    return Scene(
        p,
        loan,
        [r for r in rows if r["payee_kind"] == "pool"],
        [r for r in rows if r["payee_kind"] == "bank"],
    )


def statement_csv(
    *lines: tuple[str, str, str, str, str], header: str = "交易日期,金额,附言,对方户名,流水号"
) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header.split(","))
    for line in lines:
        w.writerow(line)
    return out.getvalue().encode("utf-8")


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def typo(reference: str) -> str:
    """One character changed (as a person retyping the reference would)."""
    last = reference[-1]
    return reference[:-1] + ("A" if last != "A" else "B")


async def do_import(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    org: int,
    user: int,
    data: bytes,
    name: str = "statement.csv",
) -> recon.ImportOut:
    """Import as `user` of `org` (the command), then read the result as the API answers
    it, the reasons in English."""
    act = await act_as(pool, clock, user)
    assert act.actor.org_id == org
    done = await act(recon.import_statement, recon.ImportStatement(data=data, filename=name))
    async with pool.acquire() as conn:
        return await recon.import_out(conn, org, done, "en")


async def do_match(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    org: int,
    user: int,
    line_id: int,
    reference: str,
    note: str = "",
) -> recon.LineDone:
    act = await act_as(pool, clock, user)
    assert act.actor.org_id == org
    return await act(
        recon.match_line, recon.MatchLine(line_id=line_id, reference=reference, note=note)
    )


async def do_set_aside(
    pool: asyncpg.Pool, clock: FrozenClock, org: int, user: int, line_id: int, note: str
) -> recon.LineDone:
    act = await act_as(pool, clock, user)
    assert act.actor.org_id == org
    return await act(recon.set_aside_line, recon.SetAsideLine(line_id=line_id, note=note))


async def received_entries(pool: asyncpg.Pool, payout_id: int) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE source_kind = 'payout_received' AND source_id = $1",
            str(payout_id),
        )
    )


# --- each kind of line ----------------------------------------------------------------------


async def test_matched_amount_mismatch_reference_typo_and_unknown_each_classified(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a, b, c, _d = s.pool_payouts
    # Receipts of 200,000 / 100,000 / 50,000 / 40,000 split 1 : 1 → the pool expects half.
    assert [p["amount_fen"] for p in s.pool_payouts] == [
        10_000_000,
        5_000_000,
        2_500_000,
        2_000_000,
    ]
    wrong_ref = typo(c["reference"])
    data = statement_csv(
        # 1. matched: the reference in lower case with spaces, inside a longer message
        (
            "2026-01-05",
            yuan(a["amount_fen"]),
            f"回款 {a['reference'][:6].lower()} {a['reference'][6:].lower()}",
            "知识产权交易所",
            "T0001",
        ),
        # 2. amount mismatch: the right reference, CNY 100 short
        ("2026/1/5", yuan(b["amount_fen"] - 10_000), b["reference"], "知识产权交易所", "T0002"),
        # 3. reference typo: one character wrong, the right amount
        ("20260105", yuan(c["amount_fen"]), wrong_ref, "知识产权交易所", "T0003"),
        # 4. unknown: a transfer that has nothing to do with any expected recovery
        ("2026-01-05", "12,345.67", "货款 合同ZS-2025-118", "中山某贸易公司", "T0004"),
    )
    out = await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)

    by_line = {ln.line_no: ln for ln in out.lines}
    assert [by_line[n].status for n in (2, 3, 4, 5)] == [
        "matched",
        "amount_mismatch",
        "reference_typo",
        "unknown",
    ]
    assert out.counts == {
        "matched": 1,
        "amount_mismatch": 1,
        "reference_typo": 1,
        "unknown": 1,
        "manual": 0,
    }
    matched, mismatch, wrong, unknown = (by_line[n] for n in (2, 3, 4, 5))
    assert matched.payout_id == a["id"] and matched.payout_reference == a["reference"]
    assert mismatch.payout_id is None and mismatch.candidate_id == b["id"]
    assert mismatch.reason is not None and mismatch.reason.code == "amount_differs"
    assert mismatch.reason.params == {
        "reference": b["reference"],
        "expected_fen": b["amount_fen"],
        "got_fen": b["amount_fen"] - 10_000,
        "difference_fen": -10_000,
    }
    assert mismatch.reason.detail == (
        f"{b['reference']} expects ¥{yuan(b['amount_fen'])}, got ¥{yuan(b['amount_fen'] - 10_000)}"
        " (difference -¥100.00)"
    )
    stored = decode_reason(
        await pool.fetchval("SELECT reason FROM statement_lines WHERE id = $1", mismatch.id)
    )
    assert stored is not None and "应收 ¥50,000.00，实收 ¥49,900.00" in reason_text("zh", stored)
    assert wrong.payout_id is None and wrong.candidate_id == c["id"]
    assert wrong.candidate_reference == c["reference"]
    assert wrong.reason is not None and wrong.reason.code == "typo_same_amount"
    assert wrong.reason.params["reference"] == c["reference"]
    assert wrong.reason.params["distance"] == 1
    assert f"closest open one is {c['reference']} (edit distance 1, same amount" in (
        wrong.reason.detail
    )
    assert unknown.payout_id is None and unknown.candidate_id is None
    assert unknown.reason is not None and unknown.reason.code == "nothing_fits"
    assert "fits an open transfer" in unknown.reason.detail
    assert matched.reason is not None and matched.reason.code == "fits"

    # Only the matched line moved money: its payout is received, with one ledger entry.
    status = dict(
        await pool.fetch("SELECT id, status FROM payouts WHERE case_id = $1", s.loan.case_id)
    )
    assert status[a["id"]] == "received"
    assert status[b["id"]] == status[c["id"]] == "expected"
    assert await received_entries(pool, a["id"]) == 1
    assert await received_entries(pool, b["id"]) == 0
    # The pool's recoverable compensation turned back into fund money for that payout only.
    async with pool.acquire() as conn:
        recoverable = await balance(conn, f"pool:{s.pool_org.pool_id}:recoverable")
    assert recoverable == 150_000_000 - a["amount_fen"]
    audit = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'statement.import'")
    assert (
        audit["chain_org_id"] == s.pool_org.org_id and audit["actor_user_id"] == s.pool_org.user_id
    )
    assert audit["after"]["counts"]["matched"] == 1 and audit["after"]["settled"] == [
        a["reference"]
    ]


# --- all or nothing, once per file ------------------------------------------------------------


async def api_headers(pool: asyncpg.Pool, clock: FrozenClock, user: int) -> dict[str, str]:
    token = await make_token(pool, clock.now(), user, ["pools:read", "pools:write"])
    return {"Authorization": f"Bearer {token}"}


async def written(pool: asyncpg.Pool) -> tuple[int, int, int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM statements"),
        await pool.fetchval("SELECT count(*) FROM statement_lines"),
        await pool.fetchval("SELECT count(*) FROM payouts WHERE status = 'received'"),
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action LIKE 'statement%'"),
    )


async def test_a_bad_line_rejects_the_file_naming_line_and_column_and_writes_nothing(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a = s.pool_payouts[0]
    headers = await api_headers(pool, clock, s.pool_org.user_id)
    data = statement_csv(
        ("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1"),  # fine, would match
        ("2026-01-05", "1,5", "HKXXXX", "交易所", "T2"),  # European decimal comma
        ("2026-02-30", "100.00", "HKYYYY", "交易所", "T3"),  # no such day
        ("2026-01-06", "100.00", "HKZZZZ", "交易所", "T1"),  # tomorrow, and T1 again
    )
    r = await client.post(
        "/api/v1/reconciliation/statements?filename=一月.csv",
        content=data,
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "statement_rejected" and body["field"] == "file"
    assert body["params"] == {"filename": "一月.csv", "count": 4}
    assert body["detail"] == "file：一月.csv 未导入，未写入任何数据：发现 4 处问题，按行和列列出。"
    problems = [(e["line"], e["field"], e["params"]["column"], e["code"]) for e in body["errors"]]
    assert problems == [
        (3, "amount", "金额", "amount_bad_grouping"),
        (4, "value_date", "交易日期", "statement_no_such_day"),
        (5, "value_date", "交易日期", "statement_date_in_future"),
        (5, "bank_txn_id", "流水号", "statement_txn_twice"),
    ]
    assert body["errors"][2]["params"] == {
        "column": "交易日期",
        "date": "2026-01-06",
        "today": "2026-01-05",
    }
    assert body["errors"][3]["params"] == {"column": "流水号", "txn": "T1", "first_line": 2}
    # The words of each problem: in the caller's language, one language at a time.
    assert body["errors"][0]["detail"] == "逗号须每三位分隔，如 1,200,000.50。"
    r = await client.post(
        "/api/v1/reconciliation/statements?filename=一月.csv",
        content=data,
        headers={**headers, "Content-Type": "text/csv", "Accept-Language": "en"},
    )
    body = r.json()
    assert body["detail"].startswith("file: 一月.csv was not imported, nothing was written")
    details = [e["detail"] for e in body["errors"]]
    assert "groups of three digits" in details[0]
    assert "not a calendar date" in details[1]
    assert "2026-01-06 is after today (2026-01-05)" in details[2]
    assert "listed twice (also line 2)" in details[3]
    assert await written(pool) == (0, 0, 0, 0)

    # A file without the reference column is refused at its header line.
    r = await client.post(
        "/api/v1/reconciliation/statements",
        content="日期,金额\r\n2026-01-05,100\r\n".encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422
    (problem,) = r.json()["errors"]
    assert (problem["line"], problem["field"], problem["code"]) == (
        1,
        "reference",
        "statement_reference_missing",
    )
    assert "请添加“附言”（或 reference）" in problem["detail"]
    assert await written(pool) == (0, 0, 0, 0)
    # Not a CSV body at all: 415, naming what to send.
    r = await client.post("/api/v1/reconciliation/statements", json={"file": "x"}, headers=headers)
    assert r.status_code == 415 and r.json()["code"] == "statement_not_csv", r.text


async def test_a_nul_in_a_statement_is_named_by_line_and_column(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a = s.pool_payouts[0]
    headers = {**await api_headers(pool, clock, s.pool_org.user_id), "Content-Type": "text/csv"}
    data = statement_csv(
        ("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1"),
        ("2026-01-05", "100.00", "HK", "交易所", "T2\x00"),
    )
    r = await client.post(
        "/api/v1/reconciliation/statements",
        content=data,
        headers={**headers, "Accept-Language": "en"},
    )
    assert r.status_code == 422, r.text
    (problem,) = r.json()["errors"]
    assert problem == {
        "code": "control_character_in_text",
        "detail": "Contains a control character (U+0000); remove it.",
        "line": 3,
        "field": "bank_txn_id",
        "params": {"column": "流水号", "char": "U+0000"},
    }
    assert await written(pool) == (0, 0, 0, 0)


async def test_the_same_file_twice_is_refused_and_known_transactions_are_skipped(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a, b = s.pool_payouts[:2]
    headers = {**await api_headers(pool, clock, s.pool_org.user_id), "Content-Type": "text/csv"}
    first = statement_csv(("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1"))
    r = await client.post(
        "/api/v1/reconciliation/statements?filename=week1.csv", content=first, headers=headers
    )
    assert r.status_code == 201, r.text
    statement_id = r.json()["statement"]["id"]
    assert r.json()["counts"]["matched"] == 1

    again = await client.post(
        "/api/v1/reconciliation/statements?filename=copy.csv", content=first, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_statement"
    assert again.json()["params"] == {
        "filename": "copy.csv",
        "statement_id": statement_id,
        "first_filename": "week1.csv",
        "imported_on": "2026-01-05",
    }
    assert f"已作为对账单 {statement_id} 导入过（week1.csv" in again.json()["detail"]
    assert await written(pool) == (1, 1, 1, 1)

    # The month's statement repeats week 1's transfer (same 流水号): skipped, not a second
    # transfer; the new one is matched.
    month = statement_csv(
        ("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1"),
        ("2026-01-05", yuan(b["amount_fen"]), b["reference"], "交易所", "T2"),
    )
    r = await client.post(
        "/api/v1/reconciliation/statements?filename=month.csv", content=month, headers=headers
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert [sk["line_no"] for sk in out["skipped"]] == [2]
    skipped = out["skipped"][0]["reason"]
    assert skipped["code"] == "txn_imported_already"
    assert skipped["params"] == {"txn": "T1", "statement_id": statement_id, "line": 2}
    assert skipped["detail"] == f"流水号 T1 已在对账单 {statement_id} 第 2 行导入"
    assert [ln["status"] for ln in out["lines"]] == ["matched"]
    assert out["statement"]["line_count"] == 2 and out["statement"]["lines_recorded"] == 1
    assert await received_entries(pool, a["id"]) == 1 and await received_entries(pool, b["id"]) == 1


async def test_concurrent_uploads_of_one_file_import_it_once(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a = s.pool_payouts[0]
    data = statement_csv(("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1"))
    results = await asyncio.gather(
        *(do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(x, recon.ImportOut) for x in results) == 1
    assert sum(isinstance(x, Conflict) for x in results) == 2
    assert await written(pool) == (1, 1, 1, 1)
    assert await received_entries(pool, a["id"]) == 1


# --- matching by hand ------------------------------------------------------------------------


async def test_a_manual_match_is_audited_and_moves_the_money_once(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    b, c = s.pool_payouts[1:3]
    data = statement_csv(
        ("2026-01-05", yuan(b["amount_fen"] - 10_000), b["reference"], "交易所", "T1"),
        ("2026-01-05", yuan(c["amount_fen"]), typo(c["reference"]), "交易所", "T2"),
    )
    out = await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)
    mismatch, wrong = out.lines
    headers = await api_headers(pool, clock, s.pool_org.user_id)

    # A short transfer settles b only with the reason it is short.
    r = await client.post(
        f"/api/v1/reconciliation/lines/{mismatch.id}/match",
        json={"reference": b["reference"]},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "short_reason_needed"
    assert (r.json()["field"], r.json()["params"]) == (
        "short_reason",
        {
            "line": 2,
            "got_fen": 4_990_000,
            "reference": b["reference"],
            "expected_fen": 5_000_000,
            "short_fen": 10_000,
        },
    )
    assert r.json()["detail"] == (
        f"short_reason：第 2 行到账 ¥49,900.00，比 {b['reference']} 应收的 ¥50,000.00 少 "
        "¥100.00：请选择短收原因（如银行手续费），差额将单列待补。"
    )
    r = await client.post(
        f"/api/v1/reconciliation/lines/{mismatch.id}/match",
        json={"reference": b["reference"]},
        headers={**headers, "Accept-Language": "en"},
    )
    assert r.json()["detail"] == (
        f"short_reason: Line 2 received ¥49,900.00, ¥100.00 less than the ¥50,000.00 "
        f"{b['reference']} expects: choose why it is short (bank charges, for example); "
        "the difference stays outstanding."
    )
    # The typo line is c: matched by hand, by reference typed in lower case with spaces.
    typed = c["reference"][:5].lower() + " " + c["reference"][5:].lower()
    r = await client.post(
        f"/api/v1/reconciliation/lines/{wrong.id}/match",
        json={"reference": typed, "note": "电话确认，附言笔误"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    line = r.json()
    assert line["status"] == "manual" and line["payout_reference"] == c["reference"]
    assert line["matched_by"] and line["matched_at"]

    payout = await pool.fetchrow("SELECT * FROM payouts WHERE id = $1", c["id"])
    assert payout["status"] == "received" and payout["received_entry_id"] is not None
    assert await received_entries(pool, c["id"]) == 1
    async with pool.acquire() as conn:
        assert (
            await balance(conn, f"pool:{s.pool_org.pool_id}:recoverable")
            == 150_000_000 - c["amount_fen"]
        )
        assert await balance(conn, f"payable:pool:{s.pool_org.pool_id}") == -sum(
            p["amount_fen"] for p in s.pool_payouts if p["id"] != c["id"]
        )
    audit = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'statement_line.match'")
    assert audit["chain_org_id"] == s.pool_org.org_id
    assert audit["actor_user_id"] == s.pool_org.user_id and audit["object_id"] == str(wrong.id)
    assert audit["before"]["status"] == "reference_typo"
    assert audit["after"] == {
        "status": "manual",
        "payout_id": c["id"],
        "reference": c["reference"],
        "amount_fen": c["amount_fen"],
        "note": "电话确认，附言笔误",
    }

    # Again: the line is settled (409), and nothing moves a second time.
    r = await client.post(
        f"/api/v1/reconciliation/lines/{wrong.id}/match",
        json={"payout_id": c["id"]},
        headers=headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "settled_already"
    assert r.json()["params"] == {
        "statement_id": out.statement.id,
        "line": wrong.line_no,
        "status": "manual",
    }
    assert await received_entries(pool, c["id"]) == 1
    exceptions = (await client.get("/api/v1/reconciliation/exceptions", headers=headers)).json()
    assert [e["id"] for e in exceptions] == [mismatch.id]
    # The open line's reason: the same code and parameters in either language.
    (zh,) = exceptions
    (en,) = (
        await client.get(
            "/api/v1/reconciliation/exceptions", headers={**headers, "Accept-Language": "en"}
        )
    ).json()
    assert zh["reason"]["code"] == en["reason"]["code"] == "amount_differs"
    assert zh["reason"]["params"] == en["reason"]["params"]
    assert "应收 ¥50,000.00，实收 ¥49,900.00" in zh["reason"]["detail"]
    assert "expects ¥50,000.00, got ¥49,900.00" in en["reason"]["detail"]


async def test_a_match_names_one_payout_with_printable_text(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a, c = s.pool_payouts[0], s.pool_payouts[2]
    data = statement_csv(("2026-01-05", yuan(c["amount_fen"]), typo(c["reference"]), "", "T1"))
    (line,) = (await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)).lines
    headers = await api_headers(pool, clock, s.pool_org.user_id)
    url = f"/api/v1/reconciliation/lines/{line.id}/match"

    # An id and a reference of two different payouts: which one? Refused, nothing settled.
    r = await client.post(
        url, json={"payout_id": a["id"], "reference": c["reference"]}, headers=headers
    )
    assert r.status_code == 422 and r.json()["field"] == "payout_id", r.text
    # A payout id the organisation does not have is reported on payout_id.
    r = await client.post(url, json={"payout_id": 2**62}, headers=headers)
    assert r.status_code == 404 and r.json()["field"] == "payout_id", r.text
    # A control character is refused with its field (a NUL would not even be stored); an
    # endless note is refused by the schema.
    r = await client.post(
        url, json={"reference": c["reference"], "note": "ok\u0000"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["field"] == "note", r.text
    assert r.json()["code"] == "control_character_in_text"
    assert r.json()["params"] == {"char": "U+0000"}
    r = await client.post(
        url, json={"reference": c["reference"], "note": "x" * 501}, headers=headers
    )
    assert r.status_code == 400 and r.json()["field"] == "note", r.text
    # The page's form: the same checks, shown at the line.
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    r = await client.post(
        f"/reconciliation/lines/{line.id}/match",
        data={"_csrf_token": await csrf(client), "reference": c["reference"] + "\x00"},
        follow_redirects=False,
    )
    assert r.status_code == 422 and 'data-testid="match-error"' in r.text
    assert "含不可见的控制字符（U+0000）" in r.text
    # A reference the pool has no transfer of: said at the line, not an error page.
    r = await client.post(
        f"/reconciliation/lines/{line.id}/match",
        data={"_csrf_token": await csrf(client), "reference": "HKNOSUCHREF1"},
        follow_redirects=False,
    )
    assert r.status_code == 404 and 'data-testid="match-error"' in r.text
    assert "您没有转账 HKNOSUCHREF1" in r.text
    assert await pool.fetchval("SELECT status FROM payouts WHERE id = $1", c["id"]) == "expected"
    assert await pool.fetchval("SELECT status FROM payouts WHERE id = $1", a["id"]) == "expected"
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'statement_line.match'")
        == 0
    )
    # By id alone, it settles.
    r = await client.post(url, json={"payout_id": c["id"]}, headers=headers)
    assert r.status_code == 200 and r.json()["payout_id"] == c["id"], r.text


async def test_two_people_matching_two_lines_to_one_payout_at_once_one_wins(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    d = s.pool_payouts[3]
    # Two transfers of d's amount without a reference: d is the pool's only open payout of
    # that amount, so both lines propose it, and both wait for a person.
    data = statement_csv(
        ("2026-01-05", yuan(d["amount_fen"]), "", "交易所", "T1"),
        ("2026-01-05", yuan(d["amount_fen"]), "回款", "交易所", "T2"),
    )
    out = await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)
    assert [ln.status for ln in out.lines] == ["reference_typo", "reference_typo"]
    assert {ln.candidate_id for ln in out.lines} == {d["id"]}
    assert out.lines[0].reason is not None
    assert out.lines[0].reason.code == "only_open_of_amount"
    assert "the only open transfer" in out.lines[0].reason.detail

    results = await asyncio.gather(
        *(
            do_match(pool, clock, s.pool_org.org_id, s.pool_org.user_id, ln.id, d["reference"])
            for ln in out.lines
        ),
        return_exceptions=True,
    )
    won = [x for x in results if isinstance(x, recon.LineDone)]
    lost = [x for x in results if isinstance(x, AppError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict) and lost[0].code == "transfer_received_on_line"
    assert lost[0].params["line"] == won[0].line_no
    assert await received_entries(pool, d["id"]) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM statement_lines WHERE payout_id = $1", d["id"])
        == 1
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'statement_line.match'")
        == 1
    )


async def test_an_import_racing_a_manual_match_for_one_payout_settles_it_once(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    c = s.pool_payouts[2]
    first = await do_import(
        pool,
        clock,
        s.pool_org.org_id,
        s.pool_org.user_id,
        statement_csv(("2026-01-05", yuan(c["amount_fen"]), typo(c["reference"]), "交易所", "T1")),
    )
    (typo_line,) = first.lines
    second = statement_csv(("2026-01-05", yuan(c["amount_fen"]), c["reference"], "交易所", "T9"))
    results = await asyncio.gather(
        do_match(pool, clock, s.pool_org.org_id, s.pool_org.user_id, typo_line.id, c["reference"]),
        do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, second, "second.csv"),
        return_exceptions=True,
    )
    assert await received_entries(pool, c["id"]) == 1
    settled = await pool.fetch("SELECT status FROM statement_lines WHERE payout_id = $1", c["id"])
    assert len(settled) == 1
    if isinstance(results[0], recon.LineDone):  # the person was first: the import sees it received
        assert isinstance(results[1], recon.ImportOut)
        assert results[1].lines[0].status == "unknown"
        why = results[1].lines[0].reason
        assert why is not None and why.code == "received_already_on_line"
        assert "received already" in why.detail
    else:  # the import was first: the manual match is refused
        assert isinstance(results[0], Conflict)
        assert isinstance(results[1], recon.ImportOut) and results[1].lines[0].status == "matched"


async def test_a_line_that_is_no_recovery_is_set_aside_with_its_reason_and_moves_nothing(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """Bank interest is no payout: a person sets the line aside, saying why; it leaves the
    exceptions, no payout or ledger entry moves, it is audited, and it can still be
    matched by hand later (here: the 'interest' turns out to be recovery d after all)."""
    s = await scene(pool, clock)
    d = s.pool_payouts[3]
    data = statement_csv(
        ("2026-01-05", "12.34", "结息", "本行", "T1"),
        ("2026-01-05", yuan(d["amount_fen"]), "退款", "某公司", "T2"),
    )
    out = await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)
    interest, other = out.lines
    headers = await api_headers(pool, clock, s.pool_org.user_id)
    url = f"/api/v1/reconciliation/lines/{interest.id}/set-aside"
    entries = await pool.fetchval("SELECT count(*) FROM ledger_entries")

    # No reason, a blank one, an endless one, a control character, an unknown field:
    # each refused on its field, nothing changes.
    for body, status in (
        ({}, 400),
        ({"note": ""}, 400),
        ({"note": "   "}, 422),
        ({"note": "x" * 501}, 400),
        ({"note": "结息\u0000"}, 422),
        ({"note": "结息", "payout_id": d["id"]}, 400),
    ):
        r = await client.post(url, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if status == 422:
            assert r.json()["field"] == "note", r.text
    r = await client.post(url, json={"note": " "}, headers={**headers, "Accept-Language": "en"})
    assert r.json()["code"] == "set_aside_reason_needed"
    assert r.json()["detail"].startswith("note: Say why this line is no expected recovery")
    assert await pool.fetchval("SELECT status FROM statement_lines WHERE id = $1", interest.id) == (
        interest.status
    )

    r = await client.post(url, json={"note": " 银行季度结息 "}, headers=headers)
    assert r.status_code == 200, r.text
    line = r.json()
    assert line["status"] == "set_aside" and line["note"] == "银行季度结息"
    assert line["payout_id"] is None and line["matched_by"] and line["matched_at"]
    assert await pool.fetchval("SELECT count(*) FROM ledger_entries") == entries
    audit = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'statement_line.set_aside'")
    assert audit["object_id"] == str(interest.id) and audit["chain_org_id"] == s.pool_org.org_id
    assert audit["before"]["status"] == interest.status
    assert audit["after"] == {"status": "set_aside", "note": "银行季度结息"}

    exceptions = (await client.get("/api/v1/reconciliation/exceptions", headers=headers)).json()
    assert [e["id"] for e in exceptions] == [other.id]
    stmt = (
        await client.get(f"/api/v1/reconciliation/statements/{out.statement.id}", headers=headers)
    ).json()["statement"]
    assert (stmt["set_aside"], stmt["open"], stmt["manual"]) == (1, 1, 0)

    # Once only: set aside again, or by another organisation (404, as if absent).
    r = await client.post(url, json={"note": "again"}, headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "set_aside_already", r.text
    assert r.json()["detail"] == f"对账单 {out.statement.id} 第 {interest.line_no} 行已另行处理。"
    bank_headers = await api_headers(pool, clock, s.loan.bank_user)
    r = await client.post(
        f"/api/v1/reconciliation/lines/{other.id}/set-aside",
        json={"note": "not mine"},
        headers=bank_headers,
    )
    assert r.status_code == 404, r.text

    # The other line, set aside by mistake, is recovery d after all: matched by hand.
    r = await client.post(
        f"/api/v1/reconciliation/lines/{other.id}/set-aside",
        json={"note": "以为是退款"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/reconciliation/lines/{other.id}/match",
        json={"reference": d["reference"], "note": "核实为回款"},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "manual", r.text
    assert r.json()["note"] == "核实为回款"
    assert await received_entries(pool, d["id"]) == 1
    match = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'statement_line.match'")
    assert match["before"]["status"] == "set_aside"


async def test_setting_aside_and_matching_one_line_at_once_do_one_of_them(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """Both lock the line first: one wins, the other is told the line is done already,
    and the line's status agrees with the payout and the ledger."""
    for _ in range(3):  # a scene each: its own pool organisation
        s = await scene(pool, clock)
        d = s.pool_payouts[3]
        data = statement_csv(("2026-01-05", yuan(d["amount_fen"]), "", "交易所", "T1"))
        (line,) = (await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)).lines

        results = await asyncio.gather(
            do_set_aside(pool, clock, s.pool_org.org_id, s.pool_org.user_id, line.id, "不是回款"),
            do_match(pool, clock, s.pool_org.org_id, s.pool_org.user_id, line.id, d["reference"]),
            return_exceptions=True,
        )
        won = [x for x in results if isinstance(x, recon.LineDone)]
        lost = [x for x in results if isinstance(x, Conflict)]
        assert len(won) >= 1 and len(won) + len(lost) == 2, results
        status = await pool.fetchval("SELECT status FROM statement_lines WHERE id = $1", line.id)
        received = await received_entries(pool, d["id"])
        if (
            len(won) == 2 or won[0].status == "manual"
        ):  # set aside first, then matched by hand: allowed, in that order
            assert status == "manual" and received == 1
        else:  # set aside first and the match lost? impossible: a set-aside line matches
            raise AssertionError(results)


async def test_two_statements_naming_one_payout_settle_it_once(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a = s.pool_payouts[0]
    files = [
        statement_csv(("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", f"T{n}"))
        for n in (1, 2)
    ]
    results = await asyncio.gather(
        *(do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, f) for f in files)
    )
    statuses = sorted(r.lines[0].status for r in results)
    assert statuses == ["matched", "unknown"]
    assert await received_entries(pool, a["id"]) == 1


# --- tenancy ---------------------------------------------------------------------------------


async def test_a_pool_and_a_bank_see_and_settle_only_their_own_payouts(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    other = await scene(pool, clock)  # another pool, another bank, another case
    mine, theirs = s.pool_payouts[0], other.pool_payouts[0]
    bank_payout = s.bank_payouts[0]

    # Pool 1's statement names pool 2's payout and the bank's: neither is pool 1's to settle.
    data = statement_csv(
        ("2026-01-05", yuan(mine["amount_fen"]), mine["reference"], "交易所", "T1"),
        ("2026-01-05", yuan(theirs["amount_fen"]), theirs["reference"], "交易所", "T2"),
        (
            "2026-01-05",
            yuan(bank_payout["amount_fen"] + 1),
            bank_payout["reference"],
            "交易所",
            "T3",
        ),
    )
    out = await do_import(pool, clock, s.pool_org.org_id, s.pool_org.user_id, data)
    assert out.lines[0].status == "matched"
    assert all(ln.payout_id is None for ln in out.lines[1:])
    assert all(ln.candidate_id not in (theirs["id"], bank_payout["id"]) for ln in out.lines[1:])
    assert (
        await pool.fetchval("SELECT status FROM payouts WHERE id = $1", theirs["id"]) == "expected"
    )
    # …nor can pool 1 match a line to them by hand: to pool 1 they do not exist.
    with pytest.raises(NotFound) as absent:
        await do_match(
            pool, clock, s.pool_org.org_id, s.pool_org.user_id, out.lines[1].id, theirs["reference"]
        )
    assert absent.value.code == "no_such_transfer" and absent.value.field == "reference"
    # Pool 2 cannot see or match pool 1's statement and lines.
    with pytest.raises(NotFound):
        async with pool.acquire() as conn:
            await recon.statement_detail(conn, other.pool_org.org_id, out.statement.id, "zh")
    with pytest.raises(NotFound) as absent:
        await do_match(
            pool,
            clock,
            other.pool_org.org_id,
            other.pool_org.user_id,
            out.lines[1].id,
            theirs["reference"],
        )
    assert absent.value.code == "no_such_statement_line"

    # Through the API: the other pool's statement, export and payouts are not there.
    h2 = await api_headers(pool, clock, other.pool_org.user_id)
    assert (
        await client.get(f"/api/v1/reconciliation/statements/{out.statement.id}", headers=h2)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/reconciliation/exports/pools/{s.pool_org.pool_id}", headers=h2)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/reconciliation/exports/cases/{s.loan.case_id}", headers=h2)
    ).status_code == 404
    listed = (await client.get("/api/v1/reconciliation/payouts", headers=h2)).json()["items"]
    assert {p["id"] for p in listed} == {p["id"] for p in other.pool_payouts}
    statements = await client.get("/api/v1/reconciliation/statements", headers=h2)
    assert statements.json()["items"] == []
    assert (await client.get("/api/v1/reconciliation/exceptions", headers=h2)).json() == []

    # The bank reconciles its own payouts only: the pool's reference is unknown to it.
    bank_data = statement_csv(
        ("2026-01-05", yuan(bank_payout["amount_fen"]), bank_payout["reference"], "交易所", "B1"),
        (
            "2026-01-05",
            yuan(s.pool_payouts[1]["amount_fen"]),
            s.pool_payouts[1]["reference"],
            "交易所",
            "B2",
        ),
    )
    bank_out = await do_import(pool, clock, s.loan.bank_org, s.loan.bank_user, bank_data)
    # (the amount is also that of the bank's own other open payout: that one is proposed)
    assert [ln.status for ln in bank_out.lines] == ["matched", "reference_typo"]
    assert bank_out.lines[1].candidate_id == s.bank_payouts[1]["id"]
    assert (
        await pool.fetchval("SELECT status FROM payouts WHERE id = $1", s.pool_payouts[1]["id"])
        == "expected"
    )
    async with pool.acquire() as conn:
        bank_rows = await recon.bank_statement(conn, s.loan.bank_org, "bank")
        assert {p.id for p in bank_rows} == {p["id"] for p in s.bank_payouts}
        other_bank = await recon.bank_statement(conn, other.loan.bank_org, "bank")
        assert {p.id for p in other_bank} == {p["id"] for p in other.bank_payouts}
        # The bank owning a case sees its whole waterfall; another bank: 404.
        _ref, case_rows = await recon.case_statement(conn, s.loan.bank_org, s.loan.case_id)
        assert {p.id for p in case_rows} == {p["id"] for p in s.pool_payouts + s.bank_payouts}
        with pytest.raises(NotFound):
            await recon.case_statement(conn, other.loan.bank_org, s.loan.case_id)
        # A pool sees only its own payouts on a case; a pool from elsewhere: 404.
        _ref, pool_rows = await recon.case_statement(conn, s.pool_org.org_id, s.loan.case_id)
        assert {p.id for p in pool_rows} == {p["id"] for p in s.pool_payouts}
        with pytest.raises(NotFound):
            await recon.pool_statement(conn, other.pool_org.org_id, s.pool_org.pool_id)


async def test_only_pools_and_banks_reconcile(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    from tests.factories import make_org

    _org, user, email = await make_org(pool, clock.now(), kind="buyer")
    with pytest.raises(AppError) as refused:
        await do_import(pool, clock, _org, user, statement_csv(("2026-01-05", "1.00", "x", "", "")))
    assert refused.value.status == 403
    assert (await sign_in(client, email)).status_code in (302, 303)
    assert (await client.get("/reconciliation")).status_code == 403


async def test_every_route_declares_a_reconciliation_permission(client: Client) -> None:
    """Pages and API alike: reading needs READ_RECONCILIATION, a change of state
    WRITE_RECONCILIATION (pools and banks, approved)."""
    seen = 0
    for route in client.app.routes:
        if not route.path.startswith(("/reconciliation", "/api/v1/reconciliation")):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's own answer to a CORS preflight
            wanted = WRITE_RECONCILIATION if "POST" in handler.http_methods else READ_RECONCILIATION
            assert permission_of(handler) == wanted, handler
            seen += 1
    assert seen == 24  # 13 API routes, 11 pages


async def test_a_pending_pool_and_a_read_only_token_cannot_import(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    from tests.factories import make_org

    org, user, email = await make_org(pool, clock.now(), kind="pool", status="pending")
    data = statement_csv(("2026-01-05", "1.00", "x", "", ""))
    with pytest.raises(Forbidden) as refused:
        await do_import(pool, clock, org, user, data)
    assert refused.value.code == "organisation_not_approved"
    assert (await sign_in(client, email)).status_code in (302, 303)
    assert (await client.get("/reconciliation")).status_code == 403

    s = await scene(pool, clock, receipts=(20_000_000,))
    token = await make_token(pool, clock.now(), s.pool_org.user_id, ["pools:read"])
    r = await client.post(
        "/api/v1/reconciliation/statements",
        content=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )
    assert r.status_code == 403 and r.json()["code"] == "token_lacks_scope", r.text
    assert await written(pool) == (0, 0, 0, 0)


# --- statements of payouts as CSV ---------------------------------------------------------------


def read_export(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_exports_per_pool_bank_and_case(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock, receipts=(20_000_000, 10_000_000))
    a, b = s.pool_payouts
    out = await do_import(
        pool,
        clock,
        s.pool_org.org_id,
        s.pool_org.user_id,
        statement_csv(("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1")),
    )
    # b's receipt bounced and was reversed: its payouts are no longer expected.
    await reverse(pool, clock.now(), b["receipt_id"], "退票")
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    r = await client.get(f"/reconciliation/exports/pool/{s.pool_org.pool_id}?lang=zh")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert f"statement-pool-{s.pool_org.code}.csv" in r.headers["content-disposition"]
    rows = read_export(r.content)
    assert rows[0] == [
        "转账编号",
        "金额（元）",
        "状态",
        "案件编号",
        "回款类型",
        "收款方",
        "应收日期",
        "到账日期",
        "对账单",
        "对账单行号",
        "入账日期",
        "匹配方式",
    ]
    case_ref = await pool.fetchval(
        "SELECT reference FROM disposal_cases WHERE id = $1", s.loan.case_id
    )
    assert rows[1:] == [
        [
            a["reference"],
            "100000.00",
            "已到账",
            case_ref,
            "拍卖成交",
            s.pool_org.code,
            "2026-01-05",
            "2026-01-05",
            str(out.statement.id),
            "2",
            "2026-01-05",
            "自动匹配",
        ],
        [
            b["reference"],
            "50000.00",
            "已撤销",
            case_ref,
            "拍卖成交",
            s.pool_org.code,
            "2026-01-05",
            "",
            "",
            "",
            "",
            "",
        ],
    ]
    en = read_export(
        (await client.get(f"/reconciliation/exports/pool/{s.pool_org.pool_id}?lang=en")).content
    )
    assert en[0][:3] == ["reference", "amount (CNY)", "status"] and en[1][2] == "Received"
    # The pool's case statement shows its own payouts of the case; the bank's export is
    # for banks.
    r = await client.get(f"/reconciliation/exports/case/{s.loan.case_id}")
    assert [row[0] for row in read_export(r.content)[1:]] == [a["reference"], b["reference"]]
    assert (await client.get("/reconciliation/exports/bank")).status_code == 403

    # The bank: its own payouts; for its case, every payout of the waterfall.
    headers = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), s.loan.bank_user, ['pools:read'])}"
    }
    bank_rows = read_export(
        (await client.get("/api/v1/reconciliation/exports/bank", headers=headers)).content
    )
    assert [row[0] for row in bank_rows[1:]] == [p["reference"] for p in s.bank_payouts]
    assert {row[5] for row in bank_rows[1:]} == {
        await pool.fetchval("SELECT name FROM organisations WHERE id = $1", s.loan.bank_org)
    }
    case_rows = read_export(
        (
            await client.get(
                f"/api/v1/reconciliation/exports/cases/{s.loan.case_id}?lang=en", headers=headers
            )
        ).content
    )
    assert len(case_rows) == 1 + len(s.pool_payouts) + len(s.bank_payouts)
    # The pool's statement line is the pool's business: the bank sees the payout, not the line.
    pool_row = next(row for row in case_rows if row[0] == a["reference"])
    assert pool_row[2] == "Received" and pool_row[8:] == ["", "", "", ""]


# --- the pages ---------------------------------------------------------------------------------


async def upload(client: Client, data: bytes, name: str = "对账单.csv") -> Any:
    return await client.post(
        "/reconciliation/statements",
        files={"file": (name, data, "text/csv")},
        data={"_csrf_token": await csrf(client)},
        follow_redirects=False,
    )


async def test_an_export_of_a_period_lists_what_was_expected_or_received_in_it(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """January's recoveries a and b, February's c; a is received on 2026-02-03. January's
    statement lists a and b, February's a and c (a arrived then); days are China's."""
    s = await scene(pool, clock, receipts=(20_000_000, 10_000_000))
    a, b = s.pool_payouts
    feb = clock.now() + timedelta(days=30)  # 2026-02-04 in China
    await receive(pool, feb, s.loan.case_id, 8_000_000)
    c = await pool.fetchrow(
        "SELECT * FROM payouts WHERE payee_kind = 'pool' AND created_at = $1", feb
    )
    later = FrozenClock(clock.now() + timedelta(days=29))  # 2026-02-03
    await do_import(
        pool,
        later,
        s.pool_org.org_id,
        s.pool_org.user_id,
        statement_csv(("2026-02-03", yuan(a["amount_fen"]), a["reference"], "交易所", "T1")),
    )
    headers = await api_headers(pool, clock, s.pool_org.user_id)
    url = f"/api/v1/reconciliation/exports/pools/{s.pool_org.pool_id}"

    async def listed(query: str) -> list[str]:
        r = await client.get(f"{url}?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return [row[0] for row in read_export(r.content)[1:]]

    assert await listed("") == [a["reference"], b["reference"], c["reference"]]
    assert await listed("since=2026-01-01&until=2026-01-31") == [a["reference"], b["reference"]]
    assert await listed("since=2026-02-01&until=2026-02-28") == [a["reference"], c["reference"]]
    assert await listed("since=2026-02-04") == [c["reference"]]  # a arrived the day before
    r = await client.get(f"{url}?since=2026-02-01&until=2026-02-28", headers=headers)
    assert "statement-pool-" in r.headers["content-disposition"]
    assert "-2026-02-01-to-2026-02-28.csv" in r.headers["content-disposition"]
    # A period that ends before it starts (422), or no date at all (400): the field named.
    r = await client.get(f"{url}?since=2026-02-01&until=2026-01-31", headers=headers)
    assert r.status_code == 422 and r.json()["field"] == "until", r.text
    assert r.json()["code"] == "period_ends_before_start"
    assert r.json()["params"] == {"since": "2026-02-01", "until": "2026-01-31"}
    r = await client.get(f"{url}?since=31.01.2026", headers=headers)
    assert r.status_code == 400 and "since" in r.text, r.text

    # The page: the period form puts the period into every export link.
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    page = await client.get("/reconciliation?since=2026-02-01&until=2026-02-28")
    assert page.status_code == 200
    link = f"/reconciliation/exports/pool/{s.pool_org.pool_id}?lang=zh&amp;since=2026-02-01&amp;until=2026-02-28"
    assert link in page.text and "2026-02-01 至 2026-02-28" in page.text
    r = await client.get(
        f"/reconciliation/exports/pool/{s.pool_org.pool_id}?lang=zh&since=2026-02-01&until=2026-02-28"
    )
    assert [row[0] for row in read_export(r.content)[1:]] == [a["reference"], c["reference"]]
    bad = await client.get("/reconciliation?since=2026-03-01&until=2026-02-01")
    assert bad.status_code == 422 and 'data-testid="period-error"' in bad.text
    assert "截止日期（2026-02-01）早于起始日期（2026-03-01）" in bad.text
    bad = await client.get("/reconciliation?since=yesterday")
    assert bad.status_code == 422 and 'id="err-since"' in bad.text
    assert "日期格式为 YYYY-MM-DD" in bad.text and "a date as" not in bad.text


async def test_the_page_imports_lists_exceptions_and_matches_by_hand(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    a, b, c, _d = s.pool_payouts
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    page = await client.get("/reconciliation")
    assert page.status_code == 200
    assert "导入对账单" in page.text and c["reference"] in page.text  # expected recoveries listed
    assert f"/reconciliation/exports/pool/{s.pool_org.pool_id}" in page.text

    bad = await upload(client, statement_csv(("2026-01-05", "abc", "x", "", "")))
    assert bad.status_code == 422
    assert 'data-testid="rejected"' in bad.text and "<td>金额</td>" in bad.text
    assert "“abc”不是以元为单位的金额" in bad.text and "not an amount" not in bad.text
    assert "对账单.csv 未导入，未写入任何数据" in bad.text
    assert await written(pool) == (0, 0, 0, 0)

    data = statement_csv(
        ("2026-01-05", yuan(a["amount_fen"]), a["reference"], "交易所", "T1"),
        ("2026-01-05", yuan(b["amount_fen"] + 1), b["reference"], "交易所", "T2"),
        ("2026-01-05", yuan(c["amount_fen"]), typo(c["reference"]), "交易所", "T3"),
    )
    r = await upload(client, data)
    assert r.status_code == 303, r.text
    shown = await client.get(r.headers["location"])
    assert shown.status_code == 200
    assert (
        'data-status="matched"' in shown.text
        and "金额不符" in shown.text
        and "附言疑似有误" in shown.text
    )
    assert "共 3 行：自动匹配 1，人工匹配 0，另行处理 0，待处理 2。" in shown.text

    again = await upload(client, data, "again.csv")
    assert again.status_code == 409 and "again.csv 已作为对账单" in again.text

    page = await client.get("/reconciliation")
    lines = await pool.fetch("SELECT id, line_no, status FROM statement_lines ORDER BY line_no")
    typo_id = next(ln["id"] for ln in lines if ln["status"] == "reference_typo")
    mismatch_id = next(ln["id"] for ln in lines if ln["status"] == "amount_mismatch")
    assert f'data-testid="exception-{typo_id}"' in page.text
    assert f'value="{c["reference"]}"' in page.text  # the candidate is proposed
    assert f"最接近的是 {c['reference']}" in page.text

    token = await csrf(client)
    r = await client.post(
        f"/reconciliation/lines/{mismatch_id}/match",
        data={"_csrf_token": token, "reference": b["reference"]},
        follow_redirects=False,
    )
    assert r.status_code == 422 and 'data-testid="match-error"' in r.text
    assert "多收的款项不能核销这笔转账" in r.text and "expects" not in r.text
    r = await client.post(
        f"/reconciliation/lines/{typo_id}/match",
        data={"_csrf_token": token, "reference": c["reference"], "note": "核对无误"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = await client.get(r.headers["location"])
    assert (
        "已人工匹配第 4 行" in page.text and f'data-testid="exception-{typo_id}"' not in page.text
    )

    # In English (the language the site remembers), and in English only.
    client.cookies.set("ipx_lang", "en")
    page = await client.get("/reconciliation")
    assert "Open exceptions" in page.text and f"{b['reference']} expects" in page.text
    assert f"{b['reference']} 应收" not in page.text and "金额不符" not in page.text
    bad = await upload(client, statement_csv(("2026-01-05", "abc", "x", "", "")), "bad.csv")
    assert bad.status_code == 422 and "is not an amount in yuan" in bad.text
    assert "bad.csv was not imported, nothing was written" in bad.text
    assert "不是以元为单位" not in bad.text and "未导入" not in bad.text


async def test_the_page_sets_a_line_aside_and_can_still_match_it(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock)
    d = s.pool_payouts[3]
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    r = await upload(
        client, statement_csv(("2026-01-05", yuan(d["amount_fen"]), "", "某公司", "T1"))
    )
    assert r.status_code == 303, r.text
    line_id = await pool.fetchval("SELECT id FROM statement_lines")
    page = await client.get("/reconciliation")
    assert f'action="/reconciliation/lines/{line_id}/set-aside"' in page.text
    assert "另行处理" in page.text

    token = await csrf(client)
    r = await client.post(
        f"/reconciliation/lines/{line_id}/set-aside",
        data={"_csrf_token": token, "note": "  "},
        follow_redirects=False,
    )
    assert r.status_code == 422 and 'data-testid="aside-error"' in r.text
    assert "请说明该行为何不是应收回款" in r.text
    r = await client.post(
        f"/reconciliation/lines/{line_id}/set-aside",
        data={"_csrf_token": token, "note": "重复转账，已退回付款人"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = await client.get(r.headers["location"])
    assert 'data-testid="set-aside-notice"' in page.text
    assert f'data-testid="exception-{line_id}"' not in page.text
    assert (
        f'data-testid="set-aside-{line_id}"' in page.text and "重复转账，已退回付款人" in page.text
    )
    statement_id = await pool.fetchval("SELECT statement_id FROM statement_lines")
    shown = await client.get(f"/reconciliation/statements/{statement_id}")
    assert "另行处理 1，待处理 0" in shown.text and 'data-status="set_aside"' in shown.text

    # It was recovery d after all: matched from the set-aside list.
    r = await client.post(
        f"/reconciliation/lines/{line_id}/match",
        data={"_csrf_token": token, "reference": d["reference"]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert await received_entries(pool, d["id"]) == 1
    page = await client.get("/reconciliation")
    assert f'data-testid="set-aside-{line_id}"' not in page.text

    client.cookies.set("ipx_lang", "en")
    shown = await client.get(f"/reconciliation/statements/{statement_id}")
    assert "1 by hand, 0 set aside, 0 open" in shown.text
    assert 'data-status="manual"' in shown.text and "Matched by hand" in shown.text
    assert "人工匹配" not in shown.text


async def test_a_bank_reconciles_through_its_page(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool, clock, receipts=(20_000_000,))
    (p,) = s.bank_payouts
    bank_email = await pool.fetchval("SELECT email FROM users WHERE id = $1", s.loan.bank_user)
    assert (await sign_in(client, bank_email)).status_code in (302, 303)
    r = await upload(
        client, statement_csv(("2026-01-05", yuan(p["amount_fen"]), p["reference"], "", ""))
    )
    assert r.status_code == 303
    assert await pool.fetchval("SELECT status FROM payouts WHERE id = $1", p["id"]) == "received"
    page = await client.get("/reconciliation")
    assert (
        "/reconciliation/exports/bank" in page.text
        and f"/reconciliation/exports/case/{s.loan.case_id}" in page.text
    )


# --- reading the file (pure) ---------------------------------------------------------------------


def test_a_gb18030_portal_export_with_preamble_english_headers_and_outgoing_rows() -> None:
    text = (
        "账号,44001234567890\r\n"
        "户名,中山市风险补偿资金池\r\n"
        "\r\n"
        "Value Date,Debit,Credit (CNY),Remarks,Purpose,Payer,Transaction ID,Balance\r\n"
        '2026年1月5日,,"1,234.56",转账,HK7KX3M9PQ2R,知识产权交易所,="000123",9\r\n'
        "2026.01.04,500.00,,手续费,,,000124,8\r\n"
        "2026-01-03 10:22:01,,-3.00,冲正,,,000125,8\r\n"
        "合计,500.00,1234.56,,,,,\r\n"
    )
    parsed = parse_statement(text.encode("gb18030"), today=DAY, filename="x.csv")
    assert parsed.encoding == "gb18030" and parsed.outgoing == 2
    assert parsed.lines == [
        StatementLine(5, date(2026, 1, 5), 123_456, "转账 HK7KX3M9PQ2R", "知识产权交易所", "000123")
    ]


def test_a_utf8_bom_file_and_excel_scientific_transaction_ids() -> None:
    data = "\ufeff交易日期,金额,附言,流水号\r\n2026-01-05,10,HK1,2.02601E+11\r\n".encode()
    with pytest.raises(Invalid) as bad:
        parse_statement(data, today=DAY, filename="x.csv")
    assert bad.value.code == "statement_rejected" and bad.value.problems
    (problem,) = bad.value.problems
    assert (problem.line, problem.field, problem.code) == (
        2,
        "bank_txn_id",
        "statement_txn_scientific",
    )
    assert problem.params == {"column": "流水号", "txn": "2.02601E+11"}
    with pytest.raises(Invalid) as bad:
        parse_statement(b"\x80\xff\xff" * 3, today=DAY, filename="x.csv")
    assert bad.value.problems is not None
    assert [p.code for p in bad.value.problems] == ["csv_not_utf8_or_gb18030"]


def test_a_control_character_in_a_cell_is_refused_at_its_line_and_column() -> None:
    data = statement_csv(
        ("2026-01-05", "10.00", "HK1\x00", "交易所", "T1"),
        ("2026-01-05", "10.00", "HK2", "交易所\x07", "T2"),
        ("2026-01-05", "10.00", "HK3\n回款\t", "交易所", "T3"),  # line breaks and tabs: spaces
    )
    with pytest.raises(Invalid) as bad:
        parse_statement(data, today=DAY, filename="x.csv")
    assert bad.value.problems is not None
    assert [(p.line, p.params["column"], p.field, p.code) for p in bad.value.problems] == [
        (2, "附言", "reference", "control_character_in_text"),
        (3, "对方户名", "counterparty", "control_character_in_text"),
    ]
    assert [p.params["char"] for p in bad.value.problems] == ["U+0000", "U+0007"]
    ok = parse_statement(
        statement_csv(("2026-01-05", "1", "A\nB\tC", "", "")), today=DAY, filename="x.csv"
    )
    assert ok.lines[0].reference == "A B C"


def expected(pid: int, ref: str, fen: int, status: str = "expected", on: date = DAY) -> Expected:
    return Expected(id=pid, reference=ref, amount_fen=fen, status=status, created_on=on)


def line(n: int, ref: str, fen: int, on: date = DAY) -> StatementLine:
    return StatementLine(n, on, fen, ref, "", None)


def test_classification_edge_cases() -> None:
    payouts = [
        expected(1, "HKAAAAAAAAAA", 100),
        expected(2, "HKBBBBBBBBBB", 200, status="received"),
        expected(3, "HKCCCCCCCCCC", 300, status="reversed"),
        expected(4, "HKDDDDDDDDDD", 400, on=DAY + timedelta(days=1)),
        expected(5, "HKEEEEEEEEEE", 500),
        expected(6, "HKFFFFFFFFFF", 500),
    ]
    out = classify(
        [
            line(2, "hkaaaaaaaaaa", 100),
            line(3, "HKAAAAAAAAAA", 100),  # the same transfer twice in one file
            line(4, "HKBBBBBBBBBB", 200),
            line(5, "HKCCCCCCCCCC", 300),
            line(6, "HKDDDDDDDDDD", 400),  # dated before the payout existed
            line(7, "HKAEAAAAAAAA", 999),  # close to A, but A is settled by line 2 now
            line(8, "", 500),  # two open payouts of CNY 5: cannot tell which
            line(9, "HKEEEEEEEEFE", 500),  # swap of two neighbours: distance 1
        ],
        payouts,
        {2: (7, 3)},
    )
    assert [o.status for o in out] == [
        "matched",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
        "reference_typo",
    ]
    assert [o.reason.code for o in out] == [
        "fits",
        "second_in_file",
        "received_already_on_line",
        "reversed",
        "before_due",
        "nothing_fits",
        "several_open_of_amount",
        "typo_same_amount",
    ]
    assert out[1].reason.params == {"reference": "HKAAAAAAAAAA", "line": 2}
    assert "matched by line 2 of this statement" in reason_text("en", out[1].reason)
    assert out[2].reason.params["statement_id"] == 7 and out[2].reason.params["line"] == 3
    assert "(statement 7, line 3)" in reason_text("en", out[2].reason)
    assert "reversed" in reason_text("en", out[3].reason)
    assert out[4].candidate_id == 4
    assert "before HKDDDDDDDDDD was due" in reason_text("en", out[4].reason)
    assert out[6].reason.params["count"] == 2
    assert "fits 2 open transfers" in reason_text("en", out[6].reason)
    assert out[7].candidate_id == 5 and out[7].reason.params["distance"] == 1
    assert "相差 1 个字符，金额 ¥5.00 一致" in reason_text("zh", out[7].reason)


def test_edit_distance() -> None:
    assert edit_distance("HK7KX3M9PQ2R", "HK7KX3M9PQ2R", 2) == 0
    assert edit_distance("HK7KX3M9PQ2R", "HK7KX3M9P2QR", 2) == 1  # neighbours swapped
    assert edit_distance("HK7KX3M9PQ2R", "HK7KX3M9PQ", 2) == 2
    assert edit_distance("HK7KX3M9PQ2R", "HKZZZZZZZZZZ", 2) == 3  # over the limit: limit + 1


def test_a_reason_is_a_code_and_parameters_in_either_language() -> None:
    why = reason("second_in_file", reference="HK1", line=2)
    assert decode_reason(encode_reason(why)) == why
    assert (
        reason_text("en", why) == "HK1 was matched by line 2 of this statement: a second transfer?"
    )
    assert reason_text("zh", why) == "HK1 已由本对账单第 2 行匹配，本行可能是重复转账"
    assert decode_reason("") is None  # a line with no reason recorded


def test_a_party_payee_and_the_statuses_are_in_the_readers_words() -> None:
    from datetime import UTC, datetime

    p = recon.PayoutOut(
        id=1,
        reference="HK7KX3M9PQ2R",
        amount_fen=123_456,
        status="expected",
        payee_kind="party",
        payee="中山保险股份有限公司",
        party="insurer",
        pool_id=None,
        pool_code=None,
        case_id=1,
        case_reference="ZS-2026-001",
        receipt_kind="auction",
        created_at=datetime(2026, 1, 4, 20, 0, tzinfo=UTC),  # 2026-01-05 in China
        received_at=None,
        statement_id=None,
        line_no=None,
        value_date=None,
        matched=None,
    )
    assert recon.payee_text("zh", p) == "中山保险股份有限公司 (保险公司)"
    assert recon.payee_text("en", p) == "中山保险股份有限公司 (insurer)"
    # A party the catalog has no word for is named as the pool's rule names it.
    assert recon.payee_text("en", msgspec.structs.replace(p, party="erp")) == (
        "中山保险股份有限公司 (erp)"
    )
    en = read_export(statement_export.export_csv([p], "en"))
    assert en[1][:7] == [
        "HK7KX3M9PQ2R",
        "1234.56",
        "Expected",
        "ZS-2026-001",
        "Auction",
        "中山保险股份有限公司 (insurer)",
        "2026-01-05",
    ]
    zh = read_export(statement_export.export_csv([p], "zh"))
    assert zh[1][2] == "待到账" and zh[1][4] == "拍卖成交"


def test_the_example_statement_reads_back_in_either_language() -> None:
    for lang in ("zh", "en"):
        parsed = parse_statement(
            statement_export.template_csv(lang), today=DAY, filename="example.csv"
        )
        (line,) = parsed.lines
        assert (line.amount_fen, line.bank_txn_id) == (123_456, "202601050001")
        assert "HK7KX3M9PQ2R" in line.reference
