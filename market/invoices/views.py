"""What the invoices' pages and API read (docs/rules.md §Invoices): an organisation's own
details, its requests and its paid sales still waiting for their request; the operator's
list of every request."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from market.db import Conn, Queries, returned
from market.invoices.details import DetailsOut, details_of
from market.invoices.policy import DEFAULT_POLICY
from market.invoices.requests import FeeKind, InvoiceRequest, Status, request_out
from market.paging import Keyset, Page

Q = Queries("invoices")
OWN: Keyset[tuple[int]] = Keyset("invoice_requests", tuple[int], "id")
ALL: Keyset[tuple[int]] = Keyset("operator_invoice_requests", tuple[int], "id")


class SaleAwaiting(msgspec.Struct, frozen=True, kw_only=True):
    """A paid sale whose fee is the organisation's to be invoiced, with no request yet."""

    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    fee_kind: FeeKind
    fee_fen: int
    paid_at: datetime


class InvoicingOut(msgspec.Struct, frozen=True, kw_only=True):
    """The organisation's details (null until set), whether it is a person (its invoice
    then carries its name only), its sales waiting for an invoice request, and the VAT
    rate the exchange's fee is invoiced at (basis points)."""

    details: DetailsOut | None
    person: bool
    awaiting: list[SaleAwaiting]
    vat_rate_bp: int


async def invoicing(conn: Conn, org_id: int, limit: int = 200) -> InvoicingOut:
    rows = await conn.fetch(Q.paid_sales_without_request, org_id, limit)
    org = returned(await conn.fetchrow(Q.org_party, org_id))
    return InvoicingOut(
        details=await details_of(conn, org_id),
        person=org["party_type"] == "individual",
        awaiting=[
            SaleAwaiting(sale_id=r["id"], **{k: r[k] for k in SaleAwaiting.__struct_fields__[1:]})
            for r in rows
        ],
        vat_rate_bp=DEFAULT_POLICY.vat_rate_bp,
    )


async def own_requests(
    pool: asyncpg.Pool, org_id: int, *, cursor: str | None, limit: int
) -> Page[InvoiceRequest]:
    return await OWN.read(
        pool, Q.requests_of_payer, org_id, cursor=cursor, limit=limit, item=request_out
    )


async def all_requests(
    pool: asyncpg.Pool, status: Status | None, *, cursor: str | None, limit: int
) -> Page[InvoiceRequest]:
    return await ALL.read(
        pool, Q.requests_all, status, cursor=cursor, limit=limit, item=request_out
    )
