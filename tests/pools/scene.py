"""Pools, banks and defaulted enrolled loans for the pools tests (issue 6)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from auctions.deposits import CLEARING
from market.pools import services
from market.pools.rules import PoolRule, parse_rule
from tests.factories import credit_code, make_org

_n = itertools.count(1)

ZHONGSHAN = {
    "shares": [
        {"name": "fund", "weight": 54},
        {"name": "bank", "weight": 26},
        {"name": "insurer", "weight": 16, "label": "保险公司 insurer"},
        {"name": "evaluator", "weight": 4, "label": "评估机构 evaluator"},
    ],
    "timing": "after_loss",
}
SHENZHEN = {
    "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
    "cap_per_loan_fen": 2_000_000_00,
}
SHANGHAI_ADVANCE = {
    "shares": [{"name": "fund", "weight": 55}, {"name": "bank", "weight": 45}],
    "timing": "advance",
    "wait_days": 90,
}


@dataclass
class PoolOrg:
    org_id: int
    user_id: int
    email: str
    pool_id: int
    code: str


@dataclass
class Loan:
    bank_org: int
    bank_user: int
    loan_id: int
    case_id: int
    pledgor_id: int


async def make_pool(
    pool: asyncpg.Pool, at: datetime, rule: dict[str, object], *, capital_fen: int = 100_000_000_00
) -> PoolOrg:
    org, user, email = await make_org(pool, at, kind="pool")
    code = f"P{next(_n):04d}"
    async with pool.acquire() as conn, conn.transaction():
        row = await services.create_pool(
            conn,
            at=at,
            org_id=org,
            code=code,
            name=f"风险补偿资金池{code}",
            name_en=f"Pool {code}",
            capital_fen=capital_fen,
            rule=parse_rule(rule),
            effective_from=date(2020, 1, 1),
            actor_user_id=user,
        )
    return PoolOrg(org, user, email, row["id"], code)


async def make_loan(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    principal_fen: int,
    interest_fen: int = 0,
    costs_fen: int = 0,
    default_date: date | None = date(2026, 1, 5),
    bank: tuple[int, int] | None = None,
    enrol_in: PoolOrg | None = None,
) -> Loan:
    """A defaulted loan with an open disposal case claiming principal, interest and costs."""
    if bank is None:
        org, user, _ = await make_org(pool, at, kind="bank")
        bank = (org, user)
    n = next(_n)
    async with pool.acquire() as conn, conn.transaction():
        pledgor = await conn.fetchval(
            "INSERT INTO pledgors (bank_org_id, credit_code, name, region, created_at, updated_at)"
            " VALUES ($1, $2, $3, '广东省中山市', $4, $4) RETURNING id",
            bank[0],
            credit_code(900_000 + n),
            f"中山光电科技有限公司{n}",
            at,
        )
        loan = await conn.fetchval(
            "INSERT INTO loans (bank_org_id, loan_no, pledgor_id, principal_fen, rate_bp,"
            " outstanding_principal_fen, outstanding_interest_fen, default_date, npl_class,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, 435, $4, $5, $6,"
            " CASE WHEN $6::date IS NULL THEN NULL ELSE 'substandard' END, $7, $7) RETURNING id",
            bank[0],
            f"ZS-{n:06d}",
            pledgor,
            principal_fen,
            interest_fen,
            default_date,
            at,
        )
        case = await conn.fetchval(
            "INSERT INTO disposal_cases (bank_org_id, loan_id, reference, status,"
            " claim_principal_fen, claim_interest_fen, claim_costs_fen, opened_by, opened_at)"
            " VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8) RETURNING id",
            bank[0],
            loan,
            f"CZ-T-{n:06d}",
            principal_fen,
            interest_fen,
            costs_fen,
            bank[1],
            at,
        )
        if enrol_in is not None:
            await services.enrol(
                conn,
                at=at,
                bank_org_id=bank[0],
                user_id=bank[1],
                loan_id=loan,
                pool_code=enrol_in.code,
                renewal=False,
            )
    return Loan(bank[0], bank[1], loan, case, pledgor)


async def receive(
    pool: asyncpg.Pool,
    at: datetime,
    case_id: int,
    amount_fen: int,
    *,
    commission_fen: int = 0,
    source: str | None = None,
    kind: services.ReceiptKind = "auction",
) -> asyncpg.Record:
    """Money that came back on a case, as the exchange's clearing account received it."""
    async with pool.acquire() as conn, conn.transaction():
        return await services.record_receipt(
            conn,
            at=at,
            case_id=case_id,
            kind=kind,
            source=source or f"test:{next(_n)}",
            amount_fen=amount_fen,
            commission_fen=commission_fen,
            from_account=CLEARING,
        )


async def claim_and_pay(
    pool: asyncpg.Pool, at: datetime, loan: Loan, pool_org: PoolOrg
) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        claim = await services.file_claim(
            conn, at=at, bank_org_id=loan.bank_org, user_id=loan.bank_user, loan_id=loan.loan_id
        )
    async with pool.acquire() as conn, conn.transaction():
        return await services.decide_claim(
            conn,
            at=at,
            pool_org_id=pool_org.org_id,
            user_id=pool_org.user_id,
            claim_id=claim["id"],
            approve=True,
            reason="",
        )


async def distributions(
    pool: asyncpg.Pool, receipt_id: int
) -> list[tuple[str, str, str | None, int]]:
    """(step, payee kind, party, fen) of a receipt, in order."""
    rows = await pool.fetch(
        "SELECT step, payee_kind, party, amount_fen FROM distributions WHERE receipt_id = $1 ORDER BY position",
        receipt_id,
    )
    return [(r["step"], r["payee_kind"], r["party"], r["amount_fen"]) for r in rows]


def rule_of(raw: dict[str, object]) -> PoolRule:
    return parse_rule(raw)
