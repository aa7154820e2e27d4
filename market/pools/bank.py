"""The bank's side of the guarantee pools (issue 6, items 1–3) and the operator's manual
receipts: what the bank's pages and API read, in one place, over the pools services.

A bank sees only its own loans, claims and cases: every read here is filtered by the bank
organisation, and the services it calls (enrol, assess_loan, file_claim, write_off,
add_cost, close_case) answer 404 for another bank's loan or case. Within its own case a
bank sees where every fen of every receipt went — to itself, the pools and parties that
bore the loss, and the pledgor.

Concurrency: the writes are the services' (their docstring gives the locks). A manual
receipt is recorded under the case row lock (taken here first, then again by
`record_receipt`), keyed by its source `manual:{reference}`: two operators recording the
same transfer at once get one receipt and one audit row — the second waits for the lock,
finds the first receipt and changes nothing; the same reference on two different cases
meets the unique source and answers 409.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

import asyncpg
import msgspec
from msgspec import Meta

from auctions.deposits import CLEARING
from market import audit
from market.cases.policy import CLAIM_PART_MAX_FEN
from market.db import Conn, Queries
from market.errors import Conflict, Invalid, NotFound
from market.pools import services
from market.pools.rules import Line, parse_rule

Q = Queries("pool_bank")
QP = Queries("pools")

Fen = Annotated[int, Meta(gt=0, le=CLAIM_PART_MAX_FEN)]
ManualKind = Literal["licence_fee", "royalty", "other"]  # of services.ReceiptKind
MANUAL_KINDS: tuple[str, ...] = get_args(ManualKind)
CostKind = Literal["appraisal", "auction", "other"]
COST_KINDS: tuple[str, ...] = get_args(CostKind)
REFERENCE_MAX = 60
REASON_MAX = 500


# --- input ------------------------------------------------------------------------------


class EnrolIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Enrol one of the bank's loans in a pool (备案) by the pool's code."""

    loan_id: int
    pool_code: Annotated[str, Meta(min_length=1, max_length=30)]
    renewal: bool = False  # 续贷: weighs 110 % under an NPL fuse


class WriteOffIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    written_off_on: date


class CostIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: CostKind
    amount_fen: Fen
    memo: Annotated[str, Meta(max_length=500)] = ""


class ReceiptIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Money that came back on a case other than through a sale: a licence fee, a
    royalty, a settlement. `reference` is the incoming transfer's (unique)."""

    kind: ManualKind
    reference: Annotated[str, Meta(min_length=1, max_length=REFERENCE_MAX)]
    amount_fen: Fen
    commission_fen: Annotated[int, Meta(ge=0, le=CLAIM_PART_MAX_FEN)] = 0


class ReverseIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=REASON_MAX)]


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
    """What a claim filed now would ask for, and why (both languages)."""

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
    payee: str  # who, in words: the bank's or pool's name, the party, the pledgor
    payee_org_id: int | None
    pool_code: str | None
    party: str | None
    claim_id: int | None
    cost_id: int | None
    amount_fen: int
    payout_reference: str | None


class PayoutOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    payee_kind: str
    payee: str
    payee_org_id: int | None
    pool_code: str | None
    party: str | None
    amount_fen: int
    reference: str  # written on the transfer; found again on the payee's statement
    status: Literal["expected", "received", "reversed"]
    received_at: datetime | None


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


# --- reads ------------------------------------------------------------------------------


def _lines(raw: Any) -> list[Line]:
    return [Line(str(x.get("zh", "")), str(x.get("en", ""))) for x in raw or []]


