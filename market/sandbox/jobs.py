"""The worker's side of a move of the sandbox clock: `clock_moved`, queued by the move
(services.after_move, job id `clock-moved:{offset ms}`).

Every timer of the exchange is either a sweep that compares the clock with the rows (the
crons of workers/settings.py) or a job arq holds back by the wall clock until an instant
(a lot's opening or close, a delivery's next try). A move skips time the crons never
saw and leaves the held jobs waiting for instants that have now come, so this job learns
the new offset from PostgreSQL and runs every sweep at once, in the order the time would
have passed: openings and pauses, closes (each recorded at its own effective end, with
the close jobs of the lots ending soon queued anew by the time left on the moved clock),
unpaid sales defaulted, ending-soon reminders, the outbox, the deliveries now due, and —
when a day went by in Beijing — the collateral monitoring. Each sweep is idempotent, so
the crons running it again changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from auctions.jobs import close_due_lots, default_overdue_sales
from market.clock import SandboxClock
from market.collateral.jobs import monitor_collateral
from market.collateral.monitoring import business_day
from market.lots.jobs import advance_lots
from market.notify import relay as relaying
from market.notify.jobs import relay
from market.notify.jobs_events import remind_ending_soon
from market.sandbox.services import read_offset

log = logging.getLogger("market.sandbox")


async def clock_moved(ctx: dict[str, Any], previous_ms: int, offset_ms: int) -> dict[str, Any]:
    clock = ctx["clock"]
    if not isinstance(clock, SandboxClock):
        return {"skipped": "not a sandbox"}
    clock.learn(await read_offset(ctx["pool"]))
    now = clock.now()
    done: dict[str, Any] = {
        "offset_ms": clock.offset_ms,
        "advance_lots": await advance_lots(ctx),
        "close_due_lots": await close_due_lots(ctx),
        "default_overdue_sales": await default_overdue_sales(ctx),
        "remind_ending_soon": await remind_ending_soon(ctx),
        "relay": await relay(ctx),
        "requeue": await relaying.requeue_due(
            ctx["pool"], ctx["redis"], clock.now(), tag=f":m{clock.offset_ms}"
        ),
    }
    skipped = timedelta(milliseconds=offset_ms - previous_ms)
    if business_day(now - skipped) != business_day(now):
        done["monitor_collateral"] = await monitor_collateral(ctx)
    log.info("sandbox clock moved to +%d ms: %s", clock.offset_ms, done)
    return done


JOBS: list[Any] = [clock_moved]
