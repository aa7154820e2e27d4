"""Invoice requests (docs/rules.md §Invoices): once a sale's fee is earned — its balance
paid, `sales.paid_at` set — the organisation that pays the fee is owed an invoice for it:
the buyer for a buyer's premium, the bank for a commission (deducted in the waterfall).

The request is made automatically when the balance is recorded (`request_for_sale`, called
in closing.record_payment's unit of work) from the payer's details on file; without them
the payer is asked for them (`invoice_details_needed`) and the request is made when it
saves them (details.set_invoice_details → `request_waiting`), or when it asks on its
invoices page or over the API (`request_invoice`). A request is a snapshot: the details,
the amount (the fee, VAT included), the VAT rate and the split; its status goes
requested → exported (exports.py) → issued (issued.py).

A sale unwound after its payment (`cancel_for_sale`, the escrow's unwind) makes no invoice
any more: a request not yet exported is cancelled; one already sent to the finance system
gets a red-letter request (红字发票) that the next export carries.

Concurrency: every path locks the sale row first (FOR UPDATE), then its requests; the
unique (sale_id, kind) makes a second request of the same kind impossible, so two requests
for one sale at once give one, and a cancellation and a request for one sale at once are
decided one after the other.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from market.accounts.permissions import MANAGE_INVOICE_DETAILS
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, NotFound
from market.invoices.details import InvoiceType, details_of
from market.invoices.policy import DEFAULT_POLICY, InvoicePolicy, split_tax

Q = Queries("invoices")

Status = Literal["requested", "exported", "issued", "cancelled"]
Kind = Literal["invoice", "red_letter"]
FeeKind = Literal["commission", "buyer_premium"]


class InvoiceRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    kind: Kind
    cancels_id: int | None  # a red-letter request: the invoice it takes back
    payer_org_id: int
    fee_kind: FeeKind
    invoice_type: InvoiceType
    title: str
    taxpayer_number: str | None
    address_phone: str | None
    bank_account: str | None
    amount_fen: int  # 价税合计: the fee, VAT included
    vat_rate_bp: int  # 600 = 6 %
    net_fen: int
    tax_fen: int
    status: Status
    export_id: int | None
    invoice_number: str | None
    invoice_date: date | None
    reason: str | None
    created_at: datetime
    exported_at: datetime | None
    issued_at: datetime | None
    cancelled_at: datetime | None


def request_out(row: asyncpg.Record) -> InvoiceRequest:
    return InvoiceRequest(**{name: row[name] for name in InvoiceRequest.__struct_fields__})


async def request_by_id(conn: Conn, request_id: int) -> InvoiceRequest:
    return request_out(returned(await conn.fetchrow(Q.request_by_id, request_id)))


async def _emit(
    uow: UnitOfWork, event: str, key: str, org_id: int, lot_id: int, payload: dict[str, Any]
) -> None:
    payload = {**payload, "path": "/invoices"}
    await uow.emit(Q.insert_outbox, event, org_id, lot_id, payload, f"{event}:{key}", uow.at)


async def request_for_sale(
    uow: UnitOfWork, sale_id: int, policy: InvoicePolicy = DEFAULT_POLICY
) -> InvoiceRequest | None:
    """The invoice request of a paid sale's fee, made now from the payer's details if it
    has none yet; None when there is nothing to invoice (no fee, not paid, unwound) or the
    payer's details are missing (it is then asked for them, once per sale).

    Runs inside the caller's unit of work (the payment's, the details', the request's); it
    locks the sale row FOR UPDATE (already held by the payment), so it is decided once.
    """
    conn = uow.conn
    sale = await conn.fetchrow(Q.sale_locked, sale_id)
    if sale is None or sale["paid_at"] is None or sale["fee_fen"] <= 0:
        return None
    if await conn.fetchrow(Q.cancellation, sale_id) is not None:
        return None
    existing = await conn.fetchrow(Q.request_of_sale, sale_id, "invoice")
    if existing is not None:
        return await request_by_id(conn, existing["id"])
    payer = sale["payer_org_id"]
    details = await details_of(conn, payer)
    if details is None:
        await _emit(
            uow,
            "invoice_details_needed",
            str(sale_id),
            payer,
            sale["lot_id"],
            {
                "sale_id": sale_id,
                "lot_id": sale["lot_id"],
                "lot_reference": sale["lot_reference"],
                "fee_kind": sale["fee_kind"],
                "fee_fen": sale["fee_fen"],
            },
        )
        return None
    net, tax = split_tax(sale["fee_fen"], policy.vat_rate_bp)
    row = await conn.fetchrow(
        Q.insert_request,
        sale_id,
        "invoice",
        None,
        payer,
        sale["fee_kind"],
        details.invoice_type,
        details.title,
        details.taxpayer_number,
        details.address_phone,
        details.bank_account,
        sale["fee_fen"],
        policy.vat_rate_bp,
        tax,
        net,
        None,
        uow.at,
    )
    if row is None:  # made meanwhile (the sale lock makes this unreachable; kept honest)
        row = returned(await conn.fetchrow(Q.request_of_sale, sale_id, "invoice"))
    out = await request_by_id(conn, row["id"])
    uow.audit(
        "invoice.request",
        "invoice_request",
        out.id,
        chain_org_id=payer,
        after={"sale_id": sale_id, "amount_fen": out.amount_fen, "title": out.title},
    )
    return out


async def request_waiting(
    uow: UnitOfWork, org_id: int, policy: InvoicePolicy = DEFAULT_POLICY
) -> list[int]:
    """Request the invoices of the organisation's paid sales that waited for its details;
    returns the requests made."""
    made = []
    for r in await uow.conn.fetch(Q.paid_sales_without_request, org_id, policy.backlog_batch):
        out = await request_for_sale(uow, r["id"], policy)
        if out is not None:
            made.append(out.id)
    return made


class RequestIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sale_id: int


@command(MANAGE_INVOICE_DETAILS)
async def request_invoice(uow: UnitOfWork, data: RequestIn) -> InvoiceRequest:
    """The payer asks for the invoice of a paid sale's fee: the request made now from its
    details on file, or the one already made (asking again changes nothing).

    Refused: another's sale or none (404 `sale_id`); a sale not paid, without a fee or
    unwound (409 `sale_id`); no details on file (409 `invoice_type`). Concurrency: as
    `request_for_sale` — the sale row locked, one request per sale.
    """
    conn, org = uow.conn, uow.actor.org
    sale = await conn.fetchrow(Q.sale_locked, data.sale_id)
    if sale is None or sale["payer_org_id"] != org:
        raise NotFound("no_such_sale", field="sale_id")
    if sale["paid_at"] is None:
        raise Conflict("invoice_sale_not_paid", field="sale_id")
    if sale["fee_fen"] <= 0:
        raise Conflict("invoice_no_fee", field="sale_id")
    if await conn.fetchrow(Q.cancellation, data.sale_id) is not None:
        raise Conflict("invoice_sale_unwound", field="sale_id")
    if await details_of(conn, org) is None:
        raise Conflict("invoice_details_missing", field="invoice_type")
    out = await request_for_sale(uow, data.sale_id)
    assert out is not None
    return out


async def cancel_for_sale(uow: UnitOfWork, sale_id: int, reason: str) -> None:
    """The sale was unwound: no invoice for its fee. A request not yet exported is
    cancelled; one exported or issued gets a red-letter request for the next export;
    a sale without a request gets none later. Doing it again changes nothing.

    Runs in the unwind's unit of work. Concurrency: the sale row is locked (FOR UPDATE)
    first, then its invoice request; the cancellation's primary key (sale_id) records it
    once.
    """
    conn = uow.conn
    sale = await conn.fetchrow(Q.sale_locked, sale_id)
    if sale is None:
        raise NotFound("no_such_sale", field="sale_id")
    reason = " ".join(reason.split())[:500] or "-"
    if await conn.fetchval(Q.insert_cancellation, sale_id, reason, uow.at) is None:
        return
    invoice = await conn.fetchrow(Q.request_of_sale_locked, sale_id)
    after: dict[str, Any] = {"sale_id": sale_id, "reason": reason}
    if invoice is not None and invoice["status"] == "requested":
        await conn.fetchrow(Q.cancel_request, invoice["id"], uow.at, reason)
        after["cancelled"] = invoice["id"]
    elif invoice is not None and invoice["status"] in ("exported", "issued"):
        red = returned(
            await conn.fetchrow(
                Q.insert_request,
                sale_id,
                "red_letter",
                invoice["id"],
                invoice["payer_org_id"],
                invoice["fee_kind"],
                invoice["invoice_type"],
                invoice["title"],
                invoice["taxpayer_number"],
                invoice["address_phone"],
                invoice["bank_account"],
                invoice["amount_fen"],
                invoice["vat_rate_bp"],
                invoice["tax_fen"],
                invoice["net_fen"],
                reason,
                uow.at,
            )
        )
        after["red_letter"] = red["id"]
    uow.audit(
        "invoice.cancel_for_sale",
        "sale",
        sale_id,
        chain_org_id=sale["payer_org_id"],
        after=after,
    )
