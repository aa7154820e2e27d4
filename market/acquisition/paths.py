"""A case's agreed disposals as tries of its disposal (market/cases/paths.py): each
acquisition at an agreed price and each pledge-to-equity, with how it ended (docs/rules.md
§Acquisition and pledge-to-equity) — in its objection window, stopped by a pool's
objection, withdrawn by the bank, completed (the bank owes the pools their shares), or
settled once the bank paid them."""

from __future__ import annotations

from market.acquisition.agreement import Q
from market.cases.paths import Try
from market.db import Conn

KINDS = ("acquisition", "equity")
OUTCOMES = ("pending", "objected", "withdrawn", "completed", "settled")


async def tries(conn: Conn, case_id: int) -> list[Try]:
    return [
        Try(
            kind=r["kind"],
            started_at=r["proposed_at"],
            ended_at=r["ended_at"],
            outcome="settled"
            if r["status"] == "completed" and r["settled_at"] is not None
            else r["status"],
            amount_fen=r["amount_fen"],
            link=f"/bank/cases/{case_id}/agreed-disposals",
        )
        for r in await conn.fetch(Q.tries, case_id)
    ]
