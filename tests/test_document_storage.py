"""A refused upload stores nothing, and each organisation has a storage quota
(docs/rules.md §Security): case documents, onboarding documents and a licence's recordal
notice are checked whole — type, size, checklist item, quota — before a byte is written.

"Nothing" is measured on document_blobs itself: its rows, their bytes, and the size of
its files on disk, which a rolled-back insert would grow (its dead tuples stay until a
vacuum; each test starts from a truncated, empty table)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import date
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.accounts import onboarding
from market.accounts.models import DocumentIn
from market.cases import services
from market.cases.models import OpenCase, UploadDocument
from market.cases.policy import DEFAULT_DOCUMENT_POLICY
from market.clock import FrozenClock
from market.errors import Invalid
from market.licensing import recordal
from tests.cases.factories import bank_act, make_loan
from tests.factories import act_as, credit_code, make_org, make_token
from tests.licensing.scene import beijing
from tests.licensing.test_royalty_commands import scene

QUOTA = DEFAULT_DOCUMENT_POLICY.org_quota_bytes
MB = 1024 * 1024


def pdf(tag: str, size: int = MB) -> bytes:
    """A PDF of about `size` bytes whose content is its own (`tag`)."""
    return b"%PDF-1.4\n%" + tag.encode() + b"\n" + b"0" * size + b"\n%%EOF\n"


async def blobs(pool: asyncpg.Pool) -> tuple[int, int, int]:
    """document_blobs: (rows, their bytes, its files' size on disk)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(size_bytes), 0) AS bytes,"
        " pg_total_relation_size('document_blobs') AS disk FROM document_blobs"
    )
    assert row is not None
    return int(row["n"]), int(row["bytes"]), int(row["disk"])


async def fill(pool: asyncpg.Pool, org_id: int, leave: int) -> None:
    """Make the organisation hold all but `leave` bytes of its quota (onboarding documents
    whose recorded sizes add up; their one tiny blob is stored before anything is measured)."""
    tiny = pdf("filler", 10)
    digest = hashlib.sha256(tiny).digest()
    await pool.execute(
        "INSERT INTO document_blobs (sha256, content, size_bytes) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        digest,
        tiny,
        len(tiny),
    )
    remaining = QUOTA - leave
    while remaining > 0:
        size = min(remaining, 2**31 - 1)
        await pool.execute(
            "INSERT INTO organisation_documents (org_id, kind, filename, content_type,"
            " size_bytes, sha256, uploaded_at) VALUES ($1, 'other', 'filler.pdf',"
            " 'application/pdf', $2, $3, now())",
            org_id,
            size,
            digest,
        )
        remaining -= size


