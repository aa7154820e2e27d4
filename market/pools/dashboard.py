"""What a pool manager looks at and decides (docs/rules.md §Guarantee pools): the figures
of one pool, their charts, the ledger postings behind each figure, the claims to decide and
the rule versions; and the manager's commands, deciding a claim and adding a rule version.

Read side: every function takes a pool row the caller has already checked is the viewer's
own (`services.own_pool`: another organisation's pool is 404). Write side: the commands
find the pool or claim through the actor's organisation the same way.

Definitions (the same on the page, in the API and in the drill-down):
* exposure: the principal enrolled in the pool (`pool_enrolments`), and how many loans;
* compensation paid: claims `paid` (a parked deposit counts once released at write-off);
  `parked`: guarantee deposits still held — shown separately, never in the recovery rate;
* recoveries received / outstanding: the pool's payouts `received` / `expected` (a reversed
  receipt's payouts count in neither);
* recovery rate: received ÷ compensation paid, in basis points, rounded down; none while
  nothing was paid;
* months are calendar months in Asia/Shanghai.

Each money figure is also the sum of the legs on one of the pool's ledger accounts over a
set of entry kinds (`FIGURES`), so the drill-down lists exactly the postings that make it.

The charts' geometry is market.pools.charts; a rule read aloud, market.pools.rule_text.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal, NamedTuple, get_args

import asyncpg
import msgspec
from msgspec import Meta

from market import ledger
from market.accounts.permissions import WRITE_POOL
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.collateral.rules import add_months
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.money import format_cny
from market.pools import accounts, services
from market.pools.bank import lines_of
from market.pools.models import Line, PayoutOut, PoolOut, payout_out
from market.pools.rule_text import describe_rule
from market.pools.rules import (
    BP,
    FuseLoan,
    PoolRule,
    fuse_status,
    parse_rule,
)
from market.transfer import escrow

Q = Queries("pool_pages")
QP = Queries("pools")

RECEIPT_KINDS: tuple[str, ...] = get_args(services.ReceiptKind)
ClaimStatus = Literal["filed", "parked", "paid", "rejected"]
CLAIM_STATUSES: tuple[str, ...] = get_args(ClaimStatus)
POSTINGS_LIMIT = 500
CLAIMS_LIMIT = 500


# --- shapes (the API returns these as JSON; the pages render them) -------------------------


class Tally(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    amount_fen: int


class ClaimFigures(msgspec.Struct, frozen=True, kw_only=True):
    filed: Tally  # every claim ever filed (amounts as they stand now)
    pending: Tally  # waiting for a decision (status filed)
    paid: Tally
    parked: Tally
    rejected: Tally


class MonthRow(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM, Asia/Shanghai
    compensation_fen: int
    recoveries_fen: int


class BankRow(msgspec.Struct, frozen=True, kw_only=True):
    bank_org_id: int
    bank_name: str
    loans: int
    principal_fen: int
    paid_fen: int
    parked_fen: int
    pending: int
    received_fen: int
    outstanding_fen: int


class PathRow(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    received_fen: int
    outstanding_fen: int


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    year: int
    annual_budget_fen: int
    used_fen: int
    remaining_fen: int


class LimitRow(msgspec.Struct, frozen=True, kw_only=True):
    bank_org_id: int
    bank_name: str
    limit_bp: int
    enrolled_fen: int
    limit_fen: int
    used_fen: int
    remaining_fen: int


class FuseRow(msgspec.Struct, frozen=True, kw_only=True):
    bank_org_id: int
    bank_name: str
    ratio_bp: int
    threshold_bp: int
    tripped: bool
    renewed_fen: int
    renewable_fen: int | None
    lines: list[Line]


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's headline figures (the pool selector's row; the top of its dashboard)."""

    pool: PoolOut
    exposure: Tally  # enrolled loans and their principal
    claims: ClaimFigures
    compensation_paid_fen: int
    parked_fen: int
    recoveries_received_fen: int
    recoveries_outstanding_fen: int
    recovery_rate_bp: int | None


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    pool: PoolOut
    as_of: date
    rule_version: int | None  # the version in force today
    exposure: Tally  # enrolled loans and their principal
    claims: ClaimFigures
    compensation_paid_fen: int
    parked_fen: int
    recoveries_received_fen: int
    recoveries_outstanding_fen: int
    recovery_rate_bp: int | None
    # Prices of sales on the pool's loans held in escrow until the title has moved
    # (docs/rules.md §Transfer of title): not recoveries yet, counted in no other figure.
    held_in_escrow: Tally
    fund_balance_fen: int
    monthly: list[MonthRow]
    by_bank: list[BankRow]
    by_path: list[PathRow]
    budget: Budget | None
    limits: list[LimitRow]
    fuses: list[FuseRow]


