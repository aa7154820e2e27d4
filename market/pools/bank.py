"""The bank's side of the guarantee pools and the operator's manual receipts
(docs/rules.md §Guarantee pools, §The waterfall): the commands a bank runs — enrol a loan,
file a claim, write a loan off, record a case cost, close a case — and the operator's —
record and reverse a receipt — and what the bank's pages and API read.

A bank sees only its own loans, claims and cases: every read here is filtered by the bank
organisation, and every command finds the loan or case through the actor's organisation
(another bank's answers 404). Within its own case a bank sees where every fen of every
receipt went — to itself, the pools and parties that bore the loss, and the pledgor.

Concurrency: each command's docstring says what it locks; the order across the area is
market/pools/services.py's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

import asyncpg
import msgspec
from msgspec import Meta

from auctions.deposits import CLEARING
from market import ledger
from market.accounts.permissions import OPERATE, WRITE_BANK_POOLS
from market.cases.policy import CLAIM_PART_MAX_FEN
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.payments.instructions import withdraw_payouts
from market.pools import accounts, services
from market.pools.models import WORDS, Line, PayoutOut, payee_name, payout_out
from market.pools.rules import parse_rule
from market.pools.streams import ContractStream, case_streams

Q = Queries("pool_bank")
QP = Queries("pools")

Fen = Annotated[int, Meta(gt=0, le=CLAIM_PART_MAX_FEN)]
ManualKind = Literal["licence_fee", "royalty", "other"]  # of services.ReceiptKind
MANUAL_KINDS: tuple[str, ...] = get_args(ManualKind)
CostKind = Literal["appraisal", "auction", "other"]
COST_KINDS: tuple[str, ...] = get_args(CostKind)
REFERENCE_MAX = 60
REASON_MAX = 500
MEMO_MAX = 500


# --- input ------------------------------------------------------------------------------


class EnrolIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Enrol one of the bank's loans in a pool (备案) by the pool's code."""

    loan_id: int
    pool_code: Annotated[str, Meta(min_length=1, max_length=30)]
    renewal: bool = False  # 续贷: weighs 110 % under an NPL fuse


class WriteOffIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    written_off_on: date


class WriteOff(WriteOffIn, frozen=True, kw_only=True):
    loan_id: int


class CostIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: CostKind
    amount_fen: Fen
    memo: Annotated[str, Meta(max_length=MEMO_MAX)] = ""


class CaseCost(CostIn, frozen=True, kw_only=True):
    case_id: int


class ReceiptIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Money that came back on a case other than through a sale: a licence fee, a
    royalty, a settlement. `reference` is the incoming transfer's (unique)."""

    kind: ManualKind
    reference: Annotated[str, Meta(max_length=REFERENCE_MAX)]
    amount_fen: Fen
    commission_fen: Annotated[int, Meta(ge=0, le=CLAIM_PART_MAX_FEN)] = 0


class ManualReceipt(ReceiptIn, frozen=True, kw_only=True):
    """A receipt on the case named by id (the API) or by reference (the operator's form)."""

    case_id: int | None = None
    case_reference: str | None = None


class ReverseIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(max_length=REASON_MAX)]


class ReverseReceipt(ReverseIn, frozen=True, kw_only=True):
    receipt_id: int


# --- output -----------------------------------------------------------------------------


class ClaimOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    loan_id: int
    loan_no: str
    pool_code: str
    timing: str
    status: Literal["filed", "rejected", "parked", "paid"]
    loss_fen: int
    amount_fen: int
    explanation: list[Line]
    reason: str | None
    filed_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None


class EnrolmentOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    loan_id: int
    pool_code: str
    rule_version: int
    enrolled_principal_fen: int
    renewal: bool
    enrolled_on: date


