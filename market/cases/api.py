"""The disposal-cases API for banks' systems (scopes collateral:read / collateral:write)."""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.response import Stream

from market.accounts.models import ApiCaller
from market.accounts.services import acting_org
from market.cases import services
from market.cases.checklist import DisclosureStatus
from market.cases.models import (
    CaseOut,
    CaseStatus,
    CaseSummary,
    ClaimChange,
    DocumentOut,
    DocumentUpload,
    OpenCase,
    ValuationIn,
    ValuationOut,
)
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import Invalid

LIST_MAX = 500


def bank_of(caller: ApiCaller, scope: str) -> int:
    """The approved bank a token acts for, once it holds the scope."""
    return acting_org(caller, scope, "bank", "only an approved bank has disposal cases")


def download(pool: asyncpg.Pool, document: DocumentOut, *, attachment: bool = True) -> Stream:
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

    @post("/", operation_id="open_case", status_code=201)
    async def open_case(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, data: JSONBody[OpenCase]
    ) -> CaseOut:
        """Open a disposal case on a defaulted loan (a performing loan: 422; a second open
        case on one loan: 409)."""
        bank = bank_of(caller, "collateral:write")
        return await services.open_case(
            pool, clock.now(), bank_org_id=bank, user_id=caller.user_id, data=data
        )

    @get("/", operation_id="list_cases")
    async def list_cases(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[CaseStatus | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[CaseSummary]:
        """The bank's cases, newest first."""
        bank = bank_of(caller, "collateral:read")
        if not 1 <= limit <= LIST_MAX:
            raise Invalid(f"每页条数应为 1–{LIST_MAX} / limit: 1–{LIST_MAX}", field="limit")
        if offset < 0:
            raise Invalid("起始位置不得为负 / offset: ≥ 0", field="offset")
        return await services.list_cases(pool, bank, status=status, limit=limit, offset=offset)

    @get("/{case_id:int}", operation_id="get_case")
    async def get_case(self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]) -> CaseOut:
        """A case with its claim, collateral (with monitoring flags), valuations, documents,
        disclosure status and lots. Another bank's case: 404."""
        return await services.get_case(pool, bank_of(caller, "collateral:read"), case_id)

    @patch("/{case_id:int}", operation_id="change_case_claim")
    async def change_claim(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        case_id: FromPath[int],
        data: JSONBody[ClaimChange],
    ) -> CaseOut:
        """Edit the claim while no lot of the case is published (else 409)."""
        bank = bank_of(caller, "collateral:write")
        return await services.change_claim(
            pool, clock.now(), bank_org_id=bank, user_id=caller.user_id, case_id=case_id, data=data
        )

    @post("/{case_id:int}/valuations", operation_id="record_case_valuation", status_code=201)
    async def record_valuation(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        case_id: FromPath[int],
        data: JSONBody[ValuationIn],
    ) -> ValuationOut:
        """An appraisal (`method: "appraisal"`) or an internal valuation (`"internal"`);
        it supersedes the case's current valuation."""
        bank = bank_of(caller, "collateral:write")
        return await services.record_valuation(
            pool, clock.now(), bank_org_id=bank, user_id=caller.user_id, case_id=case_id, data=data
        )

    @get("/{case_id:int}/disclosure", operation_id="get_case_disclosure")
    async def disclosure(
        self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]
    ) -> DisclosureStatus:
        """Checklist items required for the case, present, and missing."""
        bank = bank_of(caller, "collateral:read")
        async with pool.acquire() as conn:
            return await services.disclosure_status(conn, bank, case_id)

    @post("/{case_id:int}/documents", operation_id="upload_case_document", status_code=201)
    async def upload(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        case_id: FromPath[int],
        data: MultipartBody[DocumentUpload],
    ) -> DocumentOut:
        """multipart/form-data with `item` (a checklist key) and `file` (≤ 20 MB; PDF, PNG,
        JPEG, DOCX, XLSX or text, judged by content)."""
        bank = bank_of(caller, "collateral:write")
        content = await data.file.read()
        return await services.upload_document(
            pool,
            clock.now(),
            bank_org_id=bank,
            user_id=caller.user_id,
            case_id=case_id,
            item=data.item,
            filename=data.file.filename or "",
            content=content,
        )

    @get("/{case_id:int}/documents/{document_id:int}", operation_id="download_case_document")
    async def download(
        self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int], document_id: FromPath[int]
    ) -> Stream:
        """The document's bytes with the type they were checked to be."""
        bank = bank_of(caller, "collateral:read")
        return download(pool, await services.find_document(pool, bank, case_id, document_id))

    @delete(
        "/{case_id:int}/documents/{document_id:int}",
        operation_id="remove_case_document",
        status_code=204,
    )
    async def remove(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        case_id: FromPath[int],
        document_id: FromPath[int],
    ) -> None:
        """Withdraw a document while no lot of the case is published (else 409)."""
        bank = bank_of(caller, "collateral:write")
        await services.remove_document(
            pool,
            clock.now(),
            bank_org_id=bank,
            user_id=caller.user_id,
            case_id=case_id,
            document_id=document_id,
        )
