"""The bank's lot pages: create from a case, edit a draft, act on the lifecycle."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.cases.services import case_for_lot
from market.db import Queries
from market.deps import ClockDep, PoolDep, SettingsDep, ViewerDep
from market.errors import AppError, Invalid
from market.lots import forms, services
from market.lots.api import after_change
from market.lots.models import (
    ActionInput,
    FixedPriceInput,
    LotOut,
    LotUpdate,
    PauseInput,
    PublishInput,
    RelistInput,
    ResumeInput,
    WithdrawInput,
)
from market.web import page, require_org

Q = Queries("lots")


def _bank(viewer: Viewer | None) -> Viewer:
    return require_org(viewer, "bank", "only an approved bank manages lots")


async def _form(request: Request[Any, Any, Any]) -> tuple[dict[str, str], list[int]]:
    form = await request.form()
    ids = [int(v) for v in form.getall("asset_ids", []) if str(v).isdigit()]
    return {k: str(v) for k, v in form.items() if k not in ("_csrf_token", "asset_ids")}, ids


async def _case_assets(pool: Any, bank_org_id: int, case_id: int) -> tuple[Any, list[Any]]:
    async with pool.acquire() as conn:
        case = await case_for_lot(conn, bank_org_id, case_id)
        assets = await conn.fetch(Q.catalogue_inputs, case.asset_ids, bank_org_id)
    return case, assets


class LotPages(Controller):
    include_in_schema = False

    @get("/bank/cases/{case_id:int}/lots/new", operation_id="web_new_lot")
    async def new(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template:
        me = _bank(viewer)
        case, assets = await _case_assets(pool, me.org_id, case_id)
        values = {
            "title": "",
            "extension_window_min": "5",
            "extension_min": "5",
            "payment_days": "10",
            "fee_kind": "commission",
        }
        return page(
            request,
            "lots/edit.html",
            me,
            case=case,
            assets=assets,
            lot=None,
            values=values,
            chosen=case.asset_ids,
            errors={},
        )

    @post("/bank/cases/{case_id:int}/lots/new", operation_id="web_create_lot")
    async def create(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        form, ids = await _form(request)
        zone = ZoneInfo(settings.timezone)
        try:
            draft = forms.draft_from_form(form, ids, zone)
            lot = await services.create_lot(
                pool, clock.now(), services.policy_for(settings), me, case_id, draft
            )
        except AppError as exc:
            case, assets = await _case_assets(pool, me.org_id, case_id)
            return page(
                request,
                "lots/edit.html",
                me,
                status_code=exc.status,
                case=case,
                assets=assets,
                lot=None,
                values=form,
                chosen=ids,
                errors={forms.form_field(exc.field): exc.message},
            )
        return Redirect(f"/bank/lots/{lot.id}")

    @get("/bank/lots/{lot_id:int}", operation_id="web_lot")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        settings: SettingsDep,
        viewer: ViewerDep,
        lot_id: FromPath[int],
    ) -> Template:
        me = _bank(viewer)
        lot = await services.get_lot(pool, me.org_id, lot_id)
        return await self._render(request, pool, settings, me, lot, {}, None)

    async def _render(
        self,
        request: Request[Any, Any, State],
        pool: Any,
        settings: Any,
        me: Viewer,
        lot: LotOut,
        errors: dict[str, str],
        values: dict[str, str] | None,
        status_code: int = 200,
    ) -> Template:
        case, assets = await _case_assets(pool, me.org_id, lot.case_id)
        history = await services.transitions(pool, lot.id)
        zone = ZoneInfo(settings.timezone)
        policy = services.policy_for(settings)
        if values is None and lot.status == "failed":
            values = forms.next_round_values(lot, policy, request.app.state.clock.now(), zone)
        return page(
            request,
            "lots/edit.html",
            me,
            status_code=status_code,
            case=case,
            assets=assets,
            lot=lot,
            values=values or forms.form_values(lot, zone),
            chosen=lot.asset_ids,
            errors=errors,
            history=history,
            policy=services.policy_for(settings),
        )

    @post("/bank/lots/{lot_id:int}", operation_id="web_update_lot")
    async def update(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        viewer: ViewerDep,
        lot_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        form, ids = await _form(request)
        try:
            draft = forms.draft_from_form(form, ids, ZoneInfo(settings.timezone))
            version = int(form.get("version", "0") or 0)
            await services.update_draft(
                pool,
                clock.now(),
                services.policy_for(settings),
                me,
                lot_id,
                LotUpdate(
                    title=draft.title,
                    description=draft.description,
                    asset_ids=draft.asset_ids,
                    valuation_fen=draft.valuation_fen,
                    terms=draft.terms,
                    version=version,
                ),
            )
        except AppError as exc:
            lot = await services.get_lot(pool, me.org_id, lot_id)
            return await self._render(
                request,
                pool,
                settings,
                me,
                lot,
                {forms.form_field(exc.field): exc.message},
                form,
                exc.status,
            )
        return Redirect(f"/bank/lots/{lot_id}")

    @post("/bank/lots/{lot_id:int}/actions/{action:str}", operation_id="web_lot_action")
    async def action(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        viewer: ViewerDep,
        lot_id: FromPath[int],
        action: FromPath[str],
    ) -> Template | Redirect:
        me = _bank(viewer)
        form, _ = await _form(request)
        zone = ZoneInfo(settings.timezone)
        try:
            data = _action_from_form(action, form, zone)
            lot = await services.act(
                pool, clock.now(), services.policy_for(settings), me, lot_id, data
            )
            await after_change(request, lot)
        except AppError as exc:
            lot = await services.get_lot(pool, me.org_id, lot_id)
            return await self._render(
                request,
                pool,
                settings,
                me,
                lot,
                {f"action_{action}": exc.message},
                None,
                exc.status,
            )
        return Redirect(f"/bank/lots/{lot_id}")


def _action_from_form(action: str, form: dict[str, str], zone: ZoneInfo) -> ActionInput:
    reason = form.get("reason", "").strip()
    match action:
        case "publish":
            return PublishInput()
        case "resume":
            return ResumeInput()
        case "withdraw" | "pause":
            if not reason:
                raise Invalid("请填写理由 / give a reason", field="reason")
            return (
                WithdrawInput(reason=reason) if action == "withdraw" else PauseInput(reason=reason)
            )
        case "relist":
            return RelistInput(terms=forms.terms_from_form(form, zone))
        case "fixed_price":
            return FixedPriceInput(ends_at=forms.local_time(form, "ends_at", zone))
    raise Invalid(f"unknown action {action!r}", field="action")
