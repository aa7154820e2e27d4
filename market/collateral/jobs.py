"""arq jobs of this area, registered by workers/settings.py. Each runs the area's commands
as the exchange (SYSTEM).

* run_collateral_import: runs an import uploaded in the page (job id
  "collateral-import:<id>"); it only runs an import still 'queued', so a repeated job does
  nothing.
* requeue_collateral_imports (every minute): Redis may lose a queued job, so imports still
  queued after QUEUED_GRACE are enqueued again under the same job id (harmless if the job
  exists); a web import claimed by a worker that died is queued again, one run by a
  request that was lost is failed.
* monitor_collateral (daily 01:30 Asia/Shanghai = 17:30 UTC): raises and resolves the
  monitoring flags of every bank (monitoring.py); running it twice changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Final

from arq import cron

from market.collateral import csv_import
from market.collateral.monitoring import monitor_bank
from market.commands import SYSTEM, Context, run
from market.db import Queries

Q = Queries("collateral")
log = logging.getLogger("market.collateral.jobs")

QUEUED_GRACE: Final = timedelta(seconds=60)
# arq's job_timeout is 600 s (workers/settings.py): a run claimed longer ago than this has
# been cancelled or lost its worker.
STALE_RUN: Final = timedelta(minutes=15)


def import_job_id(import_id: int) -> str:
    return f"collateral-import:{import_id}"


def _context(ctx: dict[str, Any]) -> Context:
    return Context(pool=ctx["pool"], clock=ctx["clock"], redis=ctx.get("redis"))


async def run_collateral_import(ctx: dict[str, Any], import_id: int) -> dict[str, Any]:
    try:
        result = await csv_import.run_import(_context(ctx), import_id)
    except csv_import.PortfolioRejected as exc:
        return {"import_id": import_id, "status": "rejected", "errors": exc.count}
    except Exception:
        # Already recorded as failed on the import (nothing written): a retry would fail
        # the same way, so the job ends here.
        return {"import_id": import_id, "status": "failed"}
    if result is None:
        return {"import_id": import_id, "status": "skipped"}
    return {"import_id": import_id, "status": "done", "rows": result.rows}


async def requeue_collateral_imports(ctx: dict[str, Any]) -> dict[str, Any]:
    swept = await run(
        csv_import.sweep_imports,
        csv_import.Sweep(stale_after=STALE_RUN, queued_after=QUEUED_GRACE),
        ctx=_context(ctx),
        actor=SYSTEM,
    )
    for import_id in swept.enqueue:
        await ctx["redis"].enqueue_job(
            "run_collateral_import", import_id, _job_id=import_job_id(import_id)
        )
    if swept.enqueue or swept.failed:
        log.info("collateral imports re-enqueued: %s; interrupted: %s", swept.enqueue, swept.failed)
    return {"enqueued": swept.enqueue, "failed": swept.failed}


async def monitor_collateral(ctx: dict[str, Any]) -> dict[str, Any]:
    """Daily: every bank's flags match monitoring.assess on today's date (Beijing), one
    bank per unit of work."""
    context = _context(ctx)
    raised = resolved = assets = 0
    async with context.pool.acquire() as conn:
        banks = [r["bank_org_id"] for r in await conn.fetch(Q.banks_with_assets)]
    for bank_org_id in banks:
        changes = await run(monitor_bank, bank_org_id, ctx=context, actor=SYSTEM)
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
    # 01:30 Asia/Shanghai is 17:30 UTC: the flags are fresh before the bank's working day.
    cron(monitor_collateral, hour={17}, minute={30}, unique=True, run_at_startup=False),
]
