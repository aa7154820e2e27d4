"""The royalties' timed job: reminders before and after each report's and payment's due
date (market/licensing/reminders.py), every day at 09:05 in Beijing and at worker start.

Once a day is enough: the reminders count in days; a worker that was down catches up at
start. The clock is the worker's (ctx["clock"]), so a sandbox or a test moves it.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from market.commands import SYSTEM, Context, run
from market.licensing import reminders

log = logging.getLogger("market.licensing")


async def remind_royalties(ctx: dict[str, Any]) -> dict[str, int]:
    done = await run(
        reminders.remind_royalties,
        reminders.RemindRoyalties(),
        ctx=Context(pool=ctx["pool"], clock=ctx["clock"], redis=ctx.get("redis")),
        actor=SYSTEM,
    )
    if done.written:
        log.info("royalty reminders written: %d (%d contracts)", done.written, done.contracts)
    return {"contracts": done.contracts, "written": done.written}


JOBS: list[Any] = [remind_royalties]
# 09:05 Asia/Shanghai is 01:05 UTC: the start of a Chinese working day.
CRON: list[Any] = [cron(remind_royalties, hour={1}, minute={5}, unique=True, run_at_startup=True)]
