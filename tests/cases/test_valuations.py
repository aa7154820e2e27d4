"""Recording valuations on a case: appraisal rules, internal valuation, the 10 m rule."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import msgspec
import pytest

from market.cases import services
from market.cases.models import AppraisalIn, CaseOut, InternalIn, OpenCase, Scores, ValuationIn
from market.cases.valuation import INDICATORS
from market.clock import FrozenClock
from market.errors import Conflict, Invalid, NotFound
from tests.cases.factories import make_bank, make_loan

TODAY = date(2026, 1, 5)  # the frozen clock's date in China


async def open_case(
    pool: asyncpg.Pool, clock: FrozenClock, *, principal_fen: int | None = None
) -> tuple[int, int, CaseOut]:
    bank, user, _ = await make_bank(pool, clock.now())
    loan = await make_loan(pool, clock.now(), bank)
    case = await services.open_case(
        pool,
        clock.now(),
        bank_org_id=bank,
        user_id=user,
        data=OpenCase(loan_id=loan.loan_id, principal_fen=principal_fen),
    )
    return bank, user, case


def appraisal(valued_on: date, value_fen: int = 3_600_000_00) -> AppraisalIn:
    return AppraisalIn(
        appraiser="四川天健资产评估有限公司",
        report_no="川天健评报字〔2025〕第 0815 号",
        value_fen=value_fen,
        valued_on=valued_on,
    )


def internal(scores: int = 75) -> InternalIn:
    return InternalIn(
        base_value_fen=2_000_000_00,
        basis="收益法：许可费节省法，折现率 12%",
        scores=Scores(**dict.fromkeys(INDICATORS, scores)),
    )


async def test_appraisal_dates_are_stored(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, user, case = await open_case(pool, clock)
    v = await services.record_valuation(
        pool,
        clock.now(),
        bank_org_id=bank,
        user_id=user,
        case_id=case.id,
        data=appraisal(date(2025, 12, 28)),
    )
    assert v.method == "appraisal" and v.value_fen == 3_600_000_00
    assert v.valid_until == date(2026, 12, 28)
    assert v.objection_until == TODAY + timedelta(days=5)
    assert v.inputs["objection_days"] == 5
    lot_view = await _for_lot(pool, bank, case.id)
    assert (lot_view.valuation_fen, lot_view.valuation_method) == (3_600_000_00, "appraisal")
    assert lot_view.objection_until == date(2026, 1, 10)
    assert lot_view.valuation_valid_until == date(2026, 12, 28)


@pytest.mark.parametrize(
    ("valued_on", "message"),
    [(TODAY + timedelta(days=1), "future"), (date(2025, 1, 4), "expired")],
)
async def test_future_or_expired_appraisal_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock, valued_on: date, message: str
) -> None:
    bank, user, case = await open_case(pool, clock)
    with pytest.raises(Invalid, match=message) as err:
        await services.record_valuation(
            pool,
            clock.now(),
            bank_org_id=bank,
            user_id=user,
            case_id=case.id,
            data=appraisal(valued_on),
        )
    assert err.value.field == "valued_on"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM valuations") == 0


async def test_a_new_valuation_supersedes_the_previous(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, case = await open_case(pool, clock)
    first = await services.record_valuation(
        pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=appraisal(TODAY)
    )
    clock.advance(days=3)
    second = await services.record_valuation(
        pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=internal()
    )
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
    bank, user, case = await open_case(pool, clock)
    v = await services.record_valuation(
        pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=internal(75)
    )
    assert v.method == "internal" and v.appraiser is None and v.objection_until is None
    assert v.value_fen == 2_500_000_00  # score 75 → factor 1.25
    assert v.valued_on == TODAY and v.valid_until == date(2027, 1, 5)
    assert v.inputs["scores"]["market_size"] == 75
    assert v.inputs["factor"] == "1.2500"
    assert v.inputs["dimension_weights"] == {"legal": "0.3", "technical": "0.3", "economic": "0.4"}
    assert "法律稳定性" in v.explanation and "¥2,500,000.00" in v.explanation
    stored = await services.get_case(pool, bank, case.id)
    assert stored.valuation is not None and stored.valuation.explanation == v.explanation
    # the explanation is the report: the checklist item needs no upload
    assert "valuation_report" in stored.disclosure.present


async def test_vetoed_internal_valuation_is_refused_with_its_reason(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, case = await open_case(pool, clock)
    with pytest.raises(Invalid, match="否决线") as err:
        await services.record_valuation(
            pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=internal(30)
        )
    assert err.value.code == "vetoed"
    assert (await services.get_case(pool, bank, case.id)).valuation is None


async def test_claims_of_ten_million_or_more_need_an_appraisal(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    # principal 9,862,499.50 + interest 137,500.50 = exactly CNY 10 m
    bank, user, case = await open_case(pool, clock, principal_fen=10_000_000_00 - 137_500_50)
    assert case.claim.total_fen == 10_000_000_00
    with pytest.raises(Invalid, match="Ganzhou") as err:
        await services.record_valuation(
            pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=internal()
        )
    assert "1,000 万元" in err.value.message and err.value.field == "method"
    # one fen less and the internal valuation is allowed
    from market.cases.models import ClaimChange

    await services.change_claim(
        pool,
        clock.now(),
        bank_org_id=bank,
        user_id=user,
        case_id=case.id,
        data=ClaimChange(interest_fen=137_500_49),
    )
    v = await services.record_valuation(
        pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=internal()
    )
    assert v.method == "internal"


async def test_custom_weights_are_validated(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, user, case = await open_case(pool, clock)
    data = msgspec.convert(
        {
            "method": "internal",
            "base_value_fen": 100_000_00,
            "basis": "成本法",
            "scores": dict.fromkeys(INDICATORS, 80),
            "dimension_weights": {"legal": "0.5", "technical": "0.5", "economic": "0.5"},
        },
        ValuationIn,
    )
    with pytest.raises(Invalid, match=r"sum to 1\.5"):
        await services.record_valuation(
            pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=data
        )


async def test_valuations_of_another_banks_case_or_a_closed_case(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, case = await open_case(pool, clock)
    other, other_user, _ = await make_bank(pool, clock.now())
    with pytest.raises(NotFound):
        await services.record_valuation(
            pool,
            clock.now(),
            bank_org_id=other,
            user_id=other_user,
            case_id=case.id,
            data=internal(),
        )
    async with pool.acquire() as conn:
        await conn.execute("UPDATE disposal_cases SET status = 'closed', closed_at = now()")
    with pytest.raises(Conflict):
        await services.record_valuation(
            pool, clock.now(), bank_org_id=bank, user_id=user, case_id=case.id, data=internal()
        )


async def _for_lot(pool: asyncpg.Pool, bank: int, case_id: int):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await services.case_for_lot(conn, bank, case_id)
