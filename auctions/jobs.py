"""The auction's timed work: closing on time, voiding unpaid sales (docs/rules.md §After
the close). Each step is a command the exchange runs as itself (auctions/closing.py).

Closing exactly at the effective end, even when a worker was down, takes two paths that
reach the same idempotent `close_lot`, so neither has to be perfect:
* a job per lot and end, `close_lot_job`, deferred to the effective end. Its id
  `lot-close:{lot}:{round}:{end, epoch ms}` changes when an extension moves the end, so the
  writer enqueues a new one after a batch that extended (`schedule_close`); the old job
  still runs at the old end, finds the end moved inside the lot lock and does nothing.
  arq waits by the wall clock, so the job is deferred by the time left on the exchange's
  clock; a sandbox whose clock was moved (market/sandbox) adds `:m{offset ms}` to the id,
  so the sweep queues the job anew for the time left after the move;
* `close_due_lots`, a cron every minute and at worker start: closes whatever is overdue
  (each at its own effective end, recorded as such however late the sweep runs) and
  enqueues the close jobs of every lot ending within `SCHEDULE_AHEAD` — so lots that the
  lifecycle opened, relisted or resumed get their job without anyone having to call
  `schedule_close`, and a Redis that lost its queue is refilled.

`CLOSE_GRACE`: the worker acts this long after the end, never earlier. A bid received
just before the end may still be in the writer's queue, its batch not yet committed;
closing first would refuse a bid the server's clock accepted (法释〔2016〕18号 Art. 20).
The close is still recorded at the effective end itself.

`default_overdue_sales` runs every minute: a sale unpaid at its deadline is voided (悔拍).

`seal_bids` runs every ten seconds: the rounds' new bids are sealed into the exchange's
audit chain (auctions/seals.py), so a bid rewritten in the database afterwards is caught
by `market audit verify`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from auctions import closing, seals
from market.clock import Clock, offset_ms, wall_delay
from market.lots.services import policy_for

log = logging.getLogger("auctions.jobs")

CLOSE_GRACE = timedelta(seconds=2)
SCHEDULE_AHEAD = timedelta(minutes=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def close_job_id(lot_id: int, round: int, ends_at: datetime, moved_ms: int = 0) -> str:
    """The job's id; a sandbox's moved clock (`moved_ms`) gives the same end a new id, so
    the job is deferred anew by the time left on the moved clock."""
    ms = (ends_at - _EPOCH) // timedelta(milliseconds=1)
    return f"lot-close:{lot_id}:{round}:{ms}" + (f":m{moved_ms}" if moved_ms else "")


async def schedule_close(
    redis: ArqRedis, lot_id: int, round: int, ends_at: datetime, clock: Clock
) -> bool:
    """Enqueue the close of this lot at this effective end (plus the grace); True if new.

    Call it after committing a change that moved the end (an extension). Enqueuing the
    same end twice is harmless (same job id). arq defers by the wall clock, so the job
    waits for the time left until the end on the exchange's clock; an end already past
    runs at once. A Redis failure must not fail a change already committed: the minute
    sweep closes the lot anyway.
    """
    try:
        job = await redis.enqueue_job(
            "close_lot_job",
            lot_id,
            _job_id=close_job_id(lot_id, round, ends_at, offset_ms(clock)),
            _defer_by=wall_delay(clock, ends_at + CLOSE_GRACE),
        )
    except (RedisError, OSError):
        log.warning("could not schedule the close of lot %s; the minute sweep will", lot_id)
        return False
    return job is not None


def _summary(result: closing.CloseResult) -> dict[str, Any]:
    return {
        "lot_id": result.lot_id,
        "round": result.round,
        "status": result.status,
        "closed_at": result.closed_at.isoformat(),
        "sale_id": None if result.sale is None else result.sale.id,
        "released": list(result.released),
    }


async def close_lot_job(ctx: dict[str, Any], lot_id: int) -> dict[str, Any] | None:
    """Close one lot if its end (plus the grace) has come; None if there was nothing to do."""
    before = ctx["clock"].now() - CLOSE_GRACE
    policy = policy_for(ctx["settings"])
    result = await closing.close_when_due(ctx["pool"], before, policy, lot_id)
    if result is None:
        return None
    log.info("lot %s closed: %s at %s", lot_id, result.status, result.closed_at.isoformat())
    return _summary(result)


async def close_due_lots(ctx: dict[str, Any]) -> dict[str, Any]:
    """Close everything overdue, then enqueue the close jobs of the lots ending soon."""
    now = ctx["clock"].now()
    policy = policy_for(ctx["settings"])
    closed = await closing.close_due(ctx["pool"], now - CLOSE_GRACE, policy)
    if closed:
        log.info("lots closed by the sweep: %s", closed)
    scheduled: list[int] = []
    redis: ArqRedis | None = ctx.get("redis")
    if redis is not None:
        for lot_id, round, ends_at in await closing.lots_ending_before(
            ctx["pool"], now + SCHEDULE_AHEAD
        ):
            if await schedule_close(redis, lot_id, round, ends_at, ctx["clock"]):
                scheduled.append(lot_id)
    return {"closed": closed, "scheduled": scheduled}


async def default_overdue_sales(ctx: dict[str, Any]) -> dict[str, list[int]]:
    """Void every sale left unpaid past its deadline (悔拍)."""
    policy = policy_for(ctx["settings"])
    defaulted = await closing.default_overdue(ctx["pool"], ctx["clock"].now(), policy)
    if defaulted:
        log.info("sales defaulted: %s", defaulted)
    return {"defaulted": defaulted}


async def seal_bids(ctx: dict[str, Any]) -> dict[str, int]:
    """Seal the rounds' bids committed since the last run (auctions/seals.py)."""
    return {"sealed": await seals.seal_due(ctx["pool"], ctx["clock"].now())}


JOBS: list[Any] = [close_lot_job, close_due_lots, default_overdue_sales, seal_bids]
CRON: list[Any] = [
    cron(close_due_lots, second={0}, unique=True, run_at_startup=True),
    cron(default_overdue_sales, second={30}, unique=True, run_at_startup=True),
    # docs/rules.md §Bidding: bids are sealed within about ten seconds of their batch.
    cron(seal_bids, second=set(range(5, 60, 10)), unique=True, run_at_startup=True),
]
