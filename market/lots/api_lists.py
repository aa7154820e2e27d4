"""The bank's lots as a list for its systems, a page at a time (market/paging.py).
MANAGE_LOTS, as reading one lot: the bank's own lots only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from litestar import Controller, get
from litestar.params import FromQuery

from market.accounts.permissions import MANAGE_LOTS, allow
from market.db import Queries
from market.deps import CallerDep, PoolDep
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page, rows_as

Q = Queries("api")
LOTS: Keyset[tuple[datetime, int]] = Keyset("bank_lots", tuple[datetime, int], "created_at", "id")
LotStatus = Literal[
    "draft", "announced", "bidding", "sold", "failed", "paused", "withdrawn", "returned"
]


class LotRow(msgspec.Struct, frozen=True, kw_only=True):
    """A lot as the list shows it; `GET /api/v1/bank/lots/{id}` has its terms."""

    id: int
    reference: str
    case_id: int
    title: str
    status: LotStatus
    round: int
    auction_kind: str
    valuation_fen: int
    start_price_fen: int
    deposit_fen: int
    increment_fen: int
    current_price_fen: int | None
    bid_count: int | None  # None while a sealed round is open: its count is secret
    bidding_starts_at: datetime | None
    bidding_ends_at: datetime | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


class BankLotsListApi(Controller):
    path = "/api/v1/bank"
    tags = ["lots"]
    guards = [allow(MANAGE_LOTS)]

    @get("/lots", operation_id="list_bank_lots", summary="List the bank's lots")
    async def lots(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[LotStatus | None] = None,
        case_id: FromQuery[int | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[LotRow]:
        """The bank's lots, newest first, drafts included: status, round, prices, bids
        and schedule. Filters: `status`, `case_id`."""
        return await LOTS.read(
            pool,
            Q.page_bank_lots,
            caller.org_id,
            status,
            case_id,
            cursor=cursor,
            limit=limit,
            item=rows_as(LotRow),
        )
