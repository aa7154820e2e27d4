"""The bank's case pages: the list, opening a case, and a case with its claim, collateral,
valuation, disclosure documents and lots. Bank users only; another bank's case is 404."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from market.accounts.models import Viewer
from market.cases import checklist, services
from market.cases.api import download
from market.cases.models import (
    AppraisalIn,
    CaseOut,
    ClaimChange,
    InternalIn,
    OpenCase,
    ValuationIn,
)
from market.cases.policy import CLAIM_PART_MAX_FEN, DEFAULT_VALUATION_POLICY
from market.cases.valuation import DEFAULT_DIMENSION_WEIGHTS, DEFAULT_INDICATOR_WEIGHTS, DIMENSIONS
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import AppError
from market.money import format_cny
from market.web import (
    REQUIRED,
    form_date,
    form_error,
    form_id,
    form_values,
    form_yuan,
    page,
    parse_id,
    require_org,
)

# Service field names → form field names (the forms take yuan, the services fen).
_FORM_FIELD = {
    "principal_fen": "principal",
    "interest_fen": "interest",
    "costs_fen": "costs",
    "value_fen": "value",
    "base_value_fen": "base_value",
}


def _bank(viewer: Viewer | None) -> Viewer:
    return require_org(viewer, "bank", "only an approved bank has disposal cases")


def _form_field(field: str | None) -> str:
    if not field:
        return "form"
    if field.startswith("scores."):
        return "score_" + field.removeprefix("scores.")
    return _FORM_FIELD.get(field, field)


def _yuan(fen: int) -> str:
    return format_cny(fen, symbol=False)


def _parse_yuan(
    values: dict[str, str], errors: dict[str, str], name: str, *, required: bool = True
) -> int | None:
    return form_yuan(values, errors, name, max_fen=CLAIM_PART_MAX_FEN, required=required)


async def _fields(request: Request[Any, Any, Any]) -> tuple[dict[str, str], list[int]]:
    """The form's text fields, and the ids of the assets ticked (`asset_ids`, repeated)."""
    values = await form_values(request)
    values.pop("asset_ids", None)
    form = await request.form()
    ids = [n for v in form.getall("asset_ids", []) if (n := parse_id(str(v))) is not None]
    return values, ids


def _convert_errors(exc: msgspec.ValidationError) -> dict[str, str]:
    field, message = form_error(exc)
    return {_form_field(field): message}


