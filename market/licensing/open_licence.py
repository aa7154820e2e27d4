"""Open licences (开放许可, 专利法 arts. 50–52; docs/rules.md §Open licence).

The patentee — here the pledgor, whose patent is pledged — declares through CNIPA that
anyone may work the patent on published royalty terms; any firm takes it by written
notice and pays on those terms. The steps, each a command:

1. `propose_open_licence` (the pledgor): a patent of its case, valid, its annuity paid,
   no exclusive or sole licence in force over it (专利法实施细则 art. 86), with published
   terms (`OpenLicenceTerms`: non-exclusive only, a rate and/or a per-unit fee and/or a
   minimum, the payment period, the last day any taker's licence runs — never past the
   patent's expiry, 专利法 art. 42). Status `proposed`.
2. `consent_open_licence` (the bank): a pledged patent is opened only with the pledgee's
   consent (民法典 art. 444; 实施细则 art. 86).
3. `declare_open_licence` (the pledgor): CNIPA announced it — its number and date. Status
   `declared`: listed publicly, takers welcome, the annuity reduced (专利法 art. 51), an
   exclusive or sole licence of the patent refused (`open_licence_standing`).
4. `take_open_licence` (an approved buyer or acquirer): a non-exclusive contract on the
   published terms, from the taking date to the declaration's last day (never past the
   patent's expiry), with its own schedule (market/licensing/contracts.py).
5. `withdraw_open_licence` (the pledgor): recorded with its date; no new takers, and the
   contracts already made run on (专利法 art. 50: a withdrawal does not affect licences
   already granted).

Concurrency: one standing (proposed or declared) open licence per patent is the unique
index open_licences_standing (a lost race: 409). Every change of one open licence locks its
row (FOR NO KEY UPDATE) — declaration, withdrawal and every taking — so a taking and a
withdrawal take turns, and a taker's second click, run after its first, finds the first
contract (409). The unique index licence_contracts_one_taker (one live contract per taker
and open licence) decides besides.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import SIGN_AS_PLEDGOR, TAKE_OPEN_LICENCE, WRITE_COLLATERAL
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.licensing.contracts import ContractOut, NewContract, create_contract
from market.licensing.royalties import LATE_INTEREST_BP, MAX_LATE_INTEREST_BP, RoyaltyTerms
from market.licensing.value import BP, Fen, Period, patent_expiry
from market.paging import Keyset, Page

Q = Queries("open_licences")
QP = Queries("pledgor")

Status = Literal["proposed", "declared", "withdrawn"]
# 专利法 art. 51 para. 2: while an open licence is in force the patentee's annuity is
# reduced ("相应给予减免"). The reduction's figure is set by the State's patent fee rules,
# not by the law; the exchange shows "reduced" and assumes no percentage (None). A bank
# that has the current fee notice at hand may set it here, in basis points of the annuity.
ANNUITY_REDUCTION_BP: Final[int | None] = None
# A CNIPA announcement number as printed (digits, letters, a few separators).
CnipaNumber = Annotated[
    str, Meta(min_length=1, max_length=60, pattern=r"^[0-9A-Za-z][0-9A-Za-z./()（）〔〕\-]*$")
]


class OpenLicenceTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The published terms (专利法 art. 50: 许可使用费支付方式、标准; 实施细则 art. 85: the
    licence's term). Each taker's contract runs from the day it takes the licence to
    `ends_on`, paying on these numbers (market/licensing/royalties.py)."""

    kind: Literal["non_exclusive"] = "non_exclusive"  # 专利法 art. 51: never exclusive or sole
    ends_on: date  # the last day any taker's licence runs; not after the patent's expiry
    period: Period = "yearly"
    royalty_rate_bp: Annotated[int, Meta(ge=0, le=BP)] = 0
    per_unit_fen: Fen = 0
    minimum_annual_fen: Fen = 0
    late_interest_bp: Annotated[int, Meta(ge=0, le=MAX_LATE_INTEREST_BP)] = LATE_INTEREST_BP


def check_terms(terms: OpenLicenceTerms, today: date, expiry: date) -> OpenLicenceTerms:
    """The rules between fields and against the day and the patent's expiry; Invalid
    names the field under `terms.`."""
    from market.licensing.value import checked

    terms = checked(terms, "terms")
    if not (terms.royalty_rate_bp or terms.per_unit_fen or terms.minimum_annual_fen):
        raise Invalid("royalty_nothing_due", field="terms.royalty_rate_bp")
    if terms.ends_on <= today:
        raise Invalid("open_licence_ends_before_today", field="terms.ends_on")
    if terms.ends_on > expiry:
        raise Invalid(
            "licence_term_past_patent_expiry",
            field="terms.ends_on",
            term_end=terms.ends_on.isoformat(),
            expiry=expiry.isoformat(),
        )
    return terms


