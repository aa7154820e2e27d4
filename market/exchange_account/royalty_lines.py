"""Royalty lines of the exchange's statement: an incoming transfer whose 附言 carries a
royalty payment reference (`XK-2027-000001-2027Q1`, market/licensing/book.py) with the
right amount pays that item of that contract (docs/rules.md §Licensing royalties). The
amount on the line's value date is the item's royalty (or fee) plus the interest on
arrears accrued to that day, less the licensee's credit. A line is

* matched — the reference names an item payable now and the amount settles it on the
  value date: a royalty_payments row and a routed receipt
  (market/licensing/payments.py `pay_item`), in the import's transaction;
* amount_mismatch — the reference is right, the amount is not (the reason gives both);
* unknown — an unknown contract or item, an item already paid or not yet reported, or
  a second line for one item in the file.
Exceptions wait for the operator, who records the payment by hand naming the line
(`payments.record_royalty_payment`) or sets the line aside.

Locks: the contracts the file names, in id order (payments.py: lock order)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Final

import asyncpg

from market.commands import UnitOfWork
from market.db import Queries
from market.errors import Conflict
from market.exchange_account.lines import Branch, Named, Outcome, Settle
from market.exchange_account.proof import StatementProof
from market.licensing.book import Book, item, load_book
from market.licensing.payments import expected, pay_item
from market.pools.matching import reason, reference_tokens
from market.pools.statement_csv import StatementLine

Q = Queries("licensing_royalties")

# A payment reference folded as reference_tokens folds it: XK, the year, the number, the
# item (UPFRONT, 2027Q1, 2027H2, 2027, ADJ3).
_PAYMENT: Final = re.compile(
    r"XK([0-9]{4})([0-9]{6})((?:UPFRONT|ADJ[0-9]+|[0-9]{4}(?:Q[1-4]|H[12])?))"
)


def named_item(text: str) -> tuple[str, str] | None:
    """(contract reference, item key) of the first royalty payment reference in a 附言."""
    for token in reference_tokens(text):
        if m := _PAYMENT.fullmatch(token):
            return f"XK-{m[1]}-{m[2]}", m[3]
    return None


def _payer(contract: asyncpg.Record, key: str) -> Settle:
    async def settle(uow: UnitOfWork, line: StatementLine, proof: StatementProof) -> str:
        await pay_item(uow, contract, key, line.amount_fen, line.value_date, proof.line_id)
        return f"{contract['reference']}-{key}"

    return settle


def _classify_one(
    line: StatementLine,
    named: tuple[str, str],
    contract: asyncpg.Record | None,
    book_of: Book | None,
    taken: dict[tuple[str, str], int],
) -> Outcome:
    ref, key = named
    payment_ref = f"{ref}-{key}"
    if contract is None or book_of is None:
        return Outcome("unknown", reason("royalty_no_such_contract", reference=payment_ref))
    if (ref, key) in taken:
        return Outcome(
            "unknown",
            reason("royalty_second_in_file", reference=payment_ref, line=taken[(ref, key)]),
        )
    found = item(book_of, key)
    if found is None:
        return Outcome("unknown", reason("royalty_no_such_item", reference=payment_ref))
    try:
        due = expected(book_of, found)
    except Conflict as exc:
        return Outcome("unknown", reason(exc.code, reference=payment_ref))
    if due.cash_fen != line.amount_fen:
        return Outcome(
            "amount_mismatch",
            reason(
                "royalty_amount_differs",
                reference=payment_ref,
                expected_fen=due.cash_fen,
                got_fen=line.amount_fen,
                interest_fen=due.interest_fen,
                value_date=line.value_date.isoformat(),
            ),
        )
    taken[(ref, key)] = line.line_no
    return Outcome(
        "matched",
        reason("royalty_fits", reference=payment_ref, amount_fen=line.amount_fen),
        settle=_payer(contract, key),
    )


async def classify(uow: UnitOfWork, named: Sequence[Named]) -> list[Outcome]:
    conn = uow.conn
    refs = sorted({n[0] for _, n in named})
    contracts = {r["reference"]: r for r in await conn.fetch(Q.contracts_locked_by_reference, refs)}
    books: dict[tuple[str, date], Book] = {}
    taken: dict[tuple[str, str], int] = {}
    out: list[Outcome] = []
    for line, n in named:
        contract = contracts.get(n[0])
        b = None
        if contract is not None:
            at = (n[0], line.value_date)
            if at not in books:
                books[at] = await load_book(conn, contract, line.value_date)
            b = books[at]
        out.append(_classify_one(line, n, contract, b, taken))
    return out


BRANCH: Final = Branch(kind="royalty", named=named_item, classify=classify)
