"""Disclosure documents: type judged by content, size limit, bytes stored once, removal,
and the checklist status of patent and trademark cases."""

from __future__ import annotations

import hashlib
import io
import zipfile

import asyncpg
import pytest

from market.cases import filetypes, services
from market.cases.models import (
    CaseOut,
    InternalIn,
    OpenCase,
    RecordValuation,
    RemoveDocument,
    Scores,
    UploadDocument,
)
from market.cases.valuation import INDICATORS
from market.clock import FrozenClock
from market.commands import Act
from market.errors import Conflict, Invalid, NotFound
from market.problems import describe
from tests.cases.factories import bank_act, make_loan, make_lot

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
PATENT_ITEMS = [
    "valuation_report",
    "ownership_encumbrances",
    "preemptive_holders",
    "payment_accounts",
    "taxes_fees",
    "file_history",
    "chain_of_title",
    "existing_licences",
    "annuity_status",
]
GENERAL_ITEMS = PATENT_ITEMS[:5]


def ooxml(main_type: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'content-types"><Override PartName="/main.xml" ContentType="{main_type}"/></Types>',
        )
        archive.writestr("main.xml", "<x/>")
    return buffer.getvalue()


DOCX = ooxml("application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")
XLSX = ooxml("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")


async def open_case(
    pool: asyncpg.Pool, clock: FrozenClock, kinds: tuple[str, ...] = ("patent", "trademark")
) -> tuple[int, Act, CaseOut]:
    bank, _, act = await bank_act(pool, clock)
    loan = await make_loan(pool, clock.now(), bank, kinds=kinds)
    case = await act(services.open_case, OpenCase(loan_id=loan.loan_id))
    return bank, act, case


def upload(case: CaseOut, item: str, filename: str, content: bytes) -> UploadDocument:
    return UploadDocument(case_id=case.id, item=item, filename=filename, content=content)


# --- the type check (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("评估报告.pdf", PDF, "application/pdf"),
        ("scan.PNG", PNG, "image/png"),
        ("photo.jpeg", JPEG, "image/jpeg"),
        ("说明.docx", DOCX, filetypes.DOCX.content_type),
        ("accounts.xlsx", XLSX, filetypes.XLSX.content_type),
        ("note.txt", "收款账户：中国建设银行".encode(), "text/plain; charset=utf-8"),
        ("note.txt", "收款账户：中国建设银行".encode("gb18030"), "text/plain; charset=gb18030"),
    ],
)
def test_accepted_types(name: str, content: bytes, content_type: str) -> None:
    clean, kind = filetypes.check(name, content, max_bytes=1024 * 1024)
    assert clean == name and kind.content_type == content_type


@pytest.mark.parametrize(
    ("name", "content", "code", "params"),
    [
        # a .pdf that is really a PNG
        (
            "report.pdf",
            PNG,
            "file_extension_mismatch",
            {"kind": "PNG", "suffix": ".pdf", "expected": ".png"},
        ),
        (
            "report.docx",
            XLSX,
            "file_extension_mismatch",
            {"kind": "Excel (XLSX)", "suffix": ".docx", "expected": ".xlsx"},
        ),
        ("report.docx", b"PK\x03\x04" + bytes(40), "file_type_not_accepted", None),  # not OOXML
        ("tool.exe", b"MZ\x90\x00\x03" + bytes(60), "file_type_not_accepted", None),
        ("report", PDF, "file_extension_missing", {"kind": "PDF", "expected": ".pdf"}),
        ("empty.pdf", b"", "file_empty", {}),
    ],
)
def test_refused_types(name: str, content: bytes, code: str, params: dict[str, str] | None) -> None:
    with pytest.raises(Invalid) as err:
        filetypes.check(name, content, max_bytes=1024 * 1024)
    assert (err.value.code, err.value.field) == (code, "file")
    if params is not None:
        assert err.value.params == params
    else:
        assert ".pdf" in err.value.params["allowed"]


