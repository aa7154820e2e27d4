"""The buyer's page, /my/activity (READ_ACTIVITY): what a bidder organisation has going on,
each item linking to the page where it is acted on (market/buyer/views.py)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.response import Template

from market.accounts.permissions import READ_ACTIVITY, allow
from market.buyer import views
from market.deps import ClockDep, MeDep, PoolDep, SettingsDep
from market.web import page


class ActivityPages(Controller):
    include_in_schema = False
    guards = [allow(READ_ACTIVITY)]

    @get("/my/activity", operation_id="web_my_activity")
    async def activity(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
    ) -> Template:
        """我的交易: registrations and deposits, bids, wins to pay, transfers, refunds,
        documents."""
        found = await views.activity(pool, settings, me.org_id, clock.now())
        return page(request, "buyer/activity.html", me, activity=found)
