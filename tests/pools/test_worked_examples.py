"""The worked examples of docs/rules.md §The waterfall, computed by hand here and pinned to
the fen: every receipt's distributions, every payout, the pools' books.

Amounts in fen: CNY 1 = 100 fen, CNY 1 m = 100_000_000 fen.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest

from market.clock import FrozenClock
from market.errors import Invalid
from market.ledger import balance
from market.pools import bank, services
from tests.pools.scene import (
    SHANGHAI_ADVANCE,
    SHENZHEN,
    ZHONGSHAN,
    as_user,
    claim_and_pay,
    distributions,
    file_claim,
    make_loan,
    make_pool,
    mark_received,
    receive,
    reverse,
    write_off,
)

M = 100_000_000  # CNY 1 m in fen


async def payouts(pool: asyncpg.Pool, receipt_id: int) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT payee_kind, coalesce(party, '') AS party, amount_fen FROM payouts"
        " WHERE receipt_id = $1",
        receipt_id,
    )
    return {f"{r['payee_kind']}:{r['party']}".rstrip(":"): r["amount_fen"] for r in rows}


async def trial_balance(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs"))


async def test_zhongshan_3m_loan_sold_for_1_2m_with_5_percent_commission(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=3 * M, enrol_in=zs)

    # The sale: CNY 1,200,000 with 5 % commission = CNY 60,000 to the exchange; the other
    # CNY 1,140,000 pays the bank's claim (principal) — nobody else has borne any loss yet.
    sale = await receive(pool, clock.now(), loan.case_id, 120_000_000, commission_fen=6_000_000)
    assert await distributions(pool, sale.id) == [
        ("commission", "platform", None, 6_000_000),
        ("claim_principal", "bank", None, 114_000_000),
    ]
    assert await payouts(pool, sale.id) == {"bank": 114_000_000}

    # Zhongshan compensates once the loss is realised: not while the case is open.
    async with pool.acquire() as conn:
        view = await services.assess_loan(conn, clock.now(), loan.bank_org, loan.loan_id)
    assert not view.assessment.eligible
    assert view.assessment.refusal == "claim_loss_not_realised"
    await as_user(pool, clock.now(), loan.bank_user, bank.close_case, loan.case_id)

    # Net loss 3,000,000 − 1,140,000 = 1,860,000, shared 54 : 26 : 16 : 4:
    # fund 1,004,400; bank 483,600; insurer 297,600; evaluator 74,400 (sum 1,860,000).
    claim = await claim_and_pay(pool, clock.now(), loan, zs)
    assert (claim.status, claim.loss_fen, claim.amount_fen) == ("paid", 186_000_000, 100_440_000)
    shares = await pool.fetch(
        "SELECT party, amount_fen FROM claim_shares WHERE claim_id = $1 ORDER BY position",
        claim.id,
    )
    assert [(r["party"], r["amount_fen"]) for r in shares] == [
        ("fund", 100_440_000),
        ("insurer", 29_760_000),
        ("evaluator", 7_440_000),
    ]
    assert await balance(pool, f"pool:{zs.pool_id}:recoverable") == 100_440_000

    # A royalty of CNY 100,000 later: split 54 : 26 : 16 : 4 exactly, as each still bears.
    royalty = await receive(pool, clock.now(), loan.case_id, 10_000_000, kind="royalty")
    assert await distributions(pool, royalty.id) == [
        ("claim_principal", "pool", "fund", 5_400_000),
        ("claim_principal", "party", "insurer", 1_600_000),
        ("claim_principal", "party", "evaluator", 400_000),
        ("claim_principal", "bank", None, 2_600_000),
    ]
    # CNY 3.33: quotas 1.7982, 0.5328, 0.1332, 0.8658 → floors 1.79, 0.53, 0.13, 0.86 and the
    # two fen left go to the largest remainders: the fund (0.82) and the bank (0.58).
    tiny = await receive(pool, clock.now(), loan.case_id, 333, kind="royalty")
    assert [d[3] for d in await distributions(pool, tiny.id)] == [180, 53, 13, 87]

    # The pool's transfer arrives: its recoverable compensation is back in the fund.
    pool_payout = await pool.fetchrow(
        "SELECT id, amount_fen FROM payouts WHERE receipt_id = $1 AND payee_kind = 'pool'",
        royalty.id,
    )
    await mark_received(pool, clock.now(), pool_payout["id"])
    assert await balance(pool, f"pool:{zs.pool_id}:recoverable") == 100_440_000 - 5_400_000
    assert await balance(pool, f"payable:pool:{zs.pool_id}") == -180  # the 1.80 not yet received
    assert await trial_balance(pool) == 0


async def test_shenzhen_loss_hits_the_2m_cap(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    sz = await make_pool(pool, clock.now(), SHENZHEN)
    loan = await make_loan(pool, clock.now(), principal_fen=5 * M, enrol_in=sz)
    await write_off(pool, clock.now(), loan, date(2026, 1, 5))
    # Loss 5,000,000 shared 1 : 1 = 2,500,000 each, but the fund pays at most 2,000,000 per
    # bad loan: the bank bears 3,000,000.
    claim = await claim_and_pay(pool, clock.now(), loan, sz)
    assert (claim.loss_fen, claim.amount_fen) == (5 * M, 2 * M)
    assert any(
        line.key == "pool.line.cap" and line.params == {"cap_fen": 2 * M, "amount_fen": 2 * M}
        for line in claim.explanation
    )
    # A later sale of CNY 1,000,000 (5 % commission): 950,000 split 2 : 3 by what each bore.
    sale = await receive(pool, clock.now(), loan.case_id, 1 * M, commission_fen=5_000_000)
    assert await distributions(pool, sale.id) == [
        ("commission", "platform", None, 5_000_000),
        ("claim_principal", "pool", "fund", 38_000_000),
        ("claim_principal", "bank", None, 57_000_000),
    ]
    # A second claim on the same loan finds the cap used up.
    async with pool.acquire() as conn:
        view = await services.assess_loan(conn, clock.now(), loan.bank_org, loan.loan_id)
    assert view.assessment.amount_fen == 0 and not view.assessment.eligible
    assert await trial_balance(pool) == 0


async def test_shanghai_pre_compensation_at_55_percent_then_a_recovery(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    loan = await make_loan(
        pool,
        clock.now(),
        principal_fen=2 * M,
        interest_fen=10_000_000,
        default_date=date(2026, 1, 5),
        enrol_in=sh,
    )
    # 前补偿: 90 days after the loan turned non-performing, no write-off needed.
    with pytest.raises(Invalid) as refused:
        await file_claim(pool, clock.now(), loan)
    assert (refused.value.code, refused.value.field, refused.value.params) == (
        "claim_advance_waiting",
        "loan_id",
        {"from_date": "2026-04-05"},
    )
    clock.set(clock.now().replace(month=4, day=5) - timedelta(hours=2))  # 04-05 00:00 in Shanghai
    # Net loss 2,100,000 (principal 2,000,000 + interest 100,000) × 55 % = 1,155,000.
    claim = await claim_and_pay(pool, clock.now(), loan, sh)
    assert (claim.loss_fen, claim.amount_fen) == (210_000_000, 115_500_000)

    # A sale of CNY 800,000 with 5 % commission: 760,000 pays interest first (100,000), then
    # principal (660,000), each split 55 : 45 between the pool and the bank.
    sale = await receive(pool, clock.now(), loan.case_id, 80_000_000, commission_fen=4_000_000)
    assert await distributions(pool, sale.id) == [
        ("commission", "platform", None, 4_000_000),
        ("claim_interest", "pool", "fund", 5_500_000),
        ("claim_interest", "bank", None, 4_500_000),
        ("claim_principal", "pool", "fund", 36_300_000),
        ("claim_principal", "bank", None, 29_700_000),
    ]
    assert await payouts(pool, sale.id) == {"pool": 41_800_000, "bank": 34_200_000}
    assert await trial_balance(pool) == 0


async def test_a_sale_above_the_claim_leaves_a_surplus_to_the_pledgor(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    loan = await make_loan(
        pool,
        clock.now(),
        principal_fen=1 * M,
        interest_fen=5_000_000,
        costs_fen=1_000_000,
        default_date=date(2025, 6, 1),
        enrol_in=sh,
    )
    # The pool paid 55 % of the claim 1,060,000 in advance: 583,000.
    claim = await claim_and_pay(pool, clock.now(), loan, sh)
    assert claim.amount_fen == 58_300_000
    await as_user(
        pool,
        clock.now(),
        loan.bank_user,
        bank.record_case_cost,
        bank.CaseCost(case_id=loan.case_id, kind="appraisal", amount_fen=2_000_000, memo="评估费"),
    )
    # Sold for CNY 1,500,000, 5 % commission 75,000; the appraisal fee the bank advanced
    # (20,000); the claim in Civil Code order — costs 10,000, interest 50,000, principal
    # 1,000,000 — each split 55 : 45; the pool gets back exactly the 583,000 it paid, never
    # more; the rest, 345,000, goes to the pledgor.
    sale = await receive(pool, clock.now(), loan.case_id, 150_000_000, commission_fen=7_500_000)
    assert await distributions(pool, sale.id) == [
        ("commission", "platform", None, 7_500_000),
        ("cost", "bank", None, 2_000_000),
        ("claim_costs", "pool", "fund", 550_000),
        ("claim_costs", "bank", None, 450_000),
        ("claim_interest", "pool", "fund", 2_750_000),
        ("claim_interest", "bank", None, 2_250_000),
        ("claim_principal", "pool", "fund", 55_000_000),
        ("claim_principal", "bank", None, 45_000_000),
        ("surplus", "pledgor", None, 34_500_000),
    ]
    assert await payouts(pool, sale.id) == {
        "pool": 58_300_000,
        "bank": 49_700_000,
        "pledgor": 34_500_000,
    }
    # Anything after that is all surplus: the claim and the costs are paid.
    later = await receive(pool, clock.now(), loan.case_id, 1_000, kind="royalty")
    assert await distributions(pool, later.id) == [("surplus", "pledgor", None, 1_000)]
    assert await balance(pool, "income:commission") == -7_500_000
    assert await trial_balance(pool) == 0


async def test_replaying_a_receipt_changes_nothing_and_a_reversal_is_a_new_posting(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    zs = await make_pool(pool, clock.now(), ZHONGSHAN)
    loan = await make_loan(pool, clock.now(), principal_fen=3 * M, enrol_in=zs)
    first = await receive(
        pool, clock.now(), loan.case_id, 50_000_000, source="licence:7:2026Q1", kind="licence_fee"
    )
    entries = await pool.fetchval("SELECT count(*) FROM ledger_entries")
    again = await receive(
        pool, clock.now(), loan.case_id, 50_000_000, source="licence:7:2026Q1", kind="licence_fee"
    )
    assert again.id == first.id
    assert await pool.fetchval("SELECT count(*) FROM ledger_entries") == entries
    assert await pool.fetchval("SELECT count(*) FROM distributions") == 1

    reversed_ = await reverse(pool, clock.now(), first.id, "退票")
    assert reversed_.status == "reversed"
    assert await pool.fetchval("SELECT count(*) FROM ledger_entries") == entries + 1
    assert await balance(pool, f"payable:org:{loan.bank_org}") == 0
    # The reversed receipt no longer counts: the next one pays the claim from the start.
    nxt = await receive(pool, clock.now(), loan.case_id, 50_000_000)
    assert await distributions(pool, nxt.id) == [("claim_principal", "bank", None, 50_000_000)]
    assert await trial_balance(pool) == 0
