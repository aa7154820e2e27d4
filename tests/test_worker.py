"""The arq worker runs real jobs against real Redis and PostgreSQL, in burst mode."""

from __future__ import annotations

import asyncpg
from arq.connections import create_pool
from arq.worker import Worker
from redis.asyncio import Redis

from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import make_org
from workers.settings import WorkerSettings, worker_context, worker_redis


async def test_audit_verification_job(
    pool: asyncpg.Pool, redis: Redis, settings: Settings, clock: FrozenClock
) -> None:
    await make_org(pool, clock.now())
    arq = await create_pool(worker_redis(settings))
    job = await arq.enqueue_job("verify_audit_chain", _job_id="verify-test")
    assert job is not None
    worker = Worker(
        functions=WorkerSettings.functions,
        redis_settings=worker_redis(settings),
        burst=True,
        on_startup=WorkerSettings.on_startup,
        on_shutdown=WorkerSettings.on_shutdown,
        ctx=worker_context(settings, clock),
        poll_delay=0.05,
        handle_signals=False,
    )
    await worker.main()
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 0, 0)
    result = await job.result(timeout=5)
    assert result["breaks"] == [] and result["checked"] == 2
    await worker.close()
    await arq.aclose()


def test_nightly_audit_cron_is_registered() -> None:
    names = [c.name for c in WorkerSettings.cron_jobs]
    assert "cron:verify_audit_chain" in names
    assert "cron:anchor_audit_chains" in names  # the heads anchored every few minutes
