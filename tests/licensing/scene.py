"""Licence contracts on a defaulted loan of a Zhongshan-style pool, for the royalty tests
and the bench: the loan and its claim through the pools' commands (tests/pools/scene.py),
the contract through create_contract from an open licence row inserted here."""

from __future__ import annotations

import itertools
from datetime import date, datetime

import asyncpg

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.licensing.contracts import ContractOut, NewContract, create_contract
from market.licensing.royalties import RoyaltyTerms

_n = itertools.count(1)


async def patent_of(pool: asyncpg.Pool, at: datetime, bank_org: int, pledgor_id: int) -> int:
    """A granted invention patent of the pledgor, in the bank's registry."""
    n = next(_n)
    return int(
        await pool.fetchval(
            "INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, patent_type,"
            " filing_date, term_ends_on, owners, legal_status, created_at, updated_at)"
            " VALUES ($1, $2, 'patent', $3, '一种光电转换装置', 'invention', '2019-03-01',"
            " '2039-03-01', ARRAY['中山光电科技有限公司'], 'valid', $4, $4) RETURNING id",
            bank_org,
            pledgor_id,
            f"ZL2019{n:07d}.X",
            at,
        )
    )


async def make_contract(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    case_id: int,
    bank_org: int,
    licensee_org: int,
    asset_id: int,
    terms: RoyaltyTerms,
    upfront_fen: int = 0,
    pledgor_org: int | None = None,
) -> ContractOut:
    """A contract in force, from an open licence row (the offer path is the deciding
    command's; the contract is the same)."""
    async with unit_of_work(Context(pool=pool, clock=FrozenClock(at)), SYSTEM) as uow:
        open_id = await uow.conn.fetchval(
            "INSERT INTO open_licences (case_id, asset_id, bank_org_id, pledgor_org_id, terms,"
            " status, created_at) VALUES ($1, $2, $3, $4, '{}', 'withdrawn', $5) RETURNING id",
            case_id,
            asset_id,
            bank_org,
            pledgor_org if pledgor_org is not None else licensee_org,
            at,
        )
        return await create_contract(
            uow,
            NewContract(
                case_id=case_id,
                bank_org_id=bank_org,
                licensee_org_id=licensee_org,
                pledgor_org_id=pledgor_org,
                kind="non_exclusive",
                terms=terms,
                upfront_fen=upfront_fen,
                open_licence_id=open_id,
            ),
        )


def beijing(day: date, hour: int = 10) -> datetime:
    """10:00 in Beijing on `day`, as an instant."""
    from datetime import UTC

    return datetime(day.year, day.month, day.day, hour - 8, 0, tzinfo=UTC)
