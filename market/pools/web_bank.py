"""The bank's guarantee-pool pages: its enrolled loans by pool, enrolment, claim previews
with their explanation, filing a claim, the claim history, write-off, and per case the
disposal costs, closing, and where each fen of every receipt landed. Another bank's loan
or case is 404.

And the operator's page to record a receipt that is not a sale (licence fee, royalty,
other) on a case, and to reverse a receipt.

Each form runs one command; a refused form is shown again with the reason next to the
field, in the page's language (4xx), and writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.accounts.permissions import OPERATE, READ_BANK_POOLS, WRITE_BANK_POOLS, allow
from market.cases.policy import CLAIM_PART_MAX_FEN
from market.cases.services import china_today
from market.clock import Clock
from market.deps import ActDep, ClockDep, MeDep, PoolDep
from market.pools import bank
from market.pools.bank import COST_KINDS, MANUAL_KINDS, Q
from market.pools.rule_text import Words
from market.transfer import escrow
from market.web import Form, language, page

SAVED = frozenset(
    {"enrolled", "claim", "written_off", "cost", "closed", "recorded", "same", "reversed"}
)


class BankPoolPages(Controller):
    path = "/bank/pools"
    include_in_schema = False

    @get("/", operation_id="web_bank_pools", cache=False, guards=[allow(READ_BANK_POOLS)])
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await _render_index(request, pool, clock, me, saved=saved)

    @post("/enrolments", operation_id="web_bank_pools_enrol", guards=[allow(WRITE_BANK_POOLS)])
    async def enrol(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        loan_id = form.id("loan_id")
        code = form.text("pool_code").upper()
        if not code:
            form.fail("pool_code", "required")
        data = {"loan_id": loan_id, "pool_code": code, "renewal": "renewal" in form.values}
        done = await form.submit(lambda: act(bank.enrol_loan, msgspec.convert(data, bank.EnrolIn)))
        if done is not None:
            return Redirect("/bank/pools?saved=enrolled#loans", status_code=303)
        return await _render_index(request, pool, clock, me, form="enrol", refused=form)

    @post(
        "/loans/{loan_id:int}/claims",
        operation_id="web_bank_pools_file_claim",
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def file_claim(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
        loan_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields={"loan_id": "form"})
        done = await form.submit(lambda: act(bank.file_claim, loan_id))
        if done is not None:
            return Redirect(f"/bank/pools?saved=claim#loan-{loan_id}", status_code=303)
        return await _render_index(request, pool, clock, me, form=f"claim.{loan_id}", refused=form)

    @post(
        "/loans/{loan_id:int}/write-off",
        operation_id="web_bank_pools_write_off",
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def write_off(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
        loan_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields={"loan_id": "form"})
        on = form.date("written_off_on")
        data = {"loan_id": loan_id, "written_off_on": on}
        done = await form.submit(lambda: act(bank.write_off, msgspec.convert(data, bank.WriteOff)))
        if done is not None:
            return Redirect(f"/bank/pools?saved=written_off#loan-{loan_id}", status_code=303)
        return await _render_index(
            request, pool, clock, me, form=f"writeoff.{loan_id}", refused=form
        )

    # --- one case: costs, closing, receipts ----------------------------------------------

    @get(
        "/cases/{case_id:int}",
        operation_id="web_bank_pool_case",
        cache=False,
        guards=[allow(READ_BANK_POOLS)],
    )
    async def case(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        clock: ClockDep,
        case_id: FromPath[int],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await _render_case(request, pool, me, clock.now(), case_id, saved=saved)

    @post(
        "/cases/{case_id:int}/costs",
        operation_id="web_bank_pool_case_cost",
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def add_cost(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        clock: ClockDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields={"amount_fen": "amount"})
        amount = form.yuan("amount", max_fen=CLAIM_PART_MAX_FEN)
        data = {
            "case_id": case_id,
            "kind": form.text("kind"),
            "amount_fen": amount,
            "memo": form.text("memo"),
        }
        done = await form.submit(
            lambda: act(bank.record_case_cost, msgspec.convert(data, bank.CaseCost))
        )
        if done is not None:
            return Redirect(f"/bank/pools/cases/{case_id}?saved=cost#costs", status_code=303)
        return await _render_case(
            request, pool, me, clock.now(), case_id, form="cost", refused=form
        )

    @post(
        "/cases/{case_id:int}/close",
        operation_id="web_bank_pool_case_close",
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def close(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        clock: ClockDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        done = await form.submit(lambda: act(bank.close_case, case_id))
        if done is not None:
            return Redirect(f"/bank/pools/cases/{case_id}?saved=closed", status_code=303)
        return await _render_case(
            request, pool, me, clock.now(), case_id, form="close", refused=form
        )


class OperatorReceiptPages(Controller):
    path = "/operator/pools/receipts"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("/", operation_id="web_operator_receipts", cache=False)
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await _render_operator(request, pool, me, saved=saved)

    @post("/", operation_id="web_operator_record_receipt")
    async def record(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template | Redirect:
        form = await Form.read(
            request, me, fields={"amount_fen": "amount", "commission_fen": "commission"}
        )
        case_reference = form.text("case_reference")
        if not case_reference:
            form.fail("case_reference", "required")
        amount = form.yuan("amount", max_fen=CLAIM_PART_MAX_FEN)
        commission = form.yuan("commission", max_fen=CLAIM_PART_MAX_FEN, required=False)
        data = {
            "case_reference": case_reference,
            "kind": form.text("kind"),
            "reference": form.text("reference"),
            "amount_fen": amount,
            "commission_fen": commission or 0,
        }
        done = await form.submit(
            lambda: act(bank.record_receipt, msgspec.convert(data, bank.ManualReceipt))
        )
        if done is not None:
            outcome = "recorded" if done.created else "same"
            return Redirect(
                f"/operator/pools/receipts?saved={outcome}#receipt-{done.receipt.id}",
                status_code=303,
            )
        return await _render_operator(request, pool, me, form="record", refused=form)

    @post("/{receipt_id:int}/reverse", operation_id="web_operator_reverse_receipt")
    async def reverse(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        receipt_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        data = {"receipt_id": receipt_id, "reason": form.text("reason")}
        done = await form.submit(
            lambda: act(bank.reverse_receipt, msgspec.convert(data, bank.ReverseReceipt))
        )
        if done is not None:
            return Redirect(
                f"/operator/pools/receipts?saved=reversed#receipt-{receipt_id}", status_code=303
            )
        return await _render_operator(request, pool, me, form=f"reverse.{receipt_id}", refused=form)


# --- rendering --------------------------------------------------------------------------


def _form_context(form: str | None, refused: Form | None, saved: str | None) -> dict[str, Any]:
    """What the pages' forms read: which form was refused, its errors and values."""
    return {
        "form": form,
        "errors": refused.errors if refused else {},
        "values": refused.values if refused else {},
        "saved": saved if saved in SAVED else None,
    }


