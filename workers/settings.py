"""arq worker: its startup context and the jobs it runs.

`market worker` runs this. Jobs may run twice (arq retries after a crash), so every job
is idempotent by a row it writes in the same transaction as its effect.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, ClassVar

import asyncpg
from arq import cron
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from auctions import seals
from auctions.jobs import CRON as AUCTION_CRON
from auctions.jobs import JOBS as AUCTION_JOBS
from market import audit, audit_anchors, db, i18n
from market.acquisition.jobs import CRON as ACQUISITION_CRON
from market.acquisition.jobs import JOBS as ACQUISITION_JOBS
from market.clock import Clock, SandboxClock, SystemClock
from market.collateral.jobs import CRON as COLLATERAL_CRON
from market.collateral.jobs import JOBS as COLLATERAL_JOBS
from market.documents.jobs import CRON as DOCUMENTS_CRON
from market.documents.jobs import JOBS as DOCUMENTS_JOBS
from market.licensing.jobs import CRON as LICENSING_CRON
from market.licensing.jobs import JOBS as LICENSING_JOBS
from market.listing.jobs import CRON as LISTING_CRON
from market.listing.jobs import JOBS as LISTING_JOBS
from market.lots.jobs import CRON as LOTS_CRON
from market.lots.jobs import JOBS as LOTS_JOBS
from market.notify.delivery import close_channels, open_channels
from market.notify.jobs import CRON as NOTIFY_CRON
from market.notify.jobs import JOBS as NOTIFY_JOBS
from market.notify.jobs_events import CRON as EVENTS_CRON
from market.notify.jobs_events import JOBS as EVENTS_JOBS
from market.sandbox import services as sandbox
from market.sandbox.jobs import JOBS as SANDBOX_JOBS
from market.settings import Settings
from market.transfer.jobs import CRON as TRANSFER_CRON
from market.transfer.jobs import JOBS as TRANSFER_JOBS

log = logging.getLogger("market.worker")


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    assert settings.database_url is not None
    ctx.setdefault("clock", SystemClock())
    i18n.check_catalogs()  # read once, before the first message is rendered
    audit.use_key(audit.key_of(settings))
    ctx["pool"] = await db.create_pool(settings.database_url, max_size=10)
    # A sandbox's worker keeps its clock's offset current (market/sandbox/services.py).
    ctx["clock_follower"] = await sandbox.start_following(ctx["clock"], ctx["pool"], ctx["redis"])
    await open_channels(ctx)  # one SMTP pool and HTTP client per worker, not per message


async def shutdown(ctx: dict[str, Any]) -> None:
    await close_channels(ctx)
    await sandbox.stop_following(ctx.get("clock_follower"))
    pool = ctx.get("pool")
    if pool is not None:
        await pool.close()


async def verify_audit_chain(ctx: dict[str, Any]) -> dict[str, Any]:
    """Nightly: walk every audit chain with the key and against the anchors; a break is
    logged as an error for the operator."""
    anchors = audit_anchors.read(audit_anchors.anchor_path(ctx["settings"]), audit.current_key())
    async with ctx["pool"].acquire() as conn:
        checked, audit_breaks = await audit.verify(conn, anchors=anchors)
        sealed, seal_breaks = await seals.verify(conn)  # the bids' seals (auctions/seals.py)
    breaks = [*audit_breaks, *seal_breaks]
    checked += sealed
    for b in breaks:
        log.error("audit chain broken: %s", b)
    if not breaks:
        log.info("audit chains intact: %d rows checked", checked)
    return {"checked": checked, "breaks": [str(b) for b in breaks]}


async def anchor_audit_chains(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every few minutes: anchor the chains' moved heads outside PostgreSQL
    (market/audit_anchors.py); a chain that does not verify is not anchored, but logged."""
    path = audit_anchors.anchor_path(ctx["settings"])
    async with ctx["pool"].acquire() as conn:
        written, refused = await audit_anchors.anchor(
            conn, path, audit.current_key(), ctx["clock"].now()
        )
    for b in refused:
        log.error("audit chain not anchored: %s", b)
    return {"anchored": written, "refused": [str(b) for b in refused]}


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        verify_audit_chain,
        anchor_audit_chains,
        *COLLATERAL_JOBS,
        *LOTS_JOBS,
        *AUCTION_JOBS,
        *LICENSING_JOBS,
        *EVENTS_JOBS,
        *NOTIFY_JOBS,
        *SANDBOX_JOBS,
        *LICENSING_JOBS,
        *DOCUMENTS_JOBS,
        *LISTING_JOBS,
        *TRANSFER_JOBS,
        *ACQUISITION_JOBS,
    ]
    # 03:00 Asia/Shanghai is 19:00 UTC: the quiet hour of a Chinese exchange.
    cron_jobs: ClassVar[list[Any]] = [
        cron(verify_audit_chain, hour={19}, minute={0}, unique=True, run_at_startup=False),
        cron(anchor_audit_chains, minute=set(audit_anchors.ANCHOR_MINUTES), unique=True),
        *COLLATERAL_CRON,
        *LOTS_CRON,
        *AUCTION_CRON,
        *LICENSING_CRON,
        *EVENTS_CRON,
        *NOTIFY_CRON,
        *LICENSING_CRON,
        *DOCUMENTS_CRON,
        *LISTING_CRON,
        *TRANSFER_CRON,
        *ACQUISITION_CRON,
    ]
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 20
    # A notification waits for the relay job, and an e-mail or webhook for its delivery job
    # too (the relay writes inbox messages itself); arq's default 0.5 s poll would add up
    # to a second between commit and delivery (docs/bidding.md: p99 ≤ 1 s).
    poll_delay = 0.05
    job_timeout = 600
    keep_result = 3600


