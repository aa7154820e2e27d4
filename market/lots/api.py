"""The lots API for banks' systems (MANAGE_LOTS: an approved bank, scope lots:write)."""

from __future__ import annotations

from typing import Annotated, Any, cast

from arq.connections import ArqRedis
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath

from market import api_docs
from market.accounts.permissions import MANAGE_LOTS, allow
from market.deps import ActDep, CallerDep, PoolDep, SettingsDep
from market.lots import jobs, services
from market.lots.models import ActionInput, DraftLot, LotDraft, LotOut, LotUpdate, UpdateLot

LOT_DRAFT = api_docs.body(
    LotDraft,
    {
        "title": "一种锂离子电池正极材料及其制备方法等 3 项发明专利",
        "terms": {
            "start_price_fen": 245_000_000,
            "deposit_fen": 24_500_000,
            "bidding_starts_at": "2026-05-06T02:00:00Z",
            "bidding_ends_at": "2026-05-07T02:00:00Z",
        },
    },
)
LOT_UPDATE = api_docs.body(
    LotUpdate,
    {
        "title": "一种锂离子电池正极材料及其制备方法等 3 项发明专利",
        "version": 2,
        "terms": {
            "start_price_fen": 245_000_000,
            "deposit_fen": 24_500_000,
            "bidding_starts_at": "2026-05-06T02:00:00Z",
            "bidding_ends_at": "2026-05-07T02:00:00Z",
        },
    },
)
LOT_ACTION = api_docs.body(
    ActionInput, {"action": "publish"}, {"action": "withdraw", "reason": "借款人已清偿"}
)


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

    @post(
        "/cases/{case_id:int}/lots",
        operation_id="create_lot",
        summary="Draft a lot from a case",
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        case_id: FromPath[int],
        data: Annotated[LotDraft, LOT_DRAFT],
    ) -> LotOut:
        """A draft lot from a case's collateral; terms are checked against the rules."""
        policy = services.policy_for(settings)
        return await act(services.draft_lot, DraftLot(case_id=case_id, lot=data, policy=policy))

    @get(
        "/bank/lots/{lot_id:int}",
        operation_id="get_bank_lot",
        summary="Read one of the bank's lots",
    )
    async def get(self, caller: CallerDep, pool: PoolDep, lot_id: FromPath[int]) -> LotOut:
        """One of the bank's lots, drafts included, with its terms, schedule, status and
        version (another bank's: 404)."""
        return await services.get_lot(pool, caller.org_id, lot_id)

    @put("/bank/lots/{lot_id:int}", operation_id="update_lot", summary="Edit a draft lot")
    async def update(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        lot_id: FromPath[int],
        data: Annotated[LotUpdate, LOT_UPDATE],
    ) -> LotOut:
        """Edit a draft; `version` must be the one read (409 otherwise)."""
        policy = services.policy_for(settings)
        return await act(services.update_lot, UpdateLot(lot_id=lot_id, lot=data, policy=policy))

    @post(
        "/bank/lots/{lot_id:int}/actions",
        operation_id="lot_action",
        summary="Publish, withdraw, pause, resume or relist a lot",
        status_code=200,
    )
    async def action(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        lot_id: FromPath[int],
        data: Annotated[ActionInput, LOT_ACTION],
    ) -> LotOut:
        """publish, withdraw, pause, resume, relist or fixed_price; illegal ones answer 409."""
        lot = await services.run_action(act, lot_id, data, services.policy_for(settings))
        await after_change(request, lot)
        return lot
