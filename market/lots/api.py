"""The lots API for banks' systems (scope lots:write)."""

from __future__ import annotations

from typing import Any, cast

from arq.connections import ArqRedis
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from market.accounts.models import ApiCaller, Viewer
from market.accounts.services import acting_org
from market.deps import CallerDep, ClockDep, PoolDep, SettingsDep
from market.lots import jobs, services
from market.lots.models import ActionInput, LotDraft, LotOut, LotUpdate


def bank_actor(caller: ApiCaller, scope: str) -> Viewer:
    """A bank's token acting as the user who created it."""
    acting_org(caller, scope, "bank", "only an approved bank manages lots")
    return Viewer(
        user_id=caller.user_id,
        email="",
        display_name="api",
        role="admin",
        language="zh",
        org_id=caller.org_id,
        org_kind="bank",
        org_name="",
        org_status=caller.org_status,
    )


async def after_change(request: Request[Any, Any, State], lot: LotOut) -> None:
    """Once committed: ask the worker to open bidding at the announced instant."""
    if lot.status == "announced" and lot.bidding_starts_at is not None:
        await jobs.schedule_opening(
            cast(ArqRedis, request.app.state.redis), lot.id, lot.round, lot.bidding_starts_at
        )


class LotsApi(Controller):
    path = "/api/v1"
    tags = ["lots"]

    @post("/cases/{case_id:int}/lots", operation_id="create_lot", status_code=201)
    async def create(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        case_id: FromPath[int],
        data: JSONBody[LotDraft],
    ) -> LotOut:
        """A draft lot from a case's collateral; terms are checked against the rules."""
        return await services.create_lot(
            pool,
            clock.now(),
            services.policy_for(settings),
            bank_actor(caller, "lots:write"),
            case_id,
            data,
        )

    @get("/bank/lots/{lot_id:int}", operation_id="get_bank_lot")
    async def get(self, caller: CallerDep, pool: PoolDep, lot_id: FromPath[int]) -> LotOut:
        return await services.get_lot(pool, bank_actor(caller, "lots:write").org_id, lot_id)

    @put("/bank/lots/{lot_id:int}", operation_id="update_lot")
    async def update(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        lot_id: FromPath[int],
        data: JSONBody[LotUpdate],
    ) -> LotOut:
        """Edit a draft; `version` must be the one read (409 otherwise)."""
        return await services.update_draft(
            pool,
            clock.now(),
            services.policy_for(settings),
            bank_actor(caller, "lots:write"),
            lot_id,
            data,
        )

    @post("/bank/lots/{lot_id:int}/actions", operation_id="lot_action", status_code=200)
    async def action(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        lot_id: FromPath[int],
        data: JSONBody[ActionInput],
    ) -> LotOut:
        """publish, withdraw, pause, resume, relist or fixed_price; illegal ones answer 409."""
        lot = await services.act(
            pool,
            clock.now(),
            services.policy_for(settings),
            bank_actor(caller, "lots:write"),
            lot_id,
            data,
        )
        await after_change(request, lot)
        return lot
