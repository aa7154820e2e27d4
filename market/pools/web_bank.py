"""The bank's guarantee-pool pages (issue 6): its enrolled loans by pool, enrolment, claim
previews with their explanation, filing a claim, the claim history, write-off, and per
case the disposal costs, closing, and where each fen of every receipt landed. Bank users
only; another bank's loan or case is 404.

And the operator's page to record a receipt that is not a sale (licence fee, royalty,
other) on a case, and to reverse a receipt. Operator users only.

Each form posts to one service call in one transaction with its audit row; a refused
form is shown again with the message next to the field (4xx) and writes nothing.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.cases.policy import CLAIM_PART_MAX_FEN
from market.cases.services import china_today
from market.clock import Clock
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import AppError, Invalid
from market.pools import bank, services
from market.pools.bank import COST_KINDS, MANUAL_KINDS, REASON_MAX, Q, ReceiptIn
from market.problems import field_of as field_of_msgspec
from market.web import (
    REQUIRED,
    form_date,
    form_id,
    form_values,
    form_yuan,
    page,
    require_org,
)

SAVED = frozenset(
    {"enrolled", "claim", "written_off", "cost", "closed", "recorded", "same", "reversed"}
)

# Service field names → form field names (the forms take yuan, the services fen).
_FORM_FIELD = {"amount_fen": "amount", "commission_fen": "commission"}


def _bank(viewer: Viewer | None) -> Viewer:
    return require_org(viewer, "bank", "only approved banks enrol loans in guarantee pools")


def _operator(viewer: Viewer | None) -> Viewer:
    return require_org(viewer, "operator", "only the exchange operator records receipts")


def _field(field: str | None, default: str = "form") -> str:
    return _FORM_FIELD.get(field or "", field or default)


def _yuan(
    values: dict[str, str], errors: dict[str, str], name: str, *, required: bool = True
) -> int | None:
    return form_yuan(values, errors, name, max_fen=CLAIM_PART_MAX_FEN, required=required)


class BankPoolPages(Controller):
    path = "/bank/pools"
    include_in_schema = False

    @get("/", operation_id="web_bank_pools", cache=False)
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        me = _bank(viewer)
        return await _render_index(request, pool, clock, me, saved=saved)

    @post("/enrolments", operation_id="web_bank_pools_enrol")
    async def enrol(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template | Redirect:
        me = _bank(viewer)
        values = await form_values(request)
        errors: dict[str, str] = {}
        status = 422
        loan_id = form_id(values, errors, "loan_id")
        code = values.get("pool_code", "").strip().upper()
        if not code:
            errors["pool_code"] = REQUIRED
        if not errors and loan_id is not None:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await services.enrol(
                        conn,
                        at=clock.now(),
                        bank_org_id=me.org_id,
                        user_id=me.user_id,
                        loan_id=loan_id,
                        pool_code=code,
                        renewal=values.get("renewal") in ("on", "true", "1"),
                    )
            except AppError as exc:
                if exc.status == 404 and exc.field is None:
                    raise
                errors, status = {_field(exc.field, "loan_id"): exc.message}, exc.status
            else:
                return Redirect("/bank/pools?saved=enrolled#loans", status_code=303)
        return await _render_index(
            request, pool, clock, me, form="enrol", errors=errors, values=values, status=status
        )

    @post("/loans/{loan_id:int}/claims", operation_id="web_bank_pools_file_claim")
    async def file_claim(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        loan_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await services.file_claim(
                    conn, at=clock.now(), bank_org_id=me.org_id, user_id=me.user_id, loan_id=loan_id
                )
        except AppError as exc:
            if exc.status == 404:
                raise
            return await _render_index(
                request,
                pool,
                clock,
                me,
                form=f"claim.{loan_id}",
                errors={"form": exc.message},
                status=exc.status,
            )
        return Redirect(f"/bank/pools?saved=claim#loan-{loan_id}", status_code=303)

    @post("/loans/{loan_id:int}/write-off", operation_id="web_bank_pools_write_off")
    async def write_off(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        loan_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        values = await form_values(request)
        errors: dict[str, str] = {}
        status = 422
        on = form_date(values, errors, "written_off_on")
        if on is not None:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await services.write_off(
                        conn,
                        at=clock.now(),
                        bank_org_id=me.org_id,
                        user_id=me.user_id,
                        loan_id=loan_id,
                        on=on,
                    )
            except AppError as exc:
                if exc.status == 404:
                    raise
                field = exc.field if exc.field == "written_off_on" else "form"
                errors, status = {field: exc.message}, exc.status
            else:
                return Redirect(f"/bank/pools?saved=written_off#loan-{loan_id}", status_code=303)
        return await _render_index(
            request,
            pool,
            clock,
            me,
            form=f"writeoff.{loan_id}",
            errors=errors,
            values=values,
            status=status,
        )

    # --- one case: costs, closing, receipts ----------------------------------------------

    @get("/cases/{case_id:int}", operation_id="web_bank_pool_case", cache=False)
    async def case(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        me = _bank(viewer)
        return await _render_case(request, pool, me, case_id, saved=saved)

    @post("/cases/{case_id:int}/costs", operation_id="web_bank_pool_case_cost")
    async def add_cost(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        values = await form_values(request)
        errors: dict[str, str] = {}
        status = 422
        kind = values.get("kind", "")
        if kind not in COST_KINDS:
            errors["kind"] = "appraisal / auction / other"
        amount = _yuan(values, errors, "amount")
        memo = values.get("memo", "").strip()
        if len(memo) > 500:
            errors["memo"] = "≤ 500"
        if not errors and amount is not None:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await services.add_cost(
                        conn,
                        at=clock.now(),
                        bank_org_id=me.org_id,
                        user_id=me.user_id,
                        case_id=case_id,
                        kind=kind,
                        amount_fen=amount,
                        memo=memo,
                    )
            except AppError as exc:
                if exc.status == 404:
                    raise
                errors, status = {_field(exc.field): exc.message}, exc.status
            else:
                return Redirect(f"/bank/pools/cases/{case_id}?saved=cost#costs", status_code=303)
        return await _render_case(
            request, pool, me, case_id, form="cost", errors=errors, values=values, status=status
        )

    @post("/cases/{case_id:int}/close", operation_id="web_bank_pool_case_close")
    async def close(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await services.close_case(
                    conn, at=clock.now(), bank_org_id=me.org_id, user_id=me.user_id, case_id=case_id
                )
        except AppError as exc:
            if exc.status == 404:
                raise
            return await _render_case(
                request,
                pool,
                me,
                case_id,
                form="close",
                errors={"form": exc.message},
                status=exc.status,
            )
        return Redirect(f"/bank/pools/cases/{case_id}?saved=closed", status_code=303)


class OperatorReceiptPages(Controller):
    path = "/operator/pools/receipts"
    include_in_schema = False

    @get("/", operation_id="web_operator_receipts", cache=False)
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        me = _operator(viewer)
        return await _render_operator(request, pool, me, saved=saved)

    @post("/", operation_id="web_operator_record_receipt")
    async def record(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template | Redirect:
        me = _operator(viewer)
        values = await form_values(request)
        errors: dict[str, str] = {}
        status = 422
        case_reference = values.get("case_reference", "").strip()
        if not case_reference:
            errors["case_reference"] = REQUIRED
        kind = values.get("kind", "")
        if kind not in MANUAL_KINDS:
            errors["kind"] = "licence_fee / royalty / other"
        if not values.get("reference", "").strip():
            errors["reference"] = REQUIRED
        amount = _yuan(values, errors, "amount")
        commission = _yuan(values, errors, "commission", required=False) or 0
        if not errors:
            try:
                data = msgspec.convert(
                    {
                        "kind": kind,
                        "reference": values.get("reference", "").strip(),
                        "amount_fen": amount,
                        "commission_fen": commission,
                    },
                    ReceiptIn,
                )
                async with pool.acquire() as conn, conn.transaction():
                    receipt, created = await bank.record_manual_receipt(
                        conn,
                        at=clock.now(),
                        operator_org_id=me.org_id,
                        operator_user_id=me.user_id,
                        case_id=None,
                        case_reference=case_reference,
                        data=data,
                    )
            except msgspec.ValidationError as exc:
                errors = {_field(field_of_msgspec(str(exc))): str(exc)}
            except AppError as exc:
                errors, status = {_field(exc.field): exc.message}, exc.status
            else:
                outcome = "recorded" if created else "same"
                return Redirect(
                    f"/operator/pools/receipts?saved={outcome}#receipt-{receipt['id']}",
                    status_code=303,
                )
        return await _render_operator(
            request, pool, me, form="record", errors=errors, values=values, status=status
        )

    @post("/{receipt_id:int}/reverse", operation_id="web_operator_reverse_receipt")
    async def reverse(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        receipt_id: FromPath[int],
    ) -> Template | Redirect:
        me = _operator(viewer)
        values = await form_values(request)
        reason = values.get("reason", "").strip()
        try:
            if not reason:
                raise Invalid("请说明冲正原因 / say why the receipt is reversed", field="reason")
            if len(reason) > REASON_MAX:
                raise Invalid(
                    f"冲正原因最多 {REASON_MAX} 个字符 / "
                    f"a reason has at most {REASON_MAX} characters",
                    field="reason",
                )
            async with pool.acquire() as conn, conn.transaction():
                await services.reverse_receipt(
                    conn,
                    at=clock.now(),
                    receipt_id=receipt_id,
                    actor_user_id=me.user_id,
                    reason=reason,
                )
        except AppError as exc:
            if exc.status == 404:
                raise
            return await _render_operator(
                request,
                pool,
                me,
                form=f"reverse.{receipt_id}",
                errors={exc.field or "form": exc.message},
                values=values,
                status=exc.status,
            )
        return Redirect(
            f"/operator/pools/receipts?saved=reversed#receipt-{receipt_id}", status_code=303
        )


# --- rendering --------------------------------------------------------------------------


async def _render_index(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    clock: Clock,
    me: Viewer,
    *,
    form: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    saved: str | None = None,
    status: int = 422,
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
    errors = errors or {}
    return page(
        request,
        "pools/bank_pools.html",
        me,
        status_code=status if errors else 200,
        loans=loans,
        previews=previews,
        enrollable=enrollable,
        pools=pools,
        cases=cases,
        today=china_today(now).isoformat(),
        form=form,
        errors=errors,
        values=values or {},
        saved=saved if saved in SAVED else None,
    )


async def _render_case(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    me: Viewer,
    case_id: int,
    *,
    form: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    saved: str | None = None,
    status: int = 422,
) -> Template:
    async with pool.acquire() as conn:
        case = await bank.case_money(conn, me.org_id, case_id)
    errors = errors or {}
    return page(
        request,
        "pools/bank_case.html",
        me,
        status_code=status if errors else 200,
        case=case,
        cost_kinds=COST_KINDS,
        form=form,
        errors=errors,
        values=values or {},
        saved=saved if saved in SAVED else None,
    )


async def _render_operator(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    form: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    saved: str | None = None,
    status: int = 422,
) -> Template:
    async with pool.acquire() as conn:
        receipts = await conn.fetch(Q.recent_receipts, 200)
        cases = await conn.fetch(Q.open_case_references)
    errors = errors or {}
    return page(
        request,
        "pools/bank_operator_receipts.html",
        me,
        status_code=status if errors else 200,
        receipts=receipts,
        cases=cases,
        kinds=MANUAL_KINDS,
        form=form,
        errors=errors,
        values=values or {},
        saved=saved if saved in SAVED else None,
    )
