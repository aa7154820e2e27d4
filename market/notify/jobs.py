"""The notification jobs of the arq worker (docs/rules.md §Notifications).

* `deliver(delivery_id)` — one try of one delivery (delivery.py), id
  `deliver:{delivery_id}:{attempts}`;
* `relay` — drain the outbox into deliveries (relay.py): a cron every second, plus a
  kick (`relay.kick`, job id `relay`) that producers may send after their commit;
* `requeue_pending` — every 30 s and at worker start: queue every pending delivery that
  is due, so a Redis that lost its queue is refilled from PostgreSQL.

No job keeps its result (`keep_result=0`): the ids are reused on purpose — a delivery
whose try was early (an outbid e-mail's deferral, a retry) is queued again under the same
id by the cron, and a kept result would make arq refuse it for an hour. (arq does keep
one when it fails a job before running it, e.g. its data lost with Redis: the requeue
gives such a delivery a new id, relay.orphaned.) The database row is what makes a job
run twice harmless, not arq's memory.

The worker's start-up calls `delivery.open_channels(ctx)` (the SMTP connections and HTTP
client every job of the process shares) and its shutdown `close_channels(ctx)`. The
context may hold `notify_policy` (a delivery.NotifyPolicy) to change the numbers.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq import cron
from arq.connections import RedisSettings, create_pool
from arq.worker import func

from market import db
from market.clock import FrozenClock, SystemClock
from market.commands import SYSTEM, Context, run
from market.notify import relay as relaying
from market.notify.delivery import Replay, deliver, policy_of, queue_replayed, replay_deliveries
from market.settings import Settings

log = logging.getLogger("market.notify")


async def relay(ctx: dict[str, Any]) -> int:
    n = await relaying.relay_all(
        ctx["pool"],
        ctx.get("redis"),
        ctx["clock"].now(),
        policy=policy_of(ctx),
        settings=ctx["settings"],
    )
    if n:
        log.debug("relayed %d outbox rows", n)
    return n


async def requeue_pending(ctx: dict[str, Any]) -> int:
    n = await relaying.requeue_due(ctx["pool"], ctx["redis"], ctx["clock"].now())
    if n:
        log.info("queued %d due deliveries that were not in the queue", n)
    return n


JOBS: list[Any] = [
    func(deliver, keep_result=0, timeout=120),
    func(relay, keep_result=0, timeout=300),
    func(requeue_pending, keep_result=0),
]
CRON: list[Any] = [
    cron(relay, second=set(range(60)), unique=True, run_at_startup=True, keep_result=0),
    cron(requeue_pending, second={0, 30}, unique=True, run_at_startup=True, keep_result=0),
]


async def replay_command(
    settings: Settings, delivery_ids: list[int], *, all_failed: bool, at: datetime | None = None
) -> int:
    """`market notify replay [--id N ... | --all-failed]`: failed deliveries back to
    pending and queued now (the requeue cron would queue them within 30 s anyway)."""
    assert settings.database_url is not None and settings.redis_url is not None
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        replayed = await run(
            replay_deliveries,
            Replay(delivery_ids=delivery_ids, all_failed=all_failed),
            ctx=Context(pool=pool, clock=FrozenClock(at) if at else SystemClock()),
            actor=SYSTEM,
        )
        await queue_replayed(redis, replayed)
        return replayed.count
    finally:
        await redis.aclose()
        await pool.close()