def test_a_refusal_reads_in_one_language() -> None:
    with pytest.raises(Invalid) as err:
        filetypes.check("账户.pdf", PNG, max_bytes=1024 * 1024)
    zh = describe("zh", err.value.code, err.value.params)
    en = describe("en", err.value.code, err.value.params)
    assert "PNG" in zh and "不符" in zh and "name it" not in zh
    assert "name it *.png" in en and "不符" not in en


def test_a_path_in_the_name_is_dropped() -> None:
    assert filetypes.check(r"C:\Users\bank\报告.pdf", PDF, max_bytes=10_000)[0] == "报告.pdf"
    assert filetypes.check("../../etc/passwd.pdf", PDF, max_bytes=10_000)[0] == "passwd.pdf"


# --- uploads on a case --------------------------------------------------------------------


async def test_upload_keeps_sha256_and_type(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, act, case = await open_case(pool, clock)
    doc = await act(
        services.upload_document, upload(case, "ownership_encumbrances", "权属说明.pdf", PDF)
    )
    assert doc.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (doc.content_type, doc.size_bytes, doc.filename) == (
        "application/pdf",
        len(PDF),
        "权属说明.pdf",
    )
    found = await services.find_document(pool, bank, case.id, doc.id)
    chunks = [c async for c in services.document_bytes(pool, found)]
    assert b"".join(chunks) == PDF
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'document.upload'")
            == 1
        )


