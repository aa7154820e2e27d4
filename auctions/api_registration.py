"""The API of taking part: register for a lot and read one's registrations (BID), and the
operator's confirmation of a received deposit (OPERATE)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery

from auctions import deposits, registration
from auctions.api_buyer import page_registrations
from auctions.deposits import ConfirmDeposit
from auctions.registration import DepositStatus, RegisterForLot, RegistrationOut, with_pay_to
from market import api_docs
from market.accounts.permissions import BID, OPERATE, allow
from market.deps import ActDep, CallerDep, ClockDep, PoolDep, SettingsDep
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page


class Acceptance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bidding agreement's version the bidder accepts (GET /api/v1/agreements/current)."""

    agreement_version: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


ACCEPTANCE = api_docs.body(Acceptance, {"agreement_version": "2020-01"})
CONFIRM_DEPOSIT = api_docs.body(
    ConfirmDeposit, {"transfer_reference": "DEP8K2M4Q7", "amount_fen": 24_500_000}
)


class AgreementApi(Controller):
    path = "/api/v1/agreements"
    tags = ["auctions"]

    @get("/current", operation_id="get_current_agreement", summary="Read the bidding agreement")
    async def current(self, pool: PoolDep, clock: ClockDep) -> registration.Agreement:
        """The bidding agreement (竞买协议) in force, in Chinese and English, with its
        version: registering for a lot accepts it by naming that version."""
        async with pool.acquire() as conn:
            return await registration.current_agreement(conn, clock.now())

    @get("/{version:str}", operation_id="get_agreement", summary="Read a bidding agreement version")
    async def version(self, pool: PoolDep, version: FromPath[str]) -> registration.Agreement:
        """One version of the bidding agreement, as bidders accepted it (a registration
        records its version)."""
        async with pool.acquire() as conn:
            return await registration.agreement(conn, version)


class RegistrationApi(Controller):
    path = "/api/v1"
    tags = ["auctions"]
    guards = [allow(BID)]

    @post(
        "/lots/{reference:str}/registrations",
        operation_id="register_for_lot",
        summary="Register for a lot's current round",
    )
    async def register(
        self,
        act: ActDep,
        settings: SettingsDep,
        reference: FromPath[str],
        data: Annotated[Acceptance, ACCEPTANCE],
    ) -> Response[RegistrationOut]:
        """Register the caller's organisation for the lot's current round, accepting the
        bidding agreement in force by its version: 201 with the new registration (bidder
        code, deposit, its transfer reference and the account to pay it to, the agreement
        version), 200 with the existing one if it registered already."""
        done = await act(
            registration.register_for_lot,
            RegisterForLot(reference=reference, agreement_version=data.agreement_version),
        )
        return Response(
            with_pay_to(done.registration, settings), status_code=201 if done.created else 200
        )

    @get(
        "/registrations",
        operation_id="list_registrations",
        summary="List the organisation's registrations and deposits",
    )
    async def list_own(
        self,
        caller: CallerDep,
        pool: PoolDep,
        settings: SettingsDep,
        deposit_status: FromQuery[DepositStatus | None] = None,
        lot: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[RegistrationOut]:
        """The caller's organisation's registrations, newest first, a page at a time: lot,
        round, bidder code, and the deposit — amount, status (awaiting, confirmed,
        released, applied, forfeited), transfer reference and the account to pay it to.
        Filters: `deposit_status`, `lot` (a lot's reference)."""
        return await page_registrations(
            pool,
            settings,
            caller.org_id,
            deposit_status=deposit_status,
            lot=lot,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/registrations/{registration_id:int}",
        operation_id="get_registration",
        summary="Read one registration and its deposit",
    )
    async def get(
        self,
        caller: CallerDep,
        pool: PoolDep,
        settings: SettingsDep,
        registration_id: FromPath[int],
    ) -> RegistrationOut:
        """One of the caller's organisation's registrations (another's: 404)."""
        reg = await registration.get_registration(pool, caller.org_id, registration_id)
        return with_pay_to(reg, settings)


class DepositsApi(Controller):
    path = "/api/v1/operator/deposits"
    tags = ["auctions"]
    guards = [allow(OPERATE)]

    @get(
        "",
        operation_id="list_awaiting_deposits",
        summary="List the deposits awaiting confirmation",
        cache=False,
    )
    async def awaiting(self, pool: PoolDep) -> list[deposits.AwaitingDeposit]:
        """Every organisation's deposits not yet received, oldest first (500 at most):
        lot, round, buyer, bidder code, amount and the transfer reference to confirm."""
        return await deposits.awaiting(pool)

    @post(
        "/confirm",
        operation_id="confirm_deposit",
        summary="Confirm a deposit received",
        status_code=200,
    )
    async def confirm(
        self, act: ActDep, data: Annotated[ConfirmDeposit, CONFIRM_DEPOSIT]
    ) -> deposits.Confirmation:
        """The operator confirms a deposit received; confirming again changes nothing."""
        return await act(deposits.confirm_deposit, data)
