"""The sandbox clock's offset: where it is kept, the command that moves it, how every
process learns a move.

PostgreSQL holds the offset (`exchange_clock`, migration 0016); it only grows (the
command adds a positive amount, a trigger refuses a decrease). Each process keeps the
largest offset it has learned in its SandboxClock (market/clock.py), so no request reads
the database for the time: the process that moved the clock learns the move at once; the
others from a Redis message (a hint only: it carries nothing they trust) and, should it
be lost, from a read every REFRESH_SECONDS. After the commit the worker is asked to run
its sweeps at once (jobs.py), as the timers would have fired in the time skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg
import msgspec
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from market.accounts.permissions import MOVE_CLOCK
from market.clock import Clock, SandboxClock, offset_ms
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Invalid

Q = Queries("sandbox")
log = logging.getLogger("market.sandbox")

CHANNEL: Final = "exchange-clock"
# The longest a process may run on an offset older than a move whose hint it missed.
REFRESH_SECONDS: Final = 5.0
# One move goes at most this far (docs/rules.md §Sandbox clock).
MAX_MOVE: Final = timedelta(days=366)
_MS = timedelta(milliseconds=1)


class MoveClock(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Move the clock forward by `seconds`, or to the instant `to` (with its zone): one
    of the two."""

    seconds: int | None = None
    to: datetime | None = None


class ClockMoved(msgspec.Struct, frozen=True, kw_only=True):
    previous_ms: int
    offset_ms: int


class ClockOut(msgspec.Struct, frozen=True, kw_only=True):
    """The sandbox exchange's time now, and how far its clock was moved (ms)."""

    now: datetime
    offset_ms: int


@command(MOVE_CLOCK)
async def move_clock(uow: UnitOfWork, data: MoveClock) -> ClockMoved:
    """Add to the offset (never subtract: a step of zero or less is refused naming its
    field, nothing written). Concurrent moves each add their own step (the row lock of
    the upsert). `to` is reached from this process's time, which the caller refreshes
    first (`refresh`)."""
    if (data.seconds is None) == (data.to is None):
        raise Invalid("clock_move_seconds_or_to", field="seconds")
    if data.seconds is not None:
        field, step = "seconds", timedelta(seconds=data.seconds)
    else:
        assert data.to is not None
        if data.to.tzinfo is None:
            raise Invalid("not_an_instant", field="to")
        field, step = "to", data.to - uow.at
    if step > MAX_MOVE:
        raise Invalid("clock_move_too_far", field=field, max_days=MAX_MOVE.days)
    ms = step // _MS
    if ms <= 0:
        raise Invalid("clock_moves_forward_only", field=field)
    row = returned(await uow.conn.fetchrow(Q.advance_clock, ms, uow.at, uow.actor.user_id))
    moved = ClockMoved(previous_ms=row["previous_ms"], offset_ms=row["offset_ms"])
    uow.audit(
        "clock.move",
        "exchange_clock",
        "sandbox",
        chain_org_id=None,
        before={"offset_ms": moved.previous_ms},
        after={"offset_ms": moved.offset_ms, "step_ms": ms, "from": uow.at.isoformat()},
    )
    return moved


async def read_offset(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(Q.clock_offset))


async def refresh(clock: Clock, pool: asyncpg.Pool) -> ClockOut:
    """Learn the offset from PostgreSQL (a sandbox clock); the time now."""
    if isinstance(clock, SandboxClock):
        clock.learn(await read_offset(pool))
    return ClockOut(now=clock.now(), offset_ms=offset_ms(clock))


async def after_move(redis: ArqRedis, clock: Clock, moved: ClockMoved) -> ClockOut:
    """Once a move is committed: this process learns it, the others are told, and the
    worker runs its sweeps now (jobs.py). A Redis failure loses nothing: the others read
    the offset within REFRESH_SECONDS and the worker's crons run the sweeps within a
    minute."""
    if isinstance(clock, SandboxClock):
        clock.learn(moved.offset_ms)
    try:
        await redis.publish(CHANNEL, str(moved.offset_ms))
        await redis.enqueue_job(
            "clock_moved",
            moved.previous_ms,
            moved.offset_ms,
            _job_id=f"clock-moved:{moved.offset_ms}",
        )
    except (RedisError, OSError):
        log.warning("could not announce the clock's move to %d ms", moved.offset_ms)
    return ClockOut(now=clock.now(), offset_ms=offset_ms(clock))


async def follow(clock: SandboxClock, pool: asyncpg.Pool, redis: Redis) -> None:
    """Until cancelled: learn the offset now, on every hint, and every REFRESH_SECONDS."""
    pubsub: Any = None
    while True:
        try:
            clock.learn(await read_offset(pool))
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not read the sandbox clock: %r", exc)
        try:
            if pubsub is None:
                pubsub = redis.pubsub()
                await pubsub.subscribe(CHANNEL)
            await pubsub.get_message(ignore_subscribe_messages=True, timeout=REFRESH_SECONDS)
        except (RedisError, OSError):
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            pubsub = None
            await asyncio.sleep(REFRESH_SECONDS)


async def start_following(
    clock: Clock, pool: asyncpg.Pool, redis: Redis
) -> asyncio.Task[None] | None:
    """The follower of a sandbox clock, its offset learned before this returns; None for
    any other clock."""
    if not isinstance(clock, SandboxClock):
        return None
    clock.learn(await read_offset(pool))
    return asyncio.create_task(follow(clock, pool, redis), name="sandbox-clock")


async def stop_following(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
