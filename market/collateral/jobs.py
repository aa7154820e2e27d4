"""arq jobs of this area, registered by workers/settings.py.

* run_collateral_import: runs an import uploaded in the page (job id
  "collateral-import:<id>"); it only runs an import still 'queued', so a repeated job does
  nothing.
* requeue_collateral_imports (every minute): Redis may lose a queued job, so imports still
  queued after QUEUED_GRACE are enqueued again under the same job id (harmless if the job
  exists); a web import claimed by a worker that died is queued again.
* monitor_collateral (daily 01:30 Asia/Shanghai = 17:30 UTC): raises and resolves the
  monitoring flags of every bank (monitoring.py); running it twice changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Final

from arq import cron

from market import audit
from market.collateral import csv_import
from market.collateral.locks import lock_bank_registry
from market.collateral.monitoring import refresh_flags
from market.db import Queries

Q = Queries("collateral")
log = logging.getLogger("market.collateral.jobs")

QUEUED_GRACE: Final = timedelta(seconds=60)
# arq's job_timeout is 600 s (workers/settings.py): a run claimed longer ago than this has
# been cancelled or lost its worker.
STALE_RUN: Final = timedelta(minutes=15)


def import_job_id(import_id: int) -> str:
    return f"collateral-import:{import_id}"


async def run_collateral_import(ctx: dict[str, Any], import_id: int) -> dict[str, Any]:
    at = ctx["clock"].now()
    try:
        result = await csv_import.run_queued_import(ctx["pool"], at, import_id)
    except csv_import.ImportRejected as exc:
        return {"import_id": import_id, "status": "rejected", "errors": exc.error_count}
    except Exception:
        # Already recorded as failed on the import (nothing written): a retry would fail
        # the same way, so the job ends here.
        return {"import_id": import_id, "status": "failed"}
    if result is None:
        return {"import_id": import_id, "status": "skipped"}
    return {"import_id": import_id, "status": "done", "rows": result.rows}


async def requeue_collateral_imports(ctx: dict[str, Any]) -> dict[str, Any]:
    at = ctx["clock"].now()
    pool = ctx["pool"]
    async with pool.acquire() as conn:
        stale = await conn.fetch(Q.requeue_stale_imports, at - STALE_RUN)
        failed = await conn.fetch(Q.fail_stale_api_imports, at - STALE_RUN, at)
        waiting = await conn.fetch(Q.queued_imports, at - QUEUED_GRACE)
    ids = sorted({r["id"] for r in waiting} | {r["id"] for r in stale})
    for import_id in ids:
        await ctx["redis"].enqueue_job(
            "run_collateral_import", import_id, _job_id=import_job_id(import_id)
        )
    if ids or failed:
        log.info(
            "collateral imports re-enqueued: %s; interrupted: %s", ids, [r["id"] for r in failed]
        )
    return {"enqueued": ids, "failed": [r["id"] for r in failed]}


async def monitor_collateral(ctx: dict[str, Any]) -> dict[str, Any]:
    """Daily: every bank's flags match monitoring.assess on today's date (Beijing)."""
    at = ctx["clock"].now()
    pool = ctx["pool"]
    raised = resolved = assets = 0
    async with pool.acquire() as conn:
        banks = [r["bank_org_id"] for r in await conn.fetch(Q.banks_with_assets)]
    for bank_org_id in banks:
        async with pool.acquire() as conn, conn.transaction():
            await lock_bank_registry(conn, bank_org_id)
            changes = await refresh_flags(conn, at, bank_org_id)
            if changes.raised or changes.resolved:
                await audit.append(
                    conn,
                    at=at,
                    chain_org_id=bank_org_id,
                    actor_user_id=None,
                    actor_org_id=None,
                    action="collateral.monitor",
                    object_kind="monitoring_flags",
                    object_id=bank_org_id,
                    after={"raised": changes.raised, "resolved": changes.resolved},
                )
        raised += changes.raised
        resolved += changes.resolved
        assets += changes.assets
    log.info(
        "collateral monitoring: %d assets, %d flags raised, %d resolved", assets, raised, resolved
    )
    return {"banks": len(banks), "assets": assets, "raised": raised, "resolved": resolved}


JOBS: list[Any] = [run_collateral_import, requeue_collateral_imports, monitor_collateral]
CRON: list[Any] = [
    # Every minute, and once when the worker starts (it may have been down).
    cron(requeue_collateral_imports, second={0}, unique=True, run_at_startup=True),
    # 01:30 Asia/Shanghai is 17:30 UTC: before the bank's working day (issue 3 item 6).
    cron(monitor_collateral, hour={17}, minute={30}, unique=True, run_at_startup=False),
]
