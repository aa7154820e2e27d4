"""The operator's metrics: the worker's backlog from PostgreSQL, this process's figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_bid_http import _lot
from tests.factories import make_org, make_token


def _parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def _auth(pool: asyncpg.Pool, clock: FrozenClock, kind: str, scopes: list[str]) -> Any:
    _, user, _ = await make_org(pool, clock.now(), kind=kind)
    return {"Authorization": f"Bearer {await make_token(pool, clock.now(), user, scopes)}"}


async def test_metrics_show_what_the_worker_is_behind_with(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    operator = await _auth(pool, clock, "operator", ["metrics:read"])
    ending, _ = await _lot(pool, clock, settings)
    starting, _ = await _lot(pool, clock, settings)
    now = clock.now()
    async with pool.acquire() as conn:
        # The worker is down: one lot ended 10 minutes ago and is still bidding, one
        # should have opened 5 minutes ago.
        await conn.execute(
            """UPDATE lots SET status = 'bidding', bidding_starts_at = $2::timestamptz - interval '1 day',
                   bidding_ends_at = $2::timestamptz - interval '10 minutes' WHERE id = $1""",
            ending.id,
            now,
        )
        await conn.execute(
            "UPDATE lots SET bidding_starts_at = $2::timestamptz - interval '5 minutes' WHERE id = $1",
            starting.id,
            now,
        )
        await conn.execute("UPDATE outbox SET relayed_at = $1", now)  # publishing's events
        add_event = """INSERT INTO outbox (event, payload, dedupe_key, created_at)
                       VALUES ('outbid', '{}', $1, $2) RETURNING id"""
        await conn.fetchval(add_event, "old", now - timedelta(minutes=10))
        new = await conn.fetchval(add_event, "new", now)
        for target, status, next_at in (
            ("a@x.cn", "pending", now - timedelta(minutes=10)),  # late
            ("b@x.cn", "pending", now + timedelta(minutes=10)),  # backing off: not late
            ("c@x.cn", "failed", None),
        ):
            await conn.execute(
                """INSERT INTO deliveries (outbox_id, channel, target, status, next_attempt_at,
                       created_at) VALUES ($1, 'email', $2, $3, $4, $5)""",
                new,
                target,
                status,
                next_at,
                now,
            )
    r = await client.get("/api/v1/operator/metrics", headers=operator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = _parse(r.text)
    assert got["ipx_lots_unclosed"] == 1
    assert got["ipx_lots_unopened"] == 1
    assert got["ipx_events_unrelayed"] == 1  # the old one; the new one is merely queued
    assert got["ipx_deliveries_late"] == 1
    assert got["ipx_deliveries_failed"] == 1
    assert got["ipx_sales_undefaulted"] == 0
    assert got["ipx_http_requests_in_progress"] == 1  # this one
    assert got['ipx_bid_batches_total{way="from_memory"}'] == 0
    assert got['ipx_db_connections{state="busy"}'] + got['ipx_db_connections{state="idle"}'] >= 1
    assert "# TYPE ipx_lots_unclosed gauge" in r.text


async def test_only_the_operator_with_the_scope_reads_the_metrics(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    assert (await client.get("/api/v1/operator/metrics")).status_code == 401
    without_scope = await _auth(pool, clock, "operator", ["operator:write"])
    r = await client.get("/api/v1/operator/metrics", headers=without_scope)
    assert r.status_code == 403 and "metrics:read" in r.text
    buyer = await _auth(pool, clock, "buyer", ["bids:write"])
    assert (await client.get("/api/v1/operator/metrics", headers=buyer)).status_code == 403
