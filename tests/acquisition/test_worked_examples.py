"""The worked examples of docs/rules.md §Acquisition and pledge-to-equity, computed by hand
and pinned to the fen: the bank takes the assets itself (or converts its claim into
equity), the waterfall runs on the agreed amount, the bank owes each pool its share, pays
it to the exchange account, and the payouts go out.

Amounts in fen: CNY 1 = 100 fen, CNY 1 m = 100_000_000 fen.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import asyncpg

from market.acquisition import agreement
from market.cases.paths import Try, tries_of
from market.clock import FrozenClock
from market.ledger import balance
from tests.acquisition.scene import (
    Scene,
    import_lines,
    make_scene,
    object_as,
    propose_acquisition,
    propose_equity,
)
from tests.pools.scene import as_user, distributions

ZJ_DAYS = timedelta(days=10)


async def trial_balance(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs"))


async def settle_and_pay(
    pool: asyncpg.Pool, clock: FrozenClock, s: Scene, done: agreement.Agreement
) -> None:
    """The bank pays its debt with the settlement reference; the exchange then pays the
    payouts out (their outgoing lines on the exchange account's statement)."""
    assert done.settlement_reference is not None and done.owed_fen is not None
    assert (
        await pool.fetchval("SELECT count(*) FROM payment_instructions") == 0
    )  # not before the money
    imported = await import_lines(
        pool, clock.now(), s, (done.owed_fen, f"还款 {done.settlement_reference}", "T1")
    )
    assert imported.settled["agreement"] == [done.settlement_reference]
    rows = await pool.fetch(
        "SELECT reference, amount_fen, status FROM payment_instructions ORDER BY amount_fen DESC"
    )
    assert [r["status"] for r in rows] == ["pending"] * len(rows)
    assert sum(r["amount_fen"] for r in rows) == done.owed_fen
    await import_lines(
        pool,
        clock.now(),
        s,
        *((-r["amount_fen"], r["reference"], f"O{i}") for i, r in enumerate(rows)),
    )
    assert {r["status"] for r in await pool.fetch("SELECT status FROM payment_instructions")} == {
        "paid"
    }


async def test_the_bank_takes_the_assets_itself_and_owes_the_pools_their_shares(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock)
    # Guards: the failed auction started at 1,200,000; 70 % of the 1,500,000 valuation is
    # 1,050,000: the floor is 1,200,000. Agreed: CNY 1,234,567.89.
    proposed = await propose_acquisition(pool, clock.now(), s, 123_456_789)
    assert (proposed.status, proposed.floor_fen) == ("pending", 120_000_000)
    assert proposed.objection_until == clock.now() + ZJ_DAYS
    told = await pool.fetch(
        "SELECT recipient_org_id FROM outbox WHERE event = 'agreed_disposal_proposed' ORDER BY 1"
    )
    assert [r["recipient_org_id"] for r in told] == sorted([s.pool_a.org_id, s.pool_b.org_id])

    # Not before the window ends.
    assert await agreement.sweep(pool, clock.now() + ZJ_DAYS - timedelta(seconds=1)) == []
    clock.advance(ZJ_DAYS)
    assert await agreement.sweep(pool, clock.now()) == [proposed.id]
    assert await agreement.sweep(pool, clock.now()) == []  # a second sweep: nothing

    # The claim outstanding is 3,000,000; the fund bore 1,500,000, pool B 600,000, the bank
    # 900,000 (50 : 20 : 30). 1,234,567.89 split so: quotas 617,283.945, 246,913.578,
    # 370,370.367 → floors …94, …57, …36 and the two fen left go to the largest remainders:
    # pool B (.78) and the bank (.67).
    receipt = await pool.fetchrow(
        "SELECT * FROM receipts WHERE source = $1", f"acquisition:{proposed.id}"
    )
    assert (receipt["kind"], receipt["amount_fen"]) == ("acquisition", 123_456_789)
    assert await distributions(pool, receipt["id"]) == [
        ("claim_principal", "pool", "fund", 61_728_394),
        ("claim_principal", "party", "co_fund", 24_691_358),
        ("claim_principal", "bank", None, 37_037_037),
    ]
    # The bank's own share is netted: no payout to itself, not in what it owes.
    payouts = await pool.fetch(
        "SELECT payee_kind, payee_org_id, amount_fen FROM payouts WHERE receipt_id = $1 ORDER BY id",
        receipt["id"],
    )
    assert [(r["payee_kind"], r["payee_org_id"], r["amount_fen"]) for r in payouts] == [
        ("pool", s.pool_a.org_id, 61_728_394),
        ("party", s.pool_b.org_id, 24_691_358),
    ]
    done = await as_user(pool, clock.now(), s.loan.bank_user, agreement.status_of, proposed.id)
    assert (done.status, done.owed_fen) == ("completed", 86_419_752)
    # Its own share is credited to it and set against its receivable in the same entry:
    # nothing stays owed to the bank, and the receivable holds what it owes the others.
    assert await balance(pool, f"payable:org:{s.loan.bank_org}") == 0
    # Posted: the bank owes the exchange 864,197.52; the exchange owes the two pools.
    receivable = f"receivable:agreement:{proposed.id}"
    assert await balance(pool, receivable) == 86_419_752
    assert await balance(pool, f"payable:pool:{s.pool_a.pool_id}") == -61_728_394
    assert await balance(pool, f"payable:org:{s.pool_b.org_id}") == -24_691_358
    owner = await pool.fetchval(
        "SELECT owner_org_id FROM ledger_accounts WHERE code = $1", receivable
    )
    assert owner == s.loan.bank_org
    owed_event = await pool.fetchrow(
        "SELECT recipient_org_id, payload FROM outbox WHERE event = 'agreed_disposal_payouts_owed'"
    )
    assert owed_event["recipient_org_id"] == s.loan.bank_org
    assert owed_event["payload"]["owed_fen"] == 86_419_752
    assert await trial_balance(pool) == 0

    # Paid: the bank's transfer, then the payouts out; everything back to zero.
    await settle_and_pay(pool, clock, s, done)
    assert await balance(pool, receivable) == 0
    assert await balance(pool, f"payable:pool:{s.pool_a.pool_id}") == 0
    assert await balance(pool, f"payable:org:{s.pool_b.org_id}") == 0
    assert await balance(pool, "exchange:clearing") == 0
    tries = await pool_tries(pool, s.loan.case_id)
    assert [(t.kind, t.outcome, t.amount_fen) for t in tries] == [
        ("acquisition", "settled", 123_456_789)
    ]
    assert await trial_balance(pool) == 0


async def pool_tries(pool: asyncpg.Pool, case_id: int) -> list[Try]:
    """The case's history of paths, as the case page and its API show it."""
    async with pool.acquire() as conn:
        return await tries_of(conn, case_id)


async def test_a_pools_objection_in_the_window_stops_it_and_nothing_is_routed(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock)
    proposed = await propose_acquisition(pool, clock.now(), s, 123_456_789)
    clock.advance(ZJ_DAYS - timedelta(minutes=1))
    objected = await object_as(pool, clock.now(), s.pool_b, proposed.id, "评估价明显偏低")
    assert (objected.status, objected.objection_reason) == ("objected", "评估价明显偏低")
    told = await pool.fetchrow(
        "SELECT recipient_org_id, payload FROM outbox WHERE event = 'agreed_disposal_objected'"
    )
    assert told["recipient_org_id"] == s.loan.bank_org
    clock.advance(timedelta(days=1))
    assert await agreement.sweep(pool, clock.now()) == []
    assert await pool.fetchval("SELECT count(*) FROM receipts") == 0
    assert await pool.fetchval("SELECT count(*) FROM payouts") == 0
    tries = await pool_tries(pool, s.loan.case_id)
    assert [(t.kind, t.outcome, t.ended_at) for t in tries if t.kind == "acquisition"] == [
        ("acquisition", "objected", objected.ended_at)
    ]


async def test_pledge_to_equity_converts_part_of_the_claim_and_the_case_shows_the_equity(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock, failed_start_fen=None)
    # 12.5 % of the borrower, 1,250,000 shares, appraised at CNY 1,000,000.01; the bank
    # converts that much of its CNY 3 m claim.
    proposed = await propose_equity(
        pool,
        clock.now(),
        s,
        100_000_001,
        valued_on=clock.now().date(),
        percent=Decimal("12.5"),
        shares=1_250_000,
    )
    assert (proposed.kind, proposed.status) == ("equity", "pending")
    clock.advance(ZJ_DAYS)
    assert await agreement.sweep(pool, clock.now()) == [proposed.id]
    receipt = await pool.fetchrow(
        "SELECT * FROM receipts WHERE source = $1", f"equity:{proposed.id}"
    )
    # 1,000,000.01 split 50 : 20 : 30: quotas 500,000.005, 200,000.002, 300,000.003 → floors
    # and the one fen left to the largest remainder, the fund (.5).
    assert await distributions(pool, receipt["id"]) == [
        ("claim_principal", "pool", "fund", 50_000_001),
        ("claim_principal", "party", "co_fund", 20_000_000),
        ("claim_principal", "bank", None, 30_000_000),
    ]
    done = await as_user(pool, clock.now(), s.loan.bank_user, agreement.status_of, proposed.id)
    assert done.owed_fen == 70_000_001
    assert await balance(pool, f"receivable:agreement:{proposed.id}") == 70_000_001
    async with pool.acquire() as conn:
        held = await agreement.equity_held(conn, s.loan.case_id)
    assert [(e.holder_org_id, e.shares, e.percent, e.value_fen) for e in held] == [
        (s.loan.bank_org, 1_250_000, Decimal("12.5000"), 100_000_001)
    ]
    assert held[0].acquired_on == (clock.now() + timedelta(hours=8)).date()
    await settle_and_pay(pool, clock, s, done)
    assert await balance(pool, f"receivable:agreement:{proposed.id}") == 0
    assert await balance(pool, f"payable:pool:{s.pool_a.pool_id}") == 0
    assert await trial_balance(pool) == 0
