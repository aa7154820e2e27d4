"""Deposit lines of the exchange's statement: an incoming transfer whose 附言 carries a
registration's transfer reference (`BZJ` + 10 characters, auctions/registration.py; the
check of auctions/deposits.transfer_reference) confirms that registration's deposit when
the amount is the deposit exactly (docs/rules.md §Registration and deposits). A line is

* matched — the registration awaits its deposit, its round can still be bid on, the amount
  is the deposit: the deposit is confirmed through the operator's own code path
  (auctions/deposits.confirm) with the line as its proof, audited as the exchange's act
  naming the line; the buyer is told (`deposit_confirmed`);
* amount_mismatch — short or long (the reason gives both amounts);
* unknown — no registration has the reference; the deposit was confirmed already (by hand
  or on an earlier line, which the reason names); a second line for one deposit in the
  file; or the round is over (closed, withdrawn, relisted): confirming it now would
  release it at once, so a person decides (auctions/deposits.confirm releases a deposit
  matched by hand after its round closed in the same transaction).
Exceptions wait for the operator, who matches a line to a registration by hand or sets it
aside (market/exchange_account/hand.py).

Locks, in the order of auctions/deposits.py: the registrations' lots FOR SHARE in id order,
then the registrations FOR UPDATE in id order; a deposit's status is read under its lock,
so an operator's confirmation racing the import waits, and then one of them confirms it
(the other sees it confirmed). `statement_lines_one_per_deposit` backs the lock: no two
lines confirm one deposit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg

from auctions import deposits
from market.commands import UnitOfWork
from market.db import Queries, returned
from market.exchange_account.lines import (
    Branch,
    Named,
    OnLine,
    Outcome,
    Settle,
    Taken,
    amount_differs,
    first_named,
    fits,
    second_in_file,
    settled_before,
)
from market.exchange_account.proof import StatementProof
from market.pools.matching import reason
from market.pools.statement_csv import StatementLine

Q = Queries("exchange_statement")
DQ = Queries("registration")


def named_registration(text: str) -> str | None:
    """The first registration transfer reference in a 附言."""
    return first_named(text, deposits.transfer_reference)


def _confirmer(ref: str) -> Settle:
    async def settle(uow: UnitOfWork, line: StatementLine, proof: StatementProof) -> str:
        data = deposits.ConfirmDeposit(transfer_reference=ref, amount_fen=line.amount_fen)
        await deposits.confirm(uow, data, proof)
        return ref

    return settle


def _classify_one(
    line: StatementLine,
    ref: str,
    row: asyncpg.Record | None,
    lot: asyncpg.Record | None,
    on_line: OnLine,
    taken: Taken,
    at: datetime,
) -> Outcome:
    if row is None or lot is None:
        return Outcome("unknown", reason("deposit_no_such_reference", reference=ref))
    key = row["id"]
    if (second := second_in_file("deposit", ref, key, taken)) is not None:
        return second
    if row["deposit_status"] != "awaiting":
        return settled_before("deposit_confirmed", ref, key, on_line)
    if deposits.round_over(lot, row, at):
        return Outcome("unknown", reason("deposit_round_over", reference=ref, lot=lot["reference"]))
    if line.amount_fen != row["deposit_fen"]:
        return amount_differs("deposit_amount_differs", ref, row["deposit_fen"], line.amount_fen)
    return fits("deposit", ref, line, key, taken, _confirmer(ref), registration_id=key)


async def classify(uow: UnitOfWork, named: Sequence[Named]) -> list[Outcome]:
    conn = uow.conn
    found = await conn.fetch(Q.registrations_by_reference, sorted({ref for _, ref in named}))
    lots = {
        lot_id: returned(await conn.fetchrow(DQ.share_lot, lot_id))
        for lot_id in sorted({r["lot_id"] for r in found})
    }
    rows = {}
    for r in sorted(found, key=lambda r: r["id"]):
        rows[r["transfer_reference"]] = returned(await conn.fetchrow(DQ.lock_registration, r["id"]))
    on_line = {
        r["registration_id"]: (r["statement_id"], r["line_no"])
        for r in await conn.fetch(Q.deposit_lines, [r["id"] for r in found])
    }
    taken: Taken = {}
    out = []
    for line, ref in named:
        row = rows.get(ref)
        lot = lots.get(row["lot_id"]) if row is not None else None
        out.append(_classify_one(line, ref, row, lot, on_line, taken, uow.at))
    return out


BRANCH: Final = Branch(kind="deposit", named=named_registration, classify=classify)