pool_out = services.pool_out


async def pools_of(conn: Conn, org_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(QP.pools_of_org, org_id))


async def bank_name(conn: Conn, pool: asyncpg.Record, bank_org_id: int) -> str | None:
    """The name of a bank with loans enrolled in the pool (None for any other id)."""
    name: str | None = await conn.fetchval(Q.enrolled_bank_name, pool["id"], bank_org_id)
    return name


# --- figures ---------------------------------------------------------------------------------


def month_start(day: date) -> datetime:
    return datetime.combine(date(day.year, day.month, 1), time(), CHINA)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-01' → its first instant and the next month's, in Asia/Shanghai."""
    try:
        first = date.fromisoformat(month + "-01")
    except ValueError:
        raise Invalid("pool_month_format", field="month") from None
    if len(month) != 7:
        raise Invalid("pool_month_format", field="month")
    return month_start(first), month_start(add_months(first, 1))


def last_months(today: date, n: int = 12) -> list[str]:
    first = date(today.year, today.month, 1)
    return [add_months(first, k - n + 1).strftime("%Y-%m") for k in range(n)]


def rate_bp(received_fen: int, paid_fen: int) -> int | None:
    return received_fen * BP // paid_fen if paid_fen else None


async def rule_in_force(conn: Conn, pool_id: int, today: date) -> tuple[int, PoolRule] | None:
    row = await conn.fetchrow(QP.rule_in_force, pool_id, today)
    if row is None:
        return None
    return row["version"], parse_rule(row["rule"])


def _tally(rows: dict[str, asyncpg.Record], status: str) -> Tally:
    r = rows.get(status)
    return Tally(count=r["n"], amount_fen=r["amount_fen"]) if r else Tally(count=0, amount_fen=0)


async def summary(conn: Conn, pool: asyncpg.Record) -> Summary:
    pool_id = pool["id"]
    exposure = await conn.fetchrow(Q.exposure, pool_id)
    assert exposure is not None
    claim_rows = {r["status"]: r for r in await conn.fetch(Q.claim_totals, pool_id)}
    claims = ClaimFigures(
        filed=Tally(
            count=sum(r["n"] for r in claim_rows.values()),
            amount_fen=sum(r["amount_fen"] for r in claim_rows.values()),
        ),
        pending=_tally(claim_rows, "filed"),
        paid=_tally(claim_rows, "paid"),
        parked=_tally(claim_rows, "parked"),
        rejected=_tally(claim_rows, "rejected"),
    )
    payout_rows = {r["status"]: r for r in await conn.fetch(Q.recovery_totals, pool_id)}
    received = _tally(payout_rows, "received").amount_fen
    return Summary(
        pool=pool_out(pool),
        exposure=Tally(count=exposure["loans"], amount_fen=exposure["principal_fen"]),
        claims=claims,
        compensation_paid_fen=claims.paid.amount_fen,
        parked_fen=claims.parked.amount_fen,
        recoveries_received_fen=received,
        recoveries_outstanding_fen=_tally(payout_rows, "expected").amount_fen,
        recovery_rate_bp=rate_bp(received, claims.paid.amount_fen),
    )


async def dashboard(conn: Conn, pool: asyncpg.Record, at: datetime) -> Dashboard:
    pool_id = pool["id"]
    today = china_today(at)
    head = await summary(conn, pool)

    months = last_months(today)
    start = month_start(date.fromisoformat(months[0] + "-01"))
    end = month_start(add_months(date(today.year, today.month, 1), 1))
    paid_by_month = {
        r["month"]: r["fen"] for r in await conn.fetch(Q.compensation_by_month, pool_id, start, end)
    }
    got_by_month = {
        r["month"]: r["fen"] for r in await conn.fetch(Q.recoveries_by_month, pool_id, start, end)
    }
    monthly = [
        MonthRow(
            month=m, compensation_fen=paid_by_month.get(m, 0), recoveries_fen=got_by_month.get(m, 0)
        )
        for m in months
    ]
    by_bank = [
        BankRow(**{k: r[k] for k in BankRow.__struct_fields__})
        for r in await conn.fetch(Q.by_bank, pool_id)
    ]
    paths = {r["kind"]: r for r in await conn.fetch(Q.by_path, pool_id)}
    by_path = [
        PathRow(
            kind=k,
            received_fen=paths[k]["received_fen"] if k in paths else 0,
            outstanding_fen=paths[k]["outstanding_fen"] if k in paths else 0,
        )
        for k in RECEIPT_KINDS
    ]

    current = await rule_in_force(conn, pool_id, today)
    budget: Budget | None = None
    limits: list[LimitRow] = []
    fuses: list[FuseRow] = []
    if current is not None:
        rule = current[1]
        if rule.annual_budget_fen is not None:
            y0 = datetime.combine(date(today.year, 1, 1), time(), CHINA)
            y1 = datetime.combine(date(today.year + 1, 1, 1), time(), CHINA)
            used = int(await conn.fetchval(QP.budget_used, pool_id, y0, y1, None))
            budget = Budget(
                year=today.year,
                annual_budget_fen=rule.annual_budget_fen,
                used_fen=used,
                remaining_fen=max(0, rule.annual_budget_fen - used),
            )
        if rule.aggregate_limit_bp is not None:
            for b in by_bank:
                limit = b.principal_fen * rule.aggregate_limit_bp // BP
                used = b.paid_fen + b.parked_fen
                limits.append(
                    LimitRow(
                        bank_org_id=b.bank_org_id,
                        bank_name=b.bank_name,
                        limit_bp=rule.aggregate_limit_bp,
                        enrolled_fen=b.principal_fen,
                        limit_fen=limit,
                        used_fen=used,
                        remaining_fen=max(0, limit - used),
                    )
                )
        if rule.fuse is not None:
            loans: dict[int, tuple[str, list[FuseLoan]]] = {}
            for r in await conn.fetch(Q.fuse_loans, pool_id):
                loans.setdefault(r["bank_org_id"], (r["bank_name"], []))[1].append(
                    FuseLoan(
                        balance_fen=r["balance_fen"],
                        non_performing=r["non_performing"],
                        renewal=r["renewal"],
                    )
                )
            for bank_id, (name, bank_loans) in loans.items():
                status = fuse_status(rule.fuse, bank_loans)
                fuses.append(
                    FuseRow(
                        bank_org_id=bank_id,
                        bank_name=name,
                        ratio_bp=status.ratio_bp,
                        threshold_bp=rule.fuse.npl_threshold_bp,
                        tripped=status.tripped,
                        renewed_fen=status.renewed_fen,
                        renewable_fen=status.renewable_fen,
                        lines=list(status.lines),
                    )
                )

    fund = accounts.pool_fund(pool_id, pool["org_id"]).code
    held = await escrow.held_for_pool(conn, pool_id)
    return Dashboard(
        pool=head.pool,
        as_of=today,
        rule_version=current[0] if current else None,
        exposure=head.exposure,
        claims=head.claims,
        compensation_paid_fen=head.compensation_paid_fen,
        parked_fen=head.parked_fen,
        recoveries_received_fen=head.recoveries_received_fen,
        recoveries_outstanding_fen=head.recoveries_outstanding_fen,
        recovery_rate_bp=head.recovery_rate_bp,
        held_in_escrow=Tally(count=held[0], amount_fen=held[1]),
        fund_balance_fen=int(await conn.fetchval(Q.account_balance, fund)),
        monthly=monthly,
        by_bank=by_bank,
        by_path=by_path,
        budget=budget,
        limits=limits,
        fuses=fuses,
    )


# --- drill-down: the postings behind a figure ------------------------------------------------


class FigureSpec(NamedTuple):
    accounts: tuple[str, ...]  # the pool's accounts the figure sums legs of
    kinds: tuple[str, ...] | None  # entry source kinds; None: any
    sign: int  # +1 debit-positive, -1 for a liability read as an amount owed


FIGURES: dict[str, FigureSpec] = {
    # debit pool:N:recoverable when a claim is paid, or a parked deposit released
    "compensation_paid": FigureSpec(("recoverable",), ("claim_paid", "claim_released"), 1),
    # debit pool:N:parked when parked, credit it when released: what is still held
    "parked": FigureSpec(("parked",), ("claim_parked", "claim_released"), 1),
    # payable:pool:N is debited when the money leaves the exchange: the pool's statement
    # or the clearing account's shows the transfer (`payout_paid`; before payment
    # instructions, `payout_received` did it)
    "recoveries_received": FigureSpec(("payable",), ("payout_paid", "payout_received"), 1),
    # credited by a receipt, debited by its reversal or by the transfer paid out
    "recoveries_outstanding": FigureSpec(
        ("payable",), ("receipt", "receipt_reversed", "payout_paid", "payout_received"), -1
    ),
    "fund": FigureSpec(("fund",), None, 1),
    "all": FigureSpec(("fund", "capital", "recoverable", "parked", "payable"), None, 1),
}


def account_code(pool: asyncpg.Record, which: str) -> str:
    pid, org = pool["id"], pool["org_id"]
    made = {
        "fund": accounts.pool_fund,
        "capital": accounts.pool_capital,
        "recoverable": accounts.pool_recoverable,
        "parked": accounts.pool_parked,
    }
    if which == "payable":
        return accounts.payable("pool", pid, org).code
    return made[which](pid, org).code


class DrillFilter(msgspec.Struct, frozen=True, kw_only=True):
    month: str | None = None
    bank_org_id: int | None = None
    kind: str | None = None


class LegOut(msgspec.Struct, frozen=True, kw_only=True):
    account: str  # the ledger account's code; `other` for the other payees of a receipt
    amount_fen: int  # debit > 0, credit < 0


class PostingOut(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: int
    source_kind: str
    source_id: str
    memo: str
    at: datetime
    reverses: int | None
    bank_org_id: int | None
    receipt_kind: str | None
    case_reference: str | None  # the disposal case of a receipt, its reversal or payout
    payout_reference: str | None  # the transfer of a payout received
    focus_fen: int  # this entry's part of the figure (signed as the figure)
    legs: list[LegOut]


class PostingsOut(msgspec.Struct, frozen=True, kw_only=True):
    figure: str
    accounts: list[str]
    filter: DrillFilter
    total_fen: int | None  # the figure these postings make (None for "all")
    entries: int  # how many match; `postings` holds at most POSTINGS_LIMIT, newest first
    postings: list[PostingOut]


OTHER_PAYEES = "other"


def _visible(code: str, owner_org_id: int | None, own: set[str]) -> bool:
    """A pool manager sees its own accounts and the exchange's (clearing, proceeds,
    commission); what a receipt owes other payees is summed into one line."""
    if code in own:
        return True
    return owner_org_id is None and not code.startswith("payable:")


def check_filter(figure: str, filt: DrillFilter) -> None:
    if figure not in FIGURES:
        raise Invalid("not_a_choice", field="figure", value=figure)
    if filt.month is not None:
        month_bounds(filt.month)
    if filt.kind is not None and filt.kind not in RECEIPT_KINDS:
        raise Invalid("not_a_choice", field="kind", value=filt.kind)


async def postings(
    conn: Conn,
    pool: asyncpg.Record,
    figure: str,
    filt: DrillFilter,
    *,
    limit: int = POSTINGS_LIMIT,
) -> PostingsOut:
    check_filter(figure, filt)
    spec = FIGURES[figure]
    focus = [account_code(pool, a) for a in spec.accounts]
    own = {account_code(pool, a) for a in FIGURES["all"].accounts}
    start, end = month_bounds(filt.month) if filt.month else (None, None)
    rows = await conn.fetch(
        Q.postings,
        focus,
        list(spec.kinds) if spec.kinds is not None else None,
        start,
        end,
        filt.bank_org_id,
        filt.kind,
        limit,
    )
    legs: dict[int, list[LegOut]] = {}
    others: dict[int, int] = {}
    for r in await conn.fetch(Q.legs_of_entries, [r["id"] for r in rows]):
        if _visible(r["code"], r["owner_org_id"], own):
            legs.setdefault(r["entry_id"], []).append(
                LegOut(account=r["code"], amount_fen=r["amount_fen"])
            )
        else:
            others[r["entry_id"]] = others.get(r["entry_id"], 0) + r["amount_fen"]
    for entry_id, fen in others.items():
        legs.setdefault(entry_id, []).append(LegOut(account=OTHER_PAYEES, amount_fen=fen))
    return PostingsOut(
        figure=figure,
        accounts=focus,
        filter=filt,
        total_fen=(None if figure == "all" else (spec.sign * rows[0]["total_fen"] if rows else 0)),
        entries=rows[0]["entries"] if rows else 0,
        postings=[
            PostingOut(
                entry_id=r["id"],
                source_kind=r["source_kind"],
                source_id=r["source_id"],
                memo=r["memo"],
                at=r["at"],
                reverses=r["reverses"],
                bank_org_id=r["bank_org_id"],
                receipt_kind=r["receipt_kind"],
                case_reference=r["case_reference"],
                payout_reference=r["payout_reference"],
                focus_fen=spec.sign * r["focus_fen"],
                legs=legs.get(r["id"], []),
            )
            for r in rows
        ],
    )


async def payouts(
    conn: Conn, pool: asyncpg.Record, status: str | None, filt: DrillFilter
) -> list[PayoutOut]:
    start, end = month_bounds(filt.month) if filt.month else (None, None)
    rows = await conn.fetch(
        Q.pool_payouts, pool["id"], status, filt.bank_org_id, filt.kind, start, end
    )
    return [payout_out(r) for r in rows]


async def enrolments(
    conn: Conn, pool: asyncpg.Record, bank_org_id: int | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q.enrolments, pool["id"], bank_org_id))


class EnrolmentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A loan enrolled in the pool: what its exposure figure is made of."""

    id: int
    loan_id: int
    loan_no: str
    bank_org_id: int
    bank_name: str
    enrolled_principal_fen: int
    outstanding_principal_fen: int
    npl_class: str | None
    default_date: date | None
    written_off_on: date | None
    renewal: bool
    rule_version: int
    enrolled_on: date


