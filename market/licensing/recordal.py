"""The licence's recordal with CNIPA (专利实施许可合同备案; docs/rules.md §Licence
contracts): within three months of the contract taking effect, the bank or the licensee
uploads CNIPA's recordal notice with its number; the contract page shows the step, and an
overdue recordal, until then.

The document is stored as the case's documents are (document_blobs once per content,
a case_documents row of item `licence_recordal`, never shown on a lot page), its type
judged by its bytes (market/cases/filetypes.py); it counts against the bank's storage
quota, checked with everything else before a byte is written (market/cases/storage.py).

Concurrency: the contract row is locked first (FOR UPDATE); of two uploads at once the
second sees the first's number and is refused (409). Then the bank's storage lock
(market/cases/storage.py).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from msgspec import Meta

from market.accounts.permissions import RECORD_LICENCE
from market.cases import filetypes, storage
from market.cases.policy import DEFAULT_DOCUMENT_POLICY
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.licensing.contracts import ContractOut, contract_out
from market.licensing.enforcement import NUMBER_MAX, check_number

Q = Queries("licensing_royalties")


class RecordalIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """CNIPA's recordal number and date, and its notice (a PDF or an image, base64)."""

    recordal_number: Annotated[str, Meta(min_length=1, max_length=NUMBER_MAX)]
    recorded_on: date
    filename: Annotated[str, Meta(min_length=1, max_length=200)]
    content: bytes


class Recordal(RecordalIn, frozen=True, kw_only=True):
    contract_id: int


@command(RECORD_LICENCE)
async def record_recordal(uow: UnitOfWork, data: Recordal) -> ContractOut:
    """Record the recordal (module docstring): the bank's or the licensee's user; the
    pledgor, a party that is neither, sees the contract but may not record it."""
    conn, org_id = uow.conn, uow.actor.org
    number = check_number(data.recordal_number, "recordal_number")
    name, kind = filetypes.check(
        data.filename, data.content, max_bytes=DEFAULT_DOCUMENT_POLICY.max_bytes
    )
    row = await conn.fetchrow(Q.contract_locked, data.contract_id)
    parties = (row["bank_org_id"], row["licensee_org_id"], row["pledgor_org_id"]) if row else ()
    if row is None or org_id not in parties:
        raise NotFound("not_found", field="contract_id")
    if org_id not in (row["bank_org_id"], row["licensee_org_id"]):
        raise Forbidden("recordal_by_bank_or_licensee")
    if row["recorded_on"] is not None:
        raise Conflict(
            "recordal_recorded_already", field="recordal_number", number=row["recordal_number"]
        )
    if row["status"] not in ("active", "awaiting_acceptance"):
        raise Conflict("licence_not_active", field="contract_id", status=row["status"])
    if data.recorded_on > china_today(uow.at):
        raise Invalid("date_in_future", field="recorded_on")
    if data.recorded_on < china_today(row["created_at"]):
        raise Invalid("recordal_before_contract", field="recorded_on")
    # The notice joins the bank's case: it counts against the bank's storage.
    await storage.reserve(conn, row["bank_org_id"], [("file", len(data.content))])
    digest = await storage.store(conn, data.content)
    document = await conn.fetchval(
        Q.insert_document,
        row["case_id"],
        name,
        kind.content_type,
        len(data.content),
        digest,
        uow.actor.user,
        uow.at,
    )
    updated = returned(
        await conn.fetchrow(
            Q.record_recordal, row["id"], number, data.recorded_on, document, uow.actor.user
        )
    )
    uow.audit(
        "licence_contract.recorded",
        "licence_contract",
        row["id"],
        chain_org_id=row["bank_org_id"],
        after={
            "recordal_number": number,
            "recorded_on": data.recorded_on.isoformat(),
            "document_id": document,
            "filename": name,
            "sha256": digest.hex(),
            "late": data.recorded_on > row["recordal_due_on"],
        },
    )
    return contract_out(updated)
