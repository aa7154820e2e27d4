"""Rebuild a lot's engine state (auctions/rules.py) from PostgreSQL, the source of truth.

The writer keeps a lot's state in memory between batches and reloads it only when the
lot's `auction_seq` shows that someone else (another process, the closer) wrote since.
"""

from __future__ import annotations

from typing import Any

import msgspec

from auctions import rules
from market.db import Conn, Queries
from market.lots.terms import Terms

Q = Queries("auctions")


def state_from_row(
    row: Any,
    holders: dict[int, int],
    proxies: dict[int, rules.ProxyMax],
    sealed: list[rules.AcceptedBid],
) -> rules.AuctionState:
    terms = msgspec.convert(row["terms"], Terms)
    state = rules.from_terms(row["auction_kind"], terms, holders)
    # The round's live values: its start (relists change it), the effective end.
    state.start_price_fen = row["start_price_fen"]
    state.increment_fen = row["increment_fen"]
    state.starts_at = row["bidding_starts_at"]
    state.ends_at = row["bidding_ends_at"]
    state.price_fen = None if row["auction_kind"] == "sealed" else row["current_price_fen"]
    state.leader = None if row["auction_kind"] == "sealed" else row["leader_registration_id"]
    state.valuation_fen = row["valuation_fen"]
    state.bid_count = row["bid_count"]
    state.seq = row["auction_seq"]
    state.first_bid_at = row["first_bid_at"]
    state.closed = row["status"] not in ("announced", "bidding")
    rules.restore_proxies(state, proxies)
    state.sealed_bids = {b.registration_id: b for b in sealed}
    return state


async def load_locked(conn: Conn, lot_id: int) -> tuple[Any, rules.AuctionState] | None:
    """Lock the lot row (until the caller's transaction ends) and rebuild its state."""
    row = await conn.fetchrow(Q.lot_for_state, lot_id)
    if row is None:
        return None
    return row, (await load_for(conn, [row]))[lot_id]


async def load_for(conn: Conn, rows: list[Any]) -> dict[int, rules.AuctionState]:
    """The states of lots whose rows (`lot_for_state`'s columns) the caller has locked:
    three statements however many lots — a batch over lots new to this process's writer
    (every lot after a restart) would otherwise read each lot's in three of its own."""
    ids, rounds = [r["id"] for r in rows], [r["round"] for r in rows]
    holders: dict[int, dict[int, int]] = {i: {} for i in ids}
    for r in await conn.fetch(Q.round_holders, ids, rounds):
        holders[r["lot_id"]][r["id"]] = r["preemptive_rank"]
    proxies: dict[int, dict[int, rules.ProxyMax]] = {i: {} for i in ids}
    for r in await conn.fetch(Q.round_proxies, ids, rounds):
        proxies[r["lot_id"]][r["registration_id"]] = rules.ProxyMax(
            max_fen=r["max_fen"], seq=r["seq"]
        )
    sealed: dict[int, list[rules.AcceptedBid]] = {i: [] for i in ids}
    for r in await conn.fetch(Q.round_sealed_bids, ids, rounds):
        sealed[r["lot_id"]].append(
            rules.AcceptedBid(
                seq=r["seq"],
                registration_id=r["registration_id"],
                amount_fen=r["amount_fen"],
                kind=r["kind"],
                at=r["at"],
            )
        )
    return {
        r["id"]: state_from_row(r, holders[r["id"]], proxies[r["id"]], sealed[r["id"]])
        for r in rows
    }
