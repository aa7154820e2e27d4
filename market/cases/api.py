"""The disposal-cases API for banks' systems (scopes collateral:read / collateral:write)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.enums import RequestEncodingType
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from market import api_docs
from market.accounts.models import OrgDocumentOut
from market.accounts.permissions import OPERATE, READ_COLLATERAL, WRITE_COLLATERAL, allow
from market.cases import filetypes, paths, services
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
from market.db import Queries
from market.deps import ActDep, CallerDep, ClockDep, PoolDep, SettingsDep
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page

UPLOAD = api_docs.body(
    DocumentUpload,
    {"item": "valuation_report", "file": "评估报告.pdf"},
    media_type=RequestEncodingType.MULTI_PART,
)
OPEN_CASE = api_docs.body(
    OpenCase, {"loan_id": 1042, "costs_fen": 1_200_000, "notes": "借款人已逾期 180 天"}
)
CLAIM_CHANGE = api_docs.body(
    ClaimChange, {"interest_fen": 8_650_000, "notes": "利息计至 2026-03-31"}
)
VALUATION = api_docs.body(
    ValuationIn,
    {
        "method": "appraisal",
        "appraiser": "中联资产评估集团有限公司",
        "report_no": "中联评报字[2026]第118号",
        "value_fen": 350_000_000,
        "valued_on": "2026-02-15",
    },
)

QA = Queries("api")
CASES: Keyset[tuple[datetime, int]] = Keyset("cases", tuple[datetime, int], "opened_at", "id")
READ = [allow(READ_COLLATERAL)]
WRITE = [allow(WRITE_COLLATERAL)]


def download(
    pool: asyncpg.Pool, document: DocumentOut | OrgDocumentOut, *, attachment: bool = True
) -> Stream:
    """The document's bytes as stored, with its checked type; never sniffed by a browser."""
    ascii_name = document.filename.encode("ascii", "replace").decode().replace('"', "_")
    disposition = "attachment" if attachment else "inline"
    media_type, charset = filetypes.media_and_charset(document.content_type)
    return Stream(
        services.document_bytes(pool, document),
        media_type=media_type,
        encoding=charset,
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

    @post(
        "/", operation_id="open_case", summary="Open a disposal case", status_code=201, guards=WRITE
    )
    async def open_case(self, act: ActDep, data: Annotated[OpenCase, OPEN_CASE]) -> CaseOut:
        """Open a disposal case on a defaulted loan (a performing loan: 422; a second open
        case on one loan: 409)."""
        return await act(services.open_case, data)

    @get("/", operation_id="list_cases", summary="List the bank's disposal cases", guards=READ)
    async def list_cases(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[CaseStatus | None] = None,
        loan_id: FromQuery[int | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CaseSummary]:
        """The bank's cases, newest first, a page at a time: each with its loan, claim,
        valuation and the disclosure items still missing. Filters: `status` (open,
        closed), `loan_id`."""
        return await CASES.read(
            pool,
            QA.page_cases,
            caller.org_id,
            status,
            loan_id,
            cursor=cursor,
            limit=limit,
            item=services.case_summary,
        )

    @get("/{case_id:int}", operation_id="get_case", summary="Read one disposal case", guards=READ)
    async def get_case(self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]) -> CaseOut:
        """A case with its claim, collateral (with monitoring flags), valuations, documents,
        disclosure status and lots. Another bank's case: 404."""
        return await services.get_case(pool, caller.org_id, case_id)

    @get(
        "/{case_id:int}/paths",
        operation_id="get_case_paths",
        summary="Every disposal path a case tried, and the next ones open",
        guards=READ,
    )
    async def get_paths(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        settings: SettingsDep,
        case_id: FromPath[int],
    ) -> paths.CasePaths:
        """Every path tried on the case, in order, each with its outcome (`tries`: a
        listing's period, an auction round, the fixed-price sale, a licence decision…;
        `kind` and `outcome` are codes with labels on the case page), and the next paths its
        failed rounds leave open now with their deadlines (`next`, docs/rules.md §Moving
        between paths). Another bank's case: 404."""
        from market.lots.services import policy_for  # the lots build on the cases area

        return await paths.bank_case_paths(
            pool, caller.org_id, case_id, clock.now(), policy_for(settings).moves
        )

    @patch(
        "/{case_id:int}",
        operation_id="change_case_claim",
        summary="Change a case's claim",
        guards=WRITE,
    )
    async def change_claim(
        self,
        act: ActDep,
        case_id: FromPath[int],
        data: Annotated[ClaimChange, CLAIM_CHANGE],
    ) -> CaseOut:
        """Edit the claim while no lot of the case is published (else 409)."""
        return await act(
            services.change_claim, ChangeClaim(case_id=case_id, **msgspec.structs.asdict(data))
        )

    @post(
        "/{case_id:int}/valuations",
        operation_id="record_case_valuation",
        summary="Record a valuation of a case",
        status_code=201,
        guards=WRITE,
    )
    async def record_valuation(
        self,
        act: ActDep,
        case_id: FromPath[int],
        data: Annotated[ValuationIn, VALUATION],
    ) -> ValuationOut:
        """An appraisal (`method: "appraisal"`) or an internal valuation (`"internal"`);
        it supersedes the case's current valuation. An internal valuation's explanation
        is a list of lines, each a catalog key with its parameters."""
        return await act(
            services.record_valuation, RecordValuation(case_id=case_id, valuation=data)
        )

    @get(
        "/{case_id:int}/disclosure",
        operation_id="get_case_disclosure",
        summary="Read a case's disclosure checklist",
        guards=READ,
    )
    async def disclosure(
        self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]
    ) -> DisclosureStatus:
        """Checklist items required for the case, present, and missing."""
        async with pool.acquire() as conn:
            return await services.disclosure_status(conn, caller.org_id, case_id)

    @post(
        "/{case_id:int}/documents",
        operation_id="upload_case_document",
        summary="Upload a disclosure document",
        status_code=201,
        guards=WRITE,
    )
    async def upload(
        self, act: ActDep, case_id: FromPath[int], data: Annotated[DocumentUpload, UPLOAD]
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
        summary="Download a disclosure document",
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
        summary="Withdraw a disclosure document",
        status_code=204,
        guards=WRITE,
    )
    async def remove(self, act: ActDep, case_id: FromPath[int], document_id: FromPath[int]) -> None:
        """Withdraw a document while no lot of the case is published (else 409)."""
        await act(
            services.remove_document, RemoveDocument(case_id=case_id, document_id=document_id)
        )


class OperatorCasesApi(Controller):
    path = "/api/v1/operator/cases"
    tags = ["cases"]
    guards = [allow(OPERATE)]

    @get(
        "/{case_id:int}/paths",
        operation_id="get_operator_case_paths",
        summary="Any case's disposal paths, for the operator",
    )
    async def get_paths(
        self, pool: PoolDep, clock: ClockDep, settings: SettingsDep, case_id: FromPath[int]
    ) -> paths.OperatorCasePaths:
        """Any case's tries in order with their outcomes, and the next paths open on it
        (as `GET /api/v1/cases/{case_id}/paths` gives its bank)."""
        from market.lots.services import policy_for  # the lots build on the cases area

        return await paths.operator_case_paths(
            pool, case_id, clock.now(), policy_for(settings).moves
        )
