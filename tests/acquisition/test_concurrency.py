"""Concurrent requests on one attempt, against real PostgreSQL: exactly one outcome."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from market.acquisition import agreement
from market.acquisition.jobs import complete_agreements
from market.clock import FrozenClock
from market.errors import AppError
from market.settings import Settings
from tests.acquisition.scene import make_scene, object_as, propose_acquisition


async def test_an_objection_and_the_completing_sweep_at_once_give_one_outcome(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    for _ in range(3):
        s = await make_scene(pool, clock)
        proposed = await propose_acquisition(pool, clock.now(), s, 123_456_789)
        end = proposed.objection_until
        objection, swept = await asyncio.gather(
            object_as(pool, end - timedelta(microseconds=1), s.pool_a, proposed.id),
            agreement.sweep(pool, end),
            return_exceptions=True,
        )
        row = await pool.fetchrow("SELECT * FROM agreed_disposals WHERE id = $1", proposed.id)
        receipts = await pool.fetchval(
            "SELECT count(*) FROM receipts WHERE source = $1", f"acquisition:{proposed.id}"
        )
        if row["status"] == "objected":
            assert isinstance(objection, agreement.Agreement) and swept == []
            assert receipts == 0
        else:
            assert row["status"] == "completed" and swept == [proposed.id]
            assert isinstance(objection, AppError) and objection.code == "agreement_ended"
            assert receipts == 1
        # Another sweep changes nothing.
        assert await agreement.sweep(pool, end + timedelta(days=1)) == []
        clock.advance(timedelta(days=11))


async def test_two_sweeps_at_once_route_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await make_scene(pool, clock)
    proposed = await propose_acquisition(pool, clock.now(), s, 123_456_789)
    end = proposed.objection_until
    ctx = {"pool": pool, "clock": FrozenClock(end), "settings": settings}
    first, second = await asyncio.gather(complete_agreements(ctx), complete_agreements(ctx))
    assert sorted([first["completed"], second["completed"]]) == [[], [proposed.id]]
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 1
    assert await pool.fetchval("SELECT count(*) FROM payouts") == 2


async def test_two_proposals_at_once_on_one_case_give_one(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock)
    results = await asyncio.gather(
        propose_acquisition(pool, clock.now(), s, 123_456_789),
        propose_acquisition(pool, clock.now(), s, 130_000_000),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, agreement.Agreement)]
    refused = [r for r in results if isinstance(r, AppError)]
    assert len(made) == 1 and len(refused) == 1
    assert (refused[0].status, refused[0].code, refused[0].field) == (
        409,
        "agreement_pending",
        "case_id",
    )
    assert await pool.fetchval("SELECT count(*) FROM agreed_disposals") == 1
    told = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event = 'agreed_disposal_proposed'"
    )
    assert told == 2  # the two bearers, once
