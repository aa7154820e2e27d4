"""The auction rounds and the fixed-price sale of a case's lots, as tries of the case's
disposal (market/cases/paths.py): round 1, the relist (round 2) and the fixed-price sale
(变卖, round 3), each with its outcome (docs/rules.md §Lot lifecycle). A listing's round
counts here only once its period made an auction (docs/rules.md §Listing); its periods are
the listing's own tries (market/listing/paths.py)."""

from __future__ import annotations

import asyncpg

from market.cases.paths import Q, Try, lot_try
from market.db import Conn
from market.lots.lifecycle import FIXED_PRICE_ROUND

KINDS = ("auction", "fixed_price")
OUTCOMES = (
    "scheduled",
    "in_progress",
    "paused",
    "deciding",
    "sold",
    "unsold",
    "returned",
    "defaulted",
    "unwound",
    "withdrawn",
    "licensed",
)
# A round still running: the lot's status → the try's outcome.
LIVE = {
    "announced": "scheduled",
    "bidding": "in_progress",
    "paused": "paused",
    "deciding": "deciding",
}


def _outcome(row: asyncpg.Record) -> str | None:
    actions = row["actions"] or []
    match row["outcome"]:
        case None:
            if row["round"] != row["lot_round"]:
                return None  # a round overtaken without an outcome: not a try of its own
            return LIVE.get(row["lot_status"])
        case "sold":
            # Sold after it failed, to an acquisition institution at the agreed price: the
            # round failed at auction; the sale is the agreed disposal's try
            # (market/acquisition/paths.py).
            return "unsold" if "sell_by_agreement" in actions else "sold"
        case "licensed" | "withdrawn":
            return str(row["outcome"])
        case _:  # failed
            if "unwind" in actions:
                return "unwound"
            if "default" in actions:
                return "defaulted"
            if row["round"] == FIXED_PRICE_ROUND:
                return "returned"
            return "unsold"


async def tries(conn: Conn, case_id: int) -> list[Try]:
    out: list[Try] = []
    for row in await conn.fetch(Q.lot_rounds_of_case, case_id):
        if row["listed"] and row["auction_from"] is None:
            continue  # a listing's period that made no auction: the listing's try
        outcome = _outcome(row)
        if outcome is None:
            continue
        fixed = row["round"] == FIXED_PRICE_ROUND
        # A fixed-price sale starts when the bank opens it; a listing's auction at the
        # period's end; an auction round at its opening.
        opening = row["announced_at"] if fixed else row["bidding_starts_at"]
        started = row["auction_from"] or opening
        # The close (or the decision) ended the round; a withdrawal, its own instant.
        ended = None if outcome in LIVE.values() else row["closed"] or row["closed_at"]
        if ended is not None and started is not None and started > ended:
            started = row["announced_at"]  # withdrawn before it opened: its announcement
        sold = outcome in ("sold", "unwound", "defaulted")
        kind = "fixed_price" if fixed else "auction"
        amount = row["sale_price_fen"] if sold else None
        link = f"/lots/{row['reference']}"
        out.append(lot_try(kind, row, started, ended, outcome, link, amount))
    return out
