"""The exchange account's statement: the operator imports the bank statement of the
exchange's own account (the clearing account, where deposits, balances and royalties
arrive), and every incoming line is settled by the reference in its 附言 — one import, one
small dispatch (docs/rules.md §Reconciliation):

    BZJ…  a registration's deposit   market/exchange_account/deposit_lines.py
    JK…   a sale's balance           market/exchange_account/sale_lines.py
    XK-…  a licence's royalty item   market/exchange_account/royalty_lines.py
    ZJ…   a bank's agreed-disposal debt  market/acquisition/lines.py
    anything else                    unknown, waits for the operator

Each branch classifies the lines naming its kind of reference (matched, amount_mismatch,
unknown, with the reason as a code and parameters: market/pools/matching.Reason, in words
where shown); a matched line is settled in the import's transaction, through the same
code path as the operator's own command, with the recorded line as its proof. What does
not match waits for a hand decision (market/exchange_account/hand.py): matched by hand to
a registration, a royalty item or a sale, or set aside with the reason.

It is the statement reconciliation of market/pools/reconciliation.py for the exchange's
own account: the same file format and all-or-nothing parsing (statement_csv: a bad file
is 422 with every problem by line and column, nothing written), the same tables
(statements, statement_lines of the operator's organisation), the same duplicate rules
(`open_statement`: a file once per organisation, a bank transaction id once — a line of
an overlapping statement already imported is skipped and listed). An outgoing line (money
the exchange paid out) proves a payment instruction paid when it carries its reference
and amount (market/payments/outgoing.py); the other outgoing lines are counted.

Concurrency: imports of the exchange account take the reconciliation's import lock of the
operator's organisation (`IMPORT_LOCK`), so two imports run one after the other and the
second skips the transfers the first recorded (same 流水号). Then the branches lock what
they settle, in `BRANCHES` order — contracts (id order), sales (id order), the
registrations' lots FOR SHARE and the registrations FOR UPDATE (id order), agreed disposals
(id order) — the order in
which each manual command takes the same rows, so an import racing the operator's
confirmation or payment of the same deposit or sale waits for it (or it for the import)
and the second finds it done: confirmed once, paid once.
"""

from __future__ import annotations

from typing import Final

import msgspec

from market.accounts.permissions import OPERATE
from market.acquisition import lines as agreement_lines
from market.commands import UnitOfWork, command
from market.db import Queries
from market.exchange_account import deposit_lines, royalty_lines, sale_lines
from market.exchange_account.lines import Branch, Named, Outcome, quoted
from market.exchange_account.proof import StatementProof
from market.payments.outgoing import settle_outgoing
from market.pools.matching import encode_reason, reason
from market.pools.reconciliation import line_columns, open_statement
from market.pools.statement_csv import StatementLine

Q = Queries("exchange_statement")

# In lock order (module docstring); a branch for another kind of line goes here.
BRANCHES: Final[tuple[Branch, ...]] = (
    royalty_lines.BRANCH,
    sale_lines.BRANCH,
    deposit_lines.BRANCH,
    agreement_lines.BRANCH,
)


class ImportExchangeStatement(msgspec.Struct, frozen=True, kw_only=True):
    data: bytes
    filename: str | None = None


class ExchangeStatementImported(msgspec.Struct, frozen=True, kw_only=True):
    statement_id: int
    encoding: str
    counts: dict[str, int]  # matched, amount_mismatch, unknown
    skipped: int  # transfers already on an earlier statement (same 流水号)
    outgoing_skipped: int  # outgoing lines that prove no payment instruction paid
    # What the matched lines settled, by branch: royalty payment references, sale payment
    # references, registrations' transfer references, agreed disposals' settlement
    # references.
    settled: dict[str, list[str]]
    paid_out: list[str] = []  # the payment instructions the outgoing lines proved paid


def route(text: str) -> tuple[Branch, object] | None:
    """The branch whose reference a 附言 carries (the first in `BRANCHES` order), and it."""
    for branch in BRANCHES:
        if (named := branch.named(text)) is not None:
            return branch, named
    return None


async def _classify(
    uow: UnitOfWork, lines: list[StatementLine]
) -> list[tuple[Branch | None, Outcome]]:
    """Each line's branch (None: no reference the exchange knows) and outcome; the
    branches classify in lock order."""
    routed = [route(ln.reference) for ln in lines]
    out: list[tuple[Branch | None, Outcome]] = [
        (
            None,
            Outcome(
                "unknown",
                reason("nothing_fits", text=quoted(ln.reference), amount_fen=ln.amount_fen),
            ),
        )
        for ln in lines
    ]
    for branch in BRANCHES:
        mine = [(i, r[1]) for i, r in enumerate(routed) if r is not None and r[0] is branch]
        if mine:
            named: list[Named] = [(lines[i], ref) for i, ref in mine]
            for (i, _), outcome in zip(mine, await branch.classify(uow, named), strict=True):
                out[i] = (branch, outcome)
    return out


@command(OPERATE)
async def import_exchange_statement(
    uow: UnitOfWork, data: ImportExchangeStatement
) -> ExchangeStatementImported:
    """Import the exchange account's statement (module docstring): 422 with every problem
    by line and column, or 409 for a file imported before, with nothing written;
    otherwise the statement, its classified lines, what the matched ones settle and one
    audit row, in one transaction."""
    conn, org_id = uow.conn, uow.actor.org
    opened = await open_statement(uow, data.data, data.filename)
    statement, parsed, lines = opened.statement, opened.parsed, opened.lines
    classified = await _classify(uow, lines)
    outcomes = [o for _, o in classified]
    ids = await conn.fetch(
        Q.insert_lines,
        statement["id"],
        org_id,
        uow.at,
        *line_columns(lines),
        [o.status for o in outcomes],
        [encode_reason(o.reason) for o in outcomes],
        [o.registration_id for o in outcomes],
        [o.sale_id for o in outcomes],
    )
    line_ids = {r["line_no"]: r["id"] for r in ids}
    counts = dict.fromkeys(("matched", "amount_mismatch", "unknown"), 0)
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    settled: dict[str, list[str]] = {b.kind: [] for b in BRANCHES}
    for branch in BRANCHES:  # in lock order
        for ln, (of, o) in zip(lines, classified, strict=True):
            if of is branch and o.settle is not None:
                proof = StatementProof(
                    line_id=line_ids[ln.line_no],
                    statement_id=statement["id"],
                    line_no=ln.line_no,
                    bank_txn_id=ln.bank_txn_id,
                    by_hand=False,
                )
                settled[branch.kind].append(await o.settle(uow, ln, proof))
    out = await settle_outgoing(uow, statement["id"], parsed.paid_out)
    uow.audit(
        "statement.import",
        "statement",
        statement["id"],
        after={
            "account": "exchange",
            "filename": statement["filename"],
            "sha256": bytes(statement["sha256"]).hex(),
            "lines": len(parsed.lines),
            "counts": counts,
            "skipped": len(parsed.lines) - len(lines),
            "outgoing_skipped": parsed.outgoing - out.counts["matched"],
            "settled": settled,
            "outgoing": out.counts,
            "paid_out": out.paid,
        },
    )
    return ExchangeStatementImported(
        statement_id=statement["id"],
        encoding=parsed.encoding,
        counts=counts,
        skipped=len(parsed.lines) - len(lines),
        outgoing_skipped=parsed.outgoing - out.counts["matched"],
        settled=settled,
        paid_out=out.paid,
    )
