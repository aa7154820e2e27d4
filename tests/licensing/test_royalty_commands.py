"""Royalty commands against real PostgreSQL (docs/rules.md §Licensing royalties, §Licence
contracts): two payments of one period at once route once; the lifecycle's refusals name
their field and write nothing; termination, audit and recordal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

import asyncpg
import msgspec
import pytest

from market.errors import AppError, Conflict, Forbidden, Invalid, NotFound
from market.exchange_account import statement as exchange_statement
from market.licensing import enforcement, payments, recordal, reports
from market.licensing.contracts import ContractOut
from market.licensing.royalties import RoyaltyTerms
from tests.factories import make_org
from tests.licensing.scene import beijing, make_contract, patent_of
from tests.licensing.test_worked_example import statement
from tests.pools.scene import ZHONGSHAN, as_user, claim_and_pay, make_loan, make_pool, write_off

SET_UP = beijing(date(2026, 12, 20))
QUARTERLY = RoyaltyTerms(
    start=date(2027, 1, 1),
    end=date(2031, 12, 31),
    royalty_rate_bp=600,
    minimum_annual_fen=25_000_000,
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class Scene:
    contract: ContractOut
    bank_user: int
    licensee_user: int
    pledgor_user: int
    operator_user: int
    stranger_user: int


async def scene(pool: asyncpg.Pool) -> Scene:
    zs = await make_pool(pool, SET_UP, ZHONGSHAN)
    loan = await make_loan(
        pool, SET_UP, principal_fen=100_000_000, default_date=date(2026, 6, 30), enrol_in=zs
    )
    await write_off(pool, SET_UP, loan, date(2026, 12, 20))
    await claim_and_pay(pool, SET_UP, loan, zs)
    licensee, licensee_user, _ = await make_org(pool, SET_UP, kind="buyer")
    pledgor, pledgor_user, _ = await make_org(pool, SET_UP, kind="pledgor")
    _, operator_user, _ = await make_org(pool, SET_UP, kind="operator")
    _, stranger_user, _ = await make_org(pool, SET_UP, kind="buyer")
    asset = await patent_of(pool, SET_UP, loan.bank_org, loan.pledgor_id)
    contract = await make_contract(
        pool,
        SET_UP,
        case_id=loan.case_id,
        bank_org=loan.bank_org,
        licensee_org=licensee,
        pledgor_org=pledgor,
        asset_id=asset,
        terms=QUARTERLY,
    )
    return Scene(
        contract, loan.bank_user, licensee_user, pledgor_user, operator_user, stranger_user
    )


async def _report_q1(pool: asyncpg.Pool, s: Scene, fen: int = 100_000_000) -> None:
    await as_user(
        pool,
        beijing(date(2027, 4, 2)),
        s.licensee_user,
        reports.report_sales,
        reports.ReportSales(
            contract_id=s.contract.id, lines=(reports.SalesIn(period="2027Q1", net_sales_fen=fen),)
        ),
    )


async def _counts(pool: asyncpg.Pool) -> tuple[int, ...]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM receipts) AS r, (SELECT count(*) FROM payouts) AS p,"
        " (SELECT count(*) FROM royalty_payments) AS rp, (SELECT count(*) FROM ledger_entries)"
        " AS e, (SELECT count(*) FROM royalty_reports) AS rr,"
        " (SELECT count(*) FROM royalty_adjustments) AS ra, (SELECT count(*) FROM statements) AS s"
    )
    return tuple(row.values())


async def test_two_payments_of_one_period_at_once_route_once(pool: asyncpg.Pool) -> None:
    s = await scene(pool)
    await _report_q1(pool, s)  # 1,000,000 × 6 % = 60,000 due on 30 April
    at = beijing(date(2027, 4, 20))
    ref = f"{s.contract.reference}-2027Q1"
    record = payments.RecordPayment(
        contract_id=s.contract.id, period="2027Q1", amount_fen=6_000_000, paid_on=date(2027, 4, 20)
    )
    got = await asyncio.gather(
        as_user(pool, at, s.operator_user, payments.record_royalty_payment, record),
        as_user(pool, at, s.operator_user, payments.record_royalty_payment, record),
        as_user(
            pool,
            at,
            s.operator_user,
            exchange_statement.import_exchange_statement,
            exchange_statement.ImportExchangeStatement(
                data=statement((date(2027, 4, 20), 6_000_000, ref, "A1"))
            ),
        ),
        as_user(
            pool,
            at,
            s.operator_user,
            exchange_statement.import_exchange_statement,
            exchange_statement.ImportExchangeStatement(
                data=statement((date(2027, 4, 20), 6_000_000, ref, "B1"))
            ),
        ),
        return_exceptions=True,
    )
    paid = [g for g in got if isinstance(g, payments.PaymentOut)]
    refused = [g for g in got if isinstance(g, Conflict)]
    imported = [g for g in got if isinstance(g, exchange_statement.ExchangeStatementImported)]
    assert len(imported) == 2 and not [
        g for g in got if isinstance(g, BaseException) and not isinstance(g, Conflict)
    ]
    matched = sum(i.counts["matched"] for i in imported)
    assert len(paid) + matched == 1
    assert len(refused) == 2 - len(paid)
    assert all(r.code == "royalty_paid_already" for r in refused)
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 1
    assert await pool.fetchval("SELECT count(*) FROM royalty_payments") == 1
    receipt = await pool.fetchval("SELECT id FROM receipts")
    assert (
        await pool.fetchval("SELECT sum(amount_fen) FROM payouts WHERE receipt_id = $1", receipt)
        == 6_000_000
    )


async def test_reports_refuse_naming_the_field_and_write_nothing(pool: asyncpg.Pool) -> None:
    s = await scene(pool)
    at = beijing(date(2027, 4, 2))

    async def report(user: int, period: str, day: date = date(2027, 4, 2)) -> object:
        return await as_user(
            pool,
            beijing(day),
            user,
            reports.report_sales,
            reports.ReportSales(
                contract_id=s.contract.id,
                lines=(reports.SalesIn(period=period, net_sales_fen=1),),
            ),
        )

    before = await _counts(pool)
    cases: list[tuple[int, str, type[AppError], str, str | None]] = [
        (s.licensee_user, "2027Q2", Invalid, "royalty_period_not_ended", "period"),
        (s.licensee_user, "2026Q4", Invalid, "royalty_period_not_in_contract", "period"),
        (s.licensee_user, "spring", Invalid, "royalty_period_unreadable", "period"),
        (s.stranger_user, "2027Q1", NotFound, "not_found", "contract_id"),
        (s.bank_user, "2027Q1", Forbidden, "not_permitted", None),
    ]
    for user, period, error, code, field in cases:
        with pytest.raises(error) as caught:
            await report(user, period)
        assert (caught.value.code, caught.value.field) == (code, field), period
    assert await _counts(pool) == before
    await _report_q1(pool, s)
    with pytest.raises(Conflict) as twice:
        await report(s.licensee_user, "2027Q1")
    assert (twice.value.code, twice.value.field) == ("royalty_period_reported", "period")
    # A CSV with one bad line records none, naming the line and the column.
    bad = "期间,净销售额(元),数量\r\n2027Q2,100,0\r\n2027Q3,abc,0\r\n".encode()
    at = beijing(date(2027, 10, 2))
    with pytest.raises(Invalid) as rejected:
        await as_user(
            pool,
            at,
            s.licensee_user,
            reports.report_sales_csv,
            reports.ReportCsv(contract_id=s.contract.id, data=bad),
        )
    problem = rejected.value.problems[0]
    assert (problem.line, problem.field, problem.params["column"]) == (
        3,
        "net_sales",
        "净销售额(元)",
    )
    assert await pool.fetchval("SELECT count(*) FROM royalty_reports") == 1


async def test_payments_refuse_a_wrong_amount_naming_it_and_write_nothing(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool)
    await _report_q1(pool, s)
    at = beijing(date(2027, 5, 10))  # 10 days late: 60,000 × 4.5 % × 10 / 365 = 73.97
    before = await _counts(pool)
    for period, amount, day, code, field in (
        ("2027Q1", 6_000_000, date(2027, 5, 10), "royalty_amount_differs", "amount_fen"),
        ("2027Q2", 6_000_000, date(2027, 5, 10), "royalty_not_reported", "period"),
        ("1999Q1", 6_000_000, date(2027, 5, 10), "royalty_no_such_item", "period"),
        ("2027Q1", 6_007_397, date(2027, 5, 11), "date_in_future", "paid_on"),
    ):
        with pytest.raises(AppError) as caught:
            await as_user(
                pool,
                at,
                s.operator_user,
                payments.record_royalty_payment,
                payments.RecordPayment(
                    contract_id=s.contract.id, period=period, amount_fen=amount, paid_on=day
                ),
            )
        assert (caught.value.code, caught.value.field) == (code, field)
    assert await _counts(pool) == before
    paid = await as_user(
        pool,
        at,
        s.operator_user,
        payments.record_royalty_payment,
        payments.RecordPayment(
            contract_id=s.contract.id,
            period="2027q1",
            amount_fen=6_007_397,
            paid_on=date(2027, 5, 10),
        ),
    )
    assert (paid.amount_fen, paid.interest_fen) == (6_007_397, 7_397)


async def test_the_bank_terminates_after_the_grace_period_and_tracks_the_cancellation(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool)
    await _report_q1(pool, s)
    term = enforcement.Terminate(contract_id=s.contract.id, reason="2027Q1 许可费逾期未付")
    # 30 April + 30 grace days = 30 May: not yet.
    with pytest.raises(Conflict) as early:
        await as_user(
            pool, beijing(date(2027, 5, 30)), s.bank_user, enforcement.terminate_contract, term
        )
    assert early.value.code == "licence_not_in_arrears"
    with pytest.raises(AppError) as blank:
        await as_user(
            pool,
            beijing(date(2027, 5, 31)),
            s.bank_user,
            enforcement.terminate_contract,
            enforcement.Terminate(contract_id=s.contract.id, reason="  "),
        )
    assert (blank.value.code, blank.value.field) == ("reason_required", "reason")
    _, other_bank_user, _ = await make_org(pool, SET_UP, kind="bank")
    with pytest.raises(NotFound):  # another bank's contract
        await as_user(
            pool, beijing(date(2027, 5, 31)), other_bank_user, enforcement.terminate_contract, term
        )
    ended = await as_user(
        pool, beijing(date(2027, 5, 31)), s.bank_user, enforcement.terminate_contract, term
    )
    assert ended.status == "terminated"
    told = await pool.fetchrow(
        "SELECT recipient_org_id, payload FROM outbox WHERE event = 'licence_terminated'"
    )
    assert told["payload"]["unpaid"] == ["2027Q1"]
    # The case stays open; the arrears are still owed and can be paid.
    assert (
        await pool.fetchval("SELECT status FROM disposal_cases WHERE id = $1", s.contract.case_id)
        == "open"
    )
    # The recordal's cancellation: number and date, once.
    cancel = enforcement.Cancellation(
        contract_id=s.contract.id,
        cancellation_number="2027990000123-ZX",
        cancelled_on=date(2027, 6, 5),
    )
    done = await as_user(
        pool, beijing(date(2027, 6, 6)), s.bank_user, enforcement.record_cancellation, cancel
    )
    assert done.status == "terminated"
    with pytest.raises(Conflict):
        await as_user(
            pool, beijing(date(2027, 6, 6)), s.bank_user, enforcement.record_cancellation, cancel
        )
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action IN ('licence_contract.terminate',"
        " 'licence_contract.recordal_cancelled')"
    )
    assert audited == 2


async def test_an_audit_of_a_paid_period_bills_the_difference_routed_when_paid(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool)
    await _report_q1(pool, s)
    await as_user(
        pool,
        beijing(date(2027, 4, 20)),
        s.operator_user,
        payments.record_royalty_payment,
        payments.RecordPayment(
            contract_id=s.contract.id,
            period="2027Q1",
            amount_fen=6_000_000,
            paid_on=date(2027, 4, 20),
        ),
    )
    # The audit finds 1,200,000 of sales: 12,000 more royalty, due 30 days on.
    adj = await as_user(
        pool,
        beijing(date(2027, 6, 1)),
        s.bank_user,
        enforcement.adjust_royalty,
        enforcement.Adjust(
            contract_id=s.contract.id,
            period="2027Q1",
            net_sales_fen=120_000_000,
            reason="审计发现漏报的经销商销售",
        ),
    )
    assert (adj.due_change_fen, adj.billed_fen, adj.due_on) == (
        1_200_000,
        1_200_000,
        date(2027, 7, 1),
    )
    paid = await as_user(
        pool,
        beijing(date(2027, 6, 20)),
        s.operator_user,
        payments.record_royalty_payment,
        payments.RecordPayment(
            contract_id=s.contract.id,
            period=f"ADJ{adj.id}",
            amount_fen=1_200_000,
            paid_on=date(2027, 6, 20),
        ),
    )
    assert (
        await pool.fetchval("SELECT source FROM receipts WHERE id = $1", paid.receipt_id)
        == f"royalty:{s.contract.id}:ADJ{adj.id}"
    )
    with pytest.raises(Invalid) as unreported:
        await as_user(
            pool,
            beijing(date(2027, 6, 1)),
            s.bank_user,
            enforcement.adjust_royalty,
            enforcement.Adjust(
                contract_id=s.contract.id, period="2027Q2", net_sales_fen=1, reason="x"
            ),
        )
    assert unreported.value.field == "period"


async def test_the_recordal_by_the_bank_or_the_licensee_with_its_document(
    pool: asyncpg.Pool,
) -> None:
    s = await scene(pool)
    data = recordal.Recordal(
        contract_id=s.contract.id,
        recordal_number="2027990000042",
        recorded_on=date(2027, 1, 15),
        filename="备案通知书.pdf",
        content=PDF,
    )
    at = beijing(date(2027, 1, 20))
    with pytest.raises(Forbidden):
        await as_user(pool, at, s.pledgor_user, recordal.record_recordal, data)
    with pytest.raises(NotFound):
        await as_user(pool, at, s.stranger_user, recordal.record_recordal, data)
    for bad, field in (
        ({"recordal_number": "备案 1"}, "recordal_number"),
        ({"recorded_on": date(2027, 1, 21)}, "recorded_on"),
        ({"content": b"not a document"}, "file"),
    ):
        with pytest.raises(Invalid) as caught:
            await as_user(
                pool,
                at,
                s.licensee_user,
                recordal.record_recordal,
                msgspec.structs.replace(data, **bad),
            )
        assert caught.value.field == field
    assert await pool.fetchval("SELECT count(*) FROM case_documents") == 0
    done = await as_user(pool, at, s.licensee_user, recordal.record_recordal, data)
    assert (done.recordal_number, done.recorded_on) == ("2027990000042", date(2027, 1, 15))
    with pytest.raises(Conflict):
        await as_user(pool, at, s.bank_user, recordal.record_recordal, data)
