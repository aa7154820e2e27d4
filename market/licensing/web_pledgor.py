"""The pledgor's pages (its cases, its consent, its open licences, its answer to a licence
back), the bank's consent to an open licence, and the public pages of open licences with
the taking of one. Thin adapters: each form runs one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.permissions import (
    READ_OWN_CASES,
    SIGN_AS_PLEDGOR,
    TAKE_OPEN_LICENCE,
    WRITE_COLLATERAL,
    allow,
)
from market.cases.services import china_today
from market.deps import ActDep, ClockDep, MeDep, PoolDep, ViewerDep
from market.licensing import open_licence as ol
from market.licensing import pledgor
from market.money import MAX_FEN
from market.web import Form, page

SIGN = [allow(SIGN_AS_PLEDGOR)]
# The proposal form's fields: the terms' names in the service, flat in the form.
FIELDS = {f"terms.{name}": name for name in ("ends_on", "period", "royalty_rate_bp")} | {
    "terms.per_unit_fen": "per_unit",
    "terms.minimum_annual_fen": "minimum_annual",
    "terms.late_interest_bp": "form",
    "terms.kind": "form",
}


def _bp(form: Form, name: str) -> int:
    """A percentage typed with up to two decimals (6.5 → 650 basis points)."""
    text = form.text(name)
    if not text:
        return 0
    whole, _, part = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and (not part or part.isdigit())) or len(part) > 2:
        form.fail(name, "not_a_percentage")
        return 0
    return int(whole) * 100 + int(part.ljust(2, "0") or 0)


class PledgorPages(Controller):
    path = "/pledgor"
    include_in_schema = False

    @get("/cases", operation_id="web_pledgor_cases", guards=[allow(READ_OWN_CASES)])
    async def cases(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        found = await pledgor.page_cases(pool, me.org_id, cursor=None, limit=200)
        return page(request, "pledgor/cases.html", me, cases=found.items)

    @get("/cases/{case_id:int}", operation_id="web_pledgor_case", guards=[allow(READ_OWN_CASES)])
    async def case(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        case_id: FromPath[int],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await _render(request, pool, clock, me, case_id, saved=saved)

    async def _submit(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        form: Form,
        name: str,
        case_id: int,
        call: Callable[[], Awaitable[Any]],
    ) -> Template | Redirect:
        """Run the form's command; back to the case page with what was saved, or the page
        with the refusal beside its field."""
        done = await form.submit(call)
        if done is not None:
            return Redirect(f"/pledgor/cases/{case_id}?saved={name}", status_code=303)
        return await _render(request, pool, clock, me, case_id, form=form, name=name)

    @post("/cases/{case_id:int}/consent", operation_id="web_pledgor_consent", guards=SIGN)
    async def consent(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        act: ActDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        return await self._submit(
            request,
            pool,
            clock,
            me,
            form,
            "consent",
            case_id,
            lambda: act(pledgor.give_licensing_consent, pledgor.CaseRef(case_id=case_id)),
        )

    @post(
        "/cases/{case_id:int}/open-licences",
        operation_id="web_pledgor_propose_open_licence",
        guards=SIGN,
    )
    async def propose(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        act: ActDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        asset_id = form.id("asset_id")
        ends_on = form.date("ends_on")
        terms = {
            "ends_on": ends_on,
            "period": form.text("period") or "yearly",
            "royalty_rate_bp": _bp(form, "royalty_rate"),
            "per_unit_fen": form.yuan("per_unit", max_fen=MAX_FEN, required=False) or 0,
            "minimum_annual_fen": form.yuan("minimum_annual", max_fen=MAX_FEN, required=False) or 0,
        }
        return await self._submit(
            request,
            pool,
            clock,
            me,
            form,
            "propose",
            case_id,
            lambda: act(
                ol.propose_open_licence,
                msgspec.convert(
                    {"case_id": case_id, "asset_id": asset_id, "terms": terms},
                    ol.ProposeOpenLicence,
                ),
            ),
        )

    @post(
        "/open-licences/{open_licence_id:int}/declaration",
        operation_id="web_pledgor_declare_open_licence",
        guards=SIGN,
    )
    async def declare(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        act: ActDep,
        open_licence_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        declared_on = form.date("declared_on")
        if not form.text("cnipa_number"):
            form.fail("cnipa_number", "required")
        return await self._submit(
            request,
            pool,
            clock,
            me,
            form,
            f"declare-{open_licence_id}",
            await pledgor.case_of(pool, me.org_id, open_licence_id=open_licence_id),
            lambda: act(
                ol.declare_open_licence,
                msgspec.convert(
                    {
                        "open_licence_id": open_licence_id,
                        "cnipa_number": form.text("cnipa_number"),
                        "declared_on": declared_on,
                    },
                    ol.DeclareOpenLicence,
                ),
            ),
        )

    @post(
        "/open-licences/{open_licence_id:int}/withdrawal",
        operation_id="web_pledgor_withdraw_open_licence",
        guards=SIGN,
    )
    async def withdraw(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        act: ActDep,
        open_licence_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        withdrawn_on = form.date("withdrawn_on")
        return await self._submit(
            request,
            pool,
            clock,
            me,
            form,
            f"withdraw-{open_licence_id}",
            await pledgor.case_of(pool, me.org_id, open_licence_id=open_licence_id),
            lambda: act(
                ol.withdraw_open_licence,
                msgspec.convert(
                    {"open_licence_id": open_licence_id, "withdrawn_on": withdrawn_on},
                    ol.WithdrawOpenLicence,
                ),
            ),
        )

    @post(
        "/contracts/{contract_id:int}/answer",
        operation_id="web_pledgor_answer_licence_back",
        guards=SIGN,
    )
    async def answer(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        act: ActDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        accept = form.text("answer") == "accept"
        return await self._submit(
            request,
            pool,
            clock,
            me,
            form,
            f"answer-{contract_id}",
            await pledgor.case_of(pool, me.org_id, contract_id=contract_id),
            lambda: act(
                pledgor.answer_licence_back,
                pledgor.AnswerContract(
                    contract_id=contract_id, accept=accept, reason=form.text("reason")
                ),
            ),
        )


async def _render(
    request: Request[Any, Any, Any],
    pool: PoolDep,
    clock: ClockDep,
    me: Viewer,
    case_id: int,
    *,
    form: Form | None = None,
    name: str | None = None,
    saved: str | None = None,
) -> Template:
    case = await pledgor.get_case(pool, me.org_id, case_id, china_today(clock.now()))
    return page(
        request,
        "pledgor/case.html",
        me,
        status_code=form.status if form is not None else 200,
        case=case,
        form=name,
        errors=form.errors if form is not None else {},
        values=form.values if form is not None else {},
        saved=saved,
        today=china_today(clock.now()),
    )


class BankOpenLicencePages(Controller):
    path = "/bank/open-licences"
    include_in_schema = False

    @post(
        "/{open_licence_id:int}/consent",
        operation_id="web_bank_consent_open_licence",
        guards=[allow(WRITE_COLLATERAL)],
    )
    async def consent(self, act: ActDep, open_licence_id: FromPath[int]) -> Redirect:
        done = await act(
            ol.consent_open_licence, ol.OpenLicenceRef(open_licence_id=open_licence_id)
        )
        return Redirect(f"/bank/cases/{done.case_id}?saved=1#licensing", status_code=303)


class OpenLicencePages(Controller):
    path = "/open-licences"
    include_in_schema = False

    @get("/", operation_id="web_open_licences")
    async def index(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template:
        today = china_today(clock.now())
        declared = await ol.page_public(pool, today, status="declared", cursor=None, limit=200)
        withdrawn = await ol.page_public(pool, today, status="withdrawn", cursor=None, limit=50)
        return page(
            request,
            "licensing/open_licences.html",
            viewer,
            declared=declared.items,
            withdrawn=withdrawn.items,
        )

    @get("/{open_licence_id:int}", operation_id="web_open_licence")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        open_licence_id: FromPath[int],
    ) -> Template:
        found = await ol.get_public(pool, open_licence_id, china_today(clock.now()))
        return page(request, "licensing/open_licence.html", viewer, licence=found, errors={})

    @post(
        "/{open_licence_id:int}/take",
        operation_id="web_take_open_licence",
        guards=[allow(TAKE_OPEN_LICENCE)],
    )
    async def take(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        act: ActDep,
        open_licence_id: FromPath[int],
    ) -> Template:
        form = await Form.read(request, me)
        contract = await form.submit(
            lambda: act(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_licence_id))
        )
        found = await ol.get_public(pool, open_licence_id, china_today(clock.now()))
        return page(
            request,
            "licensing/open_licence.html",
            me,
            status_code=200 if contract is not None else form.status,
            licence=found,
            contract=contract,
            errors=form.errors,
        )
