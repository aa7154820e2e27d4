"""Concurrent steps of a listing against real PostgreSQL (docs/rules.md §Listing): two
intents' deposits confirmed while the period ends, two confirmations of each side at once,
and a countersignature racing the lapse at the deadline. Each ends in one consistent
outcome (the locks of market/listing/period.py and transfer.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from market.clock import FrozenClock
from market.errors import AppError
from market.listing import transfer
from market.listing.transfer import BankConfirms, BuyerConfirms
from market.lots.jobs import advance_lots
from market.settings import Settings
from tests.factories import act_as
from tests.listing.scene import PERIOD_END, PRICE, make_listing

CONFIRM_BY = PERIOD_END + timedelta(days=6)  # 24:00 Fri 16 Oct 2026 (Beijing)


async def test_deposits_confirmed_while_the_period_ends_count_exactly_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    for _ in range(5):
        scene = await make_listing(pool, clock, settings)
        (_, a), (_, b) = await scene.buyer(pay=False), await scene.buyer(pay=False)
        # The operator confirms in the period's last second while the sweep ends it.
        clock.set(PERIOD_END)
        last = PERIOD_END - timedelta(seconds=1)
        results = await asyncio.gather(
            scene.confirm(a, last),
            scene.confirm(b, last),
            advance_lots(scene.ctx),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        # A sweep that found the lot busy (SKIP LOCKED) leaves it to the next minute's.
        await advance_lots(scene.ctx)
        period = await pool.fetchrow(
            "SELECT outcome, qualified FROM listing_periods WHERE lot_id = $1", scene.lot.id
        )
        held = await pool.fetchval(
            "SELECT count(*) FROM registrations WHERE lot_id = $1 AND deposit_status = 'confirmed'",
            scene.lot.id,
        )
        # The period counted exactly the deposits that stay held; the others went back.
        assert period["qualified"] == held
        lot = await scene.reload()
        expected = {0: "failed", 1: "deciding", 2: "bidding"}[held]
        assert lot.status == expected, (held, lot.status)


async def test_two_confirmations_of_each_side_make_one_sale(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    buyer, _ = await scene.buyer()
    await scene.advance(PERIOD_END)
    clock.set(PERIOD_END + timedelta(days=1))
    b1, b2 = [await act_as(pool, clock, buyer.user_id) for _ in range(2)]
    signed = await asyncio.gather(
        *(
            a(transfer.buyer_confirms, BuyerConfirms(reference=scene.lot.reference))
            for a in (b1, b2)
        )
    )
    assert {s.price_fen for s in signed} == {PRICE}
    audit = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'listing.buyer_confirm'"
    )
    assert audit == 1
    bank = await act_as(pool, clock, scene.bank.user_id)
    data = BankConfirms(reference=scene.lot.reference, policy=scene.policy)
    done = await asyncio.gather(
        bank(transfer.bank_confirms, data), bank(transfer.bank_confirms, data)
    )
    assert {d.status for d in done} == {"transferred"}
    assert len({d.sale_id for d in done}) == 1
    assert await pool.fetchval("SELECT count(*) FROM sales") == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM ledger_entries WHERE source_kind = 'sale_closed'")
        == 1
    )


async def test_a_countersignature_racing_the_lapse_ends_one_way(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    for _ in range(4):
        scene = await make_listing(pool, clock, settings)
        buyer, reg = await scene.buyer()
        await scene.advance(PERIOD_END)
        clock.set(CONFIRM_BY - timedelta(seconds=1))
        b = await act_as(pool, clock, buyer.user_id)
        await b(transfer.buyer_confirms, BuyerConfirms(reference=scene.lot.reference))
        bank = await act_as(pool, clock, scene.bank.user_id)
        data = BankConfirms(reference=scene.lot.reference, policy=scene.policy)
        results = await asyncio.gather(
            bank(transfer.bank_confirms, data),
            transfer.lapse_due(pool, CONFIRM_BY, scene.policy),
            return_exceptions=True,
        )
        assert not [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, AppError)
        ], results
        row = await pool.fetchrow(
            "SELECT status, sale_id FROM listing_transfers WHERE lot_id = $1", scene.lot.id
        )
        deposit = await pool.fetchval(
            "SELECT deposit_status FROM registrations WHERE id = $1", reg.id
        )
        lot = await scene.reload()
        sales = await pool.fetchval("SELECT count(*) FROM sales WHERE lot_id = $1", scene.lot.id)
        if row["status"] == "transferred":
            assert (lot.status, sales, deposit) == ("sold", 1, "confirmed")
        else:
            # The buyer had signed: the lapse gives its deposit back.
            assert (row["status"], lot.status, sales, deposit) == (
                "lapsed",
                "failed",
                0,
                "released",
            )