def taker_terms(terms: OpenLicenceTerms, taken_on: date, expiry: date) -> RoyaltyTerms:
    """A taker's royalty terms: the published numbers, from the taking day to the
    declaration's last day (never past the patent's expiry)."""
    return RoyaltyTerms(
        start=taken_on,
        end=min(terms.ends_on, expiry),
        period=terms.period,
        royalty_rate_bp=terms.royalty_rate_bp,
        per_unit_fen=terms.per_unit_fen,
        minimum_annual_fen=terms.minimum_annual_fen,
        late_interest_bp=terms.late_interest_bp,
    )


# --- reading ----------------------------------------------------------------------------


class OpenLicenceOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    case_id: int
    case_reference: str
    patent_number: str
    patent_title: str
    patent_type: str | None
    patentee: str
    expiry: date  # the patent's last day (专利法 art. 42)
    terms: OpenLicenceTerms
    status: Status
    bank_consented_at: datetime | None
    cnipa_number: str | None
    declared_on: date | None
    withdrawn_on: date | None
    annuity_reduced: bool  # 专利法 art. 51: while declared
    annuity_reduction_bp: int | None  # the figure, when known (ANNUITY_REDUCTION_BP)
    takers: int  # live contracts made by taking it
    open_to_takers: bool  # declared and not yet past its last day
    created_at: datetime


def _out(row: asyncpg.Record, today: date) -> OpenLicenceOut:
    terms = msgspec.convert(row["terms"], OpenLicenceTerms)
    declared = row["status"] == "declared"
    return OpenLicenceOut(
        id=row["id"],
        case_id=row["case_id"],
        case_reference=row["case_reference"],
        patent_number=row["patent_number"],
        patent_title=row["patent_title"],
        patent_type=row["patent_type"],
        patentee=row["patentee"],
        expiry=patent_expiry(row["patent_type"], row["filing_date"]),
        terms=terms,
        status=row["status"],
        bank_consented_at=row["bank_consented_at"],
        cnipa_number=row["cnipa_number"],
        declared_on=row["declared_on"],
        withdrawn_on=row["withdrawn_on"],
        annuity_reduced=declared,
        annuity_reduction_bp=ANNUITY_REDUCTION_BP if declared else None,
        takers=row["takers"],
        open_to_takers=declared and today <= terms.ends_on,
        created_at=row["created_at"],
    )


async def open_licences_of_case(conn: Conn, case_id: int, today: date) -> list[OpenLicenceOut]:
    """Every open licence of a case (the bank's and the pledgor's case pages)."""
    return [_out(r, today) for r in await conn.fetch(Q.open_licences_of_case, case_id)]


PUBLIC: Keyset[tuple[date, int]] = Keyset("open_licences", tuple[date, int], "declared_on", "id")


async def page_public(
    pool: asyncpg.Pool,
    today: date,
    *,
    status: Literal["declared", "withdrawn"],
    cursor: str | None,
    limit: int,
) -> Page[OpenLicenceOut]:
    return await PUBLIC.read(
        pool, Q.page_public, status, cursor=cursor, limit=limit, item=lambda r: _out(r, today)
    )


