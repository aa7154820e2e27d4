"""The disposal-cases API for banks' systems (scopes collateral:read / collateral:write)."""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.response import Stream

from market.accounts.models import OrgDocumentOut
from market.accounts.permissions import READ_COLLATERAL, WRITE_COLLATERAL, allow
from market.cases import services
from market.cases.checklist import DisclosureStatus
from market.cases.models import (
    CaseOut,
    CaseStatus,
    CaseSummary,
    ChangeClaim,
    ClaimChange,
    DocumentOut,
    DocumentUpload,
    OpenCase,
    RecordValuation,
    RemoveDocument,
    UploadDocument,
    ValuationIn,
    ValuationOut,
)
from market.deps import ActDep, CallerDep, PoolDep
from market.errors import Invalid

LIST_MAX = 500
READ = [allow(READ_COLLATERAL)]
WRITE = [allow(WRITE_COLLATERAL)]


def download(
    pool: asyncpg.Pool, document: DocumentOut | OrgDocumentOut, *, attachment: bool = True
) -> Stream:
    """The document's bytes as stored, with its checked type; never sniffed by a browser."""
    ascii_name = document.filename.encode("ascii", "replace").decode().replace('"', "_")
    disposition = "attachment" if attachment else "inline"
    return Stream(
        services.document_bytes(pool, document),
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.size_bytes),
            "Content-Disposition": (
                f'{disposition}; filename="{ascii_name}"; '
                f"filename*=UTF-8''{quote(document.filename, safe='')}"
            ),
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{document.sha256}"',
            "Cache-Control": "private, no-store",
        },
    )


class CasesApi(Controller):
    path = "/api/v1/cases"
    tags = ["cases"]

    @post("/", operation_id="open_case", status_code=201, guards=WRITE)
    async def open_case(self, act: ActDep, data: JSONBody[OpenCase]) -> CaseOut:
        """Open a disposal case on a defaulted loan (a performing loan: 422; a second open
        case on one loan: 409)."""
        return await act(services.open_case, data)

    @get("/", operation_id="list_cases", guards=READ)
    async def list_cases(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[CaseStatus | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[CaseSummary]:
        """The bank's cases, newest first."""
        if limit < 1:
            raise Invalid("too_small", field="limit", min=1)
        if limit > LIST_MAX:
            raise Invalid("too_large", field="limit", max=LIST_MAX)
        if offset < 0:
            raise Invalid("too_small", field="offset", min=0)
        return await services.list_cases(
            pool, caller.org_id, status=status, limit=limit, offset=offset
        )

    @get("/{case_id:int}", operation_id="get_case", guards=READ)
    async def get_case(self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]) -> CaseOut:
        """A case with its claim, collateral (with monitoring flags), valuations, documents,
        disclosure status and lots. Another bank's case: 404."""
        return await services.get_case(pool, caller.org_id, case_id)

    @patch("/{case_id:int}", operation_id="change_case_claim", guards=WRITE)
    async def change_claim(
        self,
        act: ActDep,
        case_id: FromPath[int],
        data: JSONBody[ClaimChange],
    ) -> CaseOut:
        """Edit the claim while no lot of the case is published (else 409)."""
        return await act(
            services.change_claim, ChangeClaim(case_id=case_id, **msgspec.structs.asdict(data))
        )

    @post(
        "/{case_id:int}/valuations",
        operation_id="record_case_valuation",
        status_code=201,
        guards=WRITE,
    )
    async def record_valuation(
        self,
        act: ActDep,
        case_id: FromPath[int],
        data: JSONBody[ValuationIn],
    ) -> ValuationOut:
        """An appraisal (`method: "appraisal"`) or an internal valuation (`"internal"`);
        it supersedes the case's current valuation. An internal valuation's explanation
        is a list of lines, each a catalog key with its parameters."""
        return await act(
            services.record_valuation, RecordValuation(case_id=case_id, valuation=data)
        )

    @get("/{case_id:int}/disclosure", operation_id="get_case_disclosure", guards=READ)
    async def disclosure(
        self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]
    ) -> DisclosureStatus:
        """Checklist items required for the case, present, and missing."""
        async with pool.acquire() as conn:
            return await services.disclosure_status(conn, caller.org_id, case_id)

    @post(
        "/{case_id:int}/documents",
        operation_id="upload_case_document",
        status_code=201,
        guards=WRITE,
    )
    async def upload(
        self, act: ActDep, case_id: FromPath[int], data: MultipartBody[DocumentUpload]
    ) -> DocumentOut:
        """multipart/form-data with `item` (a checklist key) and `file` (≤ 20 MB; PDF, PNG,
        JPEG, DOCX, XLSX or text, judged by content)."""
        return await act(
            services.upload_document,
            UploadDocument(
                case_id=case_id,
                item=data.item,
                filename=data.file.filename or "",
                content=await data.file.read(),
            ),
        )

    @get(
        "/{case_id:int}/documents/{document_id:int}",
        operation_id="download_case_document",
        guards=READ,
    )
    async def download(
        self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int], document_id: FromPath[int]
    ) -> Stream:
        """The document's bytes with the type they were checked to be."""
        return download(
            pool, await services.find_document(pool, caller.org_id, case_id, document_id)
        )

    @delete(
        "/{case_id:int}/documents/{document_id:int}",
        operation_id="remove_case_document",
        status_code=204,
        guards=WRITE,
    )
    async def remove(self, act: ActDep, case_id: FromPath[int], document_id: FromPath[int]) -> None:
        """Withdraw a document while no lot of the case is published (else 409)."""
        await act(
            services.remove_document, RemoveDocument(case_id=case_id, document_id=document_id)
        )
