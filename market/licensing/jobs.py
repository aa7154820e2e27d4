"""The licence decisions' timer: a deadline passed undecided applies the default (the
hammer stands, or with no bid nothing is chosen; docs/rules.md §Licence offers and
decision), as the exchange, on the exchange's clock. A cron every minute, and once at
worker start-up, catches every deadline due however long the worker was down; the command
is idempotent (market/licensing/deciding.py `decide_when_due`)."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from market.licensing.deciding import decide_due
from market.lots.services import policy_for

log = logging.getLogger("market.licensing")


async def decide_overdue(ctx: dict[str, Any]) -> dict[str, list[int]]:
    decided = await decide_due(ctx["pool"], ctx["clock"].now(), policy_for(ctx["settings"]))
    if decided:
        log.info("licence decisions defaulted at their deadline: %s", decided)
    return {"decided": decided}


JOBS: list[Any] = [decide_overdue]
CRON: list[Any] = [cron(decide_overdue, second={45}, unique=True, run_at_startup=True)]
