"""Rows for catalogue tests, inserted with plain SQL: the catalogue only reads them, and the
areas that write them (collateral, cases, lots) are built at the same time."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from market.catalogue.text import ipc_keys, search_document
from tests.factories import credit_code, make_org

_seq = itertools.count(1)


@dataclass
class Bank:
    org_id: int
    user_id: int
    pledgor_id: int
    case_id: int
    region: str


async def make_bank_case(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    region: str = "四川省成都市",
    notes: str = "",
    name: str | None = None,
) -> Bank:
    """A bank with a pledgor, a defaulted loan and an open disposal case on it."""
    org_id, user_id, _ = await make_org(pool, at, kind="bank", name=name)
    n = next(_seq)
    async with pool.acquire() as conn:
        pledgor_id = await conn.fetchval(
            """INSERT INTO pledgors (bank_org_id, credit_code, name, region, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $5) RETURNING id""",
            org_id,
            credit_code(5000 + n),
            f"成都某新材料科技有限公司{n}",
            region,
            at,
        )
        loan_id = await conn.fetchval(
            """INSERT INTO loans (bank_org_id, loan_no, pledgor_id, principal_fen, rate_bp,
                   outstanding_principal_fen, outstanding_interest_fen, default_date, npl_class,
                   created_at, updated_at)
               VALUES ($1, $2, $3, 500000000, 435, 420000000, 1234567, $4, 'doubtful', $5, $5)
               RETURNING id""",
            org_id,
            f"LN-{n:05d}",
            pledgor_id,
            date(2025, 6, 30),
            at,
        )
        case_id = await conn.fetchval(
            """INSERT INTO disposal_cases (bank_org_id, loan_id, reference, status,
                   claim_principal_fen, claim_interest_fen, claim_costs_fen, notes, opened_by,
                   opened_at)
               VALUES ($1, $2, $3, 'open', 420000000, 1234567, 0, $4, $5, $6) RETURNING id""",
            org_id,
            loan_id,
            f"CZ-2026-{n:06d}",
            notes,
            user_id,
            at,
        )
    return Bank(org_id, user_id, pledgor_id, case_id, region)


async def make_asset(
    pool: asyncpg.Pool,
    at: datetime,
    bank: Bank,
    *,
    kind: str = "patent",
    title: str = "一种锂电池正极材料的制备方法",
    abstract: str = "本发明公开了一种高镍三元正极材料。",
    ipc: tuple[str, ...] = ("H01M 4/525",),
    number: str | None = None,
    licences: str = "",
    encumbrances: str = "",
    annuity_paid_through: date | None = date(2026, 8, 31),
) -> tuple[int, str]:
    """(asset id, number)."""
    n = next(_seq)
    number = number or (f"2021{n:08d}.X" if kind == "patent" else str(10_000_000 + n))
    patent = kind == "patent"
    async with pool.acquire() as conn:
        asset_id = await conn.fetchval(
            """INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, abstract,
                   patent_type, filing_date, term_ends_on, ipc_codes, annuity_paid_through,
                   nice_classes, valid_until, owners, legal_status, licences, encumbrances,
                   created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'valid',
                   $15, $16, $17, $17) RETURNING id""",
            bank.org_id,
            bank.pledgor_id,
            kind,
            number,
            title,
            abstract,
            "invention" if patent else None,
            date(2021, 3, 1) if patent else None,
            date(2041, 3, 1) if patent else None,
            list(ipc) if patent else [],
            annuity_paid_through if patent else None,
            [9] if kind == "trademark" else [],
            date(2031, 5, 20) if kind == "trademark" else None,
            ["成都某新材料科技有限公司", "四川某大学"],
            licences,
            encumbrances,
            at,
        )
    return asset_id, number


@dataclass
class Lot:
    id: int
    reference: str
    case_id: int
    asset_ids: list[int] = field(default_factory=list)


async def make_lot(
    pool: asyncpg.Pool,
    at: datetime,
    bank: Bank,
    *,
    title: str = "一种锂电池正极材料的制备方法",
    status: str = "announced",
    start_price_fen: int = 1_000_000_00,
    current_price_fen: int | None = None,
    ends_in: timedelta = timedelta(days=10),
    published_ago: timedelta = timedelta(days=1),
    kinds: tuple[str, ...] = ("patent",),
    ipc: tuple[str, ...] = ("H01M 4/525",),
    region: str | None = None,
    round: int = 1,
    assets: list[tuple[int, str]] | None = None,
    terms: dict[str, Any] | None = None,
    description: str = "",
    valuation_fen: int | None = None,
) -> Lot:
    """A lot in `status`, catalogue fields filled the way the lots area fills them."""
    n = next(_seq)
    reference = f"LOT-2026-{900_000 + n:06d}"  # beyond the numbers publication gives
    ends = at + ends_in
    starts = ends - timedelta(days=1) if status != "bidding" else at - timedelta(hours=1)
    published = None if status == "draft" else at - published_ago
    region = bank.region if region is None else region
    doc = search_document(title, description, region, *ipc)
    async with pool.acquire() as conn:
        lot_id = await conn.fetchval(
            """INSERT INTO lots (case_id, bank_org_id, reference, title, description, status,
                   round, valuation_fen, start_price_fen, deposit_fen, increment_fen,
                   first_start_fen, terms, announced_at, bidding_starts_at, bidding_ends_at,
                   paused_from, paused_at, resume_by, region, asset_kinds, ipc_keys, search,
                   current_price_fen, catalogue_price_fen, created_at, updated_at, published_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $9, $12, $13, $14, $15,
                   $16, $17, $18, $19, $20, $21, to_tsvector('simple', $22), $23, $23, $24, $24,
                   $13)
               RETURNING id""",
            bank.case_id,
            bank.org_id,
            reference,
            title,
            description,
            status,
            round,
            start_price_fen * 10 // 7 if valuation_fen is None else valuation_fen,
            start_price_fen,
            start_price_fen // 10,
            max(100_00, start_price_fen // 200),
            terms
            if terms is not None
            else {"extension_window_s": 300, "extension_s": 300, "payment_days": 10},
            published,
            starts,
            ends,
            "announced" if status == "paused" else None,
            at if status == "paused" else None,
            at + timedelta(days=5) if status == "paused" else None,
            region,
            list(kinds),
            ipc_keys(ipc),
            doc,
            current_price_fen,
            at,
        )
        for asset_id, _number in assets or []:
            await conn.execute(
                "INSERT INTO lot_assets (lot_id, asset_id) VALUES ($1, $2)", lot_id, asset_id
            )
    return Lot(lot_id, reference, bank.case_id, [a for a, _ in assets or []])


async def make_valuation(
    pool: asyncpg.Pool, at: datetime, bank: Bank, *, value_fen: int = 1_500_000_00
) -> int:
    async with pool.acquire() as conn:
        old = await conn.fetchval(
            """INSERT INTO valuations (case_id, method, value_fen, valued_on, valid_until,
                   appraiser, report_no, created_by, created_at, superseded_at)
               VALUES ($1, 'appraisal', 999900, '2025-01-01', '2026-01-01', '旧评估所', 'OLD-1',
                   $2, $3, $3) RETURNING id""",
            bank.case_id,
            bank.user_id,
            at - timedelta(days=400),
        )
        assert old
        value_id: int = await conn.fetchval(
            """INSERT INTO valuations (case_id, method, value_fen, valued_on, valid_until,
                   objection_until, appraiser, report_no, created_by, created_at)
               VALUES ($1, 'appraisal', $2, '2025-12-01', '2026-12-01', '2025-12-06',
                   '四川天府资产评估有限公司', 'TF-2025-088', $3, $4) RETURNING id""",
            bank.case_id,
            value_fen,
            bank.user_id,
            at,
        )
    return value_id


async def make_document(
    pool: asyncpg.Pool,
    at: datetime,
    bank: Bank,
    *,
    item: str = "valuation_report",
    filename: str = "评估报告.pdf",
    content: bytes | None = None,
    content_type: str = "application/pdf",
    public: bool = True,
    removed: bool = False,
) -> int:
    content = content or b"%PDF-1.7 report " + str(next(_seq)).encode()
    digest = hashlib.sha256(content).digest()
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO document_blobs (sha256, content, size_bytes) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            digest,
            content,
            len(content),
        )
        doc_id: int = await conn.fetchval(
            """INSERT INTO case_documents (case_id, item, filename, content_type, size_bytes,
                   sha256, public, uploaded_by, uploaded_at, removed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
            bank.case_id,
            item,
            filename,
            content_type,
            len(content),
            digest,
            public,
            bank.user_id,
            at,
            at if removed else None,
        )
    return doc_id


async def flag(pool: asyncpg.Pool, at: datetime, bank: Bank, asset_id: int, kind: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO monitoring_flags (bank_org_id, asset_id, kind, raised_at)
               VALUES ($1, $2, $3, $4)""",
            bank.org_id,
            asset_id,
            kind,
            at,
        )


async def preemptive(pool: asyncpg.Pool, lot: Lot, names: list[str]) -> None:
    async with pool.acquire() as conn:
        for rank, name in enumerate(names, start=1):
            await conn.execute(
                "INSERT INTO lot_preemptive_holders (lot_id, rank, name) VALUES ($1, $2, $3)",
                lot.id,
                rank,
                name,
            )
