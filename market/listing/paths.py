"""A case's listings (挂牌) as tries of its disposal (market/cases/paths.py): one try per
period of a listing, with what its end found (docs/rules.md §Listing) — no intent
(extended, relisted, or awaiting the bank), a negotiated transfer (negotiating, transferred
at its price, lapsed), or an auction (the auction round is the lots' own try)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from market.cases.paths import Q, Try, lot_try
from market.db import Conn

KINDS = ("listing",)
OUTCOMES = (
    "in_progress",
    "paused",
    "no_intent",
    "extended",
    "relisted",
    "negotiating",
    "negotiated_transfer",
    "transfer_lapsed",
    "became_auction",
)
TRANSFER = {
    "awaiting": "negotiating",
    "transferred": "negotiated_transfer",
    "lapsed": "transfer_lapsed",
}


def link(row: Any) -> str:
    return f"/listings/{row['reference']}"


async def tries(conn: Conn, case_id: int) -> list[Try]:
    extensions: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for row in await conn.fetch(Q.listing_extensions_of_case, case_id):
        extensions[(row["lot_id"], row["round"])].append(row["at"])
    out: list[Try] = []
    seen: dict[tuple[int, int], int] = defaultdict(int)
    for row in await conn.fetch(Q.listing_periods_of_case, case_id):
        key = (row["lot_id"], row["round"])
        n = seen[key]
        seen[key] += 1
        # The first period runs from the round's announcement, a later one from the
        # bank's extension of the one before.
        started = row["round_announced_at"] if n == 0 else extensions[key][n - 1]
        amount = None
        match row["outcome"]:
            case "no_intent":
                if row["extended_to"] is not None:
                    outcome = "extended"
                elif row["last_round"] > row["round"]:
                    outcome = "relisted"
                else:
                    outcome = "no_intent"
            case "negotiation":
                outcome = TRANSFER.get(row["transfer_status"] or "awaiting", "negotiating")
                if outcome == "negotiated_transfer":
                    amount = row["transfer_price_fen"]
            case _:
                outcome = "became_auction"
        out.append(lot_try("listing", row, started, row["ends_at"], outcome, link(row), amount))
    for row in await conn.fetch(Q.live_listings_of_case, case_id):
        key = (row["lot_id"], row["round"])
        n = seen[key]
        started = row["announced_at"] if n == 0 else extensions[key][n - 1]
        outcome = "paused" if row["status"] == "paused" else "in_progress"
        out.append(lot_try("listing", row, started, None, outcome, link(row)))
    return out
