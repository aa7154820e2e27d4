"""A case's licence decisions as tries of its disposal (market/cases/paths.py): a round
that closed with licence offers standing is decided by the bank — the hammer stands, a
licence is chosen, or nothing is (docs/rules.md §Licence offers and decision)."""

from __future__ import annotations

from market.cases.paths import Q, Try, lot_try
from market.db import Conn

KINDS = ("licence_decision",)
OUTCOMES = ("deciding", "hammer_stands", "licensed", "nothing_chosen")
OUTCOME = {
    "open": "deciding",
    "hammer_stands": "hammer_stands",
    "licensed": "licensed",
    "nothing_chosen": "nothing_chosen",
}


async def tries(conn: Conn, case_id: int) -> list[Try]:
    return [
        lot_try(
            "licence_decision",
            row,
            row["closed_at"],
            row["decided_at"],
            OUTCOME[row["status"]],
            f"/bank/lots/{row['lot_id']}/offers",
            row["top_price_fen"] if row["status"] == "hammer_stands" else None,
        )
        for row in await conn.fetch(Q.licence_decisions_of_case, case_id)
    ]
