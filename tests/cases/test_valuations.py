"""Recording valuations on a case: appraisal rules, internal valuation, the 10 m rule."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import msgspec
import pytest

from market.cases import services
from market.cases.models import (
    AppraisalIn,
    CaseForLot,
    CaseOut,
    ChangeClaim,
    InternalIn,
    OpenCase,
    RecordValuation,
    Scores,
    ValuationIn,
)
from market.cases.valuation import INDICATORS, render
from market.clock import FrozenClock
from market.commands import Act
from market.errors import Conflict, Invalid, NotFound
from market.problems import describe
from tests.cases.factories import bank_act, make_loan

TODAY = date(2026, 1, 5)  # the frozen clock's date in China


async def open_case(
    pool: asyncpg.Pool, clock: FrozenClock, *, principal_fen: int | None = None
) -> tuple[int, Act, CaseOut]:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case = await act(
        services.open_case, OpenCase(loan_id=loan.loan_id, principal_fen=principal_fen)
    )
    return bank, act, case


def appraisal(case_id: int, valued_on: date, value_fen: int = 3_600_000_00) -> RecordValuation:
    return RecordValuation(
        case_id=case_id,
        valuation=AppraisalIn(
            appraiser="四川天健资产评估有限公司",
            report_no="川天健评报字〔2025〕第 0815 号",
            value_fen=value_fen,
            valued_on=valued_on,
        ),
    )


def internal(case_id: int, scores: int = 75) -> RecordValuation:
    return RecordValuation(
        case_id=case_id,
        valuation=InternalIn(
            base_value_fen=2_000_000_00,
            basis="收益法：许可费节省法，折现率 12%",
            scores=Scores(**dict.fromkeys(INDICATORS, scores)),
        ),
    )


async def test_appraisal_dates_are_stored(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, act, case = await open_case(pool, clock)
    v = await act(services.record_valuation, appraisal(case.id, date(2025, 12, 28)))
    assert v.method == "appraisal" and v.value_fen == 3_600_000_00
    assert v.valid_until == date(2026, 12, 28)
    assert v.objection_until == TODAY + timedelta(days=5)
    assert v.inputs["objection_days"] == 5
    assert v.explanation == []  # the appraisal report is the document
    lot_view = await _for_lot(pool, bank, case.id)
    assert (lot_view.valuation_fen, lot_view.valuation_method) == (3_600_000_00, "appraisal")
    assert lot_view.objection_until == date(2026, 1, 10)
    assert lot_view.valuation_valid_until == date(2026, 12, 28)


@pytest.mark.parametrize(
    ("valued_on", "code", "words"),
    [
        (TODAY + timedelta(days=1), "appraisal_in_future", "晚于今天"),
        (date(2025, 1, 4), "appraisal_expired", "已过有效期"),
    ],
)
async def test_future_or_expired_appraisal_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock, valued_on: date, code: str, words: str
) -> None:
    _, act, case = await open_case(pool, clock)
    with pytest.raises(Invalid) as err:
        await act(services.record_valuation, appraisal(case.id, valued_on))
    assert (err.value.code, err.value.field) == (code, "valued_on")
    assert words in describe("zh", err.value.code, err.value.params)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM valuations") == 0


async def test_a_new_valuation_supersedes_the_previous(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, act, case = await open_case(pool, clock)
    first = await act(services.record_valuation, internal(case.id))
    clock.advance(days=3)
    second = await act(services.record_valuation, appraisal(case.id, TODAY))
    current = await services.get_case(pool, bank, case.id)
    assert current.valuation is not None and current.valuation.id == second.id
    assert [v.id for v in current.valuation_history] == [first.id]
    assert current.valuation_history[0].superseded_at == clock.now()
    async with pool.acquire() as conn:
        audit = await conn.fetch(
            "SELECT before FROM audit_log WHERE action = 'valuation.record' ORDER BY seq"
        )
    assert [a["before"]["superseded_valuation_ids"] for a in audit] == [[], [first.id]]


async def test_internal_valuation_is_stored_with_inputs_and_explanation(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, act, case = await open_case(pool, clock)
    v = await act(services.record_valuation, internal(case.id, 75))
    assert v.method == "internal" and v.appraiser is None and v.objection_until is None
    assert v.value_fen == 2_500_000_00  # score 75 → factor 1.25
    assert v.valued_on == TODAY and v.valid_until == date(2027, 1, 5)
    assert v.inputs["scores"]["market_size"] == 75
    assert v.inputs["factor"] == "1.2500"
    assert v.inputs["dimension_weights"] == {"legal": "0.3", "technical": "0.3", "economic": "0.4"}
    # the explanation is kept as keys and parameters, and read in either language
    assert v.explanation[-1].key == "cases.explain.value"
    assert v.explanation[-1].params["value_fen"] == 2_500_000_00
    zh = "\n".join(render("zh", line) for line in v.explanation)
    en = "\n".join(render("en", line) for line in v.explanation)
    assert "法律稳定性" in zh and "¥2,500,000.00" in zh and "Legal stability" not in zh
    assert "Legal stability" in en and "¥2,500,000.00" in en and "法律稳定性" not in en
    stored = await services.get_case(pool, bank, case.id)
    assert stored.valuation is not None and stored.valuation.explanation == v.explanation
    # the explanation is the report: the checklist item needs no upload
    assert "valuation_report" in stored.disclosure.present


async def test_vetoed_internal_valuation_is_refused_with_its_reason(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, act, case = await open_case(pool, clock)
    with pytest.raises(Invalid) as err:
        await act(services.record_valuation, internal(case.id, 30))
    assert (err.value.code, err.value.field) == ("legal_score_vetoed", "scores")
    assert err.value.params == {"legal_score": "30.00", "veto_line": "40.00"}
    assert "否决线" in describe("zh", err.value.code, err.value.params)
    assert (await services.get_case(pool, bank, case.id)).valuation is None


async def test_claims_of_ten_million_or_more_need_an_appraisal(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    # principal 9,862,499.50 + interest 137,500.50 = exactly CNY 10 m
    _, act, case = await open_case(pool, clock, principal_fen=10_000_000_00 - 137_500_50)
    assert case.claim.total_fen == 10_000_000_00
    with pytest.raises(Invalid) as err:
        await act(services.record_valuation, internal(case.id))
    assert (err.value.code, err.value.field) == ("internal_valuation_claim_too_large", "method")
    assert err.value.params == {"claim_fen": 10_000_000_00, "limit_fen": 10_000_000_00}
    assert "1,000 万元" in describe("zh", err.value.code, err.value.params)
    assert "Ganzhou" in describe("en", err.value.code, err.value.params)
    # one fen less and the internal valuation is allowed
    await act(services.change_claim, ChangeClaim(case_id=case.id, interest_fen=137_500_49))
    v = await act(services.record_valuation, internal(case.id))
    assert v.method == "internal"


async def test_custom_weights_are_validated(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, act, case = await open_case(pool, clock)
    data = msgspec.convert(
        {
            "method": "internal",
            "base_value_fen": 100_000_00,
            "basis": "成本法",
            "scores": dict.fromkeys(INDICATORS, 80),
            "dimension_weights": {"legal": "0.5", "technical": "0.5", "economic": "0.5"},
        },
        ValuationIn,  # type: ignore[arg-type]
    )
    with pytest.raises(Invalid) as err:
        await act(services.record_valuation, RecordValuation(case_id=case.id, valuation=data))
    assert (err.value.code, err.value.field) == ("dimension_weights_sum", "dimension_weights")
    assert err.value.params == {"total": "1.5"}


async def test_valuations_of_another_banks_case_or_a_closed_case(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, act, case = await open_case(pool, clock)
    _, _, other = await bank_act(pool, clock)
    with pytest.raises(NotFound):
        await other(services.record_valuation, internal(case.id))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE disposal_cases SET status = 'closed', closed_at = now()")
    with pytest.raises(Conflict) as err:
        await act(services.record_valuation, internal(case.id))
    assert err.value.code == "case_closed"


async def _for_lot(pool: asyncpg.Pool, bank: int, case_id: int) -> CaseForLot:
    async with pool.acquire() as conn:
        return await services.case_for_lot(conn, bank, case_id)
