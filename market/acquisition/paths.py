"""A case's agreed disposals as tries of its disposal (market/cases/paths.py): each
acquisition at an agreed price and each pledge-to-equity, with how it ended (docs/rules.md
§Acquisition and pledge-to-equity) — in its objection window, stopped by a pool's
objection, withdrawn by the bank, completed (the bank owes the pools their shares), or
settled once the bank paid them. With an acquisition institution as the taker: declined by
it, lapsed (not accepted in time, or the lot back on the market), or sold to it — the try
names the lot and round it bought and the sale's price, and follows the sale (defaulted or
unwound like any sale)."""

from __future__ import annotations

import asyncpg

from market.acquisition.agreement import Q
from market.cases.paths import Try, lot_try
from market.db import Conn

KINDS = ("acquisition", "equity")
OUTCOMES = (
    "pending",
    "objected",
    "withdrawn",
    "completed",
    "settled",
    "declined",
    "lapsed",
    "sold",
    "defaulted",
    "unwound",
)


def _outcome(r: asyncpg.Record) -> str:
    if r["sale_id"] is not None:
        return {"defaulted": "defaulted", "unwound": "unwound"}.get(r["sale_status"], "sold")
    if r["status"] == "completed" and r["settled_at"] is not None:
        return "settled"
    return str(r["status"])


async def tries(conn: Conn, case_id: int) -> list[Try]:
    out: list[Try] = []
    for r in await conn.fetch(Q.tries, case_id):
        link = f"/bank/cases/{case_id}/agreed-disposals"
        outcome = _outcome(r)
        if r["lot_id"] is not None:  # an acquisition institution buys the lot's round
            amount = r["amount_fen"] if r["sale_id"] is not None else None
            out.append(
                lot_try(r["kind"], r, r["proposed_at"], r["ended_at"], outcome, link, amount)
            )
            continue
        out.append(
            Try(
                kind=r["kind"],
                started_at=r["proposed_at"],
                ended_at=r["ended_at"],
                outcome=outcome,
                amount_fen=r["amount_fen"],
                link=link,
            )
        )
    return out