async def enrolment_rows(
    conn: Conn, pool: asyncpg.Record, bank_org_id: int | None
) -> list[EnrolmentRow]:
    return [
        msgspec.convert(dict(r), EnrolmentRow) for r in await enrolments(conn, pool, bank_org_id)
    ]


# --- claims ----------------------------------------------------------------------------------


class ClaimOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    pool_id: int
    pool_code: str
    bank_org_id: int
    bank_name: str
    loan_id: int
    loan_no: str
    rule_version: int
    timing: str
    status: str
    loss_fen: int
    amount_fen: int
    explanation: list[Line]
    reason: str | None
    filed_by: str
    filed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    paid_at: datetime | None


def claim_out(r: asyncpg.Record) -> ClaimOut:
    return ClaimOut(
        id=r["id"],
        pool_id=r["pool_id"],
        pool_code=r["pool_code"],
        bank_org_id=r["bank_org_id"],
        bank_name=r["bank_name"],
        loan_id=r["loan_id"],
        loan_no=r["loan_no"],
        rule_version=r["rule_version"],
        timing=r["timing"],
        status=r["status"],
        loss_fen=r["loss_fen"],
        amount_fen=r["amount_fen"],
        explanation=lines_of(r["explanation"]),
        reason=r["reason"],
        filed_by=r["filed_by_name"],
        filed_at=r["filed_at"],
        decided_by=r["decided_by_name"],
        decided_at=r["decided_at"],
        paid_at=r["paid_at"],
    )


