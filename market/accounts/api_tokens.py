"""API tokens over the API: a bank's IT team creates, lists and revokes the tokens its
programs use, with scopes and an expiry (market/accounts/services.py has the commands).

Creating, listing and revoking need MANAGE_TOKENS (an admin's token with scope
`account:write`), as the account page shows the tokens to those who manage them; a token
never grants a scope its organisation's kind may not hold, nor one the calling token
lacks, nor outlives the calling token. The secret is in the creation's answer only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery

from market import api_docs
from market.accounts import services
from market.accounts.models import NewToken, TokenOut
from market.accounts.permissions import MANAGE_TOKENS, allow
from market.db import Queries
from market.deps import ActDep, CallerDep, ClockDep, PoolDep
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page

Q = Queries("api")
TOKENS: Keyset[tuple[datetime, int]] = Keyset("tokens", tuple[datetime, int], "created_at", "id")

NEW_TOKEN = api_docs.body(
    NewToken,
    {
        "name": "核心系统对接",
        "scopes": ["collateral:read", "collateral:write"],
        "expires_in_days": 90,
    },
)


async def page_tokens(
    pool: asyncpg.Pool,
    org_id: int,
    at: datetime,
    *,
    active: bool | None,
    cursor: str | None,
    limit: int,
) -> Page[TokenOut]:
    return await TOKENS.read(
        pool, Q.page_tokens, org_id, active, at, cursor=cursor, limit=limit, item=services.token_out
    )


class TokensApi(Controller):
    path = "/api/v1/tokens"
    tags = ["accounts"]

    @post(
        "",
        operation_id="create_token",
        summary="Create an API token",
        status_code=201,
        guards=[allow(MANAGE_TOKENS)],
    )
    async def create(self, act: ActDep, data: Annotated[NewToken, NEW_TOKEN]) -> TokenOut:
        """A new token of the caller's organisation with the scopes asked for and, if
        `expires_in_days` is given, an expiry. The answer carries the token's `secret`, and
        no later answer does: keep it. A scope the organisation's kind may not hold: 422
        `scopes_not_available`; one the calling token lacks: 422 `scopes_beyond_token`;
        an expiry after the calling token's own: 422 `token_outlives_caller`."""
        return await act(services.create_token, data)

    @get(
        "",
        operation_id="list_tokens",
        summary="List the organisation's API tokens",
        guards=[allow(MANAGE_TOKENS)],
        cache=False,
    )
    async def list_tokens(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        active: FromQuery[bool | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[TokenOut]:
        """The caller's organisation's tokens, newest first, without their secrets:
        name, scopes, creation, expiry and revocation. `active=true` keeps those neither
        revoked nor expired, `active=false` the others."""
        return await page_tokens(
            pool, caller.org_id, clock.now(), active=active, cursor=cursor, limit=limit
        )

    @post(
        "/{token_id:int}/revoke",
        operation_id="revoke_token",
        summary="Revoke an API token",
        status_code=200,
        guards=[allow(MANAGE_TOKENS)],
    )
    async def revoke(
        self, act: ActDep, caller: CallerDep, pool: PoolDep, token_id: FromPath[int]
    ) -> TokenOut:
        """Revoke one of the organisation's tokens: from now on it answers 401. Revoking a
        revoked token changes nothing; another organisation's token: 404."""
        await act(services.revoke_token, token_id)
        return await services.get_token(pool, caller.org_id, token_id)