class CasePages(Controller):
    path = "/bank/cases"
    include_in_schema = False

    # --- list and new --------------------------------------------------------------------

    @get("/", operation_id="web_cases")
    async def index(
        self, request: Request[Any, Any, State], pool: PoolDep, viewer: ViewerDep
    ) -> Template:
        me = _bank(viewer)
        cases = await services.list_cases(pool, me.org_id, limit=500)
        return page(request, "cases/index.html", me, cases=cases)

    @get("/new", operation_id="web_new_case")
    async def new(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        loan_id: FromQuery[int | None] = None,
    ) -> Template:
        me = _bank(viewer)
        return await _render_new(request, pool, me, loan_id, values={}, chosen=None, errors={})

    @post("/new", operation_id="web_open_case")
    async def create(
        self, request: Request[Any, Any, State], pool: PoolDep, clock: ClockDep, viewer: ViewerDep
    ) -> Template | Redirect:
        me = _bank(viewer)
        values, asset_ids = await _fields(request)
        errors: dict[str, str] = {}
        status = 422
        loan_id = form_id(values, errors, "loan_id")
        principal = _parse_yuan(values, errors, "principal")
        interest = _parse_yuan(values, errors, "interest")
        costs = _parse_yuan(values, errors, "costs", required=False) or 0
        if not asset_ids:
            errors["asset_ids"] = "请至少选择一项质物 / choose at least one asset"
        if not errors:
            try:
                data = msgspec.convert(
                    {
                        "loan_id": loan_id,
                        "principal_fen": principal,
                        "interest_fen": interest,
                        "costs_fen": costs,
                        "asset_ids": asset_ids,
                        "notes": values.get("notes", ""),
                    },
                    OpenCase,
                )
                case = await services.open_case(
                    pool, clock.now(), bank_org_id=me.org_id, user_id=me.user_id, data=data
                )
            except msgspec.ValidationError as exc:
                errors = _convert_errors(exc)
            except AppError as exc:
                if exc.status == 404:
                    raise
                errors, status = {_form_field(exc.field): exc.message}, exc.status
            else:
                return Redirect(f"/bank/cases/{case.id}", status_code=303)
        return await _render_new(
            request,
            pool,
            me,
            loan_id,
            values=values,
            chosen=set(asset_ids),
            errors=errors,
            status_code=status,
        )

    # --- one case ------------------------------------------------------------------------

    @get("/{case_id:int}", operation_id="web_case")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        me = _bank(viewer)
        return await _render_case(request, pool, me, case_id, saved=bool(saved))

    @post("/{case_id:int}/claim", operation_id="web_change_claim")
    async def change_claim(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        values, _ids = await _fields(request)
        errors: dict[str, str] = {}
        status = 422
        principal = _parse_yuan(values, errors, "principal")
        interest = _parse_yuan(values, errors, "interest")
        costs = _parse_yuan(values, errors, "costs")
        if not errors:
            try:
                data = msgspec.convert(
                    {
                        "principal_fen": principal,
                        "interest_fen": interest,
                        "costs_fen": costs,
                        "notes": values.get("notes", ""),
                    },
                    ClaimChange,
                )
                await services.change_claim(
                    pool,
                    clock.now(),
                    bank_org_id=me.org_id,
                    user_id=me.user_id,
                    case_id=case_id,
                    data=data,
                )
            except msgspec.ValidationError as exc:
                errors = _convert_errors(exc)
            except AppError as exc:
                if exc.status == 404:
                    raise
                errors, status = {_form_field(exc.field): exc.message}, exc.status
            else:
                return Redirect(f"/bank/cases/{case_id}?saved=claim#claim", status_code=303)
        return await _render_case(
            request, pool, me, case_id, form="claim", errors=errors, values=values, status=status
        )

    @post("/{case_id:int}/valuations", operation_id="web_record_valuation")
    async def record_valuation(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        values, _ids = await _fields(request)
        method = values.get("method", "")
        form = "internal" if method == "internal" else "appraisal"
        errors: dict[str, str] = {}
        status = 422
        body = (
            _internal_body(values, errors)
            if form == "internal"
            else _appraisal_body(values, errors)
        )
        if not errors:
            try:
                data: ValuationIn = msgspec.convert(body, AppraisalIn | InternalIn)
                await services.record_valuation(
                    pool,
                    clock.now(),
                    bank_org_id=me.org_id,
                    user_id=me.user_id,
                    case_id=case_id,
                    data=data,
                )
            except msgspec.ValidationError as exc:
                errors = _convert_errors(exc)
            except AppError as exc:
                if exc.status == 404:
                    raise
                errors, status = {_form_field(exc.field): exc.message}, exc.status
            else:
                return Redirect(f"/bank/cases/{case_id}?saved=valuation#valuation", status_code=303)
        return await _render_case(
            request, pool, me, case_id, form=form, errors=errors, values=values, status=status
        )

    @post("/{case_id:int}/documents", operation_id="web_upload_document")
    async def upload(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        form = await request.form()
        item = str(form.get("item", ""))
        upload = form.get("file")
        errors: dict[str, str] = {}
        status = 422
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors["file"] = "请选择文件 / choose a file"
        else:
            try:
                await services.upload_document(
                    pool,
                    clock.now(),
                    bank_org_id=me.org_id,
                    user_id=me.user_id,
                    case_id=case_id,
                    item=item,
                    filename=upload.filename,
                    content=await upload.read(),
                )
            except AppError as exc:
                if exc.status == 404:
                    raise
                errors, status = {exc.field or "file": exc.message}, exc.status
            else:
                return Redirect(f"/bank/cases/{case_id}?saved=document#disclosure", status_code=303)
        return await _render_case(
            request, pool, me, case_id, form=f"doc.{item}", errors=errors, status=status
        )

    @post("/{case_id:int}/documents/{document_id:int}/remove", operation_id="web_remove_document")
    async def remove(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
        document_id: FromPath[int],
    ) -> Template | Redirect:
        me = _bank(viewer)
        try:
            await services.remove_document(
                pool,
                clock.now(),
                bank_org_id=me.org_id,
                user_id=me.user_id,
                case_id=case_id,
                document_id=document_id,
            )
        except AppError as exc:
            if exc.status == 404:
                raise
            return await _render_case(
                request,
                pool,
                me,
                case_id,
                form="documents",
                errors={"form": exc.message},
                status=exc.status,
            )
        return Redirect(f"/bank/cases/{case_id}?saved=document#disclosure", status_code=303)

    @get("/{case_id:int}/documents/{document_id:int}", operation_id="web_download_document")
    async def download(
        self, pool: PoolDep, viewer: ViewerDep, case_id: FromPath[int], document_id: FromPath[int]
    ) -> Stream:
        me = _bank(viewer)
        return download(pool, await services.find_document(pool, me.org_id, case_id, document_id))


# --- form bodies ------------------------------------------------------------------------


def _appraisal_body(values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    for name in ("appraiser", "report_no"):
        if not values.get(name, "").strip():
            errors[name] = REQUIRED
    value = _parse_yuan(values, errors, "value")
    valued_on = form_date(values, errors, "valued_on")
    return {
        "method": "appraisal",
        "appraiser": values.get("appraiser", "").strip(),
        "report_no": values.get("report_no", "").strip(),
        "value_fen": value,
        "valued_on": valued_on.isoformat() if valued_on else None,
    }


def _internal_body(values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    base = _parse_yuan(values, errors, "base_value")
    if not values.get("basis", "").strip():
        errors["basis"] = REQUIRED
    scores: dict[str, int] = {}
    for key in DEFAULT_INDICATOR_WEIGHTS:
        text = values.get(f"score_{key}", "").strip()
        if text.isascii() and text.isdigit() and int(text) <= 100:
            scores[key] = int(text)
        else:
            errors[f"score_{key}"] = "评分为 0–100 的整数 / a whole number 0–100"
    return {
        "method": "internal",
        "base_value_fen": base,
        "basis": values.get("basis", "").strip(),
        "scores": scores,
    }


# --- rendering --------------------------------------------------------------------------


async def _render_new(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    me: Viewer,
    loan_id: int | None,
    *,
    values: dict[str, str],
    chosen: set[int] | None,
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    loans = await services.defaulted_loans(pool, me.org_id)
    loan: asyncpg.Record | None = None
    assets: list[asyncpg.Record] = []
    if loan_id is not None:
        loan, assets = await services.loan_for_new_case(pool, me.org_id, loan_id)
        values = {
            "principal": _yuan(loan["outstanding_principal_fen"]),
            "interest": _yuan(loan["outstanding_interest_fen"]),
            "costs": "0.00",
            **values,
        }
    return page(
        request,
        "cases/new.html",
        me,
        status_code=status_code,
        loans=loans,
        loan=loan,
        assets=assets,
        chosen={a["id"] for a in assets} if chosen is None else chosen,
        values=values,
        errors=errors,
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
    saved: bool = False,
    status: int = 422,
) -> Template:
    case: CaseOut = await services.get_case(pool, me.org_id, case_id)
    errors = errors or {}
    claim_values = {
        "principal": _yuan(case.claim.principal_fen),
        "interest": _yuan(case.claim.interest_fen),
        "costs": _yuan(case.claim.costs_fen),
        "notes": case.notes,
    }
    if form == "claim" and values:
        claim_values.update(values)
    return page(
        request,
        "cases/show.html",
        me,
        status_code=status if errors else 200,
        case=case,
        form=form,
        errors=errors,
        values=values or {},
        claim_values=claim_values,
        saved=saved,
        items=checklist.BY_KEY,
        dimensions=DIMENSIONS,
        dimension_weights=DEFAULT_DIMENSION_WEIGHTS,
        indicator_weights=DEFAULT_INDICATOR_WEIGHTS,
        internal_allowed=case.claim.total_fen < DEFAULT_VALUATION_POLICY.internal_max_claim_fen,
        docs_by_item={
            key: [d for d in case.documents if d.item == key] for key in case.disclosure.required
        },
    )
