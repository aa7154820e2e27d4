"""The clearing account's outgoing lines: money the exchange paid out, matched to its
payment instructions (docs/rules.md §Payments out, §Reconciliation).

A line that carries an instruction's reference (in its 附言, folded as reference_tokens
folds it) with the instruction's amount marks it paid (market/payments/paying.py
`mark_paid`: the ledger movement out of clearing, once). A line is

* matched — the instruction is pending, in a payment file, or was already seen paid on the
  payee's own statement (the line is then linked to it; nothing is posted again);
* amount_mismatch — the reference is right, the amount is not;
* unknown — no instruction's reference, a cancelled instruction, one another line has
  proved paid already, or a second line for it in this file.
Lines already recorded (the same 流水号 on an earlier statement) are skipped. Nothing here
rejects a file: an outgoing line is never a reason to refuse the incoming ones.

Concurrency: the caller holds the organisation's statement import lock
(reconciliation.open_statement), so two imports of the clearing account run one after the
other; then the payouts of the instructions named are locked, then the instructions (both
FOR UPDATE, in id order) — the order a payee's statement import takes them
(services.mark_payout_received), so the two cannot deadlock and the second sees the first.
`outgoing_lines.instruction_id` is unique: no two lines prove one instruction paid.
"""

from __future__ import annotations

from typing import Final

import msgspec

from market.commands import UnitOfWork
from market.db import Queries
from market.payments.paying import mark_paid
from market.pools.matching import reference_tokens
from market.pools.statement_csv import StatementLine

Q = Queries("payments")

PAYABLE: Final = ("pending", "in_file", "paid")


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    counts: dict[str, int]  # matched, amount_mismatch, unknown, skipped
    paid: list[str]  # the references of the instructions marked paid now


async def settle_outgoing(
    uow: UnitOfWork, statement_id: int, lines: list[StatementLine]
) -> Outgoing:
    """Record the statement's outgoing lines and mark the instructions they prove paid."""
    conn, org_id = uow.conn, uow.actor.org
    txns = [ln.bank_txn_id for ln in lines if ln.bank_txn_id]
    known = {r["bank_txn_id"] for r in await conn.fetch(Q.known_outgoing_txns, org_id, txns)}
    fresh = []
    for ln in lines:
        if ln.bank_txn_id is None or ln.bank_txn_id not in known:
            fresh.append(ln)
            if ln.bank_txn_id is not None:
                known.add(ln.bank_txn_id)  # twice in one file: the first counts
    tokens = sorted({t for ln in fresh for t in reference_tokens(ln.reference)})
    await conn.execute(Q.lock_payouts_of_references, tokens)
    by_ref = {r["reference"]: r for r in await conn.fetch(Q.lock_instructions_by_reference, tokens)}
    counts = dict.fromkeys(("matched", "amount_mismatch", "unknown"), 0)
    counts["skipped"] = len(lines) - len(fresh)
    taken: set[int] = set()
    statuses: list[str] = []
    matched_ids: list[int | None] = []
    paid: list[str] = []
    for ln in fresh:
        found = next((by_ref[t] for t in reference_tokens(ln.reference) if t in by_ref), None)
        status, instruction_id = "unknown", None
        if found is not None and found["amount_fen"] != ln.amount_fen:
            status = "amount_mismatch"
        elif (
            found is not None
            and found["status"] in PAYABLE
            and found["id"] not in taken
            and not (found["status"] == "paid" and found["paid_statement_id"] is not None)
        ):
            status, instruction_id = "matched", found["id"]
            taken.add(found["id"])
            await mark_paid(
                conn,
                at=uow.at,
                instruction=found,
                statement_id=statement_id,
                line_no=ln.line_no,
            )
            if found["status"] != "paid":
                paid.append(found["reference"])
                uow.events += 1 if found["payee_org_id"] is not None else 0
        counts[status] += 1
        statuses.append(status)
        matched_ids.append(instruction_id)
    await conn.execute(
        Q.insert_outgoing_lines,
        statement_id,
        org_id,
        uow.at,
        [ln.line_no for ln in fresh],
        [ln.value_date for ln in fresh],
        [ln.amount_fen for ln in fresh],
        [ln.reference for ln in fresh],
        [ln.counterparty for ln in fresh],
        [ln.bank_txn_id for ln in fresh],
        statuses,
        matched_ids,
    )
    return Outgoing(counts=counts, paid=paid)
