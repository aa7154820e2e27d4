"""Royalty payments: money a licensee paid into the exchange's clearing account for one
item of its contract (market/licensing/book.py: the upfront fee, a period, an audit's
difference), recorded once and routed through the waterfall (docs/rules.md §Licensing
royalties, §The waterfall).

`pay_item` is the one write path: the statement import of the clearing account
(market/exchange_account/statement.py) calls it for a matched line, the operator's hand record
(`record_royalty_payment`) for a transfer it saw itself. An item is paid once, in full:
its royalty (or fee) and the interest on arrears accrued on the day of payment, less the
licensee's credit from audits. The receipt is routed by market/pools/services.route_receipt
(kind `licence_fee` for the upfront fee, else `royalty`; source
`royalty:<contract id>:<item>`, unique) in the same transaction: the bank's claim in Civil
Code order, then the pools and parties that bore the loss pro rata, the pledgor last, with
one payout per payee.

Concurrency — two payments of one item at once (two imports, two hand records, one of
each) route once:
* the contract row is locked first (FOR UPDATE); the second writer waits, then reads the
  first's royalty_payments row and is refused (409 `royalty_paid_already`; an import
  leaves its line as an exception);
* `UNIQUE (contract_id, period)` on royalty_payments and the unique receipt source decide
  besides, should a path forget the lock; a statement line pays one item at most (unique
  index on statement_line_id).
Lock order: the clearing import's advisory lock (clearing.py), the contracts in id order,
then the case row (route_receipt), the payouts, the audit chain head at the commit. A
report or an audit of the same contract locks the contract row first too, so the amount
a payment is checked against cannot change under it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import asyncpg
import msgspec
from msgspec import Meta

from auctions.deposits import CLEARING
from market.accounts.permissions import OPERATE
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries
from market.errors import Conflict, Invalid, NotFound
from market.licensing.book import UPFRONT, Book, Item, item, load_book
from market.money import MAX_FEN
from market.pools import services

Q = Queries("licensing_royalties")
KEY_MAX = 20


class PaymentOut(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    period: str  # the item's key: UPFRONT, 2027Q1, ADJ3
    amount_fen: int  # the money received
    interest_fen: int  # of it, interest on arrears
    credit_fen: int  # the licensee's credit used besides
    paid_on: date
    receipt_id: int
    statement_line_id: int | None


class RecordPaymentIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A transfer the operator saw in the clearing account: which item of which contract,
    how much and its value date."""

    period: Annotated[str, Meta(min_length=1, max_length=KEY_MAX)]
    amount_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)]
    paid_on: date
    statement_line_id: int | None = None  # an exception line of the clearing statement
    note: Annotated[str, Meta(max_length=500)] = ""


class RecordPayment(RecordPaymentIn, frozen=True, kw_only=True):
    contract_id: int


def payment_out(row: asyncpg.Record) -> PaymentOut:
    return PaymentOut(
        contract_id=row["contract_id"],
        period=row["period"],
        amount_fen=row["amount_fen"],
        interest_fen=row["interest_fen"],
        credit_fen=row["credit_fen"],
        paid_on=row["paid_on"],
        receipt_id=row["receipt_id"],
        statement_line_id=row["statement_line_id"],
    )


class Expected(msgspec.Struct, frozen=True, kw_only=True):
    """What settles an item on a day: cash, of which interest, and the credit used."""

    cash_fen: int
    interest_fen: int
    credit_fen: int


def expected(b: Book, found: Item) -> Expected:
    """What settles `found` on the book's day (module docstring); Conflict when nothing
    can be paid for it yet or any more."""
    if found.settled:
        raise Conflict("royalty_paid_already", field="period", period=found.key)
    if found.owed_fen is None or found.due_fen is None:
        raise Conflict("royalty_not_reported", field="period", period=found.key)
    owed = found.owed_fen
    interest = owed - (found.due_fen - found.paid_fen)
    credit = min(b.credit_fen, owed - 1) if owed > 1 else 0  # some money always moves
    return Expected(cash_fen=owed - credit, interest_fen=interest, credit_fen=max(credit, 0))


async def lock_contract(conn: Conn, contract_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(Q.contract_locked, contract_id)
    if row is None:
        raise NotFound("not_found", field="contract_id")
    return row


async def pay_item(
    uow: UnitOfWork,
    contract: asyncpg.Record,
    key: str,
    amount_fen: int,
    paid_on: date,
    statement_line_id: int | None = None,
) -> PaymentOut:
    """Record and route one payment of `key` (the contract row locked by the caller)."""
    conn = uow.conn
    if contract["status"] == "awaiting_acceptance":
        raise Conflict("licence_not_accepted", field="contract_id")
    if paid_on > china_today(uow.at):
        raise Invalid("date_in_future", field="paid_on")
    b = await load_book(conn, contract, paid_on)
    found = item(b, key)
    if found is None:
        raise Invalid("royalty_no_such_item", field="period", period=key)
    due = expected(b, found)
    if amount_fen != due.cash_fen:
        raise Invalid(
            "royalty_amount_differs",
            field="amount_fen",
            period=key,
            expected_fen=due.cash_fen,
            got_fen=amount_fen,
            interest_fen=due.interest_fen,
        )
    receipt = await services.route_receipt(
        uow,
        services.RouteReceipt(
            case_id=contract["case_id"],
            kind="licence_fee" if key == UPFRONT else "royalty",
            source=f"royalty:{contract['id']}:{key}",
            amount_fen=amount_fen,
            from_account=CLEARING,
        ),
    )
    row = await conn.fetchrow(
        Q.insert_payment,
        contract["id"],
        key,
        amount_fen,
        due.interest_fen,
        due.credit_fen,
        "licence_fee" if key == UPFRONT else found.kind,
        paid_on,
        receipt.id,
        statement_line_id,
        uow.at,
    )
    if row is None:  # the contract lock makes this the unique key's backstop only
        raise Conflict("royalty_paid_already", field="period", period=key)
    out = payment_out(row)
    uow.audit(
        "royalty.payment",
        "licence_contract",
        contract["id"],
        chain_org_id=contract["bank_org_id"],
        after=msgspec.to_builtins(out),
    )
    return out


@command(OPERATE)
async def record_royalty_payment(uow: UnitOfWork, data: RecordPayment) -> PaymentOut:
    """The operator records a transfer into the clearing account by hand (one the
    statement import left as an exception, named by its line, or one seen otherwise)."""
    conn = uow.conn
    contract = await lock_contract(conn, data.contract_id)
    line_id = data.statement_line_id
    if line_id is not None:
        line = await conn.fetchrow(Q.clearing_line_locked, line_id, uow.actor.org)
        if line is None:
            raise NotFound("no_such_statement_line", field="statement_line_id")
        if line["status"] not in ("amount_mismatch", "reference_typo", "unknown", "set_aside"):
            raise Conflict("settled_already", field="statement_line_id", line=line["line_no"])
        if line["amount_fen"] != data.amount_fen:
            raise Invalid(
                "amount_differs_from_line",
                field="amount_fen",
                line=line["line_no"],
                got_fen=data.amount_fen,
                line_fen=line["amount_fen"],
            )
    key = data.period.strip().upper()
    out = await pay_item(uow, contract, key, data.amount_fen, data.paid_on, line_id)
    if line_id is not None:
        await conn.execute(Q.settle_clearing_line, line_id, uow.actor.user, uow.at, data.note)
    return out


async def payments(conn: Conn, contract_id: int) -> list[PaymentOut]:
    return [payment_out(r) for r in await conn.fetch(Q.payments_of, contract_id)]
