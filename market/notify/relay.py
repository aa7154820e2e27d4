"""The relay: outbox rows → delivery rows → arq jobs (docs/rules.md §Notifications).

`relay_outbox`, a command only the exchange runs, takes the oldest unrelayed outbox rows
`FOR UPDATE SKIP LOCKED` — several
relays at once each take different rows, never the same — expands each into its
deliveries (recipients.py: recipients × channels), inserts them `ON CONFLICT DO NOTHING`
(unique per outbox row, channel and target), sets `relayed_at` and commits; only then
does it queue the `deliver` jobs. Inbox deliveries due now are delivered in that same
transaction by the worker's relay (an inbox message is a row in our own database: it
needs no job, and an event then costs one job, not two); a retry or a requeue of one
goes through a job like any other delivery. A crash before the commit leaves the rows
unrelayed for the next pass; a crash after it leaves pending deliveries that
`requeue_due` queues. `relay_once` runs the command and queues the jobs after its commit.

`requeue_due` is the net under the queue: PostgreSQL is the truth, Redis may lose its
data (a restart without persistence, a flush), so a cron queues every pending delivery
whose try is due, with the same job ids — a duplicate is refused by arq or, if it
slips through after a job finished, finds nothing to do (delivery.py). A delivery whose
job id is taken by a job that will not deliver it — held by a worker killed mid-job,
which arq hands to another worker only after the job timeout (10 minutes), or failed by
arq itself before it ran — gets a second job id (`…:late{n}`): at the next requeue once
`orphaned` recognises it, else when it is overdue by more than `STUCK_AFTER`, once per
such interval. The copies are harmless, the delivery row decides.

An outbid e-mail is due `outbid_email_delay_s` after the bid, so that rapid outbids
collapse into one message (delivery.py); every other delivery is due at once.

Webhook deliveries are numbered here (docs/webhooks.md): each belongs to the stream of its
endpoint and subject (the lot; else the monitoring flag's asset; else the organisation) and
takes the stream's next `sequence`, in outbox order. Relays take turns for that (an
advisory lock held to the commit): two relays numbering one stream at once could give a
later event the smaller number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg
import msgspec
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, result_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Conn, Queries
from market.notify import recipients
from market.notify.delivery import (
    DEFAULT_POLICY,
    NotifyPolicy,
    deliver_inbox_now,
    enqueue_rows,
    job_id,
)
from market.settings import Settings

Q = Queries("notify")
log = logging.getLogger("market.notify")

BATCH: Final = 500
REQUEUE_LIMIT: Final = 20_000
RELAY_JOB_ID: Final = "relay"
# A delivery due this long ago is not waiting in a healthy queue (requeue_due).
STUCK_AFTER: Final = timedelta(minutes=2)
# A delivery due this long ago whose job id is taken, with no job holding its row, waits
# for a job that will not come (orphaned).
ORPHAN_AFTER: Final = timedelta(seconds=10)


class RelayBatch(msgspec.Struct, frozen=True, kw_only=True):
    """How many outbox rows to relay at most, by which numbers; with `settings` (the
    worker's), inbox deliveries due now are delivered in the same transaction
    (delivery.deliver_inbox_now) instead of queuing a job each."""

    batch: int = BATCH
    policy: NotifyPolicy = DEFAULT_POLICY
    settings: Settings | None = None


@dataclass(frozen=True)
class Relayed:
    count: int  # outbox rows relayed
    queue: list[asyncpg.Record]  # the deliveries' tries to queue once committed


@command(None)
async def relay_outbox(uow: UnitOfWork, data: RelayBatch) -> Relayed:
    """Relay up to `data.batch` outbox rows into their deliveries (module docstring).

    Concurrent relays stay correct by `FOR UPDATE SKIP LOCKED` on the outbox rows: each
    takes different rows, never the same; the deliveries' unique key (outbox row, channel,
    target) refuses a second copy of any delivery all the same."""
    conn, at = uow.conn, uow.at
    await conn.execute(Q.lock_relay)
    rows = await conn.fetch(Q.claim_outbox, data.batch)
    if not rows:
        return Relayed(count=0, queue=[])
    created: dict[int, datetime] = {r["id"]: r["created_at"] for r in rows}
    event = {r["id"]: r["event"] for r in rows}
    subject: dict[int, str] = {r["id"]: r["subject"] for r in rows}
    planned = await recipients.plan(conn, rows)
    numbers = await _number_webhooks(conn, planned, subject)
    outbid_delay = timedelta(seconds=data.policy.outbid_email_delay_s)

    def due(p: recipients.Planned) -> datetime:
        if p.channel == "email" and event[p.outbox_id] == "outbid":
            return max(at, created[p.outbox_id] + outbid_delay)
        return at

    new = await conn.fetch(
        Q.insert_deliveries,
        [p.outbox_id for p in planned],
        [p.channel for p in planned],
        [p.target for p in planned],
        [due(p) for p in planned],
        at,
        [subject[p.outbox_id] if p.channel == "webhook" else None for p in planned],
        [numbers.get(i) for i in range(len(planned))],
    )
    await conn.execute(Q.mark_relayed, list(created), at)
    if data.settings is not None:
        inbox = [r["id"] for r in new if r["channel"] == "inbox"]  # always due now
        done = await deliver_inbox_now(conn, data.settings, at, inbox, data.policy)
        new = [r for r in new if r["id"] not in done]
    return Relayed(count=len(rows), queue=list(new))


async def _number_webhooks(
    conn: Conn, planned: Sequence[recipients.Planned], subject: Mapping[int, str]
) -> dict[int, int]:
    """The sequence of each planned webhook delivery, by its index in `planned`: the next
    numbers of its stream (endpoint, subject), in outbox order; one statement for all."""
    streams: dict[tuple[int, str], list[int]] = {}
    for i, p in sorted(enumerate(planned), key=lambda ip: ip[1].outbox_id):
        if p.channel == "webhook":
            streams.setdefault((int(p.target), subject[p.outbox_id]), []).append(i)
    if not streams:
        return {}
    keys = sorted(streams)  # rows locked in one order: relays never deadlock on them
    last = {
        (r["endpoint_id"], r["subject"]): r["last_sequence"]
        for r in await conn.fetch(
            Q.take_sequences,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [len(streams[k]) for k in keys],
        )
    }
    numbers: dict[int, int] = {}
    for key, indexes in streams.items():
        first = last[key] - len(indexes) + 1
        numbers.update({i: first + n for n, i in enumerate(indexes)})
    return numbers


async def relay_once(
    pool: asyncpg.Pool,
    redis: ArqRedis | None,
    at: datetime,
    batch: int = BATCH,
    *,
    policy: NotifyPolicy = DEFAULT_POLICY,
    settings: Settings | None = None,
) -> int:
    """Relay up to `batch` outbox rows as of `at` and queue their deliveries' jobs once
    committed; returns how many rows were relayed by this call."""
    relayed = await run(
        relay_outbox,
        RelayBatch(batch=batch, policy=policy, settings=settings),
        ctx=Context(pool=pool, clock=FrozenClock(at)),
        actor=SYSTEM,
    )
    await enqueue_rows(redis, relayed.queue, at)
    return relayed.count


async def relay_all(
    pool: asyncpg.Pool,
    redis: ArqRedis | None,
    at: datetime,
    batch: int = BATCH,
    *,
    policy: NotifyPolicy = DEFAULT_POLICY,
    settings: Settings | None = None,
) -> int:
    """Relay until the outbox is drained (as of this call); returns the rows relayed."""
    total = 0
    while True:
        n = await relay_once(pool, redis, at, batch, policy=policy, settings=settings)
        total += n
        if n < batch:
            return total


async def requeue_due(
    pool: asyncpg.Pool, redis: ArqRedis, at: datetime, limit: int = REQUEUE_LIMIT, tag: str = ""
) -> int:
    """Queue every pending delivery due by `at` (module docstring); returns how many
    jobs were newly queued (those already queued are not counted). `tag` ends every job
    id: a sandbox whose clock moved (market/sandbox/jobs.py) queues tries that arq holds
    back by the wall clock again, to run now."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.due_deliveries, at, limit)
    orphans = await orphaned(pool, redis, rows, at)
    stuck_before = at - STUCK_AFTER
    bucket = int(at.timestamp()) // int(STUCK_AFTER.total_seconds())

    def suffix(row: asyncpg.Record) -> str:
        # Its job id is taken by a job that will not deliver it (orphaned), or may be:
        # long overdue. A second id gets it done now; whichever copy runs second finds
        # it sent (delivery.py).
        late = row["id"] in orphans or row["next_attempt_at"] < stuck_before
        return (f":late{bucket}" if late else "") + tag

    return await enqueue_rows(redis, rows, at, suffix)