class EnrolledLoanOut(msgspec.Struct, frozen=True, kw_only=True):
    loan_id: int
    loan_no: str
    pledgor_name: str
    pool_code: str
    pool_name: str
    pool_name_en: str | None
    rule_version: int
    rule_effective_from: date
    timing: str
    enrolled_principal_fen: int
    renewal: bool
    enrolled_on: date
    status: Literal["performing", "defaulted", "written_off"]
    default_date: date | None
    written_off_on: date | None
    case_id: int | None
    case_reference: str | None
    case_status: str | None
    compensated_fen: int  # granted by the pool: paid or parked
    claims: list[ClaimOut]


class PreviewOut(msgspec.Struct, frozen=True, kw_only=True):
    """What a claim filed now would ask for, and why."""

    loan_id: int
    pool_code: str
    rule_version: int
    timing: str
    eligible: bool
    loss_fen: int
    amount_fen: int
    lines: list[Line]
    pending_claim_id: int | None  # a filed claim still waiting for the pool's decision


class WriteOffOut(msgspec.Struct, frozen=True, kw_only=True):
    loan_id: int
    written_off_on: date
    released_claims: int  # parked guarantee deposits paid out by this write-off


class DistributionOut(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    step: str
    payee_kind: str
    payee: str  # the payee's own name (see PayoutOut.payee)
    payee_org_id: int | None
    pool_code: str | None
    party: str | None
    claim_id: int | None
    cost_id: int | None
    amount_fen: int
    payout_reference: str | None


class ReceiptOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    case_id: int
    kind: str
    source: str
    amount_fen: int
    commission_fen: int
    status: Literal["routed", "reversed"]
    received_at: datetime
    reversed_at: datetime | None
    distributions: list[DistributionOut]
    payouts: list[PayoutOut]


class RecordedReceipt(msgspec.Struct, frozen=True, kw_only=True):
    receipt: ReceiptOut
    created: bool  # False: the same reference and amount were recorded before


class CostOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    amount_fen: int
    repaid_fen: int
    payee: str
    memo: str
    recorded_at: datetime


class CaseMoneyOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    status: str
    loan_id: int
    loan_no: str
    pledgor_name: str
    claim_principal_fen: int
    claim_interest_fen: int
    claim_costs_fen: int
    opened_at: datetime
    closed_at: datetime | None
    costs: list[CostOut]
    receipts: list[ReceiptOut]
    # the case's licence contracts: expected, received, outstanding (market/pools/streams.py)
    licence_streams: list[ContractStream] = []


# --- reads ------------------------------------------------------------------------------


def lines_of(raw: Any) -> list[Line]:
    """A claim's stored explanation: catalog keys and numbers, or, where it was stored as
    words in both languages, those words (`pool.line.words`, each language a parameter)."""
    return [
        Line(key=WORDS, params={"zh": str(x.get("zh", "")), "en": str(x.get("en", ""))})
        if "key" not in x
        else msgspec.convert(x, Line)
        for x in raw or []
    ]


def claim_out(row: asyncpg.Record) -> ClaimOut:
    return ClaimOut(
        id=row["id"],
        loan_id=row["loan_id"],
        loan_no=row["loan_no"],
        pool_code=row["pool_code"],
        timing=row["timing"],
        status=row["status"],
        loss_fen=row["loss_fen"],
        amount_fen=row["amount_fen"],
        explanation=lines_of(row["explanation"]),
        reason=row["reason"],
        filed_at=row["filed_at"],
        decided_at=row["decided_at"],
        paid_at=row["paid_at"],
    )


def loan_status(row: asyncpg.Record) -> Literal["performing", "defaulted", "written_off"]:
    if row["written_off_on"] is not None:
        return "written_off"
    return "defaulted" if row["default_date"] is not None else "performing"


async def claims(conn: Conn, bank_org_id: int, loan_id: int | None = None) -> list[ClaimOut]:
    return [claim_out(r) for r in await conn.fetch(Q.claims_of_bank, bank_org_id, loan_id)]


async def loan_claims(conn: Conn, bank_org_id: int, loan_id: int) -> list[ClaimOut]:
    if await conn.fetchrow(QP.loan_of_bank, loan_id, bank_org_id) is None:
        raise NotFound("not_found", field="loan_id")
    return await claims(conn, bank_org_id, loan_id)


async def claim(conn: Conn, bank_org_id: int, claim_id: int) -> ClaimOut:
    row = await conn.fetchrow(Q.claim_of_bank, claim_id, bank_org_id)
    if row is None:
        raise NotFound("not_found")
    return claim_out(row)


async def enrolled_loans(
    conn: Conn, bank_org_id: int, loan_id: int | None = None
) -> list[EnrolledLoanOut]:
    """The bank's enrolled loans by pool, each with its claims (newest first)."""
    by_loan: dict[int, list[ClaimOut]] = {}
    for c in await claims(conn, bank_org_id, loan_id):
        by_loan.setdefault(c.loan_id, []).append(c)
    out = []
    for r in await conn.fetch(Q.enrolled_loans, bank_org_id, loan_id):
        mine = by_loan.get(r["loan_id"], [])
        out.append(
            EnrolledLoanOut(
                loan_id=r["loan_id"],
                loan_no=r["loan_no"],
                pledgor_name=r["pledgor_name"],
                pool_code=r["pool_code"],
                pool_name=r["pool_name"],
                pool_name_en=r["pool_name_en"],
                rule_version=r["rule_version"],
                rule_effective_from=r["rule_effective_from"],
                timing=parse_rule(r["rule"]).timing,
                enrolled_principal_fen=r["enrolled_principal_fen"],
                renewal=r["renewal"],
                enrolled_on=r["enrolled_on"],
                status=loan_status(r),
                default_date=r["default_date"],
                written_off_on=r["written_off_on"],
                case_id=r["case_id"],
                case_reference=r["case_reference"],
                case_status=r["case_status"],
                compensated_fen=sum(c.amount_fen for c in mine if c.status in ("paid", "parked")),
                claims=mine,
            )
        )
    return out


async def preview(
    conn: Conn,
    at: datetime,
    bank_org_id: int,
    loan_id: int,
    loan_claims: list[ClaimOut] | None = None,
) -> PreviewOut:
    """The claim preview of one of the bank's enrolled loans (404 for another bank's).
    `loan_claims`: the loan's claims when the caller has them already."""
    view = await services.assess_loan(conn, at, bank_org_id, loan_id)
    a = view.assessment
    if loan_claims is None:
        loan_claims = await claims(conn, bank_org_id, loan_id)
    pending = next((c.id for c in loan_claims if c.status == "filed"), None)
    return PreviewOut(
        loan_id=loan_id,
        pool_code=view.pool_code,
        rule_version=view.rule_version,
        timing=view.rule.timing,
        eligible=a.eligible and pending is None,
        loss_fen=a.loss_fen,
        amount_fen=a.amount_fen,
        lines=list(a.lines),
        pending_claim_id=pending,
    )


async def enrolment(conn: Conn, enrolment_id: int) -> EnrolmentOut:
    row = await conn.fetchrow(Q.enrolment_out, enrolment_id)
    if row is None:
        raise NotFound("not_found")
    return msgspec.convert(dict(row), EnrolmentOut)


async def receipts_of_case(
    conn: Conn, case_id: int, receipt_id: int | None = None
) -> list[ReceiptOut]:
    """Every receipt of a case (or the one `receipt_id`) with its distributions (step,
    payee, fen) and payouts."""
    payouts: dict[int, list[PayoutOut]] = {}
    pledgor_names: dict[int, str] = {}
    for p in await conn.fetch(Q.payouts_of_case, case_id):
        pledgor_names[p["id"]] = p["pledgor_name"] or ""
        payouts.setdefault(p["receipt_id"], []).append(payout_out(p))
    dists: dict[int, list[DistributionOut]] = {}
    for d in await conn.fetch(Q.distributions_of_case, case_id):
        pledgor = pledgor_names.get(d["payout_id"]) if d["payout_id"] is not None else None
        dists.setdefault(d["receipt_id"], []).append(
            DistributionOut(
                position=d["position"],
                step=d["step"],
                payee_kind=d["payee_kind"],
                payee=payee_name({**dict(d), "pledgor_name": pledgor}),
                payee_org_id=d["payee_org_id"],
                pool_code=d["pool_code"],
                party=d["party"],
                claim_id=d["claim_id"],
                cost_id=d["cost_id"],
                amount_fen=d["amount_fen"],
                payout_reference=d["payout_reference"],
            )
        )
    return [
        ReceiptOut(
            id=r["id"],
            case_id=r["case_id"],
            kind=r["kind"],
            source=r["source"],
            amount_fen=r["amount_fen"],
            commission_fen=r["commission_fen"],
            status=r["status"],
            received_at=r["received_at"],
            reversed_at=r["reversed_at"],
            distributions=dists.get(r["id"], []),
            payouts=payouts.get(r["id"], []),
        )
        for r in await conn.fetch(Q.receipts_of_case, case_id)
        if receipt_id is None or r["id"] == receipt_id
    ]


# The operator's list of receipts: the newest, as many as the page shows.
RECEIPTS_SHOWN = 200


class RecentReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt of any bank's case, as the operator's list shows it."""

    id: int
    case_id: int
    case_reference: str
    bank_name: str
    kind: str
    source: str
    amount_fen: int
    commission_fen: int
    status: Literal["routed", "reversed"]
    received_at: datetime
    reversed_at: datetime | None
    received_payouts: int  # payouts of it the payee received: it can no longer be reversed


async def recent_receipts(conn: Conn, limit: int = RECEIPTS_SHOWN) -> list[RecentReceipt]:
    """Every bank's receipts, newest first (the operator's, OPERATE)."""
    return [
        msgspec.convert(dict(r), RecentReceipt) for r in await conn.fetch(Q.recent_receipts, limit)
    ]


async def receipt_out(conn: Conn, case_id: int, receipt_id: int) -> ReceiptOut:
    [out] = await receipts_of_case(conn, case_id, receipt_id)
    return out


async def costs(conn: Conn, case_id: int, cost_id: int | None = None) -> list[CostOut]:
    """A case's disposal costs (or the one `cost_id`), each with what was repaid of it."""
    return [
        CostOut(
            id=r["id"],
            kind=r["kind"],
            amount_fen=r["amount_fen"],
            repaid_fen=r["repaid_fen"],
            payee=r["payee_name"],
            memo=r["memo"],
            recorded_at=r["recorded_at"],
        )
        for r in await conn.fetch(Q.costs_of_case, case_id, cost_id)
    ]