def worker_context(settings: Settings, clock: Clock | None = None) -> dict[str, Any]:
    """A sandbox's worker runs on the sandbox clock (market/clock.py SandboxClock)."""
    base = clock or SystemClock()
    return {"settings": settings, "clock": SandboxClock(base) if settings.sandbox else base}


def worker_redis(settings: Settings) -> RedisSettings:
    """The worker's Redis. A command or a connection that fails for want of Redis is
    retried for about 13 s, with growing pauses, so a Redis restart does not stop the
    worker: arq's main loop ends on the first error that reaches it, and redis-py retries
    neither a refused connection (an OSError) nor anything else by default.
    bench/notification_drill.py restarts Redis under running workers."""
    assert settings.redis_url is not None
    errors = (RedisConnectionError, RedisTimeoutError, OSError)
    return dataclasses.replace(
        RedisSettings.from_dsn(settings.redis_url),
        retry_on_error=list(errors),
        retry=Retry(
            ExponentialBackoff(cap=2.0, base=0.05),
            retries=10,
            supported_errors=errors,  # type: ignore[arg-type]  # OSError: the refused connect
        ),
    )


def run(settings: Settings) -> None:
    """`market worker`: the worker, until it is told to stop (SIGINT, SIGTERM).

    arq's main loop ends on the first error that reaches it. worker_redis retries most
    of what a Redis restart causes, not all (a connection lost between WATCH and EXEC
    raises WatchError), and a worker may start while PostgreSQL is down. Then it starts
    again after a pause, 1 s doubling to 30 s, rather than leave the exchange without a
    worker until someone notices; the jobs it had in hand are found again (relay.py).
    """
    from arq.worker import run_worker

    pause = 1.0
    while True:
        started = time.monotonic()
        try:
            run_worker(
                WorkerSettings,  # type: ignore[arg-type]
                redis_settings=worker_redis(settings),
                ctx=worker_context(settings),
            )
            return
        except (RedisError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() - started > 60:
                pause = 1.0  # it had been running well: not a failing start
            log.warning("worker stopped by %r; starting again in %.0f s", exc, pause)
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
