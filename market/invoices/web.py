"""The invoices' pages (docs/rules.md §Invoices), thin adapters over the commands the API
runs (market/invoices/api.py).

The payer (a buyer or a bank: READ_INVOICES) reads its invoicing details, its paid sales
waiting for an invoice request and its requests on /invoices; its admin or officer
(MANAGE_INVOICE_DETAILS) sets the details there and asks for a waiting sale's invoice. The
operator lists every request on /operator/invoices, exports them for the finance system,
downloads an export again, and records the issued invoices by file or by hand.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Response, Template

from market.accounts.models import Viewer
from market.accounts.permissions import (
    MANAGE_INVOICE_DETAILS,
    OPERATE,
    READ_INVOICES,
    allow,
    may,
)
from market.cases.services import china_today
from market.deps import ActDep, ClockDep, MeDep, PoolDep
from market.errors import AppError, LineProblem
from market.invoices import details, exports, issued, requests, views
from market.invoices.requests import Status
from market.paging import DEFAULT_LIMIT
from market.pools.reconciliation_web import rejected_lines
from market.pools.statement_export import csv_response
from market.web import Form, language, page

STATUSES: tuple[Status, ...] = ("requested", "exported", "issued", "cancelled")
DETAIL_FIELDS = ("invoice_type", *details.FIELDS)


async def _payer_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Template:
    async with pool.acquire() as conn:
        found = await views.invoicing(conn, me.org_id)
    listed = await views.own_requests(pool, me.org_id, cursor=None, limit=DEFAULT_LIMIT)
    current = found.details
    shown = values
    if shown is None:
        shown = {"invoice_type": "vat_special"}
        if current is not None:
            shown = {k: str(getattr(current, k) or "") for k in DETAIL_FIELDS}
    return page(
        request,
        "invoices/invoices.html",
        me,
        status_code=status_code,
        found=found,
        requests=listed.items,
        manage=may(me, MANAGE_INVOICE_DETAILS.name),
        form=form,
        values=shown,
        errors=errors or {},
        done=done,
        rate=f"{found.vat_rate_bp / 100:g}",
    )


class InvoicePages(Controller):
    path = "/invoices"
    include_in_schema = False

    @get("", operation_id="web_invoices", guards=[allow(READ_INVOICES)])
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        """The organisation's details, its sales waiting for a request, its requests."""
        return await _payer_page(request, pool, me)

    @post(
        "/details", operation_id="web_set_invoice_details", guards=[allow(MANAGE_INVOICE_DETAILS)]
    )
    async def set_details(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        form = await Form.read(request, me)
        data = {k: form.text(k) for k in DETAIL_FIELDS}

        async def run() -> details.DetailsSaved:
            return await act(details.set_invoice_details, msgspec.convert(data, details.DetailsIn))

        saved = await form.submit(run)
        if saved is None:
            return await _payer_page(
                request,
                pool,
                me,
                form="details",
                values=form.values,
                errors=form.errors,
                status_code=form.status,
            )
        return await _payer_page(request, pool, me, done="details_saved")

    @post("/requests", operation_id="web_request_invoice", guards=[allow(MANAGE_INVOICE_DETAILS)])
    async def request_invoice(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        form = await Form.read(request, me)
        sale_id = form.id("sale_id")

        async def run() -> requests.InvoiceRequest:
            assert sale_id is not None
            return await act(requests.request_invoice, requests.RequestIn(sale_id=sale_id))

        made = await form.submit(run)
        if made is None:
            return await _payer_page(
                request, pool, me, form="request", errors=form.errors, status_code=form.status
            )
        return await _payer_page(request, pool, me, done="requested")


async def _operator_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    clock: Any,
    me: Viewer,
    status: Status | None = None,
    *,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    rejected: list[LineProblem] | None = None,
    exported: exports.ExportOut | None = None,
    recorded: int | None = None,
    status_code: int = 200,
) -> Template:
    listed = await views.all_requests(pool, status, cursor=None, limit=DEFAULT_LIMIT)
    async with pool.acquire() as conn:
        made = await exports.exports(conn)
    today = china_today(clock.now())
    return page(
        request,
        "invoices/operator.html",
        me,
        status_code=status_code,
        requests=listed.items,
        exports=made,
        statuses=STATUSES,
        status=status,
        form=form,
        values=values or {"period": today.strftime("%Y-%m"), "invoice_date": today.isoformat()},
        errors=errors or {},
        rejected=rejected_lines(language(request, me), rejected or []),
        exported=exported,
        recorded=recorded,
    )


async def _refused(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    clock: Any,
    me: Viewer,
    name: str,
    form: Form,
    rejected: list[LineProblem] | None = None,
) -> Template:
    """The operator's page again with form `name`'s errors beside its fields."""
    return await _operator_page(
        request,
        pool,
        clock,
        me,
        form=name,
        values=form.values,
        errors=form.errors,
        rejected=rejected,
        status_code=form.status,
    )


class OperatorInvoicePages(Controller):
    path = "/operator/invoices"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("", operation_id="web_operator_invoices")
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        status: FromQuery[Status | None] = None,
    ) -> Template:
        """Every invoice request (of one status), the exports, and the forms."""
        return await _operator_page(request, pool, clock, me, status)

    @post("/exports", operation_id="web_operator_invoice_export")
    async def export(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
    ) -> Template:
        form = await Form.read(request, me)
        data = {"period": form.text("period")}
        done = await form.submit(
            lambda: act(exports.export_invoice_requests, msgspec.convert(data, exports.ExportIn))
        )
        if done is None:
            return await _refused(request, pool, clock, me, "export", form)
        return await _operator_page(request, pool, clock, me, exported=done)

    @get("/exports/{export_id:int}", operation_id="web_operator_invoice_export_file")
    async def download(self, pool: PoolDep, export_id: FromPath[int]) -> Response[bytes]:
        """An export's CSV file as it was made."""
        async with pool.acquire() as conn:
            name, body = await exports.export_file(conn, export_id)
        return csv_response(body, name)

    @post("/issued", operation_id="web_operator_invoice_import")
    async def import_issued(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
    ) -> Template:
        """The finance system's file of issued invoices: all or nothing."""
        form = await Form.read(request, me)
        upload = (await request.form()).get("file")
        if not (isinstance(upload, UploadFile) and upload.filename):
            form.fail("file", "required")
            upload = None
        rejected: list[LineProblem] = []

        async def run() -> issued.IssuedOut:
            assert upload is not None
            data = issued.ImportIssued(data=await upload.read(), filename=upload.filename)
            try:
                return await act(issued.import_issued_invoices, data)
            except AppError as exc:
                rejected.extend(exc.problems or [])
                raise

        done = await form.submit(run)
        if done is None:
            return await _refused(request, pool, clock, me, "import", form, rejected)
        return await _operator_page(request, pool, clock, me, recorded=len(done.issued))

    @post("/issue", operation_id="web_operator_invoice_issue")
    async def issue(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        act: ActDep,
        me: MeDep,
    ) -> Template:
        """One issued invoice typed by hand."""
        form = await Form.read(request, me)
        request_id = form.id("request_id")
        day = form.date("invoice_date")
        if not form.text("invoice_number"):
            form.fail("invoice_number", "required")

        async def run() -> requests.InvoiceRequest:
            data = {
                "request_id": request_id,
                "invoice_number": form.text("invoice_number"),
                "invoice_date": day,
            }
            return await act(issued.record_invoice_issued, msgspec.convert(data, issued.IssueIn))

        try:
            done = await form.submit(run)
        except AppError as exc:  # no such request: said beside what was typed
            form.refuse(exc)
            done = None
        if done is None:
            return await _refused(request, pool, clock, me, "issue", form)
        return await _operator_page(request, pool, clock, me, recorded=1)
