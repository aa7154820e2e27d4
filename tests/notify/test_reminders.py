"""Ending-soon reminders with an injected clock (docs/rules.md §Notifications):
written at 24 h, 1 h and 10 min before the effective end to every registered bidder;
moved by an extension; none after the close; a job run twice writes nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from auctions.bidding import BidBody, TokenBucket, place
from auctions.jobs import close_due_lots
from auctions.writer import Writers
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.models import PauseInput, ResumeInput
from market.notify import reminders
from market.notify.jobs_events import CRON, JOBS, lead_times, remind_ending_soon
from market.settings import Settings
from tests.factories import viewer
from tests.lots.factories import lot_action
from tests.notify.test_events import (
    START,
    Scene,
    make_lot,
    open_bidding,
    outbox,
    register_bidders,
)

H24, H1, M10 = 86400, 3600, 600


def _ctx(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> dict[str, Any]:
    return {"pool": pool, "clock": clock, "settings": settings}


async def _run_at(ctx: dict[str, Any], at: datetime) -> int:
    ctx["clock"].set(at)
    result = await remind_ending_soon(ctx)
    return int(result["written"])


async def _leads(pool: asyncpg.Pool) -> list[int]:
    return [r["payload"]["lead_s"] for r in await outbox(pool, "ending_soon")]


async def _scene(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, **kw: Any
) -> tuple[Scene, dict[str, Any]]:
    scene = await make_lot(pool, clock, settings, **kw)
    await register_bidders(pool, clock, scene, confirmed=2, awaiting=1)
    await open_bidding(pool, clock, settings, scene)
    return scene, _ctx(pool, clock, settings)


async def test_reminders_at_each_lead_time_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, ctx = await _scene(pool, clock, settings)  # a 48-hour window
    end = scene.ends_at
    second = timedelta(seconds=1)
    assert await _run_at(ctx, scene.starts_at) == 0
    assert await _run_at(ctx, end - timedelta(hours=24) - second) == 0
    assert await _run_at(ctx, end - timedelta(hours=24)) == 3
    assert await _run_at(ctx, end - timedelta(hours=24)) == 0  # the same run twice
    assert await _run_at(ctx, end - timedelta(hours=2)) == 0
    assert await _run_at(ctx, end - timedelta(hours=1) - second) == 0
    assert await _run_at(ctx, end - timedelta(hours=1) + 30 * second) == 3
    assert await _run_at(ctx, end - timedelta(minutes=30)) == 0
    assert await _run_at(ctx, end - timedelta(minutes=10)) == 3
    assert await _run_at(ctx, end - second) == 0
    assert await _run_at(ctx, end) == 0

    rows = await outbox(pool, "ending_soon")
    assert await _leads(pool) == [H24] * 3 + [H1] * 3 + [M10] * 3
    assert [(r["recipient_org_id"], r["recipient_user_id"]) for r in rows[:3]] == [
        (b.org_id, b.user_id) for b in scene.bidders
    ]
    assert [r["dedupe_key"] for r in rows[6:]] == [
        f"ending_soon:{scene.lot.id}:1:{M10}:{b.registration_id}" for b in scene.bidders
    ]
    # Each written at its moment (the clock of the run), carrying the end it counts down to.
    assert rows[0]["created_at"] == end - timedelta(hours=24)
    assert rows[-1]["created_at"] == end - timedelta(minutes=10)
    payload = rows[-1]["payload"]
    assert datetime.fromisoformat(payload["ends_at"]) == end
    assert payload["price_fen"] == START
    assert payload["lot_reference"] == scene.lot.reference
    assert [r["payload"]["deposit_status"] for r in rows[:3]] == [
        "confirmed",
        "confirmed",
        "awaiting",
    ]


async def test_an_extension_moves_the_reminder_and_none_comes_after_the_close(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    # Bids in the last 30 minutes move the end to 30 minutes after them, so a bid 20
    # minutes before the end pushes it 10 minutes on, before the 10-minute reminder.
    scene, ctx = await _scene(pool, clock, settings, extension_window_s=1800, extension_s=1800)
    end = scene.ends_at
    await _run_at(ctx, end - timedelta(hours=1))
    assert await _leads(pool) == [H1] * 3

    clock.set(end - timedelta(minutes=20))
    writers = Writers(pool, clock, lots.policy_for(settings), direct=True)
    body = BidBody(amount_fen=START)
    status, answer = await place(
        pool=pool,
        writers=writers,
        limiter=TokenBucket(10, 10),
        at=clock.now(),
        org_id=scene.bidders[0].org_id,
        reference=scene.lot.reference,
        body=body,
        raw=msgspec.json.encode(body),
        idempotency_key=None,
    )
    await writers.stop()
    assert status == 201, answer
    new_end = end + timedelta(minutes=10)
    assert answer.ends_at == new_end

    # Nothing at the old moment, the reminder at the new one, counting down to the new end.
    assert await _run_at(ctx, end - timedelta(minutes=10)) == 0
    assert await _run_at(ctx, new_end - timedelta(minutes=10) - timedelta(seconds=1)) == 0
    assert await _run_at(ctx, new_end - timedelta(minutes=10)) == 3
    rows = await outbox(pool, "ending_soon")
    assert [r["payload"]["lead_s"] for r in rows] == [H1] * 3 + [M10] * 3
    assert {datetime.fromisoformat(r["payload"]["ends_at"]) for r in rows[3:]} == {new_end}
    assert {r["payload"]["price_fen"] for r in rows[3:]} == {START}
    # The extension does not repeat a reminder already sent.
    assert await _run_at(ctx, new_end - timedelta(minutes=5)) == 0

    # Past the end — the lot still bidding until the closer comes, then closed: nothing.
    assert await _run_at(ctx, new_end) == 0
    assert await _run_at(ctx, new_end + timedelta(seconds=1)) == 0
    async with pool.acquire() as conn:
        status_now = await conn.fetchval("SELECT status FROM lots WHERE id=$1", scene.lot.id)
    assert status_now == "bidding"
    clock.set(new_end + timedelta(seconds=5))  # the closer waits out its grace
    await close_due_lots(ctx | {"redis": None})
    async with pool.acquire() as conn:
        status_now = await conn.fetchval("SELECT status FROM lots WHERE id=$1", scene.lot.id)
    assert status_now == "sold"
    assert await _run_at(ctx, new_end + timedelta(minutes=1)) == 0
    assert len(await outbox(pool, "ending_soon")) == 6


async def test_a_lead_already_passed_at_the_opening_is_skipped(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The 24-hour reminder of a 24-hour auction would fall on the opening itself, where
    bidding_opened already told everyone the end: it is not written."""
    scene, ctx = await _scene(pool, clock, settings, window=timedelta(hours=24))
    assert len(await outbox(pool, "bidding_opened")) == 3
    assert await _run_at(ctx, scene.starts_at) == 0
    assert await _run_at(ctx, scene.starts_at + timedelta(minutes=1)) == 0
    assert await _run_at(ctx, scene.ends_at - timedelta(hours=1)) == 3
    assert await _run_at(ctx, scene.ends_at - timedelta(minutes=10)) == 3
    assert await _leads(pool) == [H1] * 3 + [M10] * 3