async def get_public(pool: asyncpg.Pool, open_licence_id: int, today: date) -> OpenLicenceOut:
    """A declared or withdrawn open licence, as anyone may read it; a proposal is its
    parties' alone (404)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.open_licence, open_licence_id)
    if row is None or row["status"] == "proposed":
        raise NotFound("no_such_open_licence")
    return _out(row, today)


async def open_licence_standing(conn: Conn, asset_ids: list[int]) -> bool:
    """Whether an open licence is declared on any of the patents: while it stands, no
    exclusive or sole licence of them may be granted (专利法 art. 51 para. 3)."""
    return bool(await conn.fetchval(Q.standing_on_assets, asset_ids))


async def refuse_exclusive_while_open(
    conn: Conn, asset_ids: list[int], kind: str, *, field: str = "kind"
) -> None:
    """Conflict naming `field` when `kind` is exclusive or sole and an open licence is
    declared on any of the patents (for the licence offers and the bank's choice)."""
    if kind in ("exclusive", "sole") and await open_licence_standing(conn, asset_ids):
        raise Conflict("open_licence_standing", field=field, kind=kind)


async def _reload(conn: Conn, open_licence_id: int, today: date) -> OpenLicenceOut:
    return _out(returned(await conn.fetchrow(Q.open_licence, open_licence_id)), today)


# --- the pledgor proposes, the bank consents, the pledgor declares ------------------------


class Proposal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An open licence of one patent of the case, on these published terms."""

    asset_id: int
    terms: OpenLicenceTerms


class ProposeOpenLicence(Proposal, frozen=True, kw_only=True):
    case_id: int


@command(SIGN_AS_PLEDGOR)
async def propose_open_licence(uow: UnitOfWork, data: ProposeOpenLicence) -> OpenLicenceOut:
    """The pledgor proposes to declare an open licence of a patent of its case; the bank
    is asked to consent (its case page shows the proposal)."""
    conn, today = uow.conn, china_today(uow.at)
    case = await conn.fetchrow(QP.lock_case_of_pledgor, uow.actor.org, data.case_id)
    if case is None:
        raise NotFound("no_such_case")
    if case["status"] != "open":
        raise Conflict("case_closed", field="case_id")
    asset = await conn.fetchrow(Q.case_asset_for_open_licence, data.case_id, data.asset_id)
    if asset is None:
        raise Invalid("asset_not_in_case", field="asset_id")
    if asset["kind"] != "patent":
        raise Invalid("open_licence_patents_only", field="asset_id")
    if asset["legal_status"] != "valid":
        raise Conflict("open_licence_patent_not_valid", field="asset_id")
    paid = asset["annuity_paid_through"]
    if paid is not None and paid < today:  # 实施细则 art. 86: the annuity must be paid
        raise Conflict("open_licence_annuity_unpaid", field="asset_id", paid=paid.isoformat())
    if asset["exclusively_licensed"]:  # 实施细则 art. 86: no exclusive or sole licence runs
        raise Conflict("open_licence_exclusive_in_force", field="asset_id")
    expiry = patent_expiry(asset["patent_type"], asset["filing_date"])
    terms = check_terms(data.terms, today, expiry)
    try:
        async with conn.transaction():
            new_id = await conn.fetchval(
                Q.insert_open_licence,
                data.case_id,
                data.asset_id,
                case["bank_org_id"],
                uow.actor.org,
                msgspec.to_builtins(terms),
                uow.at,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("open_licence_exists", field="asset_id") from None
    after = {"asset_id": data.asset_id, "terms": msgspec.to_builtins(terms)}
    uow.audit("open_licence.propose", "open_licence", new_id, after=after)
    uow.audit(
        "open_licence.propose",
        "open_licence",
        new_id,
        chain_org_id=case["bank_org_id"],
        after=after,
    )
    return await _reload(conn, new_id, today)


class OpenLicenceRef(msgspec.Struct, frozen=True, kw_only=True):
    open_licence_id: int


@command(WRITE_COLLATERAL)
async def consent_open_licence(uow: UnitOfWork, data: OpenLicenceRef) -> OpenLicenceOut:
    """The bank, as pledgee, consents to the pledgor's proposed open licence (民法典 art.
    444; 专利法实施细则 art. 86)."""
    row = await uow.conn.fetchrow(Q.lock_of_bank, data.open_licence_id, uow.actor.org)
    if row is None:
        raise NotFound("no_such_open_licence")
    if row["status"] != "proposed":
        raise Conflict("open_licence_not_proposed", status=row["status"])
    if row["bank_consented_at"] is not None:
        raise Conflict("open_licence_consented")
    await uow.conn.execute(Q.bank_consents, data.open_licence_id, uow.at)
    uow.audit("open_licence.bank_consent", "open_licence", data.open_licence_id)
    return await _reload(uow.conn, data.open_licence_id, china_today(uow.at))


class Declaration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """CNIPA's announcement of the declaration: its number and date."""

    cnipa_number: CnipaNumber
    declared_on: date


class DeclareOpenLicence(Declaration, frozen=True, kw_only=True):
    open_licence_id: int


async def _lock_own(uow: UnitOfWork, open_licence_id: int) -> asyncpg.Record:
    row = await uow.conn.fetchrow(Q.lock_of_pledgor, open_licence_id, uow.actor.org)
    if row is None:
        raise NotFound("no_such_open_licence")
    return row