async def test_a_refused_case_document_stores_nothing_and_the_quota_names_the_file(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, _ = await make_org(pool, clock.now(), kind="bank")
    token = await make_token(pool, clock.now(), user, ["collateral:read", "collateral:write"])
    auth = {"Authorization": f"Bearer {token}"}
    loan = await make_loan(pool, clock.now(), bank)
    case = (await client.post("/api/v1/cases", json={"loan_id": loan.loan_id}, headers=auth)).json()
    url = f"/api/v1/cases/{case['id']}/documents"
    await fill(pool, bank, leave=MB)
    before = await blobs(pool)
    for item, content, code, field in (
        ("no_such_item", pdf("a"), "item_not_in_checklist", "item"),
        ("file_history", pdf("b", 2 * MB), "storage_quota_exceeded", "file"),
    ):
        r = await client.post(
            url,
            data={"item": item},
            files={"file": ("审查档案.pdf", content, "application/pdf")},
            headers=auth,
        )
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == (code, field)
        assert await blobs(pool) == before
    params = r.json()["params"]
    assert (params["quota_bytes"], params["used_bytes"]) == (QUOTA, QUOTA - MB)
    # What still fits is accepted.
    r = await client.post(
        url,
        data={"item": "file_history"},
        files={"file": ("审查档案.pdf", pdf("c", MB // 2), "application/pdf")},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    assert (await blobs(pool))[:2] == (before[0] + 1, before[1] + len(pdf("c", MB // 2)))


async def test_refused_onboarding_documents_store_nothing_naming_documents_n(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    def doc(kind: str, content: bytes, name: str = "x.pdf") -> dict[str, str]:
        return {"kind": kind, "filename": name, "content": base64.b64encode(content).decode()}

    sign_up = {
        "name": "某某科技有限公司",
        "party_type": "company",
        "credit_code": credit_code(),
        "email": "buyer@company.test",
        "display_name": "张三",
        "password": "a long password 4",
    }
    before = await blobs(pool)
    # The first document is good and large; the second is not a document.
    r = await client.post(
        "/api/v1/buyers",
        json={
            **sign_up,
            "documents": [doc("business_licence", pdf("licence", 4 * MB)), doc("other", b"no")],
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "documents[1]"
    assert await blobs(pool) == before
    assert await pool.fetchval("SELECT count(*) FROM organisations") == 0

    # An organisation near its quota: the documents that do not fit, all refused.
    org, admin, _ = await make_org(pool, clock.now(), kind="bank", status="pending")
    await fill(pool, org, leave=MB)
    before = await blobs(pool)
    act = await act_as(pool, clock, admin)
    own = onboarding.OwnDocuments(
        documents=[
            DocumentIn(kind="business_licence", filename="a.pdf", content=pdf("d", MB // 2)),
            DocumentIn(kind="authorisation_letter", filename="b.pdf", content=pdf("e", MB)),
        ]
    )
    with pytest.raises(Invalid) as refused:
        await act(onboarding.upload_own_documents, own)
    assert (refused.value.code, refused.value.field) == ("storage_quota_exceeded", "documents[1]")
    assert await blobs(pool) == before
    # The first alone fits.
    stored = await act(
        onboarding.upload_own_documents, onboarding.OwnDocuments(documents=own.documents[:1])
    )
    assert len(stored) == 1 and (await blobs(pool))[0] == before[0] + 1


async def test_a_refused_recordal_notice_stores_nothing(pool: asyncpg.Pool) -> None:
    s = await scene(pool)
    bank = await pool.fetchval(
        "SELECT bank_org_id FROM licence_contracts WHERE id = $1", s.contract.id
    )
    await fill(pool, bank, leave=MB)
    before = await blobs(pool)
    data = recordal.Recordal(
        contract_id=s.contract.id,
        recordal_number="2027990000042",
        recorded_on=date(2027, 1, 15),
        filename="备案通知书.pdf",
        content=pdf("notice", 2 * MB),
    )
    act = await act_as(pool, beijing(date(2027, 1, 20)), s.licensee_user)
    with pytest.raises(Invalid) as refused:
        await act(recordal.record_recordal, data)
    assert (refused.value.code, refused.value.field) == ("storage_quota_exceeded", "file")
    assert await blobs(pool) == before
    small = pdf("notice", MB // 2)
    done = await act(
        recordal.record_recordal, recordal.Recordal(**{**_fields(data), "content": small})
    )
    assert done.recordal_number == "2027990000042"
    assert (await blobs(pool))[:2] == (before[0] + 1, before[1] + len(small))


def _fields(data: recordal.Recordal) -> dict[str, Any]:
    return {f: getattr(data, f) for f in data.__struct_fields__}


async def test_two_uploads_at_once_cannot_both_take_the_last_free_bytes(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, _, act = await bank_act(pool, clock)
    cases = [
        await act(
            services.open_case, OpenCase(loan_id=(await make_loan(pool, clock.now(), bank)).loan_id)
        )
        for _ in range(2)
    ]
    await fill(pool, bank, leave=MB)
    results = await asyncio.gather(
        *(
            act(
                services.upload_document,
                UploadDocument(
                    case_id=case.id,
                    item="file_history",
                    filename="a.pdf",
                    content=pdf(str(n), MB * 3 // 4),
                ),
            )
            for n, case in enumerate(cases)
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Invalid)]
    assert len(refused) == 1 and refused[0].code == "storage_quota_exceeded"
    assert await pool.fetchval("SELECT count(*) FROM case_documents") == 1