async def orphaned(
    pool: asyncpg.Pool, redis: ArqRedis, rows: Sequence[asyncpg.Record], at: datetime
) -> set[int]:
    """The ids among these due deliveries whose job id is taken by a job that will not
    deliver them:

    * held by a worker that died: arq marks a job in progress when a worker takes it and
      clears the mark when the job ends; a worker killed in between leaves the mark for
      the job timeout, and no worker runs that job id meanwhile;
    * failed by arq before it ran (its data lost with Redis, too many tries): arq then
      keeps a result under the id for an hour, whatever the function's keep_result, and
      refuses to queue the id again.

    A running delivery job holds its row's lock from its start to its commit
    (delivery.py). So a delivery overdue by ORPHAN_AFTER whose job id is taken so, and
    whose row nobody has locked, is an orphan. (A live job still waiting for a database
    connection looks the same: its copy is harmless.)
    """
    late = [r for r in rows if r["next_attempt_at"] < at - ORPHAN_AFTER]
    if not late:
        return set()
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for r in late:
                job = job_id(r["id"], r["attempts"])
                pipe.exists(in_progress_key_prefix + job, result_key_prefix + job)
            taken = await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("could not look for orphaned delivery jobs (%s)", exc)
        return set()
    held = [r["id"] for r, n in zip(late, taken, strict=True) if n]
    if not held:
        return set()
    async with pool.acquire() as conn, conn.transaction():
        return {r["id"] for r in await conn.fetch(Q.unlocked_pending, held)}


