"""What an operator's monitoring scrapes: `GET /api/v1/operator/metrics`, Prometheus text.

Two kinds of figure:
* **the exchange's**, read from PostgreSQL (the source of truth): work the worker owes and
  is more than BEHIND_GRACE late with — lots past their effective end still bidding, lots
  past their start still announced, sales past their deadline not yet defaulted, events
  not relayed, deliveries due and not made — and deliveries that failed for good. Any of
  the first five staying above zero means a worker is down or stuck; an alert on them is
  what makes "closing exactly at the end, even if a worker was down" observable.
* **this process's**: the bid writer's counters (auctions/writer.py), the requests being
  answered, the database pool and the live streams. Each app process answers for itself;
  scrape every process (they are separate targets behind the load balancer).

Authenticated like the rest of the API: a token with scope `metrics:read`, which only the
operator's organisation may hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
from litestar import Controller, Request, Response, get
from litestar.datastructures import State

from market.accounts.permissions import READ_METRICS, allow
from market.db import Queries
from market.deps import ClockDep, PoolDep

Q = Queries("metrics")

# The worker's sweepers run every second to every minute (workers/settings.py): work
# later than this is behind, not merely queued.
BEHIND_GRACE = timedelta(minutes=2)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BEHIND_HELP = {
    "lots_unclosed": "Lots still bidding past their effective end (the closer is behind)",
    "lots_unopened": "Lots still announced past their bidding start (the opener is behind)",
    "sales_undefaulted": "Sales unpaid past their deadline and not yet defaulted",
    "events_unrelayed": "Outbox events not yet relayed to their notifications",
    "deliveries_late": "Notification deliveries due and not yet made",
}


def _metric(name: str, kind: str, help_: str, samples: list[tuple[str, int]]) -> str:
    lines = [f"# HELP ipx_{name} {help_}", f"# TYPE ipx_{name} {kind}"]
    lines += [f"ipx_{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines)


async def exposition(pool: asyncpg.Pool, app: Any, now: datetime) -> str:
    """The metrics as Prometheus's text format; `app` is the answering process's Exchange."""
    state = app.state
    async with pool.acquire() as conn:
        behind = await conn.fetchrow(Q.behind, now - BEHIND_GRACE)
    assert behind is not None  # one row of counts, always
    late = f"{int(BEHIND_GRACE.total_seconds())} s"
    out = [
        _metric(name, "gauge", f"{help_}, more than {late} late", [("", behind[name])])
        for name, help_ in BEHIND_HELP.items()
    ]
    out.append(
        _metric(
            "deliveries_failed",
            "gauge",
            "Notification deliveries that failed for good (market notify replay)",
            [("", behind["deliveries_failed"])],
        )
    )
    batcher = state.writers.batcher
    out += [
        _metric(
            "bid_batches_total",
            "counter",
            "Bid batches committed by this process, by how they were decided",
            [('{way="from_memory"}', batcher.from_memory_batches)],
        ),
        _metric(
            "bid_batch_retries_total",
            "counter",
            "Bid batches decided from memory, found stale and decided again under lock",
            [("", batcher.from_memory_retries)],
        ),
        _metric(
            "bid_key_races_total",
            "counter",
            "Idempotency-Key answers stored meanwhile by another process, then replayed",
            [("", batcher.key_races)],
        ),
        _metric(
            "bid_commands_waiting",
            "gauge",
            "Bid commands queued for a batch in this process",
            [("", len(batcher.waiting))],
        ),
        _metric(
            "bid_batches_in_flight",
            "gauge",
            "Bid batches committing in this process",
            [("", len(batcher.flights))],
        ),
        _metric(
            "http_requests_in_progress",
            "gauge",
            "HTTP requests this process is answering",
            [("", app.requests)],
        ),
        _metric(
            "db_connections",
            "gauge",
            "This process's PostgreSQL connections, by state",
            [
                ('{state="idle"}', pool.get_idle_size()),
                ('{state="busy"}', pool.get_size() - pool.get_idle_size()),
            ],
        ),
        _metric(
            "live_streams",
            "gauge",
            "Live lot pages (Server-Sent Events) this process is streaming",
            [("", sum(len(members) for members in state.live_hub.clients.values()))],
        ),
    ]
    return "\n".join(out) + "\n"


class MetricsApi(Controller):
    path = "/api/v1/operator/metrics"
    tags = ["operations"]
    guards = [allow(READ_METRICS)]

    @get(
        "",
        operation_id="metrics",
        summary="Read the exchange's operating metrics",
        media_type=CONTENT_TYPE,
    )
    async def metrics(
        self, pool: PoolDep, clock: ClockDep, request: Request[Any, Any, State]
    ) -> Response[str]:
        """The exchange's backlog and this process's figures, in Prometheus text format."""
        body = await exposition(pool, request.app, clock.now())
        return Response(body, media_type=CONTENT_TYPE)
