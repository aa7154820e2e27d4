"""The lots' timed transitions: bidding opens on time, overdue pauses end. Each runs its
command (market/lots/services.py `open_due_bidding`, `end_overdue_pauses`) as the exchange.

Two paths reach the same idempotent sweep, so neither has to be perfect:
* at publication the web process enqueues `advance_lots` deferred to the announced opening
  instant (job id per lot and round: enqueuing twice is harmless);
* a cron run every minute, and once at worker start-up, catches whatever was missed —
  a worker that was down, or a Redis that lost its queue — and opens every lot due by now.
The auction engine does not wait for either: a lot whose opening instant has passed takes
bids (docs/rules.md §Bidding); the worker only writes down the state the clock already
implies.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq import cron
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from market.catalogue.services import PRICE_REFRESH_SECONDS, refresh_prices
from market.clock import Clock, wall_delay
from market.lots import services

log = logging.getLogger("market.lots")


async def advance_lots(ctx: dict[str, Any]) -> dict[str, list[int]]:
    at = ctx["clock"].now()
    policy = services.policy_for(ctx["settings"])
    redis = ctx.get("redis")
    opened = await services.open_due_lots(ctx["pool"], at, policy, redis=redis)
    ended = await services.expire_pauses(ctx["pool"], at, policy, redis=redis)
    if opened or ended:
        log.info("lots opened for bidding: %s; pauses expired: %s", opened, ended)
    return {"opened": opened, "pauses_expired": ended}


async def schedule_opening(
    redis: ArqRedis, lot_id: int, round: int, at: datetime, clock: Clock
) -> None:
    """Ask the worker to run at the announced instant (best effort; the cron is the net).

    arq defers by the wall clock, so the job waits for the time left until the instant on
    the exchange's clock; an instant already past runs at once. A Redis failure here must
    not fail a change that is already committed.
    """
    try:
        await redis.enqueue_job(
            "advance_lots",
            _job_id=f"lot-open:{lot_id}:{round}",
            _defer_by=wall_delay(clock, at),
        )
    except (RedisError, OSError):
        log.warning("could not schedule the opening of lot %s; the minute cron will", lot_id)


async def refresh_catalogue_prices(ctx: dict[str, Any]) -> int:
    """The catalogue's price sort and range catch up with bidding (migration 0012)."""
    return await refresh_prices(ctx["pool"])


JOBS: list[Any] = [advance_lots, refresh_catalogue_prices]
CRON: list[Any] = [
    cron(advance_lots, second={0}, unique=True, run_at_startup=True),
    cron(
        refresh_catalogue_prices,
        second=set(range(0, 60, PRICE_REFRESH_SECONDS)),
        unique=True,
        run_at_startup=True,
        keep_result=0,
    ),
]
