"""Settlement lines of the exchange's statement: an incoming transfer whose 附言 carries an
agreed disposal's settlement reference (`ZJ` + 10 characters,
market/acquisition/agreement.py) pays what the bank owes the other payees of the waterfall
when the amount is that debt exactly (docs/rules.md §Acquisition and pledge-to-equity). A
line is

* matched — the attempt completed, its debt is unpaid and the amount is the debt: settled
  (agreement.settle) with the line as its proof, and the payouts go out;
* amount_mismatch — short or long (the reason gives both amounts);
* unknown — no attempt has the reference, it was settled already, or a second line for it
  in the file. Exceptions wait for the operator.

Locks: the attempts the file names, FOR UPDATE in id order, before their state is read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from market.acquisition import agreement
from market.commands import UnitOfWork
from market.db import Queries
from market.exchange_account.lines import (
    Branch,
    Named,
    Outcome,
    Settle,
    Taken,
    amount_differs,
    first_named,
    fits,
    second_in_file,
)
from market.exchange_account.proof import StatementProof
from market.pools.matching import reason
from market.pools.statement_csv import StatementLine

Q = Queries("acquisition")


def named_settlement(text: str) -> str | None:
    return first_named(text, agreement.settlement_reference)


def _settler(ref: str) -> Settle:
    async def settle(uow: UnitOfWork, line: StatementLine, proof: StatementProof) -> str:
        row = await uow.conn.fetchrow(Q.settlement_locked, ref)
        assert row is not None
        return await agreement.settle(uow, row, line.amount_fen, proof)

    return settle


def _classify_one(
    line: StatementLine, ref: str, row: asyncpg.Record | None, taken: Taken
) -> Outcome:
    if row is None:
        return Outcome("unknown", reason("agreement_no_such_reference", reference=ref))
    if (second := second_in_file("agreement", ref, row["id"], taken)) is not None:
        return second
    if row["settled_at"] is not None:
        return Outcome("unknown", reason("agreement_settled_already", reference=ref))
    if line.amount_fen != row["owed_fen"]:
        return amount_differs("agreement_amount_differs", ref, row["owed_fen"], line.amount_fen)
    return fits("agreement", ref, line, row["id"], taken, _settler(ref))


async def classify(uow: UnitOfWork, named: Sequence[Named]) -> list[Outcome]:
    refs = sorted({ref for _, ref in named})
    rows = {
        r["settlement_reference"]: r
        for r in await uow.conn.fetch(Q.settlements_locked_by_reference, refs)
    }
    taken: Taken = {}
    return [_classify_one(line, ref, rows.get(ref), taken) for line, ref in named]


BRANCH: Final = Branch(kind="agreement", named=named_settlement, classify=classify)
