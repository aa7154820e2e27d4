"""Guarantee-pool and reconciliation lists for banks' and pools' systems, a page at a time
(market/paging.py): a bank's claims, the claims on a pool manager's pools, an
organisation's payouts and bank statements. Each shows the caller's organisation's own
rows only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from litestar import Controller, get
from litestar.params import FromQuery

from market.accounts.permissions import READ_BANK_POOLS, READ_POOL, allow
from market.db import Queries
from market.deps import CallerDep, PoolDep
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page
from market.pools import bank, reconciliation
from market.pools import dashboard as dash
from market.pools.reconciliation import PayoutOut, StatementOut

Q = Queries("api")
ClaimStatus = Literal["filed", "rejected", "parked", "paid"]
PayoutStatus = Literal["expected", "received", "reversed"]
BANK_CLAIMS: Keyset[tuple[datetime, int]] = Keyset(
    "bank_claims", tuple[datetime, int], "filed_at", "id"
)
POOL_CLAIMS: Keyset[tuple[datetime, int]] = Keyset(
    "pool_claims", tuple[datetime, int], "filed_at", "id"
)
PAYOUTS: Keyset[tuple[datetime, int]] = Keyset("payouts", tuple[datetime, int], "created_at", "id")
STATEMENTS: Keyset[tuple[datetime, int]] = Keyset(
    "statements", tuple[datetime, int], "imported_at", "id"
)


async def page_payouts(
    pool: PoolDep,
    org_id: int,
    *,
    status: PayoutStatus | None,
    case_id: int | None,
    cursor: str | None,
    limit: int,
) -> Page[PayoutOut]:
    return await PAYOUTS.read(
        pool,
        Q.page_payouts,
        org_id,
        status,
        case_id,
        cursor=cursor,
        limit=limit,
        item=reconciliation.payout_out,
    )


async def page_statements(
    pool: PoolDep, org_id: int, *, open_lines: bool | None, cursor: str | None, limit: int
) -> Page[StatementOut]:
    return await STATEMENTS.read(
        pool,
        Q.page_statements,
        org_id,
        open_lines,
        cursor=cursor,
        limit=limit,
        item=reconciliation.statement_out,
    )


class ClaimListsApi(Controller):
    path = "/api/v1"
    tags = ["pools"]

    @get(
        "/bank/claims",
        operation_id="list_bank_claims",
        summary="List the bank's compensation claims",
        guards=[allow(READ_BANK_POOLS)],
    )
    async def bank_claims(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[ClaimStatus | None] = None,
        loan_id: FromQuery[int | None] = None,
        pool_code: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[bank.ClaimOut]:
        """The bank's claims on guarantee pools, newest first, with the loss, the amount
        the rule gives, its explanation (catalog keys and numbers) and the decision.
        Filters: `status` (filed, rejected, parked, paid), `loan_id`, `pool_code`."""
        return await BANK_CLAIMS.read(
            pool,
            Q.page_bank_claims,
            caller.org_id,
            status,
            loan_id,
            pool_code,
            cursor=cursor,
            limit=limit,
            item=bank.claim_out,
        )

    @get(
        "/pools/claims",
        operation_id="list_pool_claims",
        summary="List the claims on the manager's pools",
        guards=[allow(READ_POOL)],
    )
    async def pool_claims(
        self,
        caller: CallerDep,
        pool: PoolDep,
        pool_id: FromQuery[int | None] = None,
        status: FromQuery[ClaimStatus | None] = None,
        bank_org_id: FromQuery[int | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[dash.ClaimOut]:
        """The claims banks filed on the pools the caller's organisation runs, newest
        first, with the rule version, the computation and the decision. Filters:
        `pool_id`, `status` (filed: waiting for a decision), `bank_org_id`."""
        return await POOL_CLAIMS.read(
            pool,
            Q.page_pool_claims,
            caller.org_id,
            pool_id,
            status,
            bank_org_id,
            cursor=cursor,
            limit=limit,
            item=dash.claim_out,
        )
