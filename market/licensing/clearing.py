"""The exchange's clearing account: the operator imports its bank statement, and every
incoming transfer whose 附言 carries a royalty payment reference (`XK-2027-000001-2027Q1`,
market/licensing/book.py) with the right amount pays that item of that contract
(docs/rules.md §Reconciliation, §Licensing royalties).

It is the statement reconciliation of market/pools/reconciliation.py, for the exchange's
own account: the same file format and all-or-nothing parsing (statement_csv), the same
tables (statements, statement_lines of the operator's organisation), the same duplicate
rules (a file once per organisation, a bank transaction id once), the same reasons in
words (matching.Reason, `reconciliation.reason.<code>`). What differs is what a line is
matched to: a licence contract's item, whose amount on the line's value date is its
royalty (or fee) plus the interest on arrears accrued to that day, less the licensee's
credit. A line is

* matched — the reference names an item payable now, the amount is exactly what settles
  it on the value date: a royalty_payments row and a routed receipt
  (market/licensing/payments.py `pay_item`), in the import's transaction;
* amount_mismatch — the reference is right, the amount is not (the reason gives both);
* unknown — no royalty reference, an unknown contract or item, an item already paid or
  not yet reported, or a second line for one item in the file.
Exceptions wait for the operator, who records the payment by hand naming the line
(`payments.record_royalty_payment`) or leaves it for the licensee to be asked.

Outgoing lines (money the exchange paid out) prove payment instructions paid
(market/payments/outgoing.py); the others are counted as `outgoing_skipped`.

Concurrency: imports of the clearing account take the same advisory lock as the
reconciliation's imports of one organisation (`IMPORT_LOCK`, the operator's organisation),
so they run one after the other; then the contracts the file names are locked in id order
(payments.py: lock order). Two imports carrying the same payment: the second waits, then
finds the item paid and leaves its line unknown — one receipt, one set of payouts.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

import asyncpg
import msgspec

from market.accounts.permissions import OPERATE
from market.commands import UnitOfWork, command
from market.db import Queries
from market.errors import Conflict
from market.licensing.book import Book, item, load_book
from market.licensing.payments import expected, pay_item
from market.payments.outgoing import settle_outgoing
from market.pools.matching import LineStatus, Reason, encode_reason, reason, reference_tokens
from market.pools.reconciliation import open_statement
from market.pools.statement_csv import StatementLine

Q = Queries("licensing_royalties")

# A payment reference folded as reference_tokens folds it: XK, the year, the number, the
# item (UPFRONT, 2027Q1, 2027H2, 2027, ADJ3).
_PAYMENT: Final = re.compile(
    r"XK([0-9]{4})([0-9]{6})((?:UPFRONT|ADJ[0-9]+|[0-9]{4}(?:Q[1-4]|H[12])?))"
)


class ImportClearing(msgspec.Struct, frozen=True, kw_only=True):
    data: bytes
    filename: str | None = None


class ClearingImported(msgspec.Struct, frozen=True, kw_only=True):
    statement_id: int
    encoding: str
    counts: dict[str, int]  # matched, amount_mismatch, unknown
    skipped: int  # transfers already on an earlier statement (same 流水号)
    outgoing_skipped: int  # outgoing lines that prove no payment instruction paid
    paid: list[str]  # the payment references settled
    paid_out: list[str] = []  # the payment instructions the outgoing lines proved paid


def named_item(text: str) -> tuple[str, str] | None:
    """(contract reference, item key) of the first royalty payment reference in a 附言."""
    for token in reference_tokens(text):
        if m := _PAYMENT.fullmatch(token):
            return f"XK-{m[1]}-{m[2]}", m[3]
    return None


class _Outcome(msgspec.Struct, frozen=True):
    status: LineStatus
    reason: Reason
    contract: asyncpg.Record | None = None
    key: str | None = None


def _classify(
    line: StatementLine,
    named: tuple[str, str] | None,
    contracts: dict[str, asyncpg.Record],
    book_of: Book | None,
    taken: dict[tuple[str, str], int],
) -> _Outcome:
    said = line.reference if len(line.reference) <= 40 else line.reference[:39] + "…"
    if named is None:
        return _Outcome("unknown", reason("nothing_fits", text=said, amount_fen=line.amount_fen))
    ref, key = named
    payment_ref = f"{ref}-{key}"
    contract = contracts.get(ref)
    if contract is None or book_of is None:
        return _Outcome("unknown", reason("royalty_no_such_contract", reference=payment_ref))
    if (ref, key) in taken:
        return _Outcome(
            "unknown",
            reason("royalty_second_in_file", reference=payment_ref, line=taken[(ref, key)]),
        )
    found = item(book_of, key)
    if found is None:
        return _Outcome("unknown", reason("royalty_no_such_item", reference=payment_ref))
    try:
        due = expected(book_of, found)
    except Conflict as exc:
        return _Outcome("unknown", reason(exc.code, reference=payment_ref))
    if due.cash_fen != line.amount_fen:
        return _Outcome(
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
    return _Outcome(
        "matched",
        reason("royalty_fits", reference=payment_ref, amount_fen=line.amount_fen),
        contract=contract,
        key=key,
    )


@command(OPERATE)
async def import_clearing_statement(uow: UnitOfWork, data: ImportClearing) -> ClearingImported:
    """Import the clearing account's statement (module docstring): 422 with every problem
    by line and column, or 409 for a file imported before, with nothing written."""
    conn, org_id = uow.conn, uow.actor.org
    opened = await open_statement(uow, data.data, data.filename)
    statement, parsed, lines = opened.statement, opened.parsed, opened.lines
    named = [named_item(ln.reference) for ln in lines]
    refs = sorted({n[0] for n in named if n is not None})
    contracts = {r["reference"]: r for r in await conn.fetch(Q.contracts_locked_by_reference, refs)}
    books: dict[tuple[str, date], Book] = {}
    taken: dict[tuple[str, str], int] = {}
    outcomes: list[_Outcome] = []
    for ln, n in zip(lines, named, strict=True):
        b = None
        if n is not None and n[0] in contracts:
            at = (n[0], ln.value_date)
            if at not in books:
                books[at] = await load_book(conn, contracts[n[0]], ln.value_date)
            b = books[at]
        outcomes.append(_classify(ln, n, contracts, b, taken))
    ids = await conn.fetch(
        Q.insert_clearing_lines,
        statement["id"],
        org_id,
        uow.at,
        [ln.line_no for ln in lines],
        [ln.value_date for ln in lines],
        [ln.amount_fen for ln in lines],
        [ln.reference for ln in lines],
        [ln.counterparty for ln in lines],
        [ln.bank_txn_id for ln in lines],
        [o.status for o in outcomes],
        [encode_reason(o.reason) for o in outcomes],
    )
    line_ids = {r["line_no"]: r["id"] for r in ids}
    counts = dict.fromkeys(("matched", "amount_mismatch", "unknown"), 0)
    paid: list[str] = []
    for ln, o in zip(lines, outcomes, strict=True):
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.status == "matched" and o.contract is not None and o.key is not None:
            await pay_item(
                uow, o.contract, o.key, ln.amount_fen, ln.value_date, line_ids[ln.line_no]
            )
            paid.append(f"{o.contract['reference']}-{o.key}")
    out = await settle_outgoing(uow, statement["id"], parsed.paid_out)
    uow.audit(
        "statement.import",
        "statement",
        statement["id"],
        after={
            "account": "clearing",
            "filename": statement["filename"],
            "sha256": bytes(statement["sha256"]).hex(),
            "lines": len(parsed.lines),
            "counts": counts,
            "skipped": len(parsed.lines) - len(lines),
            "paid": paid,
            "outgoing": out.counts,
            "paid_out": out.paid,
        },
    )
    return ClearingImported(
        statement_id=statement["id"],
        encoding=parsed.encoding,
        counts=counts,
        skipped=len(parsed.lines) - len(lines),
        outgoing_skipped=parsed.outgoing - out.counts["matched"],
        paid=paid,
        paid_out=out.paid,
    )
