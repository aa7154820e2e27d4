"""The notification fault drill, and the fix it called for.

The drill (bench/notification_drill.py) runs here at a small size on its own embedded
PostgreSQL and Redis, on free ports in a temporary folder, whatever DATABASE_URL says:
workers SIGKILLed, Redis wiped, PostgreSQL stopped immediately, during a bidding run
of about a thousand notifications. Every owed notification must arrive on every channel,
none twice.
"""

from __future__ import annotations

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import WatchError

from bench.notification_drill import DrillConfig, drill
from market.clock import FrozenClock
from market.notify import relay
from market.settings import Settings
from tests.notify.delivery_scene import arq_pool, make_scene, owe, rows
from workers import settings as worker_settings

# About 20 s of bidding and 30-40 s for the deferred outbid e-mails to go out.
SMALL = DrillConfig(seconds=20, bids_per_s=60, buyers=30, lots=4, workers=2, kills=3, patience_s=90)


async def test_fault_drill_delivers_every_owed_notification_once() -> None:
    result = await drill(SMALL)
    print("\n".join(result.lines()))  # shown with -s; on failure, the logs' ends too
    assert result.settled, result.logs
    faults = result.faults
    assert len(faults.worker_kills) == SMALL.kills
    assert all(old != new for old, new in faults.worker_kills)
    assert faults.redis_keys_before > 0 and not faults.redis_marker_survived
    assert faults.redis_pids is not None and faults.redis_pids[0] != faults.redis_pids[1]
    assert faults.postgres_pids is not None
    assert faults.postgres_pids[0] != faults.postgres_pids[1]
    assert faults.postgres_recovered  # an immediate stop: crash recovery at the start
    assert result.bids_accepted > 500
    for channel in result.channels.values():
        assert channel.owed > 0, channel
        assert channel.missing == 0, (channel, result.logs)
        assert channel.duplicates == 0, channel
        assert channel.unexpected == 0, channel
    assert sum(c.unrecorded for c in result.channels.values()) <= result.unrecorded_limit
    assert result.ok


@pytest.mark.parametrize(
    "taken_by",
    [
        "arq:in-progress:",  # a worker took the job and was killed
        "arq:result:",  # arq failed the job before it ran (its data lost with Redis)
    ],
)
async def test_a_delivery_whose_job_id_is_taken_is_queued_again_within_seconds(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis, taken_by: str
) -> None:
    """What the drill showed: such deliveries waited for the 2-minute net, or (a kept
    result) an hour. Now an overdue delivery whose job id is taken, while no job holds
    its row, gets a late copy at the next requeue."""
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    await owe(pool, clock.now(), "won", user_id=a.user_id, lot_id=scene.lot.id)
    arq = await arq_pool(settings)
    await relay.relay_once(pool, arq, clock.now())
    (d,) = await rows(pool, "SELECT id FROM deliveries WHERE channel='inbox'")
    job = f"deliver:{d['id']}:0"
    if taken_by == "arq:result:":  # the job is gone from the queue, its result stays
        await redis.delete(f"arq:job:{job}")
        await redis.zrem("arq:queue", job)
    await redis.set(taken_by + job, b"1", ex=600)
    assert await relay.requeue_due(pool, arq, clock.now()) == 0  # not overdue yet
    clock.advance(seconds=relay.ORPHAN_AFTER.total_seconds() + 1)
    async with pool.acquire() as conn, conn.transaction():
        # A live job holds its row's lock from start to commit: not an orphan.
        await conn.execute("SELECT 1 FROM deliveries WHERE id=$1 FOR UPDATE", d["id"])
        assert await relay.requeue_due(pool, arq, clock.now()) == 0
    # Nobody holds it. (The e-mail's job was never taken: it just waits in the queue.)
    assert await relay.requeue_due(pool, arq, clock.now()) == 1
    queued = {k.decode() for k in await redis.zrange("arq:queue", 0, -1)}
    assert [j for j in queued if j.startswith(f"{job}:late")]
    await arq.aclose()


def test_the_worker_starts_again_when_redis_fails_under_it(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """What the drill showed: a connection lost between WATCH and EXEC ends arq's main
    loop, and with it `market worker`. It now starts again."""
    import arq.worker

    runs: list[str] = []

    def run_worker(*args: object, **kwargs: object) -> None:
        runs.append("run")
        if len(runs) == 1:
            raise WatchError("A ConnectionError occurred on while watching one or more keys")

    monkeypatch.setattr(arq.worker, "run_worker", run_worker)
    monkeypatch.setattr(worker_settings.time, "sleep", lambda s: runs.append(f"sleep {s:g}"))
    worker_settings.run(settings)
    assert runs == ["run", "sleep 1", "run"]  # and it returns when arq returns (a signal)
