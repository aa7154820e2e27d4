"""Registry rows for case tests, inserted with plain SQL (the registry area is built
separately; these only need its tables from sql/migrations/0002_collateral.sql)."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from market.clock import Clock
from market.commands import Act
from tests.factories import act_as, credit_code, make_org

_n = itertools.count(1)


class Loan(msgspec.Struct, frozen=True, kw_only=True):
    bank_org_id: int
    loan_id: int
    loan_no: str
    pledge_id: int
    pledgor_id: int
    asset_ids: list[int]


async def make_bank(pool: asyncpg.Pool, at: datetime) -> tuple[int, int, str]:
    """A bank with one admin user: (org id, user id, e-mail)."""
    return await make_org(pool, at, kind="bank")


async def bank_act(pool: asyncpg.Pool, clock: Clock) -> tuple[int, int, Act]:
    """A bank with one admin user, and a way to run commands as that user on `clock`:
    (org id, user id, act)."""
    bank, user, _ = await make_bank(pool, clock.now())
    return bank, user, await act_as(pool, clock, user)


async def make_asset(
    conn: Any, at: datetime, bank_org_id: int, pledgor_id: int, kind: str = "patent"
) -> int:
    n = next(_n)
    if kind == "patent":
        return int(
            await conn.fetchval(
                """INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, abstract,
                       patent_type, filing_date, term_ends_on, ipc_codes, annuity_paid_through,
                       owners, legal_status, created_at, updated_at)
                   VALUES ($1, $2, 'patent', $3, $4, '一种用于锂电池的散热结构', 'invention',
                       '2019-03-01', '2039-03-01', '{H01M 10/613}', '2026-03-01',
                       '{某某科技有限公司}', 'valid', $5, $5)
                   RETURNING id""",
                bank_org_id,
                pledgor_id,
                f"2019{n:08d}",
                f"一种电池热管理装置 {n}",
                at,
            )
        )
    if kind == "trademark":
        return int(
            await conn.fetchval(
                """INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title,
                       nice_classes, valid_until, owners, legal_status, created_at, updated_at)
                   VALUES ($1, $2, 'trademark', $3, $4, '{9}', '2030-12-31', '{某某科技有限公司}',
                       'valid', $5, $5)
                   RETURNING id""",
                bank_org_id,
                pledgor_id,
                f"{30000000 + n}",
                f"商标“星河{n}”",
                at,
            )
        )
    return int(
        await conn.fetchval(
            """INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title,
                   registered_on, owners, legal_status, created_at, updated_at)
               VALUES ($1, $2, 'software_copyright', $3, $4, '2021-05-01', '{某某科技有限公司}',
                   'valid', $5, $5)
               RETURNING id""",
            bank_org_id,
            pledgor_id,
            f"2021SR{n:07d}",
            f"智能仓储管理系统 V{n}.0",
            at,
        )
    )


async def make_loan(
    pool: asyncpg.Pool,
    at: datetime,
    bank_org_id: int,
    *,
    kinds: tuple[str, ...] = ("patent", "patent"),
    default_date: date | None = date(2025, 10, 8),
    npl_class: str | None = "substandard",
    principal_fen: int = 5_000_000_00,
    outstanding_principal_fen: int = 4_200_000_00,
    outstanding_interest_fen: int = 137_500_50,
) -> Loan:
    """A pledgor, its assets of the given kinds, a pledge of all of them and a loan on it.
    Defaulted by default; pass default_date=None, npl_class=None for a performing loan."""
    n = next(_n)
    async with pool.acquire() as conn, conn.transaction():
        pledgor_id = await conn.fetchval(
            """INSERT INTO pledgors (bank_org_id, credit_code, name, region, created_at, updated_at)
               VALUES ($1, $2, $3, '四川省成都市', $4, $4) RETURNING id""",
            bank_org_id,
            credit_code(700000 + n),
            f"成都星河科技有限公司{n}",
            at,
        )
        asset_ids = [await make_asset(conn, at, bank_org_id, pledgor_id, k) for k in kinds]
        pledge_id = await conn.fetchval(
            """INSERT INTO pledges (bank_org_id, registration_no, pledgor_id, secured_amount_fen,
                   registered_on, created_at, updated_at)
               VALUES ($1, $2, $3, $4, '2023-06-01', $5, $5) RETURNING id""",
            bank_org_id,
            f"ZL-2023-{n:05d}",
            pledgor_id,
            principal_fen,
            at,
        )
        await conn.executemany(
            "INSERT INTO pledge_assets (pledge_id, asset_id) VALUES ($1, $2)",
            [(pledge_id, a) for a in asset_ids],
        )
        loan_no = f"DK{n:08d}"
        loan_id = await conn.fetchval(
            """INSERT INTO loans (bank_org_id, loan_no, pledgor_id, pledge_id, principal_fen,
                   rate_bp, outstanding_principal_fen, outstanding_interest_fen, disbursed_on,
                   default_date, npl_class, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, 420, $6, $7, '2023-06-15', $8, $9, $10, $10)
               RETURNING id""",
            bank_org_id,
            loan_no,
            pledgor_id,
            pledge_id,
            principal_fen,
            outstanding_principal_fen,
            outstanding_interest_fen,
            default_date,
            npl_class,
            at,
        )
    return Loan(
        bank_org_id=bank_org_id,
        loan_id=loan_id,
        loan_no=loan_no,
        pledge_id=pledge_id,
        pledgor_id=pledgor_id,
        asset_ids=asset_ids,
    )


async def make_flag(
    pool: asyncpg.Pool, at: datetime, bank_org_id: int, asset_id: int, kind: str = "annuity_grace"
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO monitoring_flags (bank_org_id, asset_id, kind, detail, raised_at)
               VALUES ($1, $2, $3, $4, $5)""",
            bank_org_id,
            asset_id,
            kind,
            {"due_on": "2025-12-01"},
            at,
        )


async def make_lot(
    pool: asyncpg.Pool,
    at: datetime,
    bank_org_id: int,
    case_id: int,
    *,
    status: str = "announced",
) -> int:
    """A bare lot row of a case (the lots area owns the real thing)."""
    n = next(_n)
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                """INSERT INTO lots (case_id, bank_org_id, reference, title, status,
                       valuation_fen, start_price_fen, deposit_fen, increment_fen,
                       first_start_fen, terms, created_at, updated_at, published_at)
                   VALUES ($1, $2, $3, $4, $5, 100000000, 80000000, 8000000, 400000,
                       80000000, '{}', $6, $6,
                       CASE WHEN $5::text = 'draft' THEN NULL ELSE $6::timestamptz END)
                   RETURNING id""",
                case_id,
                bank_org_id,
                f"LOT-2026-{900_000 + n:06d}",  # beyond the numbers publication gives
                f"电池热管理专利包 {n}",
                status,
                at,
            )
        )
