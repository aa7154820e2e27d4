"""Licence contracts: a chosen offer, or an open licence taken, becomes a contract with its
parties, its royalty terms (market/licensing/royalties.py) and the recordal of the licence
with CNIPA (专利实施许可合同备案) due within three months of its signature
(docs/rules.md §Licence contracts).

`create_contract` runs inside the unit of work of the command that decided it (the bank's
choice, a firm taking an open licence), so the contract exists exactly when that decision
does. A licence back to the pledgor waits for the pledgor's acceptance; every other
contract is in force at once (the pledgor consented to licensing before the lot was
published, 民法典 art. 444).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, Literal

import asyncpg
import msgspec

from market.cases.services import china_today
from market.collateral.rules import add_months
from market.commands import UnitOfWork
from market.db import Queries, returned
from market.licensing.royalties import RoyaltyTerms, parse_terms

Q = Queries("licensing")

# 专利实施许可合同备案办法 art. 6: the licence is recorded within three months of the
# contract taking effect.
RECORDAL_MONTHS: Final = 3

LicenceKind = Literal["exclusive", "sole", "non_exclusive"]
ContractStatus = Literal["awaiting_acceptance", "active", "terminated", "ended"]


class NewContract(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    bank_org_id: int
    licensee_org_id: int
    pledgor_org_id: int | None
    kind: LicenceKind
    terms: RoyaltyTerms
    field_of_use: str = ""
    territory: str = ""
    upfront_fen: int = 0
    lot_id: int | None = None
    offer_id: int | None = None  # exactly one of offer_id, open_licence_id
    open_licence_id: int | None = None
    needs_acceptance: bool = False  # a licence back waits for the pledgor to accept it


class ContractOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    case_id: int
    bank_org_id: int
    lot_id: int | None
    offer_id: int | None
    open_licence_id: int | None
    licensee_org_id: int
    pledgor_org_id: int | None
    kind: LicenceKind
    field_of_use: str
    territory: str
    upfront_fen: int
    terms: RoyaltyTerms
    status: ContractStatus
    recordal_due_on: date
    recordal_number: str | None
    recorded_on: date | None
    created_at: datetime
    accepted_at: datetime | None
    terminated_at: datetime | None


def contract_out(row: asyncpg.Record) -> ContractOut:
    return ContractOut(
        id=row["id"],
        reference=row["reference"],
        case_id=row["case_id"],
        bank_org_id=row["bank_org_id"],
        lot_id=row["lot_id"],
        offer_id=row["offer_id"],
        open_licence_id=row["open_licence_id"],
        licensee_org_id=row["licensee_org_id"],
        pledgor_org_id=row["pledgor_org_id"],
        kind=row["kind"],
        field_of_use=row["field_of_use"],
        territory=row["territory"],
        upfront_fen=row["upfront_fen"],
        terms=parse_terms(row["terms"]),
        status=row["status"],
        recordal_due_on=row["recordal_due_on"],
        recordal_number=row["recordal_number"],
        recorded_on=row["recorded_on"],
        created_at=row["created_at"],
        accepted_at=row["accepted_at"],
        terminated_at=row["terminated_at"],
    )


def _reference(at: datetime, number: int) -> str:
    return f"XK-{china_today(at).year}-{number:06d}"


async def create_contract(uow: UnitOfWork, data: NewContract) -> ContractOut:
    """The contract, in the caller's unit of work, with its audit row in the bank's chain.
    The caller holds the lock that makes its decision once (the lot row for a chosen offer,
    the open licence row for a taker); `offer_id` is unique besides."""
    if (data.offer_id is None) == (data.open_licence_id is None):
        raise ValueError("a contract comes from one offer or one open licence")
    conn = uow.conn
    number = await conn.fetchval(Q.next_contract_number)
    status: ContractStatus = "awaiting_acceptance" if data.needs_acceptance else "active"
    row = returned(
        await conn.fetchrow(
            Q.insert_contract,
            _reference(uow.at, number),
            data.case_id,
            data.bank_org_id,
            data.lot_id,
            data.offer_id,
            data.open_licence_id,
            data.licensee_org_id,
            data.pledgor_org_id,
            data.kind,
            data.field_of_use,
            data.territory,
            data.upfront_fen,
            msgspec.to_builtins(data.terms),
            status,
            add_months(china_today(uow.at), RECORDAL_MONTHS),
            uow.at,
        )
    )
    contract = contract_out(row)
    uow.audit(
        "licence_contract.create",
        "licence_contract",
        contract.id,
        chain_org_id=data.bank_org_id,
        after=msgspec.to_builtins(contract),
    )
    return contract
