"""The API of taking part: register for a lot and read one's registrations (BID), and the
operator's confirmation of a received deposit (OPERATE)."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody

from auctions import deposits, registration
from auctions.deposits import ConfirmDeposit
from auctions.registration import RegisterForLot, RegistrationOut, with_pay_to
from market.accounts.permissions import BID, OPERATE, allow
from market.deps import ActDep, CallerDep, PoolDep, SettingsDep


class RegistrationApi(Controller):
    path = "/api/v1"
    tags = ["auctions"]
    guards = [allow(BID)]

    @post("/lots/{reference:str}/registrations", operation_id="register_for_lot")
    async def register(
        self, act: ActDep, settings: SettingsDep, reference: FromPath[str]
    ) -> Response[RegistrationOut]:
        """Register the caller's organisation for the lot's current round: 201 with the new
        registration (bidder code, deposit, its transfer reference and the account to pay
        it to), 200 with the existing one if it registered already."""
        done = await act(registration.register_for_lot, RegisterForLot(reference=reference))
        return Response(
            with_pay_to(done.registration, settings), status_code=201 if done.created else 200
        )

    @get("/registrations", operation_id="list_registrations")
    async def list_own(
        self, caller: CallerDep, pool: PoolDep, settings: SettingsDep
    ) -> list[RegistrationOut]:
        """The caller's organisation's registrations, newest first."""
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
        reg = await registration.get_registration(pool, caller.org_id, registration_id)
        return with_pay_to(reg, settings)


class DepositsApi(Controller):
    path = "/api/v1/operator/deposits"
    tags = ["auctions"]
    guards = [allow(OPERATE)]

    @post("/confirm", operation_id="confirm_deposit", status_code=200)
    async def confirm(self, act: ActDep, data: JSONBody[ConfirmDeposit]) -> deposits.Confirmation:
        """The operator confirms a deposit received; confirming again changes nothing."""
        return await act(deposits.confirm_deposit, data)
