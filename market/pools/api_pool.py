"""The pool manager's API (issue 6 item 5): the organisation's pools, a pool's dashboard
figures, the postings behind a figure, its claims and decisions, its rule versions.

Scopes (market/accounts/permissions.py): `pools:read` to read,
`pools:write` to decide a claim or add a rule version. Only a pool organisation's token
may call these (a bank's `pools:read` does not reach them: 403); another organisation's
pool or claim is 404. Definitions of the figures: market/pools/dashboard.py.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from market.accounts.models import ApiCaller
from market.accounts.services import acting_org
from market.cases.services import china_today
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import Invalid
from market.pools import dashboard as dash
from market.pools import services


def pool_org_of(caller: ApiCaller, scope: str) -> int:
    """The pool organisation a token acts for, once it holds the scope."""
    return acting_org(caller, scope, "pool", "only approved pool managers see pools")


class DecisionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    decision: dash.Decision
    reason: str = ""


class PoolsApi(Controller):
    path = "/api/v1/pools"
    tags = ["pools"]

    @get("/", operation_id="pool_list")
    async def list_pools(self, caller: CallerDep, pool: PoolDep) -> list[dash.PoolOut]:
        """The pools the caller's organisation runs."""
        org = pool_org_of(caller, "pools:read")
        async with pool.acquire() as conn:
            return [dash.pool_out(r) for r in await dash.pools_of(conn, org)]

    @get("/{pool_id:int}/dashboard", operation_id="pool_dashboard")
    async def dashboard(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, pool_id: FromPath[int]
    ) -> dash.Dashboard:
        """Exposure, claims, compensation paid and parked, recoveries received and
        outstanding, recovery rate (basis points), the last 12 months, by bank, by disposal
        path, the annual budget and aggregate limits, the NPL fuse per bank."""
        org = pool_org_of(caller, "pools:read")
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, org, pool_id)
            return await dash.dashboard(conn, row, clock.now())

    @get("/{pool_id:int}/postings", operation_id="pool_postings")
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
        org = pool_org_of(caller, "pools:read")
        async with pool.acquire() as conn:
            row = await services.own_pool(conn, org, pool_id)
            return await dash.postings(
                conn, row, figure, dash.DrillFilter(month=month, bank_org_id=bank, kind=kind)
            )

    @get("/{pool_id:int}/claims", operation_id="pool_claims")
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
        org = pool_org_of(caller, "pools:read")
        if not 1 <= limit <= dash.CLAIMS_LIMIT:
            raise Invalid(
                f"条数（limit）须在 1 至 {dash.CLAIMS_LIMIT} 之间 / limit: 1–{dash.CLAIMS_LIMIT}",
                field="limit",
            )
        async with pool.acquire() as conn:
            await services.own_pool(conn, org, pool_id)
            return await dash.claims(
                conn, org, pool_id=pool_id, status=status, bank_org_id=bank, limit=limit
            )

    @post(
        "/{pool_id:int}/claims/{claim_id:int}/decision",
        operation_id="pool_decide_claim",
        status_code=200,
    )
    async def decide(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        pool_id: FromPath[int],
        claim_id: FromPath[int],
        data: JSONBody[DecisionIn],
    ) -> dash.ClaimOut:
        """`{"decision": "approve"}` pays (or parks) the amount computed now;
        `{"decision": "reject", "reason": "…"}` rejects (a reason is required: 422).
        A claim decided already: 409 `decided`."""
        org = pool_org_of(caller, "pools:write")
        return await dash.decide(
            pool,
            clock.now(),
            org_id=org,
            user_id=caller.user_id,
            claim_id=claim_id,
            decision=data.decision,
            reason=data.reason,
            pool_id=pool_id,
        )

    @get("/{pool_id:int}/rules", operation_id="pool_rules")
    async def rules(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, pool_id: FromPath[int]
    ) -> list[dash.RuleVersionOut]:
        """Every rule version, newest first, with the loans enrolled under each and which
        one is in force today."""
        org = pool_org_of(caller, "pools:read")
        async with pool.acquire() as conn:
            await services.own_pool(conn, org, pool_id)
            return await dash.rule_versions(conn, pool_id, china_today(clock.now()))

    @post("/{pool_id:int}/rules", operation_id="pool_add_rule", status_code=201)
    async def add_rule(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        pool_id: FromPath[int],
        data: JSONBody[dash.NewRuleVersion],
    ) -> dash.RuleVersionOut:
        """A new version `{"rule": {…}, "effective_from": "YYYY-MM-DD", "note": "…"}`;
        an invalid rule is 422 naming the field as `rule.<path>`."""
        org = pool_org_of(caller, "pools:write")
        return await dash.add_version(
            pool, clock.now(), org_id=org, user_id=caller.user_id, pool_id=pool_id, data=data
        )
