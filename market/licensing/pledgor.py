"""The pledgor as a party (docs/rules.md §The pledgor): the borrower that pledged the
patents sees its own disposal cases, consents to licensing their rights and answers a
licence back.

Which cases are the pledgor's: those of the loans whose borrower row in the banks'
registry (`pledgors`) carries the pledgor organisation's unified social credit code
(organisations.credit_code = pledgors.credit_code), at every bank. Another's case is not
found (404), as everywhere.

* `give_licensing_consent`: 民法典 art. 444 — a pledged right is licensed only with the
  pledgor's and the pledgee's agreement. The bank's listing is its own consent; the
  pledgor's is a `licensing_consents` row, given once per case, audited, told to the bank
  (`licensing_consent_given`). A lot that takes licence offers is published only once its
  case has one (the lots' publishing check reads `consent_of`).
* `answer_licence_back`: a contract awaiting acceptance whose pledgor is the organisation
  (a licence back chosen by the bank) is accepted — it is in force from then — or
  declined with a reason: the contract ends `terminated` with that reason, and the bank is
  told (`licence_back_accepted` / `licence_back_declined`); what becomes of the lot is then
  the bank's decision.

Concurrency: the consent's primary key (case_id) decides between two clicks, the second
answered 409; an answer locks the contract row (FOR NO KEY UPDATE) and updates it only from
`awaiting_acceptance`, so two answers at once leave one, the other 409.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import SIGN_AS_PLEDGOR
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.licensing.contracts import ContractOut, contract_out
from market.licensing.open_licence import OpenLicenceOut, open_licences_of_case
from market.paging import Keyset, Page

Q = Queries("pledgor")

Outcome = Literal["in_disposal", "sold", "licensed", "closed"]
MAX_REASON: Final = 1000  # a reason is a sentence or two, as a rejection's is (§Onboarding)
CASES: Keyset[tuple[datetime, int]] = Keyset(
    "pledgor_cases", tuple[datetime, int], "opened_at", "id"
)


def outcome(case_status: str, lot_statuses: list[str]) -> Outcome:
    """What became of the case, as the pledgor reads it: a lot sold or licensed, else the
    case closed or still in disposal."""
    if "sold" in lot_statuses:
        return "sold"
    if "licensed" in lot_statuses:
        return "licensed"
    return "closed" if case_status == "closed" else "in_disposal"


# --- reading ----------------------------------------------------------------------------


class PledgorCaseSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    status: Literal["open", "closed"]
    bank_name: str
    loan_no: str
    lots: int
    outcome: Outcome
    surplus_fen: int  # what the waterfall owes the pledgor on the case (民法典 art. 438)
    licensing_consented_at: datetime | None
    opened_at: datetime


def _summary(r: asyncpg.Record) -> PledgorCaseSummary:
    return PledgorCaseSummary(
        id=r["id"],
        reference=r["reference"],
        status=r["status"],
        bank_name=r["bank_name"],
        loan_no=r["loan_no"],
        lots=r["lot_count"],
        outcome=outcome(r["status"], list(r["lot_statuses"])),
        surplus_fen=r["surplus_fen"],
        licensing_consented_at=r["consented_at"],
        opened_at=r["opened_at"],
    )


async def page_cases(
    pool: asyncpg.Pool, org_id: int, *, cursor: str | None, limit: int
) -> Page[PledgorCaseSummary]:
    return await CASES.read(pool, Q.page_cases, org_id, cursor=cursor, limit=limit, item=_summary)


class PledgorAsset(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    number: str
    title: str
    patent_type: str | None
    legal_status: str


class PledgorLot(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    title: str
    status: str


class SurplusPayout(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    amount_fen: int
    reference: str  # written on the transfer
    status: Literal["expected", "received", "reversed"]
    created_at: datetime
    received_at: datetime | None


class PledgorCase(msgspec.Struct, frozen=True, kw_only=True):
    """One case as its pledgor sees it."""

    id: int
    reference: str
    status: Literal["open", "closed"]
    bank_name: str
    loan_no: str
    outcome: Outcome
    assets: list[PledgorAsset]
    lots: list[PledgorLot]
    surplus_fen: int
    payouts: list[SurplusPayout]
    licensing_consented_at: datetime | None
    open_licences: list[OpenLicenceOut]
    contracts: list[ContractOut]  # the licences of the case with the pledgor as a party
    opened_at: datetime


async def load_case(conn: Conn, org_id: int, case_id: int, today: date) -> PledgorCase:
    row = await conn.fetchrow(Q.case_of_pledgor, org_id, case_id)
    if row is None:
        raise NotFound("no_such_case")
    lots = [
        PledgorLot(id=t["id"], reference=t["reference"], title=t["title"], status=t["status"])
        for t in await conn.fetch(Q.case_lots, case_id)
    ]
    payouts = [
        msgspec.convert(dict(y), SurplusPayout)
        for y in await conn.fetch(Q.case_payouts, case_id, row["pledgor_id"])
    ]
    return PledgorCase(
        id=row["id"],
        reference=row["reference"],
        status=row["status"],
        bank_name=row["bank_name"],
        loan_no=row["loan_no"],
        outcome=outcome(row["status"], [t.status for t in lots]),
        assets=[
            PledgorAsset(
                id=a["id"],
                kind=a["kind"],
                number=a["number"],
                title=a["title"],
                patent_type=a["patent_type"],
                legal_status=a["legal_status"],
            )
            for a in await conn.fetch(Q.case_assets, case_id)
        ],
        lots=lots,
        surplus_fen=sum(y.amount_fen for y in payouts if y.status != "reversed"),
        payouts=payouts,
        licensing_consented_at=row["consented_at"],
        open_licences=await open_licences_of_case(conn, case_id, today),
        contracts=[contract_out(k) for k in await conn.fetch(Q.case_contracts, case_id, org_id)],
        opened_at=row["opened_at"],
    )


async def get_case(pool: asyncpg.Pool, org_id: int, case_id: int, today: date) -> PledgorCase:
    async with pool.acquire() as conn:
        return await load_case(conn, org_id, case_id, today)


async def case_of(
    pool: asyncpg.Pool, org_id: int, *, open_licence_id: int = 0, contract_id: int = 0
) -> int:
    """The case of the pledgor's open licence or licence contract (a page returns to it);
    another's is not found."""
    async with pool.acquire() as conn:
        if open_licence_id:
            found = await conn.fetchval(Q.case_of_own_open_licence, open_licence_id, org_id)
        else:
            found = await conn.fetchval(Q.case_of_own_contract, contract_id, org_id)
    if found is None:
        raise NotFound("no_such_open_licence" if open_licence_id else "no_such_licence_back")
    case_id: int = found
    return case_id


