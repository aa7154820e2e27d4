"""arq worker: its startup context and the jobs it runs.

`market worker` runs this. Jobs may run twice (arq retries after a crash), so every job
is idempotent by a row it writes in the same transaction as its effect.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings

from auctions.jobs import CRON as AUCTION_CRON
from auctions.jobs import JOBS as AUCTION_JOBS
from market import audit, db
from market.clock import Clock, SystemClock
from market.collateral.jobs import CRON as COLLATERAL_CRON
from market.collateral.jobs import JOBS as COLLATERAL_JOBS
from market.lots.jobs import CRON as LOTS_CRON
from market.lots.jobs import JOBS as LOTS_JOBS
from market.notify.delivery import close_channels, open_channels
from market.notify.jobs import CRON as NOTIFY_CRON
from market.notify.jobs import JOBS as NOTIFY_JOBS
from market.notify.jobs_events import CRON as EVENTS_CRON
from market.notify.jobs_events import JOBS as EVENTS_JOBS
from market.settings import Settings

log = logging.getLogger("market.worker")


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    assert settings.database_url is not None
    ctx.setdefault("clock", SystemClock())
    ctx["pool"] = await db.create_pool(settings.database_url, max_size=10)
    await open_channels(ctx)  # one SMTP pool and HTTP client per worker, not per message


async def shutdown(ctx: dict[str, Any]) -> None:
    await close_channels(ctx)
    pool = ctx.get("pool")
    if pool is not None:
        await pool.close()


async def verify_audit_chain(ctx: dict[str, Any]) -> dict[str, Any]:
    """Nightly: walk every audit chain; a break is logged as an error for the operator."""
    async with ctx["pool"].acquire() as conn:
        checked, breaks = await audit.verify(conn)
    for b in breaks:
        log.error("audit chain broken: %s", b)
    if not breaks:
        log.info("audit chains intact: %d rows checked", checked)
    return {"checked": checked, "breaks": [str(b) for b in breaks]}


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        verify_audit_chain,
        *COLLATERAL_JOBS,
        *LOTS_JOBS,
        *AUCTION_JOBS,
        *EVENTS_JOBS,
        *NOTIFY_JOBS,
    ]
    # 03:00 Asia/Shanghai is 19:00 UTC: the quiet hour of a Chinese exchange.
    cron_jobs: ClassVar[list[Any]] = [
        cron(verify_audit_chain, hour={19}, minute={0}, unique=True, run_at_startup=False),
        *COLLATERAL_CRON,
        *LOTS_CRON,
        *AUCTION_CRON,
        *EVENTS_CRON,
        *NOTIFY_CRON,
    ]
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 20
    # A notification takes two jobs (relay, then delivery); arq's default 0.5 s poll would
    # add up to a second between commit and delivery (issue 5: p99 ≤ 1 s).
    poll_delay = 0.05
    job_timeout = 600
    keep_result = 3600


def worker_context(settings: Settings, clock: Clock | None = None) -> dict[str, Any]:
    return {"settings": settings, "clock": clock or SystemClock()}


def worker_redis(settings: Settings) -> RedisSettings:
    assert settings.redis_url is not None
    return RedisSettings.from_dsn(settings.redis_url)
