"""Disposal by agreement's timed job, as the exchange, on the worker's clock (ctx["clock"],
so a sandbox or a test moves it): every attempt whose pools' objection window passed
without an objection completes (docs/rules.md §Acquisition and pledge-to-equity;
market/acquisition/agreement.py `complete_due`). A cron every minute, and once at worker
start-up, catches every window that ended however long the worker was down; a second run,
or two at once, completes nothing twice (the attempt's lock and the receipt's source)."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from market.acquisition.agreement import sweep
from market.lots.services import policy_for

log = logging.getLogger("market.acquisition")


async def complete_agreements(ctx: dict[str, Any]) -> dict[str, list[int]]:
    completed = await sweep(
        ctx["pool"], ctx["clock"].now(), redis=ctx.get("redis"), terms=policy_for(ctx["settings"])
    )
    if completed:
        log.info("agreed disposals completed after their objection window: %s", completed)
    return {"completed": completed}


JOBS: list[Any] = [complete_agreements]
CRON: list[Any] = [cron(complete_agreements, second={55}, unique=True, run_at_startup=True)]
