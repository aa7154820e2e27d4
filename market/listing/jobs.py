"""The listing's timed job, as the exchange, on the worker's clock (ctx["clock"], so a
sandbox or a test moves it): negotiated transfers not confirmed by their deadline lapse
(docs/rules.md §Listing; market/listing/transfer.py `lapse_transfers`). A cron every
minute, and once at worker start-up, catches every deadline passed however long the worker
was down. A listing's period itself ends in the lots' sweep (market/lots/jobs.py
`advance_lots`), at its recorded instant."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from market.listing.transfer import lapse_due
from market.lots.services import policy_for

log = logging.getLogger("market.listing")


async def lapse_listing_transfers(ctx: dict[str, Any]) -> dict[str, list[int]]:
    at = ctx["clock"].now()
    lapsed = await lapse_due(ctx["pool"], at, policy_for(ctx["settings"]), redis=ctx.get("redis"))
    if lapsed:
        log.info("negotiated transfers lapsed at their deadline: lots %s", lapsed)
    return {"lapsed": lapsed}


JOBS: list[Any] = [lapse_listing_transfers]
CRON: list[Any] = [cron(lapse_listing_transfers, second={50}, unique=True, run_at_startup=True)]
