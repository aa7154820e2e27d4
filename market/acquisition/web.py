"""Disposal by agreement's pages (docs/rules.md §Acquisition and pledge-to-equity), thin
adapters over the commands the API runs (market/acquisition/api.py).

* /bank/cases/{id}/agreed-disposals — the bank's section of its case: the attempts, what
  it owes and the reference to pay it with, the equity held, the consent and appraisal
  documents, and the forms to propose an acquisition or a pledge-to-equity and to withdraw;
* /agreed-disposals — the attempts an organisation is party to: a pool manager's (with the
  objection form while the window runs) and an acquirer's (with the forms to accept or
  decline being the taker by its deadline);
* /operator/agreed-disposals — every attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.permissions import (
    OBJECT_TO_AGREEMENT,
    OPERATE,
    PROPOSE_AGREEMENT,
    READ_AGREEMENTS,
    TAKE_AGREEMENT,
    allow,
)
from market.acquisition import agreement
from market.acquisition.agreement import AcquisitionIn, EquityIn, Propose
from market.db import Queries
from market.deps import ActDep, MeDep, PoolDep
from market.money import MAX_FEN
from market.web import Form, page

Q = Queries("acquisition")

# Service field names → form field names (the forms take yuan, the services fen).
FIELDS: dict[str, str] = {
    "amount_fen": "amount",
    "appraised_fen": "appraised",
    "consent_document_id": "consent",
    "taker_org_id": "taker",
    "appraisal_document_id": "appraisal",
    "equity_percent": "percent",
    "equity_shares": "shares",
    "case_id": "form",
    "disposal_id": "form",
}


async def _case_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    case_id: int,
    *,
    which: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    async with pool.acquire() as conn:
        found = await agreement.of_case(conn, me.org_id, case_id)
        docs = await conn.fetch(
            Q.private_documents, case_id, [agreement.CONSENT_ITEM, agreement.APPRAISAL_ITEM]
        )
    return page(
        request,
        "acquisition/case.html",
        me,
        status_code=status_code,
        view=found,
        pending=any(a.status == "pending" for a in found.agreements),
        consents=[d for d in docs if d["item"] == agreement.CONSENT_ITEM],
        appraisals=[d for d in docs if d["item"] == agreement.APPRAISAL_ITEM],
        items=(agreement.CONSENT_ITEM, agreement.APPRAISAL_ITEM),
        form=which,
        errors=errors or {},
        values=values or {},
    )


async def _submit(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    case_id: int,
    which: str,
    form: Form,
    call: Callable[[], Awaitable[object]],
) -> Template | Redirect:
    done = await form.submit(call)
    if done is None:
        return await _case_page(
            request,
            pool,
            me,
            case_id,
            which=which,
            errors=form.errors,
            values=form.values,
            status_code=form.status,
        )
    return Redirect(f"/bank/cases/{case_id}/agreed-disposals", status_code=303)


class BankAgreementPages(Controller):
    path = "/bank"
    include_in_schema = False

    @get(
        "/cases/{case_id:int}/agreed-disposals",
        operation_id="web_case_agreed_disposals",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def show(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep, case_id: FromPath[int]
    ) -> Template:
        """The case's attempts, the equity held, the documents and the forms."""
        return await _case_page(request, pool, me, case_id)

    @post(
        "/cases/{case_id:int}/agreed-disposals/acquisition",
        operation_id="web_propose_acquisition",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def acquisition(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        amount = form.yuan("amount", max_fen=MAX_FEN)
        consent = form.id("consent")
        taker = form.id("taker", required=False)

        async def call() -> object:
            assert amount is not None and consent is not None
            offer = AcquisitionIn(
                amount_fen=amount, consent_document_id=consent, taker_org_id=taker
            )
            return await act(agreement.propose, Propose(case_id=case_id, offer=offer))

        return await _submit(request, pool, me, case_id, "acquisition", form, call)

    @post(
        "/cases/{case_id:int}/agreed-disposals/equity",
        operation_id="web_propose_equity_conversion",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def equity(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        amount = form.yuan("amount", max_fen=MAX_FEN)
        appraised = form.yuan("appraised", max_fen=MAX_FEN)
        consent = form.id("consent")
        appraisal = form.id("appraisal")
        valued_on = form.date("valued_on")
        shares = form.id("shares", required=False)
        raw = {
            "amount_fen": amount,
            "consent_document_id": consent,
            "appraisal_document_id": appraisal,
            "appraiser": form.text("appraiser"),
            "report_no": form.text("report_no"),
            "appraised_fen": appraised,
            "valued_on": valued_on.isoformat() if valued_on else None,
            "equity_percent": form.text("percent") or None,
            "equity_shares": shares,
        }

        async def call() -> object:
            offer = msgspec.convert(raw, EquityIn, strict=False)
            return await act(agreement.propose, Propose(case_id=case_id, offer=offer))

        return await _submit(request, pool, me, case_id, "equity", form, call)

    @post(
        "/agreed-disposals/{disposal_id:int}/withdrawal",
        operation_id="web_withdraw_agreed_disposal",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def withdraw(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        disposal_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        async with pool.acquire() as conn:
            case_id = (await agreement.visible(conn, me.org_id, disposal_id))["case_id"]
        data = agreement.Withdraw(disposal_id=disposal_id)
        return await _submit(
            request, pool, me, case_id, "", form, lambda: act(agreement.withdraw, data)
        )


async def _list_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    failed: int | None = None,
    status_code: int = 200,
) -> Template:
    async with pool.acquire() as conn:
        rows = await agreement.listed(conn, me.org_id, me.org_kind)
    return page(
        request,
        "acquisition/list.html",
        me,
        status_code=status_code,
        rows=rows,
        operator=me.org_kind == "operator",
        may_object=me.org_kind == "pool",
        may_answer=me.org_kind == "acquirer",
        failed=failed,
        errors=errors or {},
        values=values or {},
    )


async def _answer_on_list(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    disposal_id: int,
    form: Form,
    call: Callable[[], Awaitable[object]],
) -> Template | Redirect:
    """A party's objection or answer: back to the list, or the list with the refusal
    beside the attempt it was about."""
    if await form.submit(call) is None:
        return await _list_page(
            request,
            pool,
            me,
            errors=form.errors,
            values=form.values,
            failed=disposal_id,
            status_code=form.status,
        )
    return Redirect("/agreed-disposals", status_code=303)


class AgreementPages(Controller):
    include_in_schema = False

    @get(
        "/agreed-disposals",
        operation_id="web_agreed_disposals",
        guards=[allow(READ_AGREEMENTS)],
    )
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        """The attempts the organisation is party to; a pool manager's objection forms."""
        return await _list_page(request, pool, me)

    @post(
        "/agreed-disposals/{disposal_id:int}/objection",
        operation_id="web_object_to_agreed_disposal",
        guards=[allow(OBJECT_TO_AGREEMENT)],
    )
    async def objection(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        disposal_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        data = agreement.Object(disposal_id=disposal_id, reason=form.text("reason"))
        return await _answer_on_list(
            request, pool, me, disposal_id, form, lambda: act(agreement.object_to, data)
        )

    @post(
        "/agreed-disposals/{disposal_id:int}/answer",
        operation_id="web_answer_agreed_disposal",
        guards=[allow(TAKE_AGREEMENT)],
    )
    async def answer(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        disposal_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        decision = form.text("decision")

        async def call() -> object:
            data = msgspec.convert(
                {"disposal_id": disposal_id, "decision": decision}, agreement.Answer
            )
            return await act(agreement.answer, data)

        return await _answer_on_list(request, pool, me, disposal_id, form, call)

    @get(
        "/operator/agreed-disposals",
        operation_id="web_operator_agreed_disposals",
        guards=[allow(OPERATE)],
    )
    async def operator(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep
    ) -> Template:
        """Every attempt on the exchange."""
        return await _list_page(request, pool, me)
