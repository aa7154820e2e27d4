"""开票信息: the invoicing details of the organisation that pays a fee (docs/rules.md
§Invoices), set by its admin or officer (MANAGE_INVOICE_DETAILS), audited.

A VAT special invoice (增值税专用发票) prints every field: 发票抬头, 纳税人识别号, 地址、电话,
开户行及账号. An ordinary one (增值税普通发票) needs the name and the taxpayer number; a
person (a buyer who registered as an individual) gets an ordinary invoice in its name
only. Every refusal is a 422 naming the field, with nothing written.

Saving the details also requests the invoices of the organisation's paid sales that were
waiting for them (market/invoices/requests.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import MANAGE_INVOICE_DETAILS
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import BadValue, Invalid
from market.invoices.taxpayer import taxpayer_number

Q = Queries("invoices")

InvoiceType = Literal["vat_special", "vat_ordinary"]
Text = Annotated[str, Meta(max_length=200)]
FIELDS = ("title", "taxpayer_number", "address_phone", "bank_account")


class DetailsIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The invoicing details as typed: a field left empty is "" or absent."""

    invoice_type: InvoiceType
    title: Text
    taxpayer_number: Text = ""
    address_phone: Text = ""
    bank_account: Text = ""


class DetailsOut(msgspec.Struct, frozen=True, kw_only=True):
    org_id: int
    invoice_type: InvoiceType
    title: str
    taxpayer_number: str | None
    address_phone: str | None
    bank_account: str | None
    updated_at: datetime


class DetailsSaved(msgspec.Struct, frozen=True, kw_only=True):
    details: DetailsOut
    requested: list[int]  # the invoice requests saving them made (waiting paid sales)


def details_out(row: asyncpg.Record) -> DetailsOut:
    return DetailsOut(**{name: row[name] for name in DetailsOut.__struct_fields__})


async def details_of(conn: Conn, org_id: int) -> DetailsOut | None:
    row = await conn.fetchrow(Q.details, org_id)
    return None if row is None else details_out(row)


def _clean(value: str) -> str | None:
    text = " ".join(value.split())
    return text or None


def checked(data: DetailsIn, *, person: bool) -> dict[str, str | None]:
    """The details to store, normalised; Invalid naming the first field at fault."""
    values = {name: _clean(getattr(data, name)) for name in FIELDS}
    if values["title"] is None:
        raise Invalid("required", field="title")
    if person and data.invoice_type == "vat_special":
        raise Invalid("invoice_special_for_person", field="invoice_type")
    number = values["taxpayer_number"]
    if number is not None:
        try:
            values["taxpayer_number"] = taxpayer_number(number)
        except BadValue as exc:
            raise Invalid(exc.code, field="taxpayer_number", **exc.params) from None
    needed = FIELDS if data.invoice_type == "vat_special" else ("title", "taxpayer_number")
    for name in needed if not person else ("title",):
        if values[name] is None:
            raise Invalid("invoice_field_required", field=name, invoice_type=data.invoice_type)
    return values


@command(MANAGE_INVOICE_DETAILS)
async def set_invoice_details(uow: UnitOfWork, data: DetailsIn) -> DetailsSaved:
    """Set the acting organisation's invoicing details.

    Concurrency: the organisation's row of details is locked (FOR UPDATE) before it is
    replaced, so of two saves at once the second waits and writes last; the insert of a
    first row is an upsert on its primary key. The waiting paid sales' requests are then
    made as at payment (requests.request_for_sale: the sale row locked, one request per
    sale by the unique (sale_id, kind)).
    """
    from market.invoices import requests

    conn, org_id = uow.conn, uow.actor.org
    org = returned(await conn.fetchrow(Q.org_party, org_id))
    values = checked(data, person=org["party_type"] == "individual")
    before = await conn.fetchrow(Q.details_locked, org_id)
    row = returned(
        await conn.fetchrow(
            Q.upsert_details,
            org_id,
            data.invoice_type,
            values["title"],
            values["taxpayer_number"],
            values["address_phone"],
            values["bank_account"],
            uow.actor.user_id,
            uow.at,
        )
    )
    out = details_out(row)
    uow.audit(
        "invoice_details.set",
        "organisation",
        org_id,
        before=None if before is None else _audited(details_out(before)),
        after=_audited(out),
    )
    made = await requests.request_waiting(uow, org_id)
    return DetailsSaved(details=out, requested=made)


def _audited(d: DetailsOut) -> dict[str, object]:
    return {k: v for k, v in msgspec.to_builtins(d).items() if k != "updated_at"}
