"""Bad input to disposal by agreement: each refused with a 4xx naming the field, nothing
written (no attempt, no event, no receipt)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import pytest

from market.acquisition import agreement
from market.clock import FrozenClock
from market.errors import AppError
from tests.acquisition.scene import (
    make_scene,
    object_as,
    propose_acquisition,
    propose_equity,
    upload,
)
from tests.pools.scene import make_loan


async def nothing_written(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT count(*) FROM agreed_disposals") == 0
    assert (
        await pool.fetchval("SELECT count(*) FROM outbox WHERE event LIKE 'agreed_disposal_%'") == 0
    )


def refused(err: pytest.ExceptionInfo[AppError]) -> tuple[int, str, str | None]:
    return err.value.status, err.value.code, err.value.field


async def test_below_the_failed_auctions_start(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    # Start 1,200,000 > 70 % of 1,500,000 = 1,050,000: the start decides.
    s = await make_scene(pool, clock)
    with pytest.raises(AppError) as err:
        await propose_acquisition(pool, clock.now(), s, 119_999_999)
    assert refused(err) == (422, "agreement_below_auction_start", "amount_fen")
    assert err.value.params == {"floor_fen": 120_000_000, "basis_fen": 120_000_000}
    await nothing_written(pool)


async def test_below_70_percent_of_the_valuation(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    # Start 1,000,000 < 70 % of 1,500,000 = 1,050,000: the valuation decides.
    s = await make_scene(pool, clock, failed_start_fen=100_000_000)
    with pytest.raises(AppError) as err:
        await propose_acquisition(pool, clock.now(), s, 104_999_999)
    assert refused(err) == (422, "agreement_below_valuation_share", "amount_fen")
    assert err.value.params == {"floor_fen": 105_000_000, "basis_fen": 150_000_000}
    await nothing_written(pool)
    # At the floor exactly it is taken.
    assert (await propose_acquisition(pool, clock.now(), s, 105_000_000)).status == "pending"


async def test_a_consent_document_of_another_case(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    s = await make_scene(pool, clock)
    other = await make_loan(
        pool, clock.now(), principal_fen=100_000_000, bank=(s.loan.bank_org, s.loan.bank_user)
    )
    foreign = await upload(pool, clock.now(), other, agreement.CONSENT_ITEM)
    with pytest.raises(AppError) as err:
        await propose_acquisition(pool, clock.now(), s, 123_456_789, consent_id=foreign)
    assert refused(err) == (422, "agreement_document_not_of_case", "consent_document_id")
    await nothing_written(pool)


async def test_an_objection_after_the_window(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    s = await make_scene(pool, clock)
    proposed = await propose_acquisition(pool, clock.now(), s, 123_456_789)
    clock.advance(timedelta(days=10))
    with pytest.raises(AppError) as err:
        await object_as(pool, clock.now(), s.pool_a, proposed.id)
    assert refused(err) == (422, "objection_window_closed", "reason")
    row = await pool.fetchrow("SELECT status, objection_reason FROM agreed_disposals")
    assert (row["status"], row["objection_reason"]) == ("pending", None)
    assert (
        await pool.fetchval("SELECT count(*) FROM outbox WHERE event = 'agreed_disposal_objected'")
        == 0
    )


async def test_an_expired_appraisal_of_the_equity(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    s = await make_scene(pool, clock, failed_start_fen=None)
    with pytest.raises(AppError) as err:
        # Valid until 2025-12-31; today is 2026-01-05.
        await propose_equity(
            pool, clock.now(), s, 50_000_000, valued_on=date(2024, 12, 31), percent=Decimal(5)
        )
    assert refused(err) == (422, "appraisal_expired", "valued_on")
    await nothing_written(pool)
