"""The accounts API: buyer sign-up, the caller's organisation, tokens, operator decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from market.accounts import services
from market.accounts.models import (
    ApiCaller,
    Decision,
    OrganisationOut,
    RegisterBuyer,
    RegisteredOut,
    TokenOut,
)
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import Forbidden, Unauthorized


async def provide_caller(request: Request[Any, Any, State]) -> ApiCaller:
    """The organisation an API request acts for, from its bearer token (issue 2)."""
    state = request.app.state
    return await caller_for(state.pool, state.clock.now(), request.headers.get("authorization", ""))


async def caller_for(pool: asyncpg.Pool, at: datetime, authorization: str) -> ApiCaller:
    """The caller named by an Authorization header at `at` (also the bid API's fast path,
    which passes the bid's own receive time rather than reading the clock twice)."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise Unauthorized("send the API token as 'Authorization: Bearer <token>'")
    return await services.authenticate_token(pool, at, credential.strip())


class AccountsApi(Controller):
    path = "/api/v1"
    tags = ["accounts"]

    @post("/buyers", operation_id="register_buyer", status_code=201)
    async def register_buyer(
        self, data: JSONBody[RegisterBuyer], pool: PoolDep, clock: ClockDep
    ) -> RegisteredOut:
        """Sign up a buyer organisation; it can take part once an operator approves it."""
        return await services.register_buyer(pool, clock.now(), data)

    @get("/organisation", operation_id="get_own_organisation")
    async def own_organisation(self, caller: CallerDep, pool: PoolDep) -> OrganisationOut:
        services.require_scope(caller, "account:read")
        return await services.get_organisation(pool, caller.org_id)

    @get("/tokens/{token_id:int}", operation_id="get_token")
    async def get_token(
        self, caller: CallerDep, pool: PoolDep, token_id: FromPath[int]
    ) -> TokenOut:
        """One of the caller's organisation's tokens (another organisation's: 404)."""
        services.require_scope(caller, "account:read")
        return await services.get_token(pool, caller.org_id, token_id)

    @post("/operator/organisations/{org_id:int}/decision", operation_id="decide_organisation")
    async def decide(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        org_id: FromPath[int],
        data: JSONBody[Decision],
    ) -> OrganisationOut:
        """Approve or reject a pending organisation (operator tokens only)."""
        services.require_scope(caller, "operator:write")
        if caller.org_kind != "operator":
            raise Forbidden("only the exchange operator decides on organisations")
        return await services.decide_organisation(
            pool,
            clock.now(),
            caller.user_id,
            caller.org_id,
            org_id,
            approve=data.approve,
            reason=data.reason,
        )