async def case_money(conn: Conn, bank_org_id: int, case_id: int, at: datetime) -> CaseMoneyOut:
    """One of the bank's cases: its costs, receipts and licence streams on the day of `at`
    (404 for another bank's case)."""
    c = await conn.fetchrow(Q.case_of_bank, case_id, bank_org_id)
    if c is None:
        raise NotFound("not_found")
    return CaseMoneyOut(
        id=c["id"],
        reference=c["reference"],
        status=c["status"],
        loan_id=c["loan_id"],
        loan_no=c["loan_no"],
        pledgor_name=c["pledgor_name"],
        claim_principal_fen=c["claim_principal_fen"],
        claim_interest_fen=c["claim_interest_fen"],
        claim_costs_fen=c["claim_costs_fen"],
        opened_at=c["opened_at"],
        closed_at=c["closed_at"],
        costs=await costs(conn, case_id),
        receipts=await receipts_of_case(conn, case_id),
        licence_streams=await case_streams(conn, bank_org_id, case_id, at),
    )


# --- the bank's commands ------------------------------------------------------------------


@command(WRITE_BANK_POOLS)
async def enrol_loan(uow: UnitOfWork, data: EnrolIn) -> EnrolmentOut:
    """Enrol one of the bank's loans in a pool (备案) before it defaults; it keeps the rule
    version in force today. A loan is enrolled once: `UNIQUE (loan_id)` refuses the second
    of two at once."""
    conn = uow.conn
    code = data.pool_code.strip().upper()
    loan = await conn.fetchrow(QP.loan_of_bank, data.loan_id, uow.actor.org)
    if loan is None:
        raise NotFound("not_found", field="loan_id")
    pool = await conn.fetchrow(QP.pool_by_code, code)
    if pool is None:
        raise Invalid("no_pool_with_code", field="pool_code", pool_code=code)
    today = china_today(uow.at)
    defaulted = loan["default_date"]
    if defaulted <= today if defaulted is not None else loan["npl_class"] is not None:
        # Enrolment precedes the default (docs/rules.md §Guarantee pools): a pool covers
        # the risk of loans that may go bad, never a loss that has already happened. A
        # loan classified non-performing without a default date has defaulted already.
        raise Invalid(
            "loan_defaulted_before_enrolment",
            field="loan_id",
            loan_no=loan["loan_no"],
            default_date=defaulted.isoformat() if defaulted else "",
        )
    version = await conn.fetchrow(QP.rule_in_force, pool["id"], today)
    if version is None:
        raise Invalid(
            "pool_no_rule_in_force", field="pool_code", pool_code=code, day=today.isoformat()
        )
    rule = parse_rule(version["rule"])
    if rule.max_loan_fen is not None and loan["principal_fen"] > rule.max_loan_fen:
        raise Invalid(
            "loan_above_pool_maximum",
            field="loan_id",
            pool_code=code,
            max_fen=rule.max_loan_fen,
            principal_fen=loan["principal_fen"],
        )
    row = await conn.fetchrow(
        QP.insert_enrolment,
        pool["id"],
        version["id"],
        data.loan_id,
        uow.actor.org,
        loan["principal_fen"],
        data.renewal,
        today,
        uow.actor.user_id,
        uow.at,
    )
    if row is None:
        raise Conflict("loan_already_enrolled", field="loan_id")
    uow.audit(
        "pool.enrol",
        "loan",
        data.loan_id,
        after={"pool": code, "rule_version": version["version"], "renewal": data.renewal},
    )
    return await enrolment(conn, row["id"])


