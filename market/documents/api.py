"""The API of the sale documents: the public verification by code, and the parties' list
and PDFs (docs/rules.md §Sale documents)."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.params import FromPath

from market.accounts.permissions import READ_SALE_DOCUMENTS, allow
from market.deps import CallerDep, PoolDep
from market.documents import views
from market.documents.web import pdf_response
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page


class VerifyApi(Controller):
    path = "/api/v1/verify"
    tags = ["documents"]

    @get("/{code:str}", operation_id="verify_document", summary="Verify a sale document")
    async def verify(self, pool: PoolDep, code: FromPath[str]) -> views.VerifiedDocument:
        """What the exchange's document with this verification code certifies: its kind,
        the sale, the parties, the assets with their numbers, the amounts (in fen and in
        Chinese capitals), the issue time and the SHA-256 of its PDF. No token needed. An
        unknown code, or one whose check character does not match, answers 404
        `no_such_verification_code`."""
        return await views.verify(pool, code)


class SaleDocumentsApi(Controller):
    path = "/api/v1/sale-documents"
    tags = ["documents"]
    guards = [allow(READ_SALE_DOCUMENTS)]

    @get("/", operation_id="list_sale_documents", summary="List the organisation's sale documents")
    async def documents(
        self, caller: CallerDep, pool: PoolDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> Page[views.DocumentSummary]:
        """The sale confirmations and transaction certificates of the sales the
        organisation is the bank or the buyer of, newest first, with their codes and the
        SHA-256 of their PDFs (null for the seconds before a PDF is rendered)."""
        return await views.page_documents(pool, caller.org_id, cursor=cursor, limit=limit)

    @get(
        "/{code:str}/pdf",
        operation_id="download_sale_document",
        summary="Download a sale document's PDF",
    )
    async def download(
        self, caller: CallerDep, pool: PoolDep, code: FromPath[str]
    ) -> Response[bytes]:
        """The PDF as the exchange issued it (its SHA-256 is in the bank's audit chain and on
        the verification page). Another organisation's document answers 404; one whose PDF
        is still being rendered 409 `document_not_ready`."""
        return pdf_response(await views.pdf(pool, caller.org_id, code))
