"""The bank's lot pages: create from a case, edit a draft, act on the lifecycle
(MANAGE_LOTS). Each change runs its command (market/lots/services.py) through a `Form`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from market import i18n, problems
from market.accounts.models import Viewer
from market.accounts.permissions import MANAGE_LOTS, allow
from market.cases.services import case_for_lot
from market.db import Queries
from market.deps import ActDep, ClockDep, MeDep, PoolDep, SettingsDep
from market.errors import LineProblem, NotFound
from market.lots import forms, lifecycle, services, wizard
from market.lots.api import after_change
from market.lots.models import (
    ActionInput,
    DraftLot,
    LotDraft,
    LotOut,
    LotUpdate,
    PublishInput,
    UpdateLot,
)
from market.lots.terms import Offers
from market.settings import Settings
from market.web import Form, language, page

Q = Queries("lots")
# The wizard's fields (market/lots/wizard.py): the deposit is asked as a percentage.
WIZARD_FIELDS = frozenset(
    {
        "title",
        "asset_ids",
        "start_price",
        "deposit_pct",
        "increment",
        "bidding_starts_at",
        "bidding_ends_at",
    }
)
# The fields of the relist and fixed-price forms, shown beside their inputs.
ACTION_FIELDS = frozenset(
    {
        "start_price",
        "deposit",
        "bidding_starts_at",
        "bidding_ends_at",
        "ends_at",
        "listing_period_days",
    }
)


def reason_text(lang: i18n.Lang, reason: str) -> str:
    """A lot's reason as a person reads it: the bank's own words, or the exchange's
    reason (a catalog key) in `lang`."""
    return i18n.gettext(lang, reason) if reason in lifecycle.SYSTEM_REASONS else reason


def blocker_text(lang: i18n.Lang, blocker: LineProblem) -> str:
    """What still blocks publication, in `lang` (a missing document by its name)."""
    params = dict(blocker.params)
    if "item" in params:
        params["item"] = i18n.gettext(lang, f"cases.item.{params['item']}")
    return problems.describe(lang, blocker.code, params)


async def _case_assets(pool: asyncpg.Pool, bank_org_id: int, case_id: int) -> tuple[Any, list[Any]]:
    async with pool.acquire() as conn:
        case = await case_for_lot(conn, bank_org_id, case_id)
        assets = await conn.fetch(Q.catalogue_inputs, case.asset_ids, bank_org_id)
    return case, assets


def _zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.timezone)


class LotPages(Controller):
    include_in_schema = False
    guards = [allow(MANAGE_LOTS)]

    @get("/bank/cases/{case_id:int}/lots/new", operation_id="web_new_lot")
    async def new(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep, case_id: FromPath[int]
    ) -> Template:
        values = {
            "title": "",
            "extension_window_min": "5",
            "extension_min": "5",
            "payment_days": "10",
            "fee_kind": "commission",
            **forms.offers_values(Offers()),
        }
        return await _new_page(request, pool, me, case_id, values, None, {})

    @post("/bank/cases/{case_id:int}/lots/new", operation_id="web_create_lot")
    async def create(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        settings: SettingsDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=forms.FIELDS)
        data = forms.draft(form, _zone(settings))
        policy = services.policy_for(settings)
        lot = await form.submit(
            lambda: act(
                services.draft_lot,
                DraftLot(case_id=case_id, lot=msgspec.convert(data, LotDraft), policy=policy),
            )
        )
        if lot is None:
            errors = forms.placed(form.errors, forms.EDITOR_FIELDS)
            chosen = form.ids("asset_ids")
            return await _new_page(
                request, pool, me, case_id, form.values, chosen, errors, form.status
            )
        return Redirect(f"/bank/lots/{lot.id}")

    @get("/bank/cases/{case_id:int}/lots/wizard", operation_id="web_lot_wizard")
    async def wizard_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template:
        filled = await wizard.prefill(pool, me.org_id, case_id)
        policy = services.policy_for(settings)
        values = wizard.values(filled, policy, clock.now(), _zone(settings))
        return _wizard_page(request, me, filled, values, wizard.chosen(filled), {})

    @post("/bank/cases/{case_id:int}/lots/wizard", operation_id="web_lot_wizard_publish")
    async def wizard_submit(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        """Draft the lot (services.draft_lot) and, unless the bank only saves a draft,
        publish it (services.publish_lot): the lots' own commands, one after the other. A
        refused publication leaves the draft, shown on its page with the reasons."""
        form = await Form.read(request, me, fields=WIZARD_FORM_FIELDS)
        wizard.deposit_from_pct(form)
        data = forms.draft(form, _zone(settings))
        policy = services.policy_for(settings)
        lot = await form.submit(
            lambda: act(
                services.draft_lot,
                DraftLot(case_id=case_id, lot=msgspec.convert(data, LotDraft), policy=policy),
            )
        )
        if lot is None:
            filled = await wizard.prefill(pool, me.org_id, case_id)
            errors = forms.placed(form.errors, WIZARD_FIELDS)
            return _wizard_page(
                request, me, filled, form.values, form.ids("asset_ids"), errors, form.status
            )
        if form.text("intent") == "draft":
            return Redirect(f"/bank/lots/{lot.id}")
        published = await form.submit(
            lambda: services.run_action(act, lot.id, PublishInput(), policy)
        )
        if published is None:
            return await _lot_page(
                request,
                pool,
                clock.now(),
                settings,
                me,
                lot,
                errors=forms.placed(form.errors, frozenset(), other="action"),
                status_code=form.status,
            )
        await after_change(request, published)
        return Redirect(f"/bank/lots/{lot.id}")

    @get("/bank/lots/{lot_id:int}", operation_id="web_bank_lot")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
        lot_id: FromPath[int],
    ) -> Template:
        lot = await services.get_lot(pool, me.org_id, lot_id)
        return await _lot_page(request, pool, clock.now(), settings, me, lot)

    @post("/bank/lots/{lot_id:int}", operation_id="web_update_lot")
    async def update(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
        lot_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=forms.FIELDS)
        data = forms.draft(form, _zone(settings))
        policy = services.policy_for(settings)
        saved = await form.submit(
            lambda: act(
                services.update_lot,
                UpdateLot(lot_id=lot_id, lot=msgspec.convert(data, LotUpdate), policy=policy),
            )
        )
        if saved is None:
            lot = await services.get_lot(pool, me.org_id, lot_id)
            return await _lot_page(
                request,
                pool,
                clock.now(),
                settings,
                me,
                lot,
                errors=forms.placed(form.errors, forms.EDITOR_FIELDS),
                values=form.values,
                chosen=form.ids("asset_ids"),
                status_code=form.status,
            )
        return Redirect(f"/bank/lots/{lot_id}")

    @post("/bank/lots/{lot_id:int}/actions/{action:str}", operation_id="web_lot_action")
    async def action(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
        lot_id: FromPath[int],
        action: FromPath[str],
    ) -> Template | Redirect:
        if action not in lifecycle.BANK_ACTIONS:
            raise NotFound("not_found")
        form = await Form.read(request, me, fields=forms.FIELDS)
        data = forms.action(action, form, _zone(settings))
        policy = services.policy_for(settings)
        lot = await form.submit(
            lambda: services.run_action(act, lot_id, msgspec.convert(data, ActionInput), policy)
        )
        if lot is None:
            lot = await services.get_lot(pool, me.org_id, lot_id)
            return await _lot_page(
                request,
                pool,
                clock.now(),
                settings,
                me,
                lot,
                errors=forms.placed(form.errors, ACTION_FIELDS, other="action"),
                values=form.values if action in ("relist", "fixed_price") else None,
                status_code=form.status,
            )
        await after_change(request, lot)
        return Redirect(f"/bank/lots/{lot_id}")


class _WizardFields(forms.FormFields):
    """The editor's field names, but a deposit refused is shown beside the percentage."""

    def __getitem__(self, name: str) -> str:
        field = super().__getitem__(name)
        return "deposit_pct" if field == "deposit" else field


