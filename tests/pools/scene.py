"""Pools, banks and defaulted enrolled loans for the pools tests; each change goes through
the command a person (or the exchange) would run."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import asyncpg

from market.cases.policy import CHINA
from market.cases.services import china_today
from market.clock import FrozenClock
from market.commands import SYSTEM, Command, Context, run
from market.pools import bank as _bank_cmds
from market.pools import dashboard, services
from market.pools.rules import PoolRule, parse_rule
from tests.factories import act_as, credit_code, make_org

In = TypeVar("In")
Out = TypeVar("Out")

_n = itertools.count(1)

ZHONGSHAN = {
    "shares": [
        {"name": "fund", "weight": 54},
        {"name": "bank", "weight": 26},
        {"name": "insurer", "weight": 16},
        {"name": "evaluator", "weight": 4},
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


async def as_exchange(pool: asyncpg.Pool, at: datetime, cmd: Command[In, Out], data: In) -> Out:
    """Run a command as the exchange itself (a job) at `at`."""
    return await run(cmd, data, ctx=Context(pool=pool, clock=FrozenClock(at)), actor=SYSTEM)


async def as_user(
    pool: asyncpg.Pool, at: datetime, user_id: int, cmd: Command[In, Out], data: In
) -> Out:
    """Run a command as this user of their organisation at `at`."""
    # A clock, not the instant: `act_as` takes a datetime for a Clock (it has `now`).
    act = await act_as(pool, FrozenClock(at), user_id)
    return await act(cmd, data)


async def make_pool(
    pool: asyncpg.Pool, at: datetime, rule: dict[str, object], *, capital_fen: int = 100_000_000_00
) -> PoolOrg:
    org, user, email = await make_org(pool, at, kind="pool")
    code = f"P{next(_n):04d}"
    made = await as_exchange(
        pool,
        at,
        services.create_pool,
        services.NewPool(
            org_id=org,
            code=code,
            name=f"风险补偿资金池{code}",
            name_en=f"Pool {code}",
            capital_fen=capital_fen,
            rule=parse_rule(rule),
            effective_from=date(2020, 1, 1),
        ),
    )
    return PoolOrg(org, user, email, made.id, code)


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
        # Performing when made: it is enrolled (if asked) before it defaults.
        loan = await conn.fetchval(
            "INSERT INTO loans (bank_org_id, loan_no, pledgor_id, principal_fen, rate_bp,"
            " outstanding_principal_fen, outstanding_interest_fen, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, 435, $4, $5, $6, $6) RETURNING id",
            bank[0],
            f"ZS-{n:06d}",
            pledgor,
            principal_fen,
            interest_fen,
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
        # A loan is enrolled before it defaults (docs/rules.md §Guarantee pools): on the
        # eve of its default when that is not later than `at`.
        enrolled_at = at
        if default_date is not None and default_date <= china_today(at):
            enrolled_at = datetime.combine(default_date - timedelta(days=1), time(10), CHINA)
        await as_user(
            pool,
            enrolled_at,
            bank[1],
            _bank_cmds.enrol_loan,
            _bank_cmds.EnrolIn(loan_id=loan, pool_code=enrol_in.code),
        )
    if default_date is not None:
        await pool.execute(
            "UPDATE loans SET default_date = $2, npl_class = 'substandard' WHERE id = $1",
            loan,
            default_date,
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
) -> services.ReceiptRow:
    """Money that came back on a case, as the exchange's clearing account received it."""
    return await as_exchange(
        pool,
        at,
        services.route_receipt,
        services.RouteReceipt(
            case_id=case_id,
            kind=kind,
            source=source or f"test:{next(_n)}",
            amount_fen=amount_fen,
            commission_fen=commission_fen,
        ),
    )


async def file_claim(pool: asyncpg.Pool, at: datetime, loan: Loan) -> _bank_cmds.ClaimOut:
    return await as_user(pool, at, loan.bank_user, _bank_cmds.file_claim, loan.loan_id)


async def decide(
    pool: asyncpg.Pool, at: datetime, pool_org: PoolOrg, claim_id: int, *, reject: str = ""
) -> dashboard.ClaimOut:
    """The pool manager approves the claim, or rejects it for the reason given."""
    data = dashboard.DecideClaim(
        claim_id=claim_id, decision="reject" if reject else "approve", reason=reject
    )
    return await as_user(pool, at, pool_org.user_id, dashboard.decide_claim, data)


async def claim_and_pay(
    pool: asyncpg.Pool, at: datetime, loan: Loan, pool_org: PoolOrg
) -> dashboard.ClaimOut:
    claim = await file_claim(pool, at, loan)
    return await decide(pool, at, pool_org, claim.id)


async def write_off(
    pool: asyncpg.Pool, at: datetime, loan: Loan, on: date
) -> _bank_cmds.WriteOffOut:
    data = _bank_cmds.WriteOff(loan_id=loan.loan_id, written_off_on=on)
    return await as_user(pool, at, loan.bank_user, _bank_cmds.write_off, data)


async def reverse(
    pool: asyncpg.Pool, at: datetime, receipt_id: int, reason: str
) -> _bank_cmds.ReceiptOut:
    """The exchange reverses a receipt that bounced."""
    data = _bank_cmds.ReverseReceipt(receipt_id=receipt_id, reason=reason)
    return await as_exchange(pool, at, _bank_cmds.reverse_receipt, data)


async def mark_received(pool: asyncpg.Pool, at: datetime, payout_id: int) -> Any:
    """The payee's statement shows the payout's transfer."""
    async with pool.acquire() as conn, conn.transaction():
        return await services.mark_payout_received(conn, at=at, payout_id=payout_id)


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