async def claims(
    conn: Conn,
    org_id: int,
    *,
    pool_id: int | None = None,
    status: str | None = None,
    bank_org_id: int | None = None,
    claim_id: int | None = None,
    limit: int = CLAIMS_LIMIT,
) -> list[ClaimOut]:
    if status is not None and status not in CLAIM_STATUSES:
        raise Invalid("not_a_choice", field="status", value=status)
    rows = await conn.fetch(Q.claims_of_org, org_id, pool_id, status, bank_org_id, limit, claim_id)
    return [claim_out(r) for r in rows]


class Preview(msgspec.Struct, frozen=True, kw_only=True):
    """What approving a filed claim would pay now (the budget or limit may have moved)."""

    eligible: bool
    amount_fen: int
    lines: list[Line]


async def preview(conn: Conn, at: datetime, claim: ClaimOut) -> Preview:
    view = await services.assess_loan(
        conn, at, claim.bank_org_id, claim.loan_id, exclude_claim=claim.id
    )
    a = view.assessment
    return Preview(eligible=a.eligible, amount_fen=a.amount_fen, lines=list(a.lines))


REASON_MAX = 2000
Decision = Literal["approve", "reject"]


class DecisionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    decision: Decision
    reason: Annotated[str, Meta(max_length=REASON_MAX)] = ""


