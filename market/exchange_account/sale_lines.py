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
    Outcome,
    Settle,
    amount_differs,
    first_named,
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
    on_line: dict[int, tuple[int, int]],
    taken: dict[int, int],
) -> Outcome:
    if sale is None:
        return Outcome("unknown", reason("sale_no_such_reference", reference=ref))
    if sale["id"] in taken:
        return Outcome(
            "unknown", reason("sale_second_in_file", reference=ref, line=taken[sale["id"]])
        )
    if sale["paid_at"] is not None:
        if sale["id"] in on_line:
            s, n = on_line[sale["id"]]
            why = reason("sale_paid_on_line", reference=ref, statement_id=s, line=n)
        else:
            why = reason("sale_paid_already", reference=ref)
        return Outcome("unknown", why)
    if sale["status"] != "awaiting_payment":
        return Outcome("unknown", reason("sale_defaulted", reference=ref))
    if line.amount_fen != sale["balance_due_fen"]:
        return amount_differs("sale_amount_differs", ref, sale["balance_due_fen"], line.amount_fen)
    taken[sale["id"]] = line.line_no
    return Outcome(
        "matched",
        reason("sale_fits", reference=ref, amount_fen=line.amount_fen),
        settle=_payer(ref),
        sale_id=sale["id"],
    )


async def classify(uow: UnitOfWork, named: Sequence[Named]) -> list[Outcome]:
    conn = uow.conn
    refs = sorted({ref for _, ref in named})
    sales = {r["payment_reference"]: r for r in await conn.fetch(Q.sales_locked_by_reference, refs)}
    on_line = {
        r["sale_id"]: (r["statement_id"], r["line_no"])
        for r in await conn.fetch(Q.sale_lines, [r["id"] for r in sales.values()])
    }
    taken: dict[int, int] = {}
    return [_classify_one(line, ref, sales.get(ref), on_line, taken) for line, ref in named]


BRANCH: Final = Branch(kind="sale", named=named_sale, classify=classify)
