"""An instruction paid: the money leaves the exchange's clearing account, once
(docs/rules.md §Payments out).

Two statements can show one transfer: the clearing account's (an outgoing line carrying
the instruction's reference, market/payments/outgoing.py) and, for a payout of the
waterfall, the payee's own (market/pools/reconciliation.py → services.mark_payout_received).
Whichever is imported first marks the instruction paid and posts the movement

    Dr payable:… (a payout) or refund:org:{org} (a refund), Cr exchange:clearing

keyed by the payout (`payout_paid`, payout id) or by the instruction (`instruction_paid`,
instruction id) — unique in the ledger, so it is posted once even if both paths ran. The
second path only links its statement line to the instruction (and the payee's receipt
still moves a pool's recoverable money back to its fund, in services.py).

Locks: the payout row (when there is one), then the instruction row, FOR UPDATE; both
paths take them in that order, so they cannot deadlock, and the one that comes second
reads the instruction as the first left it.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from auctions.deposits import CLEARING, refund_account
from market import ledger
from market.db import Conn, Queries, returned
from market.ledger import Account
from market.pools.accounts import payout_payable

Q = Queries("payments")


async def payout_left_clearing(conn: Conn, *, at: datetime, payout: asyncpg.Record) -> int:
    """The payee's statement shows `payout` (its row locked by the caller): its instruction
    is paid, if it was not before; the id of the ledger entry that moved the money."""
    instruction = await conn.fetchrow(Q.instruction_of_payout_locked, payout["id"])
    if instruction is not None:
        return await mark_paid(conn, at=at, instruction=instruction, payout=payout)
    return await _post_payout(conn, at, payout)  # owed before instructions existed


async def mark_paid(
    conn: Conn,
    *,
    at: datetime,
    instruction: asyncpg.Record,
    payout: asyncpg.Record | None = None,
    statement_id: int | None = None,
    line_no: int | None = None,
) -> int:
    """Mark a locked instruction paid (a statement line proves it when given) and post the
    money leaving the clearing account, once; the entry's id. Already paid: the line, if
    the instruction had none, is linked and nothing is posted."""
    if instruction["status"] == "paid":
        if statement_id is not None and instruction["paid_statement_id"] is None:
            await conn.execute(Q.link_paid_line, instruction["id"], statement_id, line_no)
        return int(instruction["paid_entry_id"])
    if instruction["payout_id"] is not None:
        if payout is None:
            payout = returned(await conn.fetchrow(Q.payout_row, instruction["payout_id"]))
        entry_id = await _post_payout(conn, at, payout)
    else:
        entry_id = await _post_out(
            conn,
            at,
            ("instruction_paid", instruction["id"]),
            refund_account(instruction["payee_org_id"]),
            instruction["amount_fen"],
            f"退款付出 {instruction['reference']}",
        )
    await conn.execute(
        Q.mark_instruction_paid, instruction["id"], at, statement_id, line_no, entry_id
    )
    if instruction["payee_org_id"] is not None:
        event = "payout_paid" if instruction["purpose"] == "payout" else "refund_paid"
        await conn.execute(
            Q.insert_outbox,
            event,
            instruction["payee_org_id"],
            {
                "instruction_id": instruction["id"],
                "reference": instruction["reference"],
                "amount_fen": instruction["amount_fen"],
                "purpose": instruction["purpose"],
                "path": "/payments",
            },
            f"{event}:{instruction['id']}",
            at,
        )
    return entry_id


async def _post_payout(conn: Conn, at: datetime, payout: asyncpg.Record) -> int:
    return await _post_out(
        conn,
        at,
        ("payout_paid", payout["id"]),
        payout_payable(payout),
        payout["amount_fen"],
        f"transfer {payout['reference']} paid",
    )


async def _post_out(
    conn: Conn, at: datetime, source: tuple[str, int], owed: Account, fen: int, memo: str
) -> int:
    """Dr what was owed, Cr exchange:clearing — once per source (module docstring)."""
    posted = await ledger.post(
        conn,
        source_kind=source[0],
        source_id=source[1],
        at=at,
        legs=[ledger.debit(owed, fen), ledger.credit(CLEARING, fen)],
        memo=memo,
    )
    return posted.entry_id