@command(WRITE_BANK_POOLS)
async def file_claim(uow: UnitOfWork, loan_id: int) -> ClaimOut:
    """File a claim for compensation on one of the bank's enrolled loans, worth what the
    rule gives now; when nothing is due the refusal says why. One undecided claim per
    loan: a partial unique index refuses the second of two at once."""
    conn = uow.conn
    view = await services.assess_loan(conn, uow.at, uow.actor.org, loan_id)
    a = view.assessment
    if not a.eligible:
        raise Invalid(a.refusal or "claim_nothing_due", field="loan_id", **services.refusal(a))
    row = await conn.fetchrow(
        QP.insert_claim,
        view.pool_id,
        view.enrolment_id,
        loan_id,
        uow.actor.org,
        view.rule.timing,
        a.loss_fen,
        a.amount_fen,
        list(a.lines),
        uow.actor.user_id,
        uow.at,
    )
    if row is None:
        raise Conflict("claim_already_waiting", field="loan_id")
    uow.audit(
        "claim.file",
        "claim",
        row["id"],
        after={"loan_id": loan_id, "amount_fen": a.amount_fen, "loss_fen": a.loss_fen},
    )
    return await claim(conn, uow.actor.org, row["id"])


@command(WRITE_BANK_POOLS)
async def write_off(uow: UnitOfWork, data: WriteOff) -> WriteOffOut:
    """核销: record the write-off of one of the bank's defaulted loans; guarantee deposits
    parked on it are paid out. Locks the loan (a second write-off waits and is refused),
    then its case, then its parked claims."""
    conn = uow.conn
    on = data.written_off_on
    loan = await conn.fetchrow(QP.loan_locked, data.loan_id, uow.actor.org)
    if loan is None:
        raise NotFound("not_found", field="loan_id")
    if loan["default_date"] is None:
        raise Invalid("write_off_not_defaulted", field="loan_id")
    if on > china_today(uow.at):
        raise Invalid("write_off_in_future", field="written_off_on")
    if on < loan["default_date"]:
        raise Invalid(
            "write_off_before_default",
            field="written_off_on",
            default_date=loan["default_date"].isoformat(),
        )
    if await conn.fetchrow(QP.mark_written_off, data.loan_id, on, uow.at) is None:
        raise Conflict("loan_already_written_off", field="loan_id")
    case = await conn.fetchrow(QP.case_of_loan, data.loan_id)
    if case is not None:
        await conn.fetchrow(QP.case_locked, case["id"])
    released = 0
    for parked in await conn.fetch(QP.parked_claims_of_loan, data.loan_id):
        await conn.fetchrow(QP.release_parked, parked["id"], uow.at)
        pool = returned(await conn.fetchrow(QP.pool_by_id, parked["pool_id"]))
        await uow.post(
            source_kind="claim_released",
            source_id=parked["id"],
            legs=[
                ledger.debit(
                    accounts.pool_recoverable(pool["id"], pool["org_id"]), parked["amount_fen"]
                ),
                ledger.credit(
                    accounts.pool_parked(pool["id"], pool["org_id"]), parked["amount_fen"]
                ),
            ],
            memo=f"guarantee deposit of claim {parked['id']} paid out on write-off",
        )
        released += 1
    uow.audit(
        "loan.write_off",
        "loan",
        data.loan_id,
        after={"written_off_on": on.isoformat(), "released_claims": released},
    )
    return WriteOffOut(loan_id=data.loan_id, written_off_on=on, released_claims=released)


