"""The pool manager's page of licence streams: per contract on the pool's enrolled cases,
what is expected, received, outstanding or late and the pool's own share, with the pool's
recoveries rising over time as a chart. Definitions: market/pools/streams.py.

Pool organisations only (READ_POOL); another organisation's pool, or a case filter naming
a case outside the pool, is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from market.accounts.permissions import READ_POOL, allow
from market.deps import ClockDep, MeDep, PoolDep
from market.paging import DEFAULT_LIMIT, Cursor
from market.pools import charts, services, streams
from market.pools import dashboard as dash
from market.pools.rule_text import Words
from market.pools.web_pool import SERIES_COLOURS
from market.web import language, page

CaseQuery = Annotated[int | None, QueryParameter(name="case")]


def recovery_chart(overview: streams.StreamOverview) -> charts.LineChart:
    """Every recovery the pool received and the part from licences, cumulated, up to today."""
    curve = overview.curve
    return charts.step_chart(
        [p.day.isoformat() for p in curve],
        [[p.all_fen for p in curve], [p.licence_fen for p in curve]],
        until=overview.as_of.isoformat() if curve else None,
    )


class PoolStreamPages(Controller):
    path = "/pool"
    include_in_schema = False

    @get("/{pool_id:int}/streams", operation_id="web_pool_streams", guards=[allow(READ_POOL)])
    async def streams(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        pool_id: FromPath[int],
        case_id: CaseQuery = None,
        cursor: Cursor = None,
    ) -> Template:
        at = clock.now()
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, me.org_id, pool_id)
            overview = await streams.overview(conn, row, at, case_id=case_id)
            listed = await streams.pool_streams(
                conn, row, at, case_id=case_id, cursor=cursor, limit=DEFAULT_LIMIT
            )
        pool_out = dash.pool_out(row)
        return page(
            request,
            "pools/pool_streams.html",
            me,
            pool=pool_out,
            overview=overview,
            streams=listed,
            case_id=case_id,
            chart=recovery_chart(overview),
            colours=SERIES_COLOURS,
            say=Words(language(request, me), pool_out),
        )
