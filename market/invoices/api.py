"""The invoices' API (docs/invoices.md): the payer's invoicing details and invoice
requests; the operator's list, export for the finance system and the issued numbers
recorded back. Thin adapters over the commands of market/invoices."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from market import api_docs
from market.accounts.permissions import MANAGE_INVOICE_DETAILS, OPERATE, READ_INVOICES, allow
from market.deps import ActDep, CallerDep, PoolDep
from market.invoices import details, exports, issued, requests, views
from market.invoices.requests import InvoiceRequest, Status
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page
from market.pools.reconciliation_api import CSV_TYPES, NotCsv
from market.pools.statement_export import CSV, csv_response

DETAILS = api_docs.body(
    details.DetailsIn,
    {
        "invoice_type": "vat_special",
        "title": "成都锂能科技有限公司",
        "taxpayer_number": "91510100MA6C8XY41N",
        "address_phone": "成都市高新区天府大道 100 号 028-85550000",
        "bank_account": "中国银行成都高新支行 1234 5678 9012 3456",
    },
    {"invoice_type": "vat_ordinary", "title": "王小明"},
)
REQUEST = api_docs.body(requests.RequestIn, {"sale_id": 12})
EXPORT = api_docs.body(exports.ExportIn, {"period": "2026-12"})
ISSUE = api_docs.body(
    issued.IssueIn,
    {"request_id": 7, "invoice_number": "25512000000012345678", "invoice_date": "2026-12-08"},
)


class InvoicesApi(Controller):
    path = "/api/v1/invoices"
    tags = ["invoices"]

    @get(
        "/details",
        operation_id="get_invoice_details",
        summary="The organisation's invoicing details",
        guards=[allow(READ_INVOICES)],
    )
    async def get_details(self, caller: CallerDep, pool: PoolDep) -> views.InvoicingOut:
        """The invoicing details (开票信息) on file (null until set), the paid sales whose
        fee waits for an invoice request because they were missing, and the VAT rate."""
        async with pool.acquire() as conn:
            return await views.invoicing(conn, caller.org_id)

    @put(
        "/details",
        operation_id="set_invoice_details",
        summary="Set the organisation's invoicing details",
        guards=[allow(MANAGE_INVOICE_DETAILS)],
    )
    async def set_details(
        self, act: ActDep, data: Annotated[details.DetailsIn, DETAILS]
    ) -> details.DetailsSaved:
        """Replace the invoicing details. A special invoice needs every field; an ordinary
        one the title and the taxpayer number (a person: the title only). The taxpayer
        number is an 18-character unified social credit code (its check character is
        checked) or an older 15- or 20-character number. A refusal is 422 naming the
        field, nothing written. The paid sales waiting for the details get their invoice
        requests (`requested`)."""
        return await act(details.set_invoice_details, data)

    @get(
        "",
        operation_id="list_invoice_requests",
        summary="List the organisation's invoice requests",
        guards=[allow(READ_INVOICES)],
    )
    async def list_requests(
        self, caller: CallerDep, pool: PoolDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> Page[InvoiceRequest]:
        """The invoices requested for the organisation, newest first: the details printed,
        the amount with its VAT, the status (requested, exported, issued, cancelled) and,
        once issued, the invoice's number and date."""
        return await views.own_requests(pool, caller.org_id, cursor=cursor, limit=limit)

    @post(
        "",
        operation_id="request_invoice",
        summary="Request the invoice of a paid sale's fee",
        status_code=200,
        guards=[allow(MANAGE_INVOICE_DETAILS)],
    )
    async def request(
        self, act: ActDep, data: Annotated[requests.RequestIn, REQUEST]
    ) -> InvoiceRequest:
        """The invoice request of the sale's fee, made from the details on file, or the one
        already made. 404 for a sale whose fee is not the organisation's; 409 for a sale
        not paid, without a fee or unwound (`sale_id`), or without details (`invoice_type`)."""
        return await act(requests.request_invoice, data)


class OperatorInvoicesApi(Controller):
    path = "/api/v1/operator/invoices"
    tags = ["invoices"]
    guards = [allow(OPERATE)]

    @get("", operation_id="list_all_invoice_requests", summary="List every invoice request")
    async def list_all(
        self,
        pool: PoolDep,
        status: FromQuery[Status | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[InvoiceRequest]:
        """Every organisation's invoice requests, newest first, of one `status` or all."""
        return await views.all_requests(pool, status, cursor=cursor, limit=limit)

    @post(
        "/exports",
        operation_id="export_invoice_requests",
        summary="Export the invoice requests of a period",
        status_code=201,
    )
    async def export(
        self, act: ActDep, data: Annotated[exports.ExportIn, EXPORT]
    ) -> exports.ExportOut:
        """Export every request still to export that was made before the end of `period`
        (a month, Beijing time); each request is exported once. Download the file with
        `download_invoice_export`. 422 for a period not begun, 409 when there is nothing
        to export."""
        return await act(exports.export_invoice_requests, data)

    @get("/exports", operation_id="list_invoice_exports", summary="List the invoice exports")
    async def list_exports(self, pool: PoolDep) -> list[exports.ExportOut]:
        """The exports made, newest first (the last 50)."""
        async with pool.acquire() as conn:
            return await exports.exports(conn)

    @get(
        "/exports/{export_id:int}",
        operation_id="download_invoice_export",
        summary="Download an invoice export (CSV)",
        media_type=CSV,
    )
    async def download(self, pool: PoolDep, export_id: FromPath[int]) -> Response[bytes]:
        """The export's CSV file as it was made (UTF-8 with BOM; columns in
        docs/invoices.md)."""
        async with pool.acquire() as conn:
            name, body = await exports.export_file(conn, export_id)
        return csv_response(body, name)

    @post(
        "/issued",
        operation_id="import_issued_invoices",
        summary="Import the finance system's issued invoices (CSV)",
        status_code=200,
    )
    async def import_issued(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        filename: FromQuery[str | None] = None,
    ) -> issued.IssuedOut:
        """Record issued invoices from a CSV file (body: the file, `Content-Type:
        text/csv`) with the columns request_id, invoice_number, invoice_date (others are
        ignored: the export file filled in will do). All or nothing: any bad line answers
        422 `invoice_import_rejected` listing each problem by line and column."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in CSV_TYPES:
            raise NotCsv()
        data = issued.ImportIssued(data=await request.body(), filename=filename)
        return await act(issued.import_issued_invoices, data)

    @post(
        "/issue",
        operation_id="record_invoice_issued",
        summary="Record one issued invoice by hand",
        status_code=200,
    )
    async def issue(self, act: ActDep, data: Annotated[issued.IssueIn, ISSUE]) -> InvoiceRequest:
        """The finance system's number (8 or 20 digits) and date of one exported request's
        invoice; the payer is told. 404 for no such request, 422 naming the field."""
        return await act(issued.record_invoice_issued, data)