WIZARD_FORM_FIELDS = _WizardFields()


def _wizard_page(
    request: Request[Any, Any, State],
    me: Viewer,
    filled: wizard.Prefill,
    values: dict[str, str],
    chosen: list[int],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    return page(
        request,
        "lots/wizard.html",
        me,
        status_code=status_code,
        case=filled.case,
        assets=filled.assets,
        taken=filled.taken,
        documents=filled.documents,
        values=values,
        chosen=chosen,
        errors=errors,
    )


async def _new_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    case_id: int,
    values: dict[str, str],
    chosen: list[int] | None,
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    case, assets = await _case_assets(pool, me.org_id, case_id)
    return page(
        request,
        "lots/edit.html",
        me,
        status_code=status_code,
        case=case,
        assets=assets,
        lot=None,
        values=values,
        chosen=case.asset_ids if chosen is None else chosen,
        errors=errors,
    )


async def _lot_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    now: datetime,
    settings: Settings,
    me: Viewer,
    lot: LotOut,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    chosen: list[int] | None = None,
    status_code: int = 200,
) -> Template:
    lang = language(request, me)
    zone = _zone(settings)
    policy = services.policy_for(settings)
    case, assets = await _case_assets(pool, me.org_id, lot.case_id)
    history = [
        {**t, "reason": reason_text(lang, t["reason"])}
        for t in await services.transitions(pool, lot.id)
    ]
    blockers: list[str] = []
    if lot.status == "draft":
        found = await services.blockers_of(pool, me.org_id, lot, now)
        blockers = [blocker_text(lang, b) for b in found]
    if values is None:
        values = (
            forms.next_round_values(lot, policy, now, zone)
            if lot.status == "failed"
            else forms.form_values(lot, zone)
        )
    return page(
        request,
        "lots/edit.html",
        me,
        status_code=status_code,
        case=case,
        assets=assets,
        lot=lot,
        status_reason=reason_text(lang, lot.status_reason),
        offered=lifecycle.offered(services.state_of(msgspec.structs.asdict(lot))),
        blockers=blockers,
        values=values,
        chosen=lot.asset_ids if chosen is None else chosen,
        errors=errors or {},
        history=history,
        policy=policy,
    )