async def consent_of(conn: Conn, case_id: int) -> datetime | None:
    """When the pledgor consented to licensing the case's rights, or None (the lots'
    publishing check and the bank's case page read it)."""
    found: datetime | None = await conn.fetchval(Q.bank_case_licensing, case_id)
    return found


# --- consent ------------------------------------------------------------------------------


class CaseRef(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int


class ConsentOut(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    consented_at: datetime


@command(SIGN_AS_PLEDGOR)
async def give_licensing_consent(uow: UnitOfWork, data: CaseRef) -> ConsentOut:
    """The pledgor consents to licensing the pledged rights of its case (民法典 art. 444),
    once; the bank is told."""
    org = uow.actor.org
    case = await uow.conn.fetchrow(Q.lock_case_of_pledgor, org, data.case_id)
    if case is None:
        raise NotFound("no_such_case")
    if case["status"] != "open":
        raise Conflict("case_closed", field="case_id")
    row = await uow.conn.fetchrow(Q.insert_consent, data.case_id, org, uow.actor.user, uow.at)
    if row is None:
        raise Conflict("licensing_consent_given", field="case_id")
    uow.audit("licensing.consent", "case", data.case_id, after={"consented_at": uow.at})
    uow.audit(
        "licensing.consent",
        "case",
        data.case_id,
        chain_org_id=case["bank_org_id"],
        after={"pledgor_org_id": org, "consented_at": uow.at},
    )
    name = await uow.conn.fetchval(Q.org_name, org)
    await uow.emit(Q.insert_consent_given, data.case_id, name, uow.at)
    return ConsentOut(case_id=data.case_id, consented_at=uow.at)


# --- a licence back -------------------------------------------------------------------------


class Answer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The pledgor's answer to a licence back: accept it, or decline it with a reason."""

    accept: bool
    reason: Annotated[str, Meta(max_length=MAX_REASON)] = ""


class AnswerContract(Answer, frozen=True, kw_only=True):
    contract_id: int


@command(SIGN_AS_PLEDGOR)
async def answer_licence_back(uow: UnitOfWork, data: AnswerContract) -> ContractOut:
    """Accept a licence back awaiting the pledgor (in force from now), or decline it with a
    reason (the contract ends terminated with it); the bank is told either way."""
    reason = data.reason.strip()
    if not data.accept and not reason:
        raise Invalid("licence_back_decline_reason", field="reason")
    org = uow.actor.org
    before = await uow.conn.fetchrow(Q.lock_contract_of_pledgor, data.contract_id, org)
    if before is None:
        raise NotFound("no_such_licence_back")
    if before["status"] != "awaiting_acceptance":
        raise Conflict("contract_not_awaiting_acceptance", status=before["status"])
    if data.accept:
        row = await uow.conn.fetchrow(Q.accept_contract, data.contract_id, uow.at)
    else:
        row = await uow.conn.fetchrow(Q.decline_contract, data.contract_id, uow.at, reason)
    contract = contract_out(returned(row))
    answer = "accepted" if data.accept else "declined"
    change = {"status": contract.status, "reason": reason}
    uow.audit(f"licence_contract.{answer}", "licence_contract", contract.id, after=change)
    uow.audit(
        f"licence_contract.{answer}",
        "licence_contract",
        contract.id,
        chain_org_id=contract.bank_org_id,
        before={"status": before["status"]},
        after=change,
    )
    name = await uow.conn.fetchval(Q.org_name, org)
    await uow.emit(Q.insert_licence_back_answered, contract.id, answer, name, reason, uow.at)
    return contract