@command(WRITE_BANK_POOLS)
async def record_case_cost(uow: UnitOfWork, data: CaseCost) -> CostOut:
    """A disposal cost the bank advanced on its case (appraisal, auction, other), repaid
    first by the waterfall. Taken under the case lock, so a receipt routed at the same
    moment either sees it or comes first."""
    conn = uow.conn
    case = await conn.fetchrow(QP.case_locked, data.case_id)
    if case is None or case["bank_org_id"] != uow.actor.org:
        raise NotFound("not_found")
    if data.amount_fen <= 0:
        raise Invalid("too_small", field="amount_fen", min=1)
    memo = data.memo.strip()
    row = returned(
        await conn.fetchrow(
            QP.insert_cost,
            data.case_id,
            data.kind,
            uow.actor.org,
            data.amount_fen,
            memo,
            uow.actor.user_id,
            uow.at,
        )
    )
    uow.audit(
        "case.cost",
        "case",
        data.case_id,
        after={"kind": data.kind, "amount_fen": data.amount_fen, "memo": memo},
    )
    [cost] = await costs(conn, data.case_id, row["id"])
    return cost


@command(WRITE_BANK_POOLS)
async def close_case(uow: UnitOfWork, case_id: int) -> CaseMoneyOut:
    """处置终结: the disposal of one of the bank's cases is over, so the loss is realised
    (claims under after-the-loss rules may follow). The case row is locked: of two at once
    the second finds it closed."""
    conn = uow.conn
    case = await conn.fetchrow(QP.case_locked, case_id)
    if case is None or case["bank_org_id"] != uow.actor.org:
        raise NotFound("not_found")
    if case["status"] != "open":
        raise Conflict("case_closed_already")
    if await conn.fetchval(QP.live_lots_of_case, case_id):
        raise Conflict("case_lots_still_selling")
    await conn.fetchrow(QP.close_case, case_id, uow.at)
    uow.audit("case.close", "case", case_id, before={"status": "open"}, after={"status": "closed"})
    return await case_money(conn, uow.actor.org, case_id, uow.at)