def _claim(row: asyncpg.Record) -> ClaimOut:
    return ClaimOut(
        id=row["id"],
        loan_id=row["loan_id"],
        loan_no=row["loan_no"],
        pool_code=row["pool_code"],
        timing=row["timing"],
        status=row["status"],
        loss_fen=row["loss_fen"],
        amount_fen=row["amount_fen"],
        explanation=_lines(row["explanation"]),
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
    return [_claim(r) for r in await conn.fetch(Q.claims_of_bank, bank_org_id, loan_id)]


async def loan_claims(conn: Conn, bank_org_id: int, loan_id: int) -> list[ClaimOut]:
    if await conn.fetchrow(QP.loan_of_bank, loan_id, bank_org_id) is None:
        raise NotFound("no such loan", field="loan_id")
    return await claims(conn, bank_org_id, loan_id)


async def claim(conn: Conn, bank_org_id: int, claim_id: int) -> ClaimOut:
    row = await conn.fetchrow(Q.claim_of_bank, claim_id, bank_org_id)
    if row is None:
        raise NotFound("no such claim")
    return _claim(row)


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
        raise NotFound("no such enrolment")
    return msgspec.convert(dict(row), EnrolmentOut)


def _payee(r: asyncpg.Record, pledgor_name: str | None) -> str:
    kind = r["payee_kind"]
    if kind == "platform":
        return "platform"
    if kind == "pool":
        return str(r["pool_code"] or r["payee_org_name"] or "")
    if kind == "party":
        return str(r["party"] or r["payee_org_name"] or "")
    if kind == "pledgor":
        return pledgor_name or ""
    return str(r["payee_org_name"] or "")


async def receipts_of_case(conn: Conn, case_id: int) -> list[ReceiptOut]:
    """Every receipt of a case with its distributions (step, payee, fen) and payouts."""
    payouts: dict[int, list[PayoutOut]] = {}
    pledgor_names: dict[int, str] = {}
    for p in await conn.fetch(Q.payouts_of_case, case_id):
        pledgor_names[p["id"]] = p["pledgor_name"] or ""
        payouts.setdefault(p["receipt_id"], []).append(
            PayoutOut(
                id=p["id"],
                payee_kind=p["payee_kind"],
                payee=_payee(p, p["pledgor_name"]),
                payee_org_id=p["payee_org_id"],
                pool_code=p["pool_code"],
                party=p["party"],
                amount_fen=p["amount_fen"],
                reference=p["reference"],
                status=p["status"],
                received_at=p["received_at"],
            )
        )
    dists: dict[int, list[DistributionOut]] = {}
    for d in await conn.fetch(Q.distributions_of_case, case_id):
        name = pledgor_names.get(d["payout_id"]) if d["payout_id"] is not None else None
        dists.setdefault(d["receipt_id"], []).append(
            DistributionOut(
                position=d["position"],
                step=d["step"],
                payee_kind=d["payee_kind"],
                payee=_payee(d, name),
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
    ]


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


async def case_money(conn: Conn, bank_org_id: int, case_id: int) -> CaseMoneyOut:
    """One of the bank's cases: its costs and receipts (404 for another bank's case)."""
    c = await conn.fetchrow(Q.case_of_bank, case_id, bank_org_id)
    if c is None:
        raise NotFound("no such case")
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
    )


# --- the operator's manual receipts -----------------------------------------------------


def check_reference(text: str) -> str:
    reference = text.strip()
    if not reference:
        raise Invalid("请填写来款流水号 / the transfer's reference is required", field="reference")
    if len(reference) > REFERENCE_MAX:
        raise Invalid(
            f"流水号最多 {REFERENCE_MAX} 个字符 / "
            f"a reference has at most {REFERENCE_MAX} characters",
            field="reference",
        )
    if any(ch.isspace() or not ch.isprintable() for ch in reference):
        raise Invalid(
            "流水号不能含空格或控制字符 / a reference has no spaces or control characters",
            field="reference",
        )
    return reference


async def record_manual_receipt(
    conn: Conn,
    *,
    at: datetime,
    operator_org_id: int,
    operator_user_id: int,
    case_id: int | None,
    case_reference: str | None,
    data: ReceiptIn,
) -> tuple[asyncpg.Record, bool]:
    """A licence fee, royalty or other money received into the exchange's clearing
    account, routed through the waterfall once per reference. Returns (receipt, created):
    the same reference and amount again is the same receipt (created False)."""
    reference = check_reference(data.reference)
    if data.kind not in MANUAL_KINDS:
        raise Invalid(
            "回款类别须为许可费（licence_fee）、提成费（royalty）或其他（other） / "
            "kind is one of licence_fee, royalty, other",
            field="kind",
        )
    if data.commission_fen > data.amount_fen:
        raise Invalid(
            "平台佣金不能超过回款金额 / the commission cannot exceed the amount",
            field="commission_fen",
        )
    case = await conn.fetchrow(Q.case_for_receipt, case_id, case_reference)
    if case is None:
        if case_id is not None:
            raise NotFound("no such case")
        raise Invalid(
            f"没有编号为 {case_reference!r} 的案件 / no case has the reference {case_reference!r}",
            field="case_reference",
        )
    source = f"manual:{reference}"
    # `record_receipt` answers a source seen before with that receipt (or 409 for another
    # case or amount); whether this call made it is known only here, under the case lock
    # it takes too: a second operator waits for the first and then finds the receipt.
    await conn.fetchrow(QP.case_locked, case["id"])
    created = await conn.fetchrow(QP.receipt_by_source, source) is None
    try:
        async with conn.transaction():  # a savepoint: the unique source may still collide
            receipt = await services.record_receipt(
                conn,
                at=at,
                case_id=case["id"],
                kind=data.kind,
                source=source,
                amount_fen=data.amount_fen,
                commission_fen=data.commission_fen,
                from_account=CLEARING,
            )
    except (Conflict, asyncpg.UniqueViolationError):
        raise Conflict(
            f"流水号 {reference} 已登记过（案件或金额不同） / "
            f"the reference {reference} was recorded already (another case or amount)",
            field="reference",
            code="duplicate_reference",
        ) from None
    if not created:
        return receipt, False
    await audit.append(
        conn,
        at=at,
        chain_org_id=case["bank_org_id"],
        actor_user_id=operator_user_id,
        actor_org_id=operator_org_id,
        action="receipt.record",
        object_kind="receipt",
        object_id=receipt["id"],
        after={
            "case_id": case["id"],
            "kind": data.kind,
            "source": source,
            "amount_fen": data.amount_fen,
            "commission_fen": data.commission_fen,
        },
    )
    return receipt, True


async def receipt_out(conn: Conn, receipt: asyncpg.Record) -> ReceiptOut:
    return next(
        r for r in await receipts_of_case(conn, receipt["case_id"]) if r.id == receipt["id"]
    )
