"""Reading the sale documents: the public verification by code, and the parties' list and
PDFs (docs/rules.md §Sale documents).

Anyone with a code sees what the document certifies (that is what a code is for: the
registry officer, a court, the buyer's auditor check a PDF they were handed), never the
PDF itself: that only the bank and the buyer of the sale download. A code that is mistyped
(its check character does not match) or unknown answers the same 404, as does another
organisation's document for a download.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from market.db import Conn, Queries
from market.documents import codes
from market.documents.content import DocumentContent, Kind
from market.errors import Conflict, NotFound
from market.paging import Keyset, Page

Q = Queries("documents")
DOCUMENTS: Keyset[tuple[datetime, int]] = Keyset(
    "sale_documents", tuple[datetime, int], "issued_at", "id"
)


class VerifiedDocument(msgspec.Struct, frozen=True, kw_only=True):
    """What the document with this code certifies; `sha256` is that of its PDF (null for
    the few seconds before the exchange has rendered it)."""

    code: str  # grouped as printed: XXXX-XXXX-XXXX-XXXX-XXXX
    kind: Kind
    issued_at: datetime
    sha256: str | None
    size_bytes: int | None
    content: DocumentContent


class DocumentSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    sale_id: int
    kind: Kind
    code: str
    lot_reference: str
    lot_title: str
    case_reference: str  # the bank's disposal case the sale belongs to
    role: Literal["bank", "buyer"]  # the reader's organisation's part in the sale
    issued_at: datetime
    sha256: str | None  # null until the PDF is rendered
    size_bytes: int | None


class DocumentPdf(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content: bytes


def _no_such(code: str) -> NotFound:
    return NotFound("no_such_verification_code", field="code", code=code[:40])


async def _by_code(conn: Conn, typed: str) -> asyncpg.Record:
    code = codes.normalise(typed)
    row = None if code is None else await conn.fetchrow(Q.document_by_code, code)
    if row is None:
        raise _no_such(typed)
    return row


async def verify(pool: asyncpg.Pool, typed: str) -> VerifiedDocument:
    """The document a code names, whoever asks; 404 `no_such_verification_code`."""
    async with pool.acquire() as conn:
        row = await _by_code(conn, typed)
    sha = row["sha256"]
    return VerifiedDocument(
        code=codes.grouped(row["code"]),
        kind=row["kind"],
        issued_at=row["issued_at"],
        sha256=sha.hex() if sha is not None else None,
        size_bytes=row["size_bytes"],
        content=msgspec.convert(row["content"], DocumentContent, strict=False),
    )


def _summary(row: asyncpg.Record) -> DocumentSummary:
    sha = row["sha256"]
    return DocumentSummary(
        id=row["id"],
        sale_id=row["sale_id"],
        kind=row["kind"],
        code=codes.grouped(row["code"]),
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        case_reference=row["case_reference"],
        role=row["role"],
        issued_at=row["issued_at"],
        sha256=sha.hex() if sha is not None else None,
        size_bytes=row["size_bytes"],
    )


async def page_documents(
    pool: asyncpg.Pool, org_id: int, *, cursor: str | None, limit: int
) -> Page[DocumentSummary]:
    """The documents of the sales the organisation is the bank or the buyer of, newest
    first."""
    return await DOCUMENTS.read(
        pool, Q.page_documents, org_id, cursor=cursor, limit=limit, item=_summary
    )


async def pdf(pool: asyncpg.Pool, org_id: int, typed: str) -> DocumentPdf:
    """The PDF of a document of a sale the organisation is a party to (as stored: the bytes
    whose hash the audit chain holds); another's answers 404, one not rendered yet 409
    `document_not_ready`."""
    async with pool.acquire() as conn:
        row = await _by_code(conn, typed)
        if org_id not in (row["bank_org_id"], row["buyer_org_id"]):
            raise _no_such(typed)
        if row["sha256"] is None:
            raise Conflict("document_not_ready", field="code", code=codes.grouped(row["code"]))
        content: bytes = await conn.fetchval(Q.document_pdf, row["sha256"])
    return DocumentPdf(filename=f"{row['kind']}-{row['code']}.pdf", content=content)