# --- the operator's receipts ------------------------------------------------------------


def check_reference(text: str) -> str:
    reference = text.strip()
    if not reference:
        raise Invalid("required", field="reference")
    if len(reference) > REFERENCE_MAX:
        raise Invalid("too_long", field="reference", max=REFERENCE_MAX)
    if any(ch.isspace() or not ch.isprintable() for ch in reference):
        raise Invalid("receipt_reference_spaces", field="reference")
    return reference


@command(OPERATE)
async def record_receipt(uow: UnitOfWork, data: ManualReceipt) -> RecordedReceipt:
    """A licence fee, royalty or other money received into the exchange's clearing
    account, routed through the waterfall once per reference (`manual:<reference>`).

    The case row is locked first (then again by `route_receipt`): two operators
    recording the same transfer at once get one receipt and one audit row — the second
    waits for the lock, finds the first receipt and changes nothing (created False); the
    same reference on another case or with another amount meets the unique source: 409."""
    conn = uow.conn
    reference = check_reference(data.reference)
    if data.commission_fen > data.amount_fen:
        raise Invalid("commission_above_amount", field="commission_fen", amount_fen=data.amount_fen)
    case = await conn.fetchrow(Q.case_for_receipt, data.case_id, data.case_reference)
    if case is None:
        if data.case_id is not None:
            raise NotFound("not_found")
        raise Invalid(
            "no_case_with_reference", field="case_reference", reference=data.case_reference
        )
    source = f"manual:{reference}"
    await conn.fetchrow(QP.case_locked, case["id"])
    created = await conn.fetchrow(QP.receipt_by_source, source) is None
    try:
        async with conn.transaction():  # a savepoint: the unique source may still collide
            receipt = await services.route_receipt(
                uow,
                services.RouteReceipt(
                    case_id=case["id"],
                    kind=data.kind,
                    source=source,
                    amount_fen=data.amount_fen,
                    commission_fen=data.commission_fen,
                    from_account=CLEARING,
                ),
            )
    except (Conflict, asyncpg.UniqueViolationError):
        raise Conflict("receipt_reference_taken", field="reference", reference=reference) from None
    if created:
        uow.audit(
            "receipt.record",
            "receipt",
            receipt.id,
            chain_org_id=case["bank_org_id"],
            after={
                "case_id": case["id"],
                "kind": data.kind,
                "source": source,
                "amount_fen": data.amount_fen,
                "commission_fen": data.commission_fen,
            },
        )
    return RecordedReceipt(
        receipt=await receipt_out(conn, receipt.case_id, receipt.id), created=created
    )


