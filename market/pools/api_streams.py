"""The pool manager's API of licence streams: a page of the contract streams on the pool's
enrolled cases, and the totals with the pool's recovery curve. Definitions:
market/pools/streams.py. Only a pool organisation's token; another organisation's pool, or
a case outside the pool, is 404.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from market.accounts.permissions import READ_POOL, allow
from market.deps import CallerDep, ClockDep, PoolDep
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page
from market.pools import services, streams


class PoolStreamsApi(Controller):
    path = "/api/v1/pools"
    tags = ["pools"]

    @get(
        "/{pool_id:int}/streams",
        operation_id="pool_streams",
        summary="List the licence streams of a pool's cases",
        guards=[allow(READ_POOL)],
    )
    async def list_streams(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        pool_id: FromPath[int],
        case: FromQuery[int | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[streams.ContractStream]:
        """Each licence contract on a case whose loan is enrolled in the pool, newest
        first: expected (upfront, reported dues, guaranteed minimums), due, received
        (routed, not reversed), outstanding and late per period, and the pool's share
        (routed; received, which alone counts in its recovery rate; awaiting transfer)."""
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, caller.org_id, pool_id)
            return await streams.pool_streams(
                conn, row, clock.now(), case_id=case, cursor=cursor, limit=limit
            )

    @get(
        "/{pool_id:int}/streams/overview",
        operation_id="pool_stream_overview",
        summary="Read a pool's licence stream totals and recovery curve",
        guards=[allow(READ_POOL)],
    )
    async def overview(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        pool_id: FromPath[int],
        case: FromQuery[int | None] = None,
    ) -> streams.StreamOverview:
        """The totals of every stream of the pool (or of one case), expected but not
        received shown apart, and the pool's recoveries received cumulated by day, with
        the part from licence fees and royalties."""
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, caller.org_id, pool_id)
            return await streams.overview(conn, row, clock.now(), case_id=case)
