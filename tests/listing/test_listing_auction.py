"""Two qualified intents turn a listing into an auction on the existing engine: its first
bid is the listing price, its bidders are exactly the qualified intents, and their
deposits are the ones paid for the listing — nobody is asked twice (docs/rules.md
§Listing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from auctions.closing import close_when_due
from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import AGREEMENT, make_org, make_token
from tests.listing.scene import DEPOSIT, PERIOD_END, PRICE, make_listing


async def _auth(pool: asyncpg.Pool, clock: FrozenClock, user_id: int) -> dict[str, str]:
    token = await make_token(pool, clock.now(), user_id, ["bids:write"])
    return {"Authorization": f"Bearer {token}"}


async def test_two_intents_become_the_auctions_only_bidders_with_their_deposits(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    (alice, a_reg), (bob, b_reg) = await scene.buyer(), await scene.buyer()
    carol, c_reg = await scene.buyer(pay=False)  # registered, never paid in the period
    a, b, c = [await _auth(pool, clock, p.user_id) for p in (alice, bob, carol)]
    deposits_before = await pool.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE source_kind = 'deposit_confirmed'"
    )
    assert deposits_before == 2

    # The first bid comes at the period's end: the bid itself opens the auction (the
    # engine does not wait for the worker), and it may be the listing price.
    clock.set(PERIOD_END)
    url = f"/api/v1/lots/{scene.lot.reference}/bids"
    r = await client.post(url, json={"type": "bid", "amount_fen": PRICE - 1_000_00}, headers=a)
    assert r.status_code == 409 and r.json()["code"] == "too_low", r.text
    r = await client.post(url, json={"type": "bid", "amount_fen": PRICE}, headers=a)
    assert r.status_code == 201, r.text
    lot = await scene.reload()
    assert (lot.status, lot.round, lot.start_price_fen) == ("bidding", 1, PRICE)
    first = await pool.fetchrow(
        "SELECT amount_fen, registration_id FROM bids WHERE lot_id = $1 ORDER BY seq LIMIT 1",
        lot.id,
    )
    assert (first["amount_fen"], first["registration_id"]) == (PRICE, a_reg.id)

    # The bidders are exactly the qualified intents.
    r = await client.post(url, json={"type": "bid", "amount_fen": PRICE * 2}, headers=c)
    assert r.status_code == 403 and r.json()["code"] == "deposit_not_confirmed"
    late = await scene.confirm(c_reg)
    assert late.released  # paid after the period: back at once, never a bidder
    r = await client.post(url, json={"type": "bid", "amount_fen": PRICE * 2}, headers=c)
    assert r.status_code == 403
    _, newcomer, _ = await make_org(pool, clock.now(), kind="buyer")
    n = await _auth(pool, clock, newcomer)
    r = await client.post(
        f"/api/v1/lots/{lot.reference}/registrations",
        headers=n,
        json={"agreement_version": AGREEMENT},
    )
    assert r.status_code == 409 and r.json()["code"] == "registration_closed", r.text
    r = await client.post(url, json={"type": "bid", "amount_fen": PRICE + 100_000_00}, headers=b)
    assert r.status_code == 201, r.text

    # Nobody was asked for a deposit again: one registration each, the same rows, the
    # deposits confirmed once (Carol's late one aside, released at once).
    regs = await pool.fetch(
        "SELECT id, buyer_org_id, deposit_status FROM registrations WHERE lot_id = $1 ORDER BY id",
        lot.id,
    )
    assert [(r["id"], r["deposit_status"]) for r in regs] == [
        (a_reg.id, "confirmed"),
        (b_reg.id, "confirmed"),
        (c_reg.id, "released"),
    ]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE source_kind = 'deposit_confirmed'"
        )
        == 3
    )
    bidders = await pool.fetch(
        "SELECT DISTINCT registration_id FROM bids WHERE lot_id = $1 ORDER BY 1", lot.id
    )
    assert [r["registration_id"] for r in bidders] == [a_reg.id, b_reg.id]

    # The close: Bob wins, his listing deposit counts towards the price; Alice's goes back.
    assert lot.bidding_ends_at is not None
    result = await close_when_due(
        pool, lot.bidding_ends_at + timedelta(seconds=1), scene.policy, lot.id
    )
    assert result is not None and result.sale is not None
    assert result.sale.registration_id == b_reg.id
    assert result.sale.deposit_fen == DEPOSIT
    assert result.sale.balance_due_fen == PRICE + 100_000_00 - DEPOSIT
    assert result.released == (a_reg.id,)