@command(OPERATE)
async def reverse_receipt(uow: UnitOfWork, data: ReverseReceipt) -> ReceiptOut:
    """A receipt that did not really arrive (a bounced transfer): a new, negating ledger
    entry; its distributions stop counting and its payouts are no longer expected.
    Refused once any payout of it was received, went out in a payment file or was paid;
    the pending instructions of its payouts are cancelled with the reason. The receipt row
    is locked, then its case, then its payouts, then their instructions: a statement
    settling one at the same moment goes first or sees the reversal; reversing twice
    changes nothing the second time."""
    conn = uow.conn
    receipt = await conn.fetchrow(QP.receipt_locked, data.receipt_id)
    if receipt is None:
        raise NotFound("not_found")
    case = returned(await conn.fetchrow(QP.case_locked, receipt["case_id"]))
    if receipt["status"] == "reversed":
        return await receipt_out(conn, receipt["case_id"], data.receipt_id)
    payouts = await conn.fetch(QP.payouts_of_receipt, data.receipt_id)
    if any(p["status"] == "received" for p in payouts):
        raise Conflict("receipt_paid_out")
    reason = data.reason.strip()
    if not reason:
        raise Invalid("reversal_reason_needed", field="reason")
    posted = await ledger.reverse(
        conn,
        entry_id=receipt["entry_id"],
        source_kind="receipt_reversed",
        source_id=data.receipt_id,
        at=uow.at,
        memo=reason,
    )
    await conn.fetchrow(QP.mark_receipt_reversed, data.receipt_id, posted.entry_id, uow.at)
    await conn.execute(QP.mark_payouts_reversed, data.receipt_id)
    await withdraw_payouts(uow, [p["id"] for p in payouts], reason)
    uow.audit(
        "receipt.reverse",
        "receipt",
        data.receipt_id,
        chain_org_id=case["bank_org_id"],
        before={"status": "routed"},
        after={"status": "reversed", "reason": reason},
    )
    return await receipt_out(conn, receipt["case_id"], data.receipt_id)