async def _render_index(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    clock: Clock,
    me: Viewer,
    *,
    form: str | None = None,
    refused: Form | None = None,
    saved: str | None = None,
) -> Template:
    now = clock.now()
    async with pool.acquire() as conn:
        loans = await bank.enrolled_loans(conn, me.org_id)
        previews = {
            loan.loan_id: await bank.preview(conn, now, me.org_id, loan.loan_id, loan.claims)
            for loan in loans
            if loan.default_date is not None
        }
        enrollable = await conn.fetch(Q.enrollable_loans, me.org_id)
        pools = await conn.fetch(Q.pool_choices)
        cases = await conn.fetch(Q.cases_of_bank, me.org_id)
        held = await escrow.held_for_bank(conn, me.org_id)
    return page(
        request,
        "pools/bank_pools.html",
        me,
        held=held,
        status_code=refused.status if refused else 200,
        loans=loans,
        previews=previews,
        enrollable=enrollable,
        pools=pools,
        cases=cases,
        today=china_today(now).isoformat(),
        say=Words(language(request, me)),
        **_form_context(form, refused, saved),
    )


async def _render_case(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    me: Viewer,
    at: datetime,
    case_id: int,
    *,
    form: str | None = None,
    refused: Form | None = None,
    saved: str | None = None,
) -> Template:
    async with pool.acquire() as conn:
        case = await bank.case_money(conn, me.org_id, case_id, at)
    return page(
        request,
        "pools/bank_case.html",
        me,
        status_code=refused.status if refused else 200,
        case=case,
        cost_kinds=COST_KINDS,
        say=Words(language(request, me)),
        **_form_context(form, refused, saved),
    )


async def _render_operator(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    form: str | None = None,
    refused: Form | None = None,
    saved: str | None = None,
) -> Template:
    async with pool.acquire() as conn:
        receipts = await bank.recent_receipts(conn)
        cases = await conn.fetch(Q.open_case_references)
    return page(
        request,
        "pools/bank_operator_receipts.html",
        me,
        status_code=refused.status if refused else 200,
        receipts=receipts,
        cases=cases,
        kinds=MANUAL_KINDS,
        say=Words(language(request, me)),
        **_form_context(form, refused, saved),
    )
