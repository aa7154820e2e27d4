"""Concurrent writes on the pools' paths, against real PostgreSQL (docs/rules.md §Guarantee
pools, §The waterfall): receipts on one case are routed one after the other (case row lock),
a replayed source is one receipt, and approvals sharing an annual budget or an aggregate
limit never grant more than it holds (pool row lock)."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg

from market.clock import FrozenClock
from market.errors import AppError
from market.ledger import balance
from tests.pools.scene import (
    SHANGHAI_ADVANCE,
    claim_and_pay,
    decide,
    file_claim,
    make_loan,
    make_pool,
    receive,
)

M = 100_000_000


async def test_concurrent_receipts_on_one_case_never_over_pay(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    loan = await make_loan(
        pool, clock.now(), principal_fen=1 * M, default_date=date(2025, 6, 1), enrol_in=sh
    )
    claim = await claim_and_pay(pool, clock.now(), loan, sh)  # 55 % of 1,000,000 = 550,000
    assert claim.amount_fen == 55_000_000
    # 40 receipts of CNY 37,000 at once (1,480,000 in all, more than the claim).
    results = await asyncio.gather(
        *(
            receive(
                pool, clock.now(), loan.case_id, 3_700_000, source=f"royalty:{n}", kind="royalty"
            )
            for n in range(40)
        )
    )
    assert len({r.id for r in results}) == 40
    steps = {
        r["step"]: r["fen"]
        for r in await pool.fetch(
            "SELECT step, sum(amount_fen) AS fen FROM distributions GROUP BY step",
        )
    }
    assert steps == {"claim_principal": 1 * M, "surplus": 148_000_000 - 1 * M}
    by_payee = {
        r["payee_kind"]: r["fen"]
        for r in await pool.fetch(
            "SELECT payee_kind, sum(amount_fen) AS fen FROM distributions WHERE step = 'claim_principal' GROUP BY 1"
        )
    }
    assert by_payee == {"pool": 55_000_000, "bank": 45_000_000}  # exactly what each bore
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0


async def test_concurrent_replays_of_one_source_make_one_receipt(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    loan = await make_loan(pool, clock.now(), principal_fen=1 * M, enrol_in=sh)
    results = await asyncio.gather(
        *(receive(pool, clock.now(), loan.case_id, 20_000_000, source="sale:x") for _ in range(16))
    )
    assert len({r.id for r in results}) == 1
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM ledger_entries WHERE source_kind = 'receipt'")
        == 1
    )


async def test_concurrent_approvals_share_the_annual_budget(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    rule = {**SHANGHAI_ADVANCE, "annual_budget_fen": 1 * M}  # CNY 1 m a year
    p = await make_pool(pool, clock.now(), rule)
    bank = None
    claims = []
    for _ in range(8):
        loan = await make_loan(
            pool,
            clock.now(),
            principal_fen=1 * M,
            default_date=date(2025, 6, 1),
            enrol_in=p,
            bank=bank,
        )
        bank = (loan.bank_org, loan.bank_user)
        claims.append(await file_claim(pool, clock.now(), loan))
    assert all(c.amount_fen == 55_000_000 for c in claims)  # each alone fits the budget

    refusals: list[str] = []

    async def approve(claim_id: int) -> int:
        try:
            return (await decide(pool, clock.now(), p, claim_id)).amount_fen
        except AppError as exc:
            refusals.append(exc.code)
            return 0  # nothing left in the budget

    granted = await asyncio.gather(*(approve(c.id) for c in claims))
    assert set(refusals) == {"claim_no_longer_due"}
    # 550,000 + 450,000 exhausts the CNY 1 m budget; every other approval finds nothing left.
    assert sorted(granted, reverse=True)[:2] == [55_000_000, 45_000_000]
    assert sum(granted) == 1 * M
    assert (
        await pool.fetchval("SELECT sum(amount_fen) FROM compensation_claims WHERE status = 'paid'")
        == 1 * M
    )
    assert (
        await balance(pool, f"pool:{p.pool_id}:fund") == 100_000_000_00 - 1 * M
    )  # capital less paid