async def kick(redis: Redis) -> None:
    """Ask a worker to relay now: the unit of work of a change that owed notifications
    calls it after its commit (market/commands.py). Best effort — the relay cron runs
    every second anyway — so it never raises. Kicks while one is queued coalesce."""
    if not isinstance(redis, ArqRedis):
        log.debug("no job queue to kick the relay on; its cron will run")
        return
    try:
        await redis.enqueue_job("relay", _job_id=RELAY_JOB_ID)
    except (RedisError, OSError) as exc:
        log.warning("could not kick the relay (%s); its cron will run", exc)


# A bid batch that outbid someone owes a notice, and on a thousand lots in bidding batches
# come hundreds of times a second: a kick per batch (three Redis round trips) cost the bid
# path a fifth of its throughput (bench/bidding.py many_lots). One kick per 50 ms is as
# prompt for the notices (docs/bidding.md: delivered within 1 s) at a fraction of the cost.
KICK_INTERVAL_S: Final = 0.05


class Kicker:
    """`kick`, at most once per `interval` seconds: a kick asked for sooner is sent when the
    interval ends, never dropped, so a notice waits at most `interval` longer."""

    def __init__(self, redis: Redis, interval: float = KICK_INTERVAL_S) -> None:
        self.redis = redis
        self.interval = interval
        self._last = float("-inf")
        self._later: asyncio.Task[None] | None = None

    async def __call__(self) -> None:
        if self._later is not None:
            return  # a kick is on its way and will see this batch's rows
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self._last = time.monotonic()
            await kick(self.redis)
        else:
            self._later = asyncio.create_task(self._after(wait))

    async def _after(self, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
            self._last = time.monotonic()
            await kick(self.redis)
        finally:
            self._later = None

    async def flush(self) -> None:
        """Send the kick waiting for its interval now, before the Redis client it uses is
        closed: a kick after the close would open a connection nobody closes."""
        later, self._later = self._later, None
        if later is not None and not later.done():
            later.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await later
            self._last = time.monotonic()
            await kick(self.redis)
