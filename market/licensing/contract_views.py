"""What the contract pages and API show (docs/rules.md §Licence contracts): one contract
with its book (market/licensing/book.py) as it stands today, and each party's list of
contracts, a page at a time (market/paging.py).

Tenancy: a contract is seen by its bank, its licensee and its pledgor; the operator sees
every contract; anyone else is told it does not exist (404).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import asyncpg
import msgspec

from market.cases.models import DocumentOut
from market.cases.services import document_out
from market.db import Conn, Queries
from market.errors import NotFound
from market.licensing.book import Item, load_book
from market.licensing.contracts import ContractOut, contract_out
from market.licensing.payments import PaymentOut, payment_out
from market.paging import Keyset, Page

Q = Queries("licensing_royalties")
Role = Literal["bank", "licensee", "pledgor"]
ContractStatus = Literal["awaiting_acceptance", "active", "terminated", "ended"]
CONTRACTS: Keyset[tuple[datetime, int]] = Keyset(
    "licence_contracts", tuple[datetime, int], "created_at", "id"
)


class AdjustmentRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    period: str
    net_sales_fen: int
    due_change_fen: int
    billed_fen: int
    due_on: date | None
    reason: str
    by: str
    created_at: datetime


class ContractDetail(msgspec.Struct, frozen=True, kw_only=True):
    contract: ContractOut
    case_reference: str
    bank: str  # the parties' names
    licensee: str
    pledgor: str | None
    recordal_document_id: int | None  # CNIPA's recordal notice, once uploaded
    today: date
    items: list[Item]  # the upfront fee, every period, every audit's difference
    payments: list[PaymentOut]
    adjustments: list[AdjustmentRow]
    credit_fen: int
    may_terminate: bool
    recordal_overdue: bool
    termination_reason: str | None
    cancellation_number: str | None
    cancelled_on: date | None


class ContractSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    case_reference: str
    bank: str
    licensee: str
    kind: str
    status: ContractStatus
    start: date
    end: date
    recordal_due_on: date
    recorded_on: date | None
    created_at: datetime


async def contract_detail(
    conn: Conn, org_id: int | None, contract_id: int, today: date
) -> ContractDetail:
    """A party's contract (`org_id` None: the operator's view); another's is 404."""
    row = await conn.fetchrow(Q.contract_for_party, contract_id, org_id)
    if row is None:
        raise NotFound("not_found")
    b = await load_book(conn, row, today)
    return ContractDetail(
        contract=b.contract,
        case_reference=row["case_reference"],
        bank=row["bank_name"],
        licensee=row["licensee_name"],
        pledgor=row["pledgor_name"],
        recordal_document_id=row["recordal_document"],
        today=today,
        items=list(b.items),
        payments=[payment_out(p) for p in await conn.fetch(Q.payments_of, contract_id)],
        adjustments=[
            AdjustmentRow(
                id=a["id"],
                period=a["period"],
                net_sales_fen=a["net_sales_fen"],
                due_change_fen=a["due_change_fen"],
                billed_fen=a["billed_fen"],
                due_on=a["due_on"],
                reason=a["reason"],
                by=a["user_name"],
                created_at=a["created_at"],
            )
            for a in await conn.fetch(Q.adjustments_of, contract_id)
        ],
        credit_fen=b.credit_fen,
        may_terminate=b.may_terminate,
        recordal_overdue=b.recordal_overdue,
        termination_reason=row["termination_reason"],
        cancellation_number=row["cancellation_number"],
        cancelled_on=row["cancelled_on"],
    )


async def recordal_document(conn: Conn, org_id: int | None, contract_id: int) -> DocumentOut:
    """A party's contract's recordal notice (`org_id` None: the operator); 404 for
    another's contract or before the recordal."""
    row = await conn.fetchrow(Q.contract_for_party, contract_id, org_id)
    found = None
    if row is not None and row["recordal_document"] is not None:
        found = await conn.fetchrow(Q.document_of_contract, row["recordal_document"])
    if found is None:
        raise NotFound("no_such_document")
    return document_out(found)


def summary(row: asyncpg.Record) -> ContractSummary:
    c = contract_out(row)
    return ContractSummary(
        id=c.id,
        reference=c.reference,
        case_reference=row["case_reference"],
        bank=row["bank_name"],
        licensee=row["licensee_name"],
        kind=c.kind,
        status=c.status,
        start=c.terms.start,
        end=c.terms.end,
        recordal_due_on=c.recordal_due_on,
        recorded_on=c.recorded_on,
        created_at=c.created_at,
    )


async def page_contracts(
    pool: asyncpg.Pool,
    org_id: int | None,
    *,
    role: Role | None,
    status: ContractStatus | None,
    cursor: str | None,
    limit: int,
) -> Page[ContractSummary]:
    """A party's contracts (as `role`, or any), newest first; the operator's: all."""
    return await CONTRACTS.read(
        pool, Q.page_contracts, org_id, role, status, cursor=cursor, limit=limit, item=summary
    )
