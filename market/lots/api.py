"""The lots API for banks' systems (MANAGE_LOTS: an approved bank, scope lots:write)."""

from __future__ import annotations

from typing import Any, cast

from arq.connections import ArqRedis
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from market.accounts.permissions import MANAGE_LOTS, allow
from market.deps import ActDep, CallerDep, PoolDep, SettingsDep
from market.lots import jobs, services
from market.lots.models import ActionInput, DraftLot, LotDraft, LotOut, LotUpdate, UpdateLot


async def after_change(request: Request[Any, Any, State], lot: LotOut) -> None:
    """Once committed: ask the worker to open bidding at the announced instant."""
    if lot.status == "announced" and lot.bidding_starts_at is not None:
        state = request.app.state
        await jobs.schedule_opening(
            cast(ArqRedis, state.redis), lot.id, lot.round, lot.bidding_starts_at, state.clock
        )


class LotsApi(Controller):
    path = "/api/v1"
    tags = ["lots"]
    guards = [allow(MANAGE_LOTS)]

    @post("/cases/{case_id:int}/lots", operation_id="create_lot", status_code=201)
    async def create(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        case_id: FromPath[int],
        data: JSONBody[LotDraft],
    ) -> LotOut:
        """A draft lot from a case's collateral; terms are checked against the rules."""
        policy = services.policy_for(settings)
        return await act(services.draft_lot, DraftLot(case_id=case_id, lot=data, policy=policy))

    @get("/bank/lots/{lot_id:int}", operation_id="get_bank_lot")
    async def get(self, caller: CallerDep, pool: PoolDep, lot_id: FromPath[int]) -> LotOut:
        return await services.get_lot(pool, caller.org_id, lot_id)

    @put("/bank/lots/{lot_id:int}", operation_id="update_lot")
    async def update(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        lot_id: FromPath[int],
        data: JSONBody[LotUpdate],
    ) -> LotOut:
        """Edit a draft; `version` must be the one read (409 otherwise)."""
        policy = services.policy_for(settings)
        return await act(services.update_lot, UpdateLot(lot_id=lot_id, lot=data, policy=policy))

    @post("/bank/lots/{lot_id:int}/actions", operation_id="lot_action", status_code=200)
    async def action(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        lot_id: FromPath[int],
        data: JSONBody[ActionInput],
    ) -> LotOut:
        """publish, withdraw, pause, resume, relist or fixed_price; illegal ones answer 409."""
        lot = await services.run_action(act, lot_id, data, services.policy_for(settings))
        await after_change(request, lot)
        return lot