class DecideClaim(DecisionIn, frozen=True, kw_only=True):
    claim_id: int
    pool_id: int | None = None  # the pool the claim is addressed through (the API)


@command(WRITE_POOL)
async def decide_claim(uow: UnitOfWork, data: DecideClaim) -> ClaimOut:
    """Approve (pay or park) or reject a filed claim on one of the manager's pools. The
    amount is computed again now, under the pool lock: the budget or limit may have been
    used since it was filed. The pool row is locked first, then the claim, then the case:
    of two approvals at once the second waits and finds the claim decided (409)."""
    conn = uow.conn
    org = uow.actor.org
    if data.pool_id is not None:
        await services.own_pool(conn, org, data.pool_id)
    claim = await conn.fetchrow(QP.claim_by_id, data.claim_id)
    if claim is None or (data.pool_id is not None and claim["pool_id"] != data.pool_id):
        raise NotFound("not_found")
    pool = await conn.fetchrow(QP.pool_locked, claim["pool_id"])
    if pool is None or pool["org_id"] != org:
        raise NotFound("not_found")
    claim = returned(await conn.fetchrow(QP.claim_locked, data.claim_id))
    if claim["status"] != "filed":
        raise Conflict("claim_decided", status=claim["status"])
    reason = data.reason.strip()
    if data.decision == "reject":
        if not reason:
            raise Invalid("rejection_reason_needed", field="reason")
        out = returned(
            await conn.fetchrow(
                QP.decide_claim,
                data.claim_id,
                "rejected",
                claim["loss_fen"],
                0,
                claim["explanation"],
                reason,
                uow.actor.user_id,
                uow.at,
            )
        )
    else:
        case = await conn.fetchrow(QP.case_of_loan, claim["loan_id"])
        if case is not None:
            await conn.fetchrow(QP.case_locked, case["id"])
        view = await services.assess_loan(
            conn, uow.at, claim["bank_org_id"], claim["loan_id"], exclude_claim=data.claim_id
        )
        a = view.assessment
        if not a.eligible:
            if a.refusal is not None and a.refusal != "claim_nothing_due":
                raise Conflict(a.refusal, **services.refusal(a))
            raise Conflict("claim_no_longer_due")
        status = "parked" if claim["timing"] == "parked" else "paid"
        out = returned(
            await conn.fetchrow(
                QP.decide_claim,
                data.claim_id,
                status,
                a.loss_fen,
                a.amount_fen,
                list(a.lines),
                reason or None,
                uow.actor.user_id,
                uow.at,
            )
        )
        shares = [("fund", pool["org_id"], a.amount_fen), *a.parties]
        for position, (party, org_id, fen) in enumerate(shares):
            await conn.execute(QP.insert_claim_share, data.claim_id, position, party, org_id, fen)
        fund = accounts.pool_fund(pool["id"], pool["org_id"])
        target = (
            accounts.pool_parked(pool["id"], pool["org_id"])
            if status == "parked"
            else accounts.pool_recoverable(pool["id"], pool["org_id"])
        )
        await uow.post(
            source_kind=f"claim_{status}",
            source_id=data.claim_id,
            legs=[ledger.debit(target, a.amount_fen), ledger.credit(fund, a.amount_fen)],
            memo=f"claim {data.claim_id} on loan {claim['loan_id']}: {format_cny(a.amount_fen)}",
        )
    uow.audit(
        "claim.decide",
        "claim",
        data.claim_id,
        before={"status": "filed"},
        after={"status": out["status"], "amount_fen": out["amount_fen"], "reason": reason},
    )
    return (await claims(conn, org, claim_id=data.claim_id, limit=1))[0]