async def test_after_downtime_only_the_shortest_due_lead_is_written(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, ctx = await _scene(pool, clock, settings)
    # The worker was down from the opening until 30 minutes before the end.
    assert await _run_at(ctx, scene.ends_at - timedelta(minutes=30)) == 3
    assert await _run_at(ctx, scene.ends_at - timedelta(minutes=20)) == 0
    assert await _run_at(ctx, scene.ends_at - timedelta(minutes=9)) == 3
    assert await _leads(pool) == [H1] * 3 + [M10] * 3


async def test_a_bidder_registering_late_gets_the_lead_due_now(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, ctx = await _scene(pool, clock, settings)
    assert await _run_at(ctx, scene.ends_at - timedelta(hours=24)) == 3
    clock.set(scene.ends_at - timedelta(hours=5))
    late = (await register_bidders(pool, clock, scene, confirmed=1))[0]
    assert await _run_at(ctx, scene.ends_at - timedelta(hours=5)) == 1
    rows = await outbox(pool, "ending_soon")
    assert rows[-1]["recipient_user_id"] == late.user_id
    assert rows[-1]["payload"]["lead_s"] == H24


async def test_a_paused_lot_is_not_reminded_and_resumes_with_its_end_moved(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, ctx = await _scene(pool, clock, settings)
    policy = lots.policy_for(settings)
    bank = await viewer(pool, scene.bank_user)
    clock.set(scene.ends_at - timedelta(minutes=20))
    await lot_action(pool, clock.now(), policy, bank, scene.lot.id, PauseInput(reason="异议审查"))
    assert await _run_at(ctx, scene.ends_at - timedelta(minutes=10)) == 0
    clock.set(scene.ends_at + timedelta(hours=1))
    resumed = await lot_action(pool, clock.now(), policy, bank, scene.lot.id, ResumeInput())
    assert resumed.bidding_ends_at == scene.ends_at + timedelta(hours=1, minutes=20)
    assert resumed.bidding_ends_at is not None
    assert await _run_at(ctx, resumed.bidding_ends_at - timedelta(minutes=10)) == 3
    assert await _leads(pool) == [M10] * 3


async def test_lead_times_are_configurable_data(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    assert reminders.parse_leads("24h, 1h,10m") == reminders.DEFAULT_LEADS
    assert reminders.parse_leads("2d,30m,90") == (
        timedelta(days=2),
        timedelta(minutes=30),
        timedelta(seconds=90),
    )
    for bad in ("", "1h,", "ten minutes", "30s", "61d", "1h,2h,3h,4h,5h,6h,7h"):
        with pytest.raises(ValueError):
            reminders.parse_leads(bad)
    assert lead_times({"settings": settings}) == reminders.DEFAULT_LEADS

    scene, ctx = await _scene(pool, clock, settings)
    ctx["reminder_leads"] = (timedelta(minutes=30),)
    assert lead_times(ctx) == (timedelta(minutes=30),)
    assert await _run_at(ctx, scene.ends_at - timedelta(hours=1)) == 0
    assert await _run_at(ctx, scene.ends_at - timedelta(minutes=30)) == 3
    assert await _leads(pool) == [1800] * 3


def test_the_job_runs_every_30_seconds_and_at_start() -> None:
    assert remind_ending_soon in JOBS
    (job,) = CRON
    assert job.coroutine is remind_ending_soon
    assert job.second == {0, 30}
    assert job.run_at_startup and job.unique
