"""Opening a disposal case: defaulted loans only, one open case per loan, claim defaults."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from market.cases import services
from market.cases.models import ChangeClaim, OpenCase
from market.clock import FrozenClock
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.problems import describe
from tests.cases.factories import bank_act, make_loan, make_lot
from tests.factories import act_as, make_org


async def test_claim_defaults_from_the_loan(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case = await act(services.open_case, OpenCase(loan_id=loan.loan_id, costs_fen=12_000_00))
    assert case.claim.principal_fen == 4_200_000_00
    assert case.claim.interest_fen == 137_500_50
    assert case.claim.costs_fen == 12_000_00
    assert case.claim.total_fen == 4_200_000_00 + 137_500_50 + 12_000_00
    assert [a.id for a in case.assets] == loan.asset_ids  # the whole pledge by default
    assert case.reference == "CZ-2026-000001"  # the frozen clock's year in China
    assert case.status == "open" and case.editable
    assert case.loan_no == loan.loan_no


async def test_claim_parts_and_a_subset_of_assets_may_be_chosen(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank, kinds=("patent", "patent", "trademark"))
    case = await act(
        services.open_case,
        OpenCase(
            loan_id=loan.loan_id,
            principal_fen=100,
            interest_fen=0,
            asset_ids=[loan.asset_ids[2], loan.asset_ids[0]],
        ),
    )
    assert (case.claim.principal_fen, case.claim.interest_fen) == (100, 0)
    assert [a.id for a in case.assets] == sorted([loan.asset_ids[0], loan.asset_ids[2]])


async def test_asset_outside_the_pledge_is_refused(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    other = await make_loan(pool, clock.now(), bank)
    with pytest.raises(Invalid) as err:
        await act(
            services.open_case,
            OpenCase(loan_id=loan.loan_id, asset_ids=[loan.asset_ids[0], other.asset_ids[0]]),
        )
    assert (err.value.code, err.value.field) == ("assets_not_in_pledge", "asset_ids")
    assert err.value.params == {"asset_ids": [other.asset_ids[0]]}
    assert str(other.asset_ids[0]) in describe("zh", err.value.code, err.value.params)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM disposal_cases") == 0


async def test_performing_loan_is_refused(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank, default_date=None, npl_class=None)
    with pytest.raises(Invalid) as err:
        await act(services.open_case, OpenCase(loan_id=loan.loan_id))
    assert err.value.code == "loan_not_defaulted"
    assert err.value.status == 422 and err.value.field == "loan_id"
    assert "未违约" in describe("zh", err.value.code, err.value.params)


async def test_npl_class_alone_counts_as_defaulted(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank, default_date=None, npl_class="doubtful")
    case = await act(services.open_case, OpenCase(loan_id=loan.loan_id))
    assert case.status == "open"


async def test_another_banks_loan_is_not_found(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank_a, _, _ = await bank_act(pool, clock)
    _, _, act_b = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank_a)
    with pytest.raises(NotFound) as err:
        await act_b(services.open_case, OpenCase(loan_id=loan.loan_id))
    assert err.value.field == "loan_id"


async def test_only_a_bank_opens_cases(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, _ = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    _, buyer_user, _ = await make_org(pool, clock.now(), kind="buyer")
    buyer = await act_as(pool, clock, buyer_user)
    with pytest.raises(Forbidden) as err:
        await buyer(services.open_case, OpenCase(loan_id=loan.loan_id))
    assert err.value.code == "not_permitted"
    _, pending_user, _ = await make_org(pool, clock.now(), kind="bank", status="pending")
    pending = await act_as(pool, clock, pending_user)
    with pytest.raises(Forbidden) as err:
        await pending(services.open_case, OpenCase(loan_id=loan.loan_id))
    assert err.value.code == "organisation_not_approved"


async def test_second_open_case_on_a_loan_is_a_conflict(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    data = OpenCase(loan_id=loan.loan_id)
    await act(services.open_case, data)
    with pytest.raises(Conflict) as err:
        await act(services.open_case, data)
    assert err.value.status == 409
    assert (err.value.code, err.value.field) == ("case_already_open", "loan_id")
    # a closed case no longer blocks a new one (the index is partial)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE disposal_cases SET status = 'closed'")
    first = (await services.list_cases(pool, bank))[0]
    again = await act(services.open_case, data)
    assert again.id != first.id and again.reference != first.reference


async def test_concurrent_opens_create_exactly_one_case(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    data = OpenCase(loan_id=loan.loan_id)
    results = await asyncio.gather(
        *(act(services.open_case, data) for _ in range(8)),
        return_exceptions=True,
    )
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(opened) == 1
    assert len(refused) == 7 and all(isinstance(r, Conflict) for r in refused)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM disposal_cases") == 1
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'case.open'") == 1


async def test_opening_is_audited_on_the_banks_chain(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case = await act(services.open_case, OpenCase(loan_id=loan.loan_id))
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT chain_org_id, actor_user_id, object_id, after FROM audit_log "
            "WHERE action = 'case.open'"
        )
    assert row["chain_org_id"] == bank and row["actor_user_id"] == user
    assert row["object_id"] == str(case.id) and row["after"]["reference"] == case.reference


async def test_claim_is_editable_until_a_lot_is_published(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case = await act(services.open_case, OpenCase(loan_id=loan.loan_id))
    changed = await act(
        services.change_claim,
        ChangeClaim(case_id=case.id, costs_fen=50_000_00, notes="诉讼费与保全费"),
    )
    assert changed.claim.costs_fen == 50_000_00 and changed.notes == "诉讼费与保全费"
    assert changed.claim.principal_fen == case.claim.principal_fen  # untouched
    await make_lot(pool, clock.now(), bank, case.id, status="draft")
    # a draft lot is not published
    await act(services.change_claim, ChangeClaim(case_id=case.id, interest_fen=1))
    await make_lot(pool, clock.now(), bank, case.id, status="announced")
    with pytest.raises(Conflict) as err:
        await act(services.change_claim, ChangeClaim(case_id=case.id, interest_fen=2))
    assert err.value.code == "claim_frozen_by_published_lot"
    after = await services.get_case(pool, bank, case.id)
    assert after.claim.interest_fen == 1 and not after.editable
    async with pool.acquire() as conn:
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'case.claim_change'"
        )
    assert audited == 2


async def test_a_closed_case_does_not_change(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank)
    case = await act(services.open_case, OpenCase(loan_id=loan.loan_id))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE disposal_cases SET status = 'closed', closed_at = now()")
    with pytest.raises(Conflict) as err:
        await act(services.change_claim, ChangeClaim(case_id=case.id, costs_fen=1))
    assert err.value.code == "case_closed" and err.value.params == {"reference": case.reference}
    assert case.reference in describe("en", err.value.code, err.value.params)


async def test_another_bank_cannot_read_or_change_a_case(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank_a, _, act_a = await bank_act(pool, clock)
    bank_b, _, act_b = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank_a)
    case = await act_a(services.open_case, OpenCase(loan_id=loan.loan_id))
    with pytest.raises(NotFound):
        await services.get_case(pool, bank_b, case.id)
    with pytest.raises(NotFound) as err:
        await act_b(services.change_claim, ChangeClaim(case_id=case.id, costs_fen=1))
    assert err.value.code == "no_such_case"
    assert await services.list_cases(pool, bank_b) == []
    assert [c.id for c in await services.list_cases(pool, bank_a)] == [case.id]
