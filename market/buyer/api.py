"""The buyer's page as a program reads it: `GET /api/v1/activity` (READ_ACTIVITY,
`account:read`), the same answer the page renders (market/buyer/views.py)."""

from __future__ import annotations

from litestar import Controller, get

from market.accounts.permissions import READ_ACTIVITY, allow
from market.buyer import views
from market.buyer.views import Activity
from market.deps import CallerDep, ClockDep, PoolDep, SettingsDep


class ActivityApi(Controller):
    path = "/api/v1"
    tags = ["auctions"]
    guards = [allow(READ_ACTIVITY)]

    @get(
        "/activity",
        operation_id="get_own_activity",
        summary="Read everything the organisation has going on as a bidder",
    )
    async def activity(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, settings: SettingsDep
    ) -> Activity:
        """The caller's organisation's registrations (deposit state: owed, unpaid,
        confirmed, released, applied, forfeited; standing in the round: leading, outbid,
        its proxy ceiling, the current price and the round's end), the lots it won (what is
        left to pay, the exchange's account, the payment reference and the deadline), the
        transfers of title in escrow with the notices still missing, the refunds the
        exchange owes it with their state, and its sale documents. Each list holds at most
        100 rows, the most pressing first; the paged lists (`list_registrations`,
        `list_own_sales`, `list_transfers`, `list_payments_owed`, `list_sale_documents`)
        hold the rest."""
        return await views.activity(pool, settings, caller.org_id, clock.now())
