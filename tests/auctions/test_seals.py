"""Bids, deposits, sales and payouts are append-only facts, and the bids are sealed into
the keyed audit chain so that a superuser's rewrite is caught (docs/rules.md §Bidding)."""

from __future__ import annotations

import asyncpg
import pytest

from auctions import seals
from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_closing import place_bids
from tests.auctions.test_live import START, bidding_scene
from tests.pools.scene import make_loan, receive


async def _as_superuser(pool: asyncpg.Pool, statement: str, *args: object) -> None:
    """What a database superuser can do: switch the triggers off for one statement."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(statement, *args)


async def test_bids_are_append_only_and_sealed_so_a_rewrite_is_caught(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    a, b = (x.registration.id for x in scene.buyers)
    inc = scene.increment_fen
    await place_bids(pool, scene.lot.id, [(a, START, clock.now()), (b, START + inc, clock.now())])
    assert await seals.seal_due(pool, clock.now()) == 1
    assert await seals.seal_due(pool, clock.now()) == 0  # nothing new: nothing sealed twice
    await place_bids(pool, scene.lot.id, [(a, START + 2 * inc, clock.now())])
    assert await seals.seal_due(pool, clock.now()) == 1
    async with pool.acquire() as conn:
        assert await seals.verify(conn) == (2, [])
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM audit_log WHERE action = 'bids.seal' AND chain_org_id = 0"
            )
            == 2
        )
        # The application cannot change or remove a bid, nor a sale's price.
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute(
                "UPDATE bids SET amount_fen = amount_fen + 1 WHERE lot_id = $1", scene.lot.id
            )
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM bids WHERE lot_id = $1", scene.lot.id)
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("UPDATE registrations SET deposit_fen = 1 WHERE id = $1", a)
        # A deposit's status moves; its amount does not.
        await conn.execute("UPDATE registrations SET settled_at = now() WHERE id = $1", a)

    seqs = [
        r["seq"]
        for r in await pool.fetch(
            "SELECT seq FROM bids WHERE lot_id = $1 ORDER BY seq", scene.lot.id
        )
    ]
    bid_id = await pool.fetchval(
        "SELECT id FROM bids WHERE lot_id = $1 AND seq = $2", scene.lot.id, seqs[0]
    )
    # An edited amount, a deleted bid, a forged one: each breaks its round's seal.
    await _as_superuser(pool, "UPDATE bids SET amount_fen = amount_fen + 100 WHERE id = $1", bid_id)
    async with pool.acquire() as conn:
        _, breaks = await seals.verify(conn)
    assert [(x.lot_id, x.through_seq) for x in breaks] == [(scene.lot.id, seqs[1])]
    assert "differ from their seal" in str(breaks[0])
    await _as_superuser(pool, "UPDATE bids SET amount_fen = amount_fen - 100 WHERE id = $1", bid_id)
    async with pool.acquire() as conn:
        assert (await seals.verify(conn))[1] == []
    await _as_superuser(
        pool, "DELETE FROM bids WHERE lot_id = $1 AND seq = $2", scene.lot.id, seqs[2]
    )
    async with pool.acquire() as conn:
        assert [x.through_seq for x in (await seals.verify(conn))[1]] == [seqs[2]]
    await _as_superuser(
        pool,
        "INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)"
        " VALUES ($1, 1, $4, $2, $3, 'manual', now())",
        scene.lot.id,
        b,
        START + 5 * inc,
        seqs[2],
    )
    async with pool.acquire() as conn:
        assert [x.through_seq for x in (await seals.verify(conn))[1]] == [seqs[2]]


async def test_payouts_and_sales_keep_their_facts(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    loan = await make_loan(pool, clock.now(), principal_fen=1_000_000_00)
    await receive(pool, clock.now(), loan.case_id, 400_000_00)
    payout = await pool.fetchval("SELECT id FROM payouts WHERE case_id = $1", loan.case_id)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("UPDATE payouts SET amount_fen = 1 WHERE id = $1", payout)
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM payouts WHERE id = $1", payout)
        # Its status moves as the statement shows it received.
        await conn.execute("UPDATE payouts SET received_at = now() WHERE id = $1", payout)
        # A sale's price is as fixed as a payout's amount: the same guard stands on sales.
        assert await conn.fetchval(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'sales_append_only'"
        ) == (
            "CREATE TRIGGER sales_append_only BEFORE DELETE OR UPDATE ON public.sales FOR EACH"
            " ROW EXECUTE FUNCTION facts_append_only('status', 'paid_at')"
        )
