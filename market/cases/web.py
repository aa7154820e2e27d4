"""The bank's case pages: the list, opening a case, and a case with its claim, collateral,
valuation, disclosure documents and lots. Bank users only (READ_COLLATERAL to see,
WRITE_COLLATERAL to change); another bank's case is 404."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from market.accounts.models import Viewer
from market.accounts.permissions import OPERATE, READ_COLLATERAL, WRITE_COLLATERAL, allow
from market.cases import checklist, paths, services
from market.cases.api import download
from market.cases.models import (
    CaseOut,
    ChangeClaim,
    DocumentOut,
    OpenCase,
    RecordValuation,
    RemoveDocument,
    UploadDocument,
    ValuationIn,
    ValuationOut,
)
from market.cases.policy import CLAIM_PART_MAX_FEN, DEFAULT_VALUATION_POLICY, MovesPolicy
from market.cases.services import china_today
from market.cases.valuation import (
    DEFAULT_DIMENSION_WEIGHTS,
    DEFAULT_INDICATOR_WEIGHTS,
    DIMENSIONS,
    INDICATORS,
    MIN_BASE_FEN,
    SCORE_MAX,
    render,
)
from market.deps import ActDep, ClockDep, MeDep, PoolDep, SettingsDep
from market.licensing.open_licence import open_licences_of_case
from market.money import format_cny
from market.settings import Settings
from market.web import Form, language, page

READ = [allow(READ_COLLATERAL)]
WRITE = [allow(WRITE_COLLATERAL)]

# Service field names → form field names (the forms take yuan, the services fen). An
# upload's `item` is a hidden field: a refusal of it is shown above the form.
FIELDS: dict[str, str] = {
    "principal_fen": "principal",
    "interest_fen": "interest",
    "costs_fen": "costs",
    "value_fen": "value",
    "base_value_fen": "base_value",
    "item": "form",
    **{f"scores.{key}": f"score_{key}" for key in INDICATORS},
}


def _moves(settings: Settings) -> tuple[MovesPolicy, dict[str, int | float]]:
    """The exchange's windows for the next paths (the lots' terms policy carries them),
    and the rules' numbers the paths' labels name (docs/rules.md §Moving between paths)."""
    from market.lots.lifecycle import percent  # the lots build on the cases area
    from market.lots.services import policy_for

    policy = policy_for(settings)
    return policy.moves, {
        "retry_days": policy.moves.retry_within_days,
        "fixed_days": policy.moves.fixed_price_within_days,
        "max_pct": percent(policy.relist_max_reduction_bp),
        "working_days": policy.listing.extension_working_days,
    }


def _yuan(fen: int) -> str:
    return format_cny(fen, symbol=False)


class CasePages(Controller):
    path = "/bank/cases"
    include_in_schema = False

    # --- list and new --------------------------------------------------------------------

    @get("/", operation_id="web_cases", guards=READ)
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        cases = await services.list_cases(pool, me.org_id, limit=500)
        return page(request, "cases/index.html", me, cases=cases)

    @get("/new", operation_id="web_new_case", guards=READ)
    async def new(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        loan_id: FromQuery[int | None] = None,
    ) -> Template:
        return await _render_new(request, pool, me, loan_id, values={}, chosen=None, errors={})

    @post("/new", operation_id="web_open_case", guards=WRITE)
    async def create(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        loan_id = form.id("loan_id")
        principal = form.yuan("principal", max_fen=CLAIM_PART_MAX_FEN)
        interest = form.yuan("interest", max_fen=CLAIM_PART_MAX_FEN)
        costs = form.yuan("costs", max_fen=CLAIM_PART_MAX_FEN, required=False) or 0
        asset_ids = form.ids("asset_ids")
        if not asset_ids:
            form.fail("asset_ids", "no_assets_chosen")
        body = {
            "loan_id": loan_id,
            "principal_fen": principal,
            "interest_fen": interest,
            "costs_fen": costs,
            "asset_ids": asset_ids,
            "notes": form.values.get("notes", ""),
        }
        case = await form.submit(lambda: act(services.open_case, msgspec.convert(body, OpenCase)))
        if case is not None:
            return Redirect(f"/bank/cases/{case.id}", status_code=303)
        return await _render_new(
            request,
            pool,
            me,
            loan_id,
            values=form.values,
            chosen=set(asset_ids),
            errors=form.errors,
            status_code=form.status,
        )

    # --- one case ------------------------------------------------------------------------

    @get("/{case_id:int}", operation_id="web_case", guards=READ)
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        case_id: FromPath[int],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await _render_case(request, pool, me, case_id, saved=bool(saved))

    @post("/{case_id:int}/claim", operation_id="web_change_claim", guards=WRITE)
    async def change_claim(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        body = {
            "case_id": case_id,
            "principal_fen": form.yuan("principal", max_fen=CLAIM_PART_MAX_FEN),
            "interest_fen": form.yuan("interest", max_fen=CLAIM_PART_MAX_FEN),
            "costs_fen": form.yuan("costs", max_fen=CLAIM_PART_MAX_FEN),
            "notes": form.values.get("notes", ""),
        }
        done = await form.submit(
            lambda: act(services.change_claim, msgspec.convert(body, ChangeClaim))
        )
        if done is not None:
            return Redirect(f"/bank/cases/{case_id}?saved=claim#claim", status_code=303)
        return await _render_case(
            request,
            pool,
            me,
            case_id,
            form="claim",
            errors=form.errors,
            values=form.values,
            status=form.status,
        )

    @post("/{case_id:int}/valuations", operation_id="web_record_valuation", guards=WRITE)
    async def record_valuation(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        kind = "internal" if form.text("method") == "internal" else "appraisal"
        body = _internal_body(form) if kind == "internal" else _appraisal_body(form)

        async def record() -> ValuationOut:
            valuation: ValuationIn = msgspec.convert(body, ValuationIn)
            return await act(
                services.record_valuation, RecordValuation(case_id=case_id, valuation=valuation)
            )

        done = await form.submit(record)
        if done is not None:
            return Redirect(f"/bank/cases/{case_id}?saved=valuation#valuation", status_code=303)
        return await _render_case(
            request,
            pool,
            me,
            case_id,
            form=kind,
            errors=form.errors,
            values=form.values,
            status=form.status,
        )

    @post("/{case_id:int}/documents", operation_id="web_upload_document", guards=WRITE)
    async def upload(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=FIELDS)
        item = form.text("item")
        file = (await request.form()).get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            form.fail("file", "required")

        async def send() -> DocumentOut:
            assert isinstance(file, UploadFile)
            return await act(
                services.upload_document,
                UploadDocument(
                    case_id=case_id, item=item, filename=file.filename, content=await file.read()
                ),
            )

        done = await form.submit(send)
        if done is not None:
            return Redirect(f"/bank/cases/{case_id}?saved=document#disclosure", status_code=303)
        return await _render_case(
            request, pool, me, case_id, form=f"doc.{item}", errors=form.errors, status=form.status
        )

    @post(
        "/{case_id:int}/documents/{document_id:int}/remove",
        operation_id="web_remove_document",
        guards=WRITE,
    )
    async def remove(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        case_id: FromPath[int],
        document_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        await form.submit(
            lambda: act(
                services.remove_document, RemoveDocument(case_id=case_id, document_id=document_id)
            )
        )
        if form.errors:
            return await _render_case(
                request,
                pool,
                me,
                case_id,
                form="documents",
                errors=form.errors,
                status=form.status,
            )
        return Redirect(f"/bank/cases/{case_id}?saved=document#disclosure", status_code=303)

    @get(
        "/{case_id:int}/documents/{document_id:int}",
        operation_id="web_download_document",
        guards=READ,
    )
    async def download(
        self, pool: PoolDep, me: MeDep, case_id: FromPath[int], document_id: FromPath[int]
    ) -> Stream:
        return download(pool, await services.find_document(pool, me.org_id, case_id, document_id))


# --- form bodies ------------------------------------------------------------------------


def _appraisal_body(form: Form) -> dict[str, Any]:
    for name in ("appraiser", "report_no"):
        if not form.text(name):
            form.fail(name, "required")
    value = form.yuan("value", max_fen=CLAIM_PART_MAX_FEN)
    valued_on = form.date("valued_on")
    return {
        "method": "appraisal",
        "appraiser": form.text("appraiser"),
        "report_no": form.text("report_no"),
        "value_fen": value,
        "valued_on": valued_on.isoformat() if valued_on else None,
    }


def _internal_body(form: Form) -> dict[str, Any]:
    base = form.yuan("base_value", max_fen=CLAIM_PART_MAX_FEN)
    if base is not None and base < MIN_BASE_FEN:
        form.fail("base_value", "base_value_too_small", min_fen=MIN_BASE_FEN)
    if not form.text("basis"):
        form.fail("basis", "required")
    scores: dict[str, int] = {}
    for key in INDICATORS:
        text = form.text(f"score_{key}")
        # ASCII digits only: "⁸⁰".isdigit() is true and int("⁸⁰") fails.
        if not text:
            form.fail(f"score_{key}", "required")
        elif text.isascii() and text.isdigit() and int(text) <= SCORE_MAX:
            scores[key] = int(text)
        else:
            form.fail(f"score_{key}", "score_out_of_range", max=SCORE_MAX)
    return {
        "method": "internal",
        "base_value_fen": base,
        "basis": form.text("basis"),
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
    now = request.app.state.clock.now()
    async with pool.acquire() as conn:
        today = china_today(now)
        open_licences = await open_licences_of_case(conn, case_id, today)
        moves, numbers = _moves(request.app.state.settings)
        case_paths = await paths.case_paths(conn, case_id, now, moves)
    errors = errors or {}
    claim_values = {
        "principal": _yuan(case.claim.principal_fen),
        "interest": _yuan(case.claim.interest_fen),
        "costs": _yuan(case.claim.costs_fen),
        "notes": case.notes,
    }
    if form == "claim" and values:
        claim_values.update(values)
    lang = language(request, me)

    def explain(valuation: ValuationOut) -> list[tuple[str, str]]:
        """A valuation's explanation as (key, words in the page's language) lines."""
        return [(line.key, render(lang, line)) for line in valuation.explanation]

    return page(
        request,
        "cases/show.html",
        me,
        status_code=status if errors else 200,
        explain=explain,
        case=case,
        open_licences=open_licences,
        paths=case_paths,
        numbers=numbers,
        bank=True,
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


class OperatorCasePages(Controller):
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("/operator/cases/{case_id:int}/paths", operation_id="web_operator_case_paths")
    async def paths(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        me: MeDep,
        case_id: FromPath[int],
    ) -> Template:
        """Any case's tries in order with their outcomes, and the next paths open on it."""
        moves, numbers = _moves(settings)
        found = await paths.operator_case_paths(pool, case_id, clock.now(), moves)
        return page(
            request, "cases/operator_paths.html", me, paths=found, numbers=numbers, bank=False
        )
