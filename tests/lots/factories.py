"""A publishable case (valued, fully disclosed) built with plain SQL, for the lots tests."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date, datetime

import asyncpg

from market.accounts.models import Viewer
from market.cases.checklist import required_items
from market.clock import FrozenClock
from market.commands import Act, Actor, Context
from market.lots import services as lots
from market.lots.models import ActionInput, DraftLot, LotDraft, LotOut
from market.lots.terms import TermsPolicy
from market.validators import _patent_check_char
from tests.factories import credit_code

_n = itertools.count(1)


def patent_number(serial: int) -> str:
    digits = f"20231{serial:07d}"
    return f"{digits}.{_patent_check_char(digits)}"


async def make_case(
    pool: asyncpg.Pool,
    at: datetime,
    bank_org_id: int,
    user_id: int,
    *,
    valuation_fen: int = 1_000_000_00,
    disclosed: bool = True,
    assets: int = 1,
) -> tuple[int, list[int]]:
    """(case id, asset ids): a defaulted loan's patents, valued internally, documents filed."""
    n = next(_n)
    async with pool.acquire() as conn, conn.transaction():
        pledgor = await conn.fetchval(
            "INSERT INTO pledgors (bank_org_id, credit_code, name, region, created_at, updated_at)"
            " VALUES ($1, $2, $3, '四川省成都市', $4, $4) RETURNING id",
            bank_org_id,
            credit_code(800_000 + n),
            f"成都锂能科技有限公司{n}",
            at,
        )
        asset_ids = []
        for i in range(assets):
            asset_ids.append(
                await conn.fetchval(
                    "INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, abstract,"
                    " patent_type, filing_date, term_ends_on, ipc_codes, annuity_paid_through, owners,"
                    " legal_status, created_at, updated_at) VALUES ($1, $2, 'patent', $3, $4, $5,"
                    " 'invention', '2019-03-01', '2039-02-28', $6, '2026-12-31', $7, 'valid', $8, $8)"
                    " RETURNING id",
                    bank_org_id,
                    pledgor,
                    patent_number(n * 10 + i),
                    f"一种锂电池正极材料的制备方法{n}-{i}",
                    "本发明公开了一种高镍三元正极材料……",
                    ["H01M 4/525"],
                    ["成都锂能科技有限公司"],
                    at,
                )
            )
        pledge = await conn.fetchval(
            "INSERT INTO pledges (bank_org_id, registration_no, pledgor_id, secured_amount_fen,"
            " created_at, updated_at) VALUES ($1, $2, $3, 300000000, $4, $4) RETURNING id",
            bank_org_id,
            f"ZX-{n:06d}",
            pledgor,
            at,
        )
        await conn.execute(
            "INSERT INTO pledge_assets SELECT $1, unnest($2::bigint[])", pledge, asset_ids
        )
        loan = await conn.fetchval(
            "INSERT INTO loans (bank_org_id, loan_no, pledgor_id, pledge_id, principal_fen, rate_bp,"
            " outstanding_principal_fen, outstanding_interest_fen, default_date, npl_class,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, 300000000, 435, 280000000, 1200000,"
            " '2025-11-01', 'substandard', $5, $5) RETURNING id",
            bank_org_id,
            f"DK-{n:06d}",
            pledgor,
            pledge,
            at,
        )
        case_id = await conn.fetchval(
            "INSERT INTO disposal_cases (bank_org_id, loan_id, reference, status,"
            " claim_principal_fen, claim_interest_fen, claim_costs_fen, opened_by, opened_at)"
            " VALUES ($1, $2, $3, 'open', 280000000, 1200000, 0, $4, $5) RETURNING id",
            bank_org_id,
            loan,
            f"CZ-TEST-{n:06d}",
            user_id,
            at,
        )
        await conn.execute(
            "INSERT INTO case_assets SELECT $1, unnest($2::bigint[])", case_id, asset_ids
        )
        if valuation_fen:
            await conn.execute(
                "INSERT INTO valuations (case_id, method, value_fen, valued_on, valid_until,"
                " inputs, explanation, created_by, created_at) VALUES ($1, 'internal', $2, $3,"
                " $4, '{}', '内部评估', $5, $6)",
                case_id,
                valuation_fen,
                at.date(),
                date(at.year + 1, at.month, at.day),
                user_id,
                at,
            )
        if disclosed:
            content = b"%PDF-1.4 test document"
            digest = hashlib.sha256(content).digest()
            await conn.execute(
                "INSERT INTO document_blobs VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                digest,
                content,
                len(content),
            )
            for item in required_items(["patent"]):
                await conn.execute(
                    "INSERT INTO case_documents (case_id, item, filename, content_type,"
                    " size_bytes, sha256, uploaded_by, uploaded_at) VALUES ($1, $2, $3,"
                    " 'application/pdf', $4, $5, $6, $7)",
                    case_id,
                    item,
                    f"{item}.pdf",
                    len(content),
                    digest,
                    user_id,
                    at,
                )
    return case_id, asset_ids


async def draft_lot(
    pool: asyncpg.Pool,
    at: datetime,
    policy: TermsPolicy,
    bank: Viewer,
    case_id: int,
    draft: LotDraft,
) -> LotOut:
    """A draft lot of `bank`'s case at `at`, through the command a bank's page runs."""
    act = Act(Context(pool=pool, clock=FrozenClock(at)), Actor.of(bank))
    return await act(lots.draft_lot, DraftLot(case_id=case_id, lot=draft, policy=policy))


async def lot_action(
    pool: asyncpg.Pool,
    at: datetime,
    policy: TermsPolicy,
    bank: Viewer,
    lot_id: int,
    action: ActionInput,
) -> LotOut:
    """A lifecycle action (publish, withdraw, pause …) of `bank` at `at`."""
    act = Act(Context(pool=pool, clock=FrozenClock(at)), Actor.of(bank))
    return await lots.run_action(act, lot_id, action, policy)
