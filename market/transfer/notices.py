"""The parties' notices (docs/rules.md §Transfer of title): the bank uploads the release
of the pledge registration (质押登记注销通知书), the buyer the recordal of the transfer of
each kind of asset in the lot; each with its number and date.

The document is stored as the case's documents are (document_blobs once per content, a
case_documents row of item `transfer_notice`, never shown on a lot page), its type judged
by its bytes (market/cases/filetypes.py); it counts against the bank's storage quota
(market/cases/storage.py), checked before a byte is written.

Refused, nothing written: another organisation's sale (404), a notice of the other party's
kind (403), a kind the lot does not need, a date in the future or before the sale, a number
standing on another sale (4xx naming the field); a step past its deadline or a notice of
the kind already standing (409).

Concurrency: the sale row, then the transfer row are locked (market/transfer/escrow.py
lock order), so of two uploads of one kind the second sees the first and is refused; the
partial unique index `transfer_notices_standing` backs it. When the last notice needed
arrives, the operator's check is due within the policy's days.
"""

from __future__ import annotations

from market.accounts.permissions import RECORD_TRANSFER, RELEASE_PLEDGE
from market.cases import filetypes, storage
from market.cases.policy import DEFAULT_DOCUMENT_POLICY
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.licensing.enforcement import check_number
from market.transfer import escrow
from market.transfer.models import RELEASE, TransferOut, UploadNotice, step_of
from market.transfer.policy import DEFAULT_POLICY

Q = Queries("transfer")


async def _upload(uow: UnitOfWork, data: UploadNotice) -> TransferOut:
    conn, at, org_id = uow.conn, uow.at, uow.actor.org
    number = check_number(data.number, "number")
    name, kind = filetypes.check(
        data.filename, data.content, max_bytes=DEFAULT_DOCUMENT_POLICY.max_bytes
    )
    sale = await conn.fetchrow(Q.sale_locked, data.sale_id)
    if sale is None or org_id not in (sale["bank_org_id"], sale["buyer_org_id"]):
        raise NotFound("not_found", field="sale_id")
    party = sale["bank_org_id"] if data.kind == RELEASE else sale["buyer_org_id"]
    if org_id != party:
        raise Forbidden("transfer_notice_other_party", field="kind", kind=data.kind)
    transfer = await conn.fetchrow(Q.transfer_locked, data.sale_id)
    if transfer is None or transfer["status"] != "in_escrow":
        raise Conflict("transfer_not_in_escrow", field="sale_id", status=sale["status"])
    needed = await escrow.needed_kinds(conn, sale["lot_id"])
    if data.kind not in needed:
        raise Invalid("transfer_notice_not_needed", field="kind", kind=data.kind)
    step = step_of(data.kind)
    due = transfer["release_due_at"] if step == "release" else transfer["recordal_due_at"]
    if due <= at:
        raise Conflict("transfer_step_overdue", field="kind", due_at=due.isoformat())
    if data.issued_on > china_today(at):
        raise Invalid("date_in_future", field="issued_on")
    if data.issued_on < china_today(sale["closed_at"]):
        raise Invalid(
            "transfer_notice_before_sale",
            field="issued_on",
            sale_date=china_today(sale["closed_at"]).isoformat(),
        )
    other = await conn.fetchval(Q.number_used, data.kind, number, data.sale_id)
    if other is not None:
        raise Conflict("transfer_notice_number_used", field="number", number=number)
    notices = list(await conn.fetch(Q.notices, data.sale_id))
    if data.kind not in escrow.missing_kinds(needed, notices):
        raise Conflict("transfer_notice_standing", field="kind", kind=data.kind)
    # The notice joins the bank's case: it counts against the bank's storage.
    await storage.reserve(conn, sale["bank_org_id"], [("file", len(data.content))])
    digest = await storage.store(conn, data.content)
    document = await conn.fetchval(
        Q.insert_document,
        sale["case_id"],
        name,
        kind.content_type,
        len(data.content),
        digest,
        uow.actor.user,
        at,
    )
    notice = returned(
        await conn.fetchrow(
            Q.insert_notice,
            data.sale_id,
            data.kind,
            number,
            data.issued_on,
            document,
            uow.actor.user,
            org_id,
            at,
        )
    )
    notices = list(await conn.fetch(Q.notices, data.sale_id))
    if not escrow.missing_kinds(needed, notices):
        await conn.execute(Q.set_check_due, data.sale_id, at + DEFAULT_POLICY.check)
    payload = escrow.event_payload(
        sale,
        notice_id=notice["id"],
        kind=data.kind,
        number=number,
        issued_on=data.issued_on.isoformat(),
    )
    await escrow.emit_to_operators(
        uow,
        "transfer_notice_uploaded",
        f"transfer_notice_uploaded:{notice['id']}",
        lot_id=sale["lot_id"],
        payload=payload,
    )
    counterpart = sale["buyer_org_id"] if org_id == sale["bank_org_id"] else sale["bank_org_id"]
    await escrow.emit(
        uow,
        "transfer_notice_uploaded",
        f"transfer_notice_uploaded:{notice['id']}:{counterpart}",
        org_id=counterpart,
        lot_id=sale["lot_id"],
        payload=payload,
    )
    uow.audit(
        "transfer.notice",
        "sale",
        data.sale_id,
        chain_org_id=sale["bank_org_id"],
        after={
            "notice_id": notice["id"],
            "kind": data.kind,
            "number": number,
            "issued_on": data.issued_on.isoformat(),
            "document_id": document,
            "filename": name,
            "sha256": digest.hex(),
        },
    )
    return await escrow.view(conn, data.sale_id, org_id)


@command(RELEASE_PLEDGE)
async def upload_release(uow: UnitOfWork, data: UploadNotice) -> TransferOut:
    """The bank uploads the release of the pledge registration (module docstring)."""
    return await _upload(uow, data)


@command(RECORD_TRANSFER)
async def upload_recordal(uow: UnitOfWork, data: UploadNotice) -> TransferOut:
    """The buyer uploads the recordal of the transfer (module docstring)."""
    return await _upload(uow, data)
