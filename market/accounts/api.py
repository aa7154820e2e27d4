"""The accounts API: the caller's organisation and its tokens."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from market.accounts import services
from market.accounts.models import OrganisationOut, TokenOut
from market.accounts.permissions import OWN_ACCOUNT, allow
from market.deps import CallerDep, PoolDep


class AccountsApi(Controller):
    path = "/api/v1"
    tags = ["accounts"]

    @get(
        "/organisation",
        operation_id="get_own_organisation",
        summary="Read the caller's organisation",
        guards=[allow(OWN_ACCOUNT)],
    )
    async def own_organisation(self, caller: CallerDep, pool: PoolDep) -> OrganisationOut:
        """The organisation the token acts for: its kind, name, credit code and status
        (pending, approved, rejected, suspended)."""
        return await services.get_organisation(pool, caller.org_id)

    @get(
        "/tokens/{token_id:int}",
        operation_id="get_token",
        summary="Read one API token",
        guards=[allow(OWN_ACCOUNT)],
    )
    async def get_token(
        self, caller: CallerDep, pool: PoolDep, token_id: FromPath[int]
    ) -> TokenOut:
        """One of the caller's organisation's tokens (another organisation's: 404)."""
        return await services.get_token(pool, caller.org_id, token_id)
