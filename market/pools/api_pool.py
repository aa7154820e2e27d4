"""The pool manager's API: the organisation's pools, a pool's dashboard figures, the
postings behind a figure, its claims and decisions, its rule versions.

Only a pool organisation's token may call these (a bank's `pools:read` does not reach
them: 403); another organisation's pool or claim is 404. Definitions of the figures:
market/pools/dashboard.py.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery

from market import api_docs
from market.accounts.permissions import READ_POOL, WRITE_POOL, allow
from market.cases.services import china_today
from market.deps import ActDep, CallerDep, ClockDep, PoolDep
from market.errors import Invalid
from market.pools import dashboard as dash
from market.pools import services
from market.pools.models import PoolOut

DECIDE_CLAIM = api_docs.body(
    dash.DecisionIn,
    {"decision": "approve"},
    {"decision": "reject", "reason": "贷款未在风险补偿资金池备案期内"},
)
NEW_RULE = api_docs.body(
    dash.NewRuleVersion,
    {
        "rule": {
            "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
            "cap_per_loan_fen": 300_000_000,
        },
        "effective_from": "2026-07-01",
        "note": "2026 年补偿比例调整",
    },
)


class PoolsApi(Controller):
    path = "/api/v1/pools"
    tags = ["pools"]

    @get(
        "/", operation_id="pool_list", summary="List the manager's pools", guards=[allow(READ_POOL)]
    )
    async def list_pools(self, caller: CallerDep, pool: PoolDep) -> list[PoolOut]:
        """The pools the caller's organisation runs."""
        async with pool.acquire() as conn:
            return [dash.pool_out(r) for r in await dash.pools_of(conn, caller.org_id)]

    @get(
        "/{pool_id:int}/dashboard",
        operation_id="pool_dashboard",
        summary="Read a pool's dashboard figures",
        guards=[allow(READ_POOL)],
    )
    async def dashboard(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, pool_id: FromPath[int]
    ) -> dash.Dashboard:
        """Exposure, claims, compensation paid and parked, recoveries received and
        outstanding, recovery rate (basis points), the last 12 months, by bank, by disposal
        path, the annual budget and aggregate limits, the NPL fuse per bank."""
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, caller.org_id, pool_id)
            return await dash.dashboard(conn, row, clock.now())

    @get(
        "/{pool_id:int}/postings",
        operation_id="pool_postings",
        summary="List the postings behind a pool figure",
        guards=[allow(READ_POOL)],
    )
    async def postings(
        self,
        caller: CallerDep,
        pool: PoolDep,
        pool_id: FromPath[int],
        figure: FromQuery[str] = "all",
        month: FromQuery[str | None] = None,
        bank: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
    ) -> dash.PostingsOut:
        """The ledger postings behind a figure (`compensation_paid`, `parked`,
        `recoveries_received`, `recoveries_outstanding`, `fund`, `all`), optionally one
        month (YYYY-MM), one bank, one disposal path; `total_fen` is the figure they make."""
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, caller.org_id, pool_id)
            return await dash.postings(
                conn, row, figure, dash.DrillFilter(month=month, bank_org_id=bank, kind=kind)
            )

    @get(
        "/{pool_id:int}/enrolments",
        operation_id="pool_enrolments",
        summary="List the loans enrolled in a pool",
        guards=[allow(READ_POOL)],
    )
    async def enrolments(
        self,
        caller: CallerDep,
        pool: PoolDep,
        pool_id: FromPath[int],
        bank: FromQuery[int | None] = None,
    ) -> list[dash.EnrolmentRow]:
        """The loans behind the pool's exposure figure, newest enrolment first (1000 at
        most): bank, enrolled and outstanding principal, NPL class, write-off, renewal
        and rule version; `bank` keeps one bank's. Another organisation's pool: 404."""
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, caller.org_id, pool_id)
            return await dash.enrolment_rows(conn, row, bank)

    @get(
        "/{pool_id:int}/claims",
        operation_id="pool_claims",
        summary="List one pool's claims, undecided first",
        guards=[allow(READ_POOL)],
    )
    async def claims(
        self,
        caller: CallerDep,
        pool: PoolDep,
        pool_id: FromPath[int],
        status: FromQuery[str | None] = None,
        bank: FromQuery[int | None] = None,
        limit: FromQuery[int] = dash.CLAIMS_LIMIT,
    ) -> list[dash.ClaimOut]:
        """The pool's claims: undecided first (oldest first), then the decided ones."""
        if limit < 1:
            raise Invalid("too_small", field="limit", min=1)
        if limit > dash.CLAIMS_LIMIT:
            raise Invalid("too_large", field="limit", max=dash.CLAIMS_LIMIT)
        async with pool.acquire() as conn:
            await services.own_pool(conn, caller.org_id, pool_id)
            return await dash.claims(
                conn, caller.org_id, pool_id=pool_id, status=status, bank_org_id=bank, limit=limit
            )

    @post(
        "/{pool_id:int}/claims/{claim_id:int}/decision",
        operation_id="pool_decide_claim",
        summary="Approve or reject a claim",
        status_code=200,
        guards=[allow(WRITE_POOL)],
    )
    async def decide(
        self,
        act: ActDep,
        pool_id: FromPath[int],
        claim_id: FromPath[int],
        data: Annotated[dash.DecisionIn, DECIDE_CLAIM],
    ) -> dash.ClaimOut:
        """`{"decision": "approve"}` pays (or parks) the amount computed now;
        `{"decision": "reject", "reason": "…"}` rejects (a reason is required: 422
        `rejection_reason_needed`). A claim decided already: 409 `claim_decided`."""
        return await act(
            dash.decide_claim,
            dash.DecideClaim(
                claim_id=claim_id, pool_id=pool_id, decision=data.decision, reason=data.reason
            ),
        )

    @get(
        "/{pool_id:int}/rules",
        operation_id="pool_rules",
        summary="List a pool's rule versions",
        guards=[allow(READ_POOL)],
    )
    async def rules(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, pool_id: FromPath[int]
    ) -> list[dash.RuleVersionOut]:
        """Every rule version, newest first, with the loans enrolled under each, which one
        is in force today, and the rule read aloud (catalog keys and numbers)."""
        async with pool.acquire() as conn:
            await services.own_pool(conn, caller.org_id, pool_id)
            return await dash.rule_versions(conn, pool_id, china_today(clock.now()))

    @post(
        "/{pool_id:int}/rules",
        operation_id="pool_add_rule",
        summary="Add a pool rule version",
        status_code=201,
        guards=[allow(WRITE_POOL)],
    )
    async def add_rule(
        self, act: ActDep, pool_id: FromPath[int], data: Annotated[dash.NewRuleVersion, NEW_RULE]
    ) -> dash.RuleVersionOut:
        """A new version `{"rule": {…}, "effective_from": "YYYY-MM-DD", "note": "…"}`;
        an invalid rule is 422 naming the field as `rule.<path>`."""
        return await act(
            dash.add_rule_version,
            dash.AddRuleVersion(
                pool_id=pool_id, rule=data.rule, effective_from=data.effective_from, note=data.note
            ),
        )
