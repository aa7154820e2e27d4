"""The API of taking part: register for a lot, read one's registrations (scope bids:write),
and the operator's confirmation of a received deposit (scope operator:write)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from auctions import deposits, registration
from auctions.registration import RegistrationOut, with_pay_to
from market.accounts.services import require_scope
from market.deps import CallerDep, ClockDep, PoolDep, SettingsDep
from market.errors import Forbidden


class ConfirmDeposit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A transfer seen on the exchange's bank statement."""

    transfer_reference: Annotated[str, Meta(min_length=1, max_length=40)]
    amount_fen: Annotated[int, Meta(gt=0)]


class RegistrationApi(Controller):
    path = "/api/v1"
    tags = ["auctions"]

    @post("/lots/{reference:str}/registrations", operation_id="register_for_lot")
    async def register(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        reference: FromPath[str],
    ) -> Response[RegistrationOut]:
        """Register the caller's organisation for the lot's current round: 201 with the new
        registration (bidder code, deposit, its transfer reference and the account to pay
        it to), 200 with the existing one if it registered already."""
        require_scope(caller, "bids:write")
        reg, created = await registration.register(
            pool, clock.now(), org_id=caller.org_id, user_id=caller.user_id, reference=reference
        )
        return Response(with_pay_to(reg, settings), status_code=201 if created else 200)

    @get("/registrations", operation_id="list_registrations")
    async def list_own(
        self, caller: CallerDep, pool: PoolDep, settings: SettingsDep
    ) -> list[RegistrationOut]:
        """The caller's organisation's registrations, newest first."""
        require_scope(caller, "bids:write")
        regs = await registration.list_registrations(pool, caller.org_id)
        return [with_pay_to(reg, settings) for reg in regs]

    @get("/registrations/{registration_id:int}", operation_id="get_registration")
    async def get(
        self,
        caller: CallerDep,
        pool: PoolDep,
        settings: SettingsDep,
        registration_id: FromPath[int],
    ) -> RegistrationOut:
        """One of the caller's organisation's registrations (another's: 404)."""
        require_scope(caller, "bids:write")
        reg = await registration.get_registration(pool, caller.org_id, registration_id)
        return with_pay_to(reg, settings)

    @post("/operator/deposits/confirm", operation_id="confirm_deposit", status_code=200)
    async def confirm(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, data: JSONBody[ConfirmDeposit]
    ) -> deposits.Confirmation:
        """The operator confirms a deposit received; confirming again changes nothing."""
        require_scope(caller, "operator:write")
        if caller.org_kind != "operator":
            raise Forbidden("only the exchange operator confirms deposits")
        return await deposits.confirm_deposit(
            pool,
            clock.now(),
            operator_user_id=caller.user_id,
            operator_org_id=caller.org_id,
            transfer_reference=data.transfer_reference,
            amount_fen=data.amount_fen,
        )
