"""The timed producer of notifications: ending-soon reminders, every 30 seconds and at start.

The reminder rule is evaluated from the lots' current ends on every run (reminders.py),
so there is nothing to schedule per lot and nothing to re-schedule when an end moves; a
worker that was down catches up at start. 30 s is the worst lateness of a reminder — a
small share of the shortest lead (10 min) — for one indexed statement per run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from arq import cron

from market.commands import SYSTEM, Context, run
from market.notify import reminders

log = logging.getLogger("market.notify")


def lead_times(ctx: dict[str, Any]) -> tuple[timedelta, ...]:
    """ctx["reminder_leads"] if given (tests, tools), else the defaults
    (docs/rules.md §Notifications); reminders.remind_ending_soon checks them."""
    given: tuple[timedelta, ...] | None = ctx.get("reminder_leads")
    return reminders.DEFAULT_LEADS if given is None else given


async def remind_ending_soon(ctx: dict[str, Any]) -> dict[str, Any]:
    """Write the ending-soon reminders due now; returns how many and for which lots."""
    written = await run(
        reminders.remind_ending_soon,
        reminders.ReminderLeads(leads=lead_times(ctx)),
        ctx=Context(pool=ctx["pool"], clock=ctx["clock"], redis=ctx.get("redis")),
        actor=SYSTEM,
    )
    lots = sorted({r.lot_id for r in written})
    if written:
        log.info("ending-soon reminders written: %d for lots %s", len(written), lots)
    return {"written": len(written), "lots": lots}


JOBS: list[Any] = [remind_ending_soon]
CRON: list[Any] = [
    cron(remind_ending_soon, second={0, 30}, unique=True, run_at_startup=True),
]
