"""Sale lines of the exchange's statement: an incoming transfer whose 附言 carries a sale's
payment reference (`JK` + 10 characters, auctions/closing.payment_reference) pays that
sale's balance when the amount is the balance due exactly (docs/rules.md §After the
close). A line is

* matched — the sale awaits payment and the amount is its balance due: the payment is
  recorded through the operator's own code path (auctions/closing.pay_sale) with the line
  as its proof, audited as the exchange's act naming the line;
* amount_mismatch — short or long (the reason gives both amounts);
* unknown — no sale has the reference; the sale was paid already (on an earlier line,
  which the reason names, or by hand); it was voided for non-payment (悔拍: the money goes
  back); or a second line for one sale in the file.
Exceptions wait for the operator, who records the payment by hand or sets the line aside.

Locks: the sales the file names, FOR UPDATE in id order, before their status is read
(auctions/closing.py records a payment once under the sale's lock);
`statement_lines_one_per_sale` backs it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import asyncpg

from auctions import closing, registration
from market.commands import UnitOfWork
from market.db import Queries
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

_PAYMENT: Final = re.compile(rf"JK[{registration.ALPHABET}]{{{closing.REFERENCE_LENGTH}}}")


def named_sale(text: str) -> str | None:
    """The first sale payment reference in a 附言."""
    return first_named(text, lambda token: token if _PAYMENT.fullmatch(token) else None)


def _payer(ref: str) -> Settle:
    async def settle(uow: UnitOfWork, line: StatementLine, proof: StatementProof) -> str:
        data = closing.RecordPayment(payment_reference=ref, amount_fen=line.amount_fen)
        await closing.pay_sale(uow, data, proof)
        return ref

    return settle


def _classify_one(
    line: StatementLine,
    ref: str,
    sale: asyncpg.Record | None,
    on_line: OnLine,
    taken: Taken,
) -> Outcome:
    if sale is None:
        return Outcome("unknown", reason("sale_no_such_reference", reference=ref))
    key = sale["id"]
    if (second := second_in_file("sale", ref, key, taken)) is not None:
        return second
    if sale["paid_at"] is not None:
        return settled_before("sale_paid", ref, key, on_line)
    if sale["status"] != "awaiting_payment":
        return Outcome("unknown", reason("sale_defaulted", reference=ref))
    if line.amount_fen != sale["balance_due_fen"]:
        return amount_differs("sale_amount_differs", ref, sale["balance_due_fen"], line.amount_fen)
    return fits("sale", ref, line, key, taken, _payer(ref), sale_id=key)


async def classify(uow: UnitOfWork, named: Sequence[Named]) -> list[Outcome]:
    conn = uow.conn
    refs = sorted({ref for _, ref in named})
    sales = {r["payment_reference"]: r for r in await conn.fetch(Q.sales_locked_by_reference, refs)}
    on_line = {
        r["sale_id"]: (r["statement_id"], r["line_no"])
        for r in await conn.fetch(Q.sale_lines, [r["id"] for r in sales.values()])
    }
    taken: Taken = {}
    return [_classify_one(line, ref, sales.get(ref), on_line, taken) for line, ref in named]


BRANCH: Final = Branch(kind="sale", named=named_sale, classify=classify)