async def test_png_named_pdf_is_refused_and_nothing_written(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, act, case = await open_case(pool, clock)
    with pytest.raises(Invalid) as err:
        await act(services.upload_document, upload(case, "payment_accounts", "账户.pdf", PNG))
    assert err.value.code == "file_extension_mismatch" and err.value.params["kind"] == "PNG"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM document_blobs") == 0
        assert await conn.fetchval("SELECT count(*) FROM case_documents") == 0


async def test_21_mb_is_refused(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, act, case = await open_case(pool, clock)
    big = PDF + bytes(21 * 1024 * 1024)
    with pytest.raises(Invalid) as err:
        await act(services.upload_document, upload(case, "taxes_fees", "big.pdf", big))
    assert (err.value.code, err.value.field) == ("file_too_large", "file")
    assert err.value.params == {
        "size_bytes": len(big),
        "max_bytes": 20 * 1024 * 1024,
        "max_mb": 20,
    }


async def test_same_bytes_twice_are_stored_once(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, act, case = await open_case(pool, clock)
    chunk_test = PDF + bytes(3 * 1024 * 1024 + 17)  # several download chunks
    for item in ("taxes_fees", "payment_accounts"):
        await act(services.upload_document, upload(case, item, "合并披露.pdf", chunk_test))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM document_blobs") == 1
        assert await conn.fetchval("SELECT count(*) FROM case_documents") == 2
    docs = (await services.get_case(pool, bank, case.id)).documents
    assert len({d.sha256 for d in docs}) == 1
    got = b"".join([c async for c in services.document_bytes(pool, docs[0])])
    assert got == chunk_test


async def test_item_must_belong_to_the_cases_checklist(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, act, case = await open_case(pool, clock, kinds=("trademark",))
    for item in ("file_history", "nonsense"):  # file_history: patents only
        with pytest.raises(Invalid) as err:
            await act(services.upload_document, upload(case, item, "a.pdf", PDF))
        assert (err.value.code, err.value.field) == ("item_not_in_checklist", "item")
        assert err.value.params == {"item": item, "items": GENERAL_ITEMS}


async def test_remove_is_soft_and_only_before_publication(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, act, case = await open_case(pool, clock)
    first = await act(services.upload_document, upload(case, "taxes_fees", "a.pdf", PDF))
    await act(services.remove_document, RemoveDocument(case_id=case.id, document_id=first.id))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT removed_at FROM case_documents") == clock.now()
        status = await services.disclosure_status(conn, bank, case.id)
    assert "taxes_fees" in status.missing
    with pytest.raises(NotFound):
        await services.find_document(pool, bank, case.id, first.id)
    with pytest.raises(NotFound) as err:  # twice
        await act(services.remove_document, RemoveDocument(case_id=case.id, document_id=first.id))
    assert err.value.code == "no_such_document"
    second = await act(
        services.upload_document, upload(case, "taxes_fees", "b.txt", b"taxes: buyer pays")
    )
    await make_lot(pool, clock.now(), bank, case.id, status="bidding")
    with pytest.raises(Conflict) as err:
        await act(services.remove_document, RemoveDocument(case_id=case.id, document_id=second.id))
    assert err.value.code == "documents_frozen_by_published_lot"


async def test_another_banks_document_is_not_found(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, act, case = await open_case(pool, clock)
    other, _, other_act = await bank_act(pool, clock)
    doc = await act(services.upload_document, upload(case, "taxes_fees", "a.pdf", PDF))
    with pytest.raises(NotFound):
        await services.find_document(pool, other, case.id, doc.id)
    with pytest.raises(NotFound):
        await other_act(
            services.remove_document, RemoveDocument(case_id=case.id, document_id=doc.id)
        )
    with pytest.raises(NotFound):
        await other_act(services.upload_document, upload(case, "taxes_fees", "a.pdf", PDF))


# --- disclosure status and case_for_lot -----------------------------------------------------


async def test_disclosure_of_a_patent_case(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, act, case = await open_case(pool, clock, kinds=("patent", "trademark"))
    async with pool.acquire() as conn:
        status = await services.disclosure_status(conn, bank, case.id)
    assert status.required == PATENT_ITEMS and status.missing == PATENT_ITEMS
    assert status.present == [] and not status.complete
    for item in PATENT_ITEMS[1:]:
        await act(services.upload_document, upload(case, item, f"{item}.pdf", PDF + item.encode()))
    async with pool.acquire() as conn:
        status = await services.disclosure_status(conn, bank, case.id)
    assert status.missing == ["valuation_report"]
    # an internal valuation's explanation is the valuation report
    await act(
        services.record_valuation,
        RecordValuation(
            case_id=case.id,
            valuation=InternalIn(
                base_value_fen=500_000_00,
                basis="市场法",
                scores=Scores(**dict.fromkeys(INDICATORS, 60)),
            ),
        ),
    )
    async with pool.acquire() as conn:
        status = await services.disclosure_status(conn, bank, case.id)
        lot_view = await services.case_for_lot(conn, bank, case.id)
    assert status.complete and status.present == PATENT_ITEMS
    assert lot_view.missing_items == []
    assert lot_view.valuation_fen == 500_000_00 and lot_view.valuation_method == "internal"
    assert lot_view.objection_until is None


async def test_disclosure_of_a_trademark_only_case(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, act, case = await open_case(pool, clock, kinds=("trademark", "software_copyright"))
    await act(services.upload_document, upload(case, "valuation_report", "评估报告.pdf", PDF))
    async with pool.acquire() as conn:
        status = await services.disclosure_status(conn, bank, case.id)
    assert status.required == GENERAL_ITEMS
    assert status.present == ["valuation_report"]
    assert status.missing == GENERAL_ITEMS[1:]


async def test_case_for_lot(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, _, case = await open_case(pool, clock, kinds=("patent", "patent"))
    other, _, _ = await bank_act(pool, clock)
    async with pool.acquire() as conn:
        view = await services.case_for_lot(conn, bank, case.id)
        with pytest.raises(NotFound):
            await services.case_for_lot(conn, other, case.id)
        with pytest.raises(NotFound):
            await services.disclosure_status(conn, other, case.id)
    assert view.case_id == case.id and view.reference == case.reference
    assert view.status == "open"
    assert view.asset_ids == [a.id for a in case.assets] and len(view.asset_ids) == 2
    assert view.valuation_fen is None and view.valuation_method is None
    assert view.valuation_valid_until is None and view.objection_until is None
    assert view.missing_items == PATENT_ITEMS