# --- rule versions ---------------------------------------------------------------------------

NOTE_MAX = 2000


class RuleVersionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    version: int
    effective_from: date
    note: str
    rule: dict[str, Any]
    description: list[Line]
    loans: int  # enrolled under this version (they keep it)
    in_force: bool  # the version a loan enrolled today gets
    created_at: datetime
    created_by: str | None


class NewRuleVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rule: dict[str, Any]
    effective_from: date
    note: Annotated[str, Meta(max_length=NOTE_MAX)] = ""


class AddRuleVersion(NewRuleVersion, frozen=True, kw_only=True):
    pool_id: int


async def rule_versions(conn: Conn, pool_id: int, today: date) -> list[RuleVersionOut]:
    current = await conn.fetchrow(QP.rule_in_force, pool_id, today)
    return [
        RuleVersionOut(
            id=r["id"],
            version=r["version"],
            effective_from=r["effective_from"],
            note=r["note"],
            rule=r["rule"],
            description=describe_rule(parse_rule(r["rule"])),
            loans=r["loans"],
            in_force=current is not None and current["id"] == r["id"],
            created_at=r["created_at"],
            created_by=r["created_by_name"],
        )
        for r in await conn.fetch(Q.rule_versions, pool_id)
    ]


@command(WRITE_POOL)
async def add_rule_version(uow: UnitOfWork, data: AddRuleVersion) -> RuleVersionOut:
    """A new rule version of one of the manager's pools, in force from `effective_from`
    (today or later: a version never reaches back; loans enrolled before keep theirs).
    A refused rule names its field as `rule.<path>`. Numbered under the pool row lock, so
    two managers saving at once get two versions, never one number twice."""
    conn = uow.conn
    today = china_today(uow.at)
    await services.own_pool(conn, uow.actor.org, data.pool_id)
    if data.effective_from < today:
        raise Invalid("rule_effective_in_past", field="effective_from", today=today.isoformat())
    try:
        rule = parse_rule(data.rule)
    except Invalid as exc:
        exc.field = f"rule.{exc.field}" if exc.field and exc.field != "rule" else "rule"
        raise
    try:
        row = await services.insert_rule_version(
            uow, data.pool_id, rule, data.effective_from, data.note.strip()
        )
    except Invalid as exc:
        exc.field = f"rule.{exc.field}" if exc.field else "rule"
        raise
    versions = await rule_versions(conn, data.pool_id, today)
    return next(v for v in versions if v.id == row["id"])
