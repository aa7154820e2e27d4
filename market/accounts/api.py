"""The accounts API: buyer sign-up, the caller's organisation, tokens, operator decisions."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath

from market import api_docs
from market.accounts import services
from market.accounts.models import Decision, OrganisationOut, RegisterBuyer, RegisteredOut, TokenOut
from market.accounts.permissions import OPERATE, OWN_ACCOUNT, allow
from market.deps import ActDep, CallerDep, PoolDep

NEW_BUYER = api_docs.body(
    RegisterBuyer,
    {
        "name": "成都蓉知科技有限公司",
        "credit_code": "91510100MA6C8XYZ1K",
        "email": "it@rongzhi.example.cn",
        "display_name": "王敏",
        "password": "correct horse battery",
        "language": "zh",
    },
)
DECISION = api_docs.body(
    Decision, {"approve": True}, {"approve": False, "reason": "营业执照与统一社会信用代码不符"}
)


class SignUpApi(Controller):
    path = "/api/v1"
    tags = ["accounts"]

    @post(
        "/buyers",
        operation_id="register_buyer",
        summary="Sign up a buyer organisation",
        status_code=201,
    )
    async def register_buyer(
        self, data: Annotated[RegisterBuyer, NEW_BUYER], act: ActDep
    ) -> RegisteredOut:
        """Sign up a buyer organisation; it can take part once an operator approves it."""
        return await act(services.register_buyer, data)


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

    @post(
        "/operator/organisations/{org_id:int}/decision",
        operation_id="decide_organisation",
        summary="Approve or reject an organisation",
        status_code=200,
        guards=[allow(OPERATE)],
    )
    async def decide(
        self, act: ActDep, org_id: FromPath[int], data: Annotated[Decision, DECISION]
    ) -> OrganisationOut:
        """Approve or reject a pending organisation (the exchange operator)."""
        return await act(
            services.decide_organisation,
            services.DecideOrganisation(org_id=org_id, approve=data.approve, reason=data.reason),
        )
