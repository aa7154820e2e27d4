"""Lot numbers are given at publication: a draft has only its draft id; concurrent
publications take consecutive numbers of the year's counter, and a publication refused
(or a draft refused, or one never published) uses none."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from market.clock import FrozenClock
from market.errors import AppError
from market.lots import services
from market.lots.lifecycle import IllegalTransition
from market.lots.models import DraftLot, PublishLot
from market.settings import Settings
from tests.factories import act_as
from tests.lots.factories import make_case
from tests.lots.test_lots import _draft, bank, new_lot

N = 8


async def _counter(pool: asyncpg.Pool, year: int) -> int | None:
    async with pool.acquire() as conn:
        value = await conn.fetchval("SELECT last_number FROM lot_numbers WHERE year = $1", year)
    return None if value is None else int(value)


async def test_concurrent_publications_take_consecutive_numbers_and_a_refusal_none(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    drafts = []
    for _ in range(N):
        case_id, _ = await make_case(pool, clock.now(), org, user)
        drafts.append(await new_lot(pool, clock, settings, user, case_id))
    # A case missing its documents: its lot is drafted, but its publication is refused.
    undisclosed, _ = await make_case(pool, clock.now(), org, user, disclosed=False)
    blocked = await new_lot(pool, clock, settings, user, undisclosed)
    assert all(d.reference.startswith("DRAFT-") for d in [*drafts, blocked])
    act = await act_as(pool, clock, user)
    policy = services.policy_for(settings)
    # A draft refused by the rules: rolled back, it leaves no trace in the numbers either.
    case_id, _ = await make_case(pool, clock.now(), org, user)
    with pytest.raises(AppError) as refused_draft:
        await act(
            services.draft_lot,
            DraftLot(
                case_id=case_id, lot=_draft(clock, start_offset=timedelta(days=1)), policy=policy
            ),
        )
    assert refused_draft.value.code == "announcement_too_short"

    results = await asyncio.gather(
        *(act(services.publish_lot, PublishLot(lot_id=d.id, policy=policy)) for d in drafts),
        act(services.publish_lot, PublishLot(lot_id=blocked.id, policy=policy)),
        return_exceptions=True,
    )
    published = [r for r in results if not isinstance(r, BaseException)]
    refusals = [r for r in results if isinstance(r, BaseException)]
    assert len(published) == N and len(refusals) == 1
    assert isinstance(refusals[0], IllegalTransition)
    assert refusals[0].code == "lot_not_publishable"
    year = clock.now().year
    numbers = sorted(r.reference for r in published)
    assert numbers == [f"LOT-{year}-{n:06d}" for n in range(1, N + 1)]  # none skipped
    assert await _counter(pool, year) == N
    still = await services.get_lot(pool, org, blocked.id)
    assert still.status == "draft" and still.reference == blocked.reference

    # The next publication takes the next number.
    case_id, _ = await make_case(pool, clock.now(), org, user)
    nxt = await new_lot(pool, clock, settings, user, case_id, publish=True)
    assert nxt.reference == f"LOT-{year}-{N + 1:06d}"


async def test_the_year_of_a_number_is_the_publication_year_in_beijing(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    # 2026-12-31 17:00 UTC is already 2027-01-01 01:00 in Beijing.
    clock = FrozenClock(datetime(2026, 12, 31, 17, 0, tzinfo=UTC))
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await new_lot(pool, clock, settings, user, case_id, publish=True)
    assert lot.reference == "LOT-2027-000001"
    assert await _counter(pool, 2026) is None


async def test_a_lot_numbered_before_keeps_its_number(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A draft made before numbers were given at publication carries a number already:
    publishing it keeps that number and takes none from the counter."""
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await new_lot(pool, clock, settings, user, case_id)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE lots SET reference = 'LOT-2025-000042' WHERE id = $1", lot.id)
    act = await act_as(pool, clock, user)
    published = await act(
        services.publish_lot, PublishLot(lot_id=lot.id, policy=services.policy_for(settings))
    )
    assert published.reference == "LOT-2025-000042"
    assert await _counter(pool, clock.now().year) is None
