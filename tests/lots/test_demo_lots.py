"""The demo's lots (market/lots/demo.py), as `make run` seeds them."""

from __future__ import annotations

import asyncpg

from market.demo import seed_demo
from market.settings import Settings


async def test_the_demo_sold_lot_was_sold_the_way_a_real_one_is(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """Registered, deposit confirmed, a bid at the start, closed on time with a winner,
    paid, its title moved: its bid history, sale and ledger are a real sale's, not a bare
    status. Another sold lot is paid and held in escrow, its pledge released."""
    await seed_demo(settings, force=True)
    [lot] = await pool.fetch(
        "SELECT l.* FROM lots l JOIN sales s ON s.lot_id = l.id WHERE s.status = 'completed'"
    )
    [held] = await pool.fetch("SELECT * FROM transfers WHERE status = 'in_escrow'")
    kinds = {r["kind"] for r in await pool.fetch("SELECT kind FROM transfer_notices")}
    assert held["sale_id"] != lot["id"] and "pledge_release" in kinds
    assert await pool.fetchval("SELECT count(*) FROM receipts WHERE source LIKE 'sale:%'") == 1
    buyer = await pool.fetchval("SELECT org_id FROM users WHERE email = 'buyer@ipx.demo'")
    [bid] = await pool.fetch("SELECT * FROM bids WHERE lot_id = $1", lot["id"])
    [sale] = await pool.fetch("SELECT * FROM sales WHERE lot_id = $1", lot["id"])
    [registration] = await pool.fetch("SELECT * FROM registrations WHERE lot_id = $1", lot["id"])
    assert bid["amount_fen"] == lot["start_price_fen"] == sale["price_fen"]
    assert bid["registration_id"] == registration["id"] == sale["registration_id"]
    assert sale["buyer_org_id"] == buyer and sale["status"] == "completed"
    assert registration["deposit_status"] == "applied"
    assert lot["bid_count"] == 1 and lot["leader_registration_id"] == registration["id"]
    receivable = await pool.fetchval(
        "SELECT coalesce(sum(g.amount_fen), 0) FROM ledger_legs g"
        " JOIN ledger_accounts a ON a.id = g.account_id WHERE a.code = $1",
        f"sale:receivable:{sale['id']}",
    )
    assert receivable == 0  # price and premium owed, then deposit and balance received
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