@command(SIGN_AS_PLEDGOR)
async def declare_open_licence(uow: UnitOfWork, data: DeclareOpenLicence) -> OpenLicenceOut:
    """The pledgor records CNIPA's announcement: the open licence is declared."""
    row = await _lock_own(uow, data.open_licence_id)
    today = china_today(uow.at)
    if row["status"] != "proposed":
        raise Conflict("open_licence_not_proposed", status=row["status"])
    if row["bank_consented_at"] is None:
        raise Conflict("open_licence_needs_bank_consent")
    if data.declared_on > today:
        raise Invalid("open_licence_date_in_future", field="declared_on")
    if data.declared_on < china_today(row["bank_consented_at"]):
        raise Invalid("open_licence_declared_before_consent", field="declared_on")
    terms = msgspec.convert(row["terms"], OpenLicenceTerms)
    if data.declared_on >= terms.ends_on:
        raise Invalid("open_licence_declared_after_end", field="declared_on")
    number = data.cnipa_number.strip()
    try:
        # A savepoint: the unique index settles two declarations of one number at once.
        async with uow.conn.transaction():
            await uow.conn.execute(Q.declare, data.open_licence_id, number, data.declared_on)
    except asyncpg.UniqueViolationError:
        raise Conflict("cnipa_number_used", field="cnipa_number") from None
    change = {"cnipa_number": number, "declared_on": data.declared_on.isoformat()}
    uow.audit("open_licence.declare", "open_licence", data.open_licence_id, after=change)
    uow.audit(
        "open_licence.declare",
        "open_licence",
        data.open_licence_id,
        chain_org_id=row["bank_org_id"],
        after=change,
    )
    return await _reload(uow.conn, data.open_licence_id, today)


class Withdrawal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The day the withdrawal was announced (or, for a proposal never declared, made)."""

    withdrawn_on: date


class WithdrawOpenLicence(Withdrawal, frozen=True, kw_only=True):
    open_licence_id: int


@command(SIGN_AS_PLEDGOR)
async def withdraw_open_licence(uow: UnitOfWork, data: WithdrawOpenLicence) -> OpenLicenceOut:
    """The pledgor withdraws the declaration (or its proposal): no new takers; the
    contracts already made run on (专利法 art. 50)."""
    row = await _lock_own(uow, data.open_licence_id)
    today = china_today(uow.at)
    if row["status"] == "withdrawn":
        raise Conflict("open_licence_withdrawn")
    if data.withdrawn_on > today:
        raise Invalid("open_licence_date_in_future", field="withdrawn_on")
    started = row["declared_on"] or china_today(row["created_at"])
    if data.withdrawn_on < started:
        raise Invalid("open_licence_withdrawn_before_declared", field="withdrawn_on")
    await uow.conn.execute(Q.withdraw, data.open_licence_id, data.withdrawn_on)
    change = {"status": "withdrawn", "withdrawn_on": data.withdrawn_on.isoformat()}
    uow.audit("open_licence.withdraw", "open_licence", data.open_licence_id, after=change)
    uow.audit(
        "open_licence.withdraw",
        "open_licence",
        data.open_licence_id,
        chain_org_id=row["bank_org_id"],
        after=change,
    )
    return await _reload(uow.conn, data.open_licence_id, today)


# --- a firm takes it ----------------------------------------------------------------------


@command(TAKE_OPEN_LICENCE)
async def take_open_licence(uow: UnitOfWork, data: OpenLicenceRef) -> ContractOut:
    """An approved firm takes a declared open licence by notice (专利法 art. 51): a
    non-exclusive contract on the published terms from today, one per firm."""
    conn = uow.conn
    row = await conn.fetchrow(Q.lock_for_taker, data.open_licence_id)
    if row is None or row["status"] == "proposed":
        raise NotFound("no_such_open_licence")
    if row["status"] != "declared":
        raise Conflict("open_licence_not_declared", status=row["status"])
    today = china_today(uow.at)
    terms = msgspec.convert(row["terms"], OpenLicenceTerms)
    expiry = patent_expiry(row["patent_type"], row["filing_date"])
    if today > min(terms.ends_on, expiry):
        raise Conflict("open_licence_ended", ends_on=terms.ends_on.isoformat())
    taken = await conn.fetchval(Q.live_contract_of_taker, data.open_licence_id, uow.actor.org)
    if taken is not None:
        raise Conflict("open_licence_taken", reference=taken)
    try:
        async with conn.transaction():
            contract = await create_contract(
                uow,
                NewContract(
                    case_id=row["case_id"],
                    bank_org_id=row["bank_org_id"],
                    licensee_org_id=uow.actor.org,
                    pledgor_org_id=row["pledgor_org_id"],
                    kind="non_exclusive",
                    terms=taker_terms(terms, today, expiry),
                    open_licence_id=data.open_licence_id,
                ),
            )
    except asyncpg.UniqueViolationError:  # licence_contracts_one_taker
        raise Conflict("open_licence_taken", reference="") from None
    uow.audit("open_licence.take", "licence_contract", contract.id, after=contract.reference)
    await uow.emit(Q.insert_open_licence_taken, contract.id, uow.at)
    return contract
