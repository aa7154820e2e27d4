"""The licensing area's timed jobs, as the exchange, on the worker's clock (ctx["clock"],
so a sandbox or a test moves it):

* the licence decisions' timer: a deadline passed undecided applies the default (the hammer
  stands, or with no bid nothing is chosen; docs/rules.md §Licence offers and decision) — a
  cron every minute, and once at worker start-up, catches every deadline due however long
  the worker was down; the command is idempotent (market/licensing/deciding.py
  `decide_when_due`);
* the royalties' reminders before and after each report's and payment's due date
  (market/licensing/reminders.py), every day at 09:05 in Beijing and at worker start: the
  reminders count in days, and a worker that was down catches up at start.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from market.commands import SYSTEM, Context, run
from market.licensing import reminders
from market.licensing.deciding import decide_due
from market.lots.services import policy_for

log = logging.getLogger("market.licensing")


async def decide_overdue(ctx: dict[str, Any]) -> dict[str, list[int]]:
    decided = await decide_due(ctx["pool"], ctx["clock"].now(), policy_for(ctx["settings"]))
    if decided:
        log.info("licence decisions defaulted at their deadline: %s", decided)
    return {"decided": decided}


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


JOBS: list[Any] = [decide_overdue, remind_royalties]
CRON: list[Any] = [
    cron(decide_overdue, second={45}, unique=True, run_at_startup=True),
    # 09:05 Asia/Shanghai is 01:05 UTC: the start of a Chinese working day.
    cron(remind_royalties, hour={1}, minute={5}, unique=True, run_at_startup=True),
]
