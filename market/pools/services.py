"""Pools, enrolments, compensation claims and receipts: load facts, call the pure rules,
write the outcome in one transaction (issue 6).

Concurrency, by write path:
* rule versions: numbered under the pool row lock, so two managers saving at once get
  versions n+1 and n+2, never the same number;
* enrolment: `UNIQUE (loan_id)` — a loan is enrolled once, whoever clicks first;
* filing a claim: a partial unique index allows one undecided claim per loan;
* deciding a claim: the pool row is locked first (the annual budget and the aggregate
  limit are pool-wide sums, so two approvals must not both see the same room), then the
  claim row, then the case row — the same case lock routing takes, so a receipt and a
  compensation on one loan are applied one after the other, each seeing the other;
* routing a receipt: the case row is locked, the receipt is keyed by its source (unique),
  so a replay finds the first receipt and posts nothing; the ledger entry is keyed too;
* a payout received: the payout row is locked and a statement line can settle a payout
  only once (unique index).
Lock order: pool, claim, case, receipt, payout; a write-off locks the loan, then the
case, then the loan's parked claims (never filed ones, which a decision locks first).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

import asyncpg
import msgspec

from auctions.deposits import CLEARING, forfeit_account, proceeds_account
from auctions.registration import draw
from market import audit, i18n, ledger
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.money import format_cny
from market.pools import accounts
from market.pools.rules import Assessment, ClaimFacts, PoolRule, assess, dump_rule, parse_rule
from market.pools.waterfall import Bearer, CaseState, CostDue, Slice, route

Q = Queries("pools")

# The Chinese part of a message names a status as the pages do (the UI's catalogue).
_zh = i18n.translator("zh")

ReceiptKind = Literal["auction", "fixed_price", "forfeit", "licence_fee", "royalty", "other"]


def transfer_reference(prefix: str = "HK") -> str:
    """What the exchange writes on a payout's transfer: read aloud, so no 0/O, 1/I."""
    return prefix + draw(10)


def _year_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(date(day.year, 1, 1), time(), CHINA)
    return start, datetime.combine(date(day.year + 1, 1, 1), time(), CHINA)


# --- pools and rule versions ---------------------------------------------------------------


async def create_pool(
    conn: Conn,
    *,
    at: datetime,
    org_id: int,
    code: str,
    name: str,
    name_en: str | None,
    capital_fen: int,
    rule: PoolRule,
    effective_from: date,
    actor_user_id: int | None,
) -> asyncpg.Record:
    kind = await conn.fetchval(Q.org_kind, org_id)
    if kind != "pool":
        raise Invalid(
            "资金池须由资金池类机构运营 / a pool is run by a pool organisation", field="org_id"
        )
    row = await conn.fetchrow(Q.insert_pool, org_id, code, name, name_en, capital_fen, at)
    if row is None:
        raise Conflict(
            f"代码为 {code} 的资金池已存在 / a pool with code {code} exists already", field="code"
        )
    await add_rule_version(
        conn,
        at=at,
        pool_id=row["id"],
        rule=rule,
        effective_from=effective_from,
        note="",
        actor_user_id=actor_user_id,
    )
    if capital_fen:
        await ledger.post(
            conn,
            source_kind="pool_capital",
            source_id=row["id"],
            at=at,
            legs=[
                ledger.debit(accounts.pool_fund(row["id"], org_id), capital_fen),
                ledger.credit(accounts.pool_capital(row["id"], org_id), capital_fen),
            ],
            memo=f"pool {code} capital {format_cny(capital_fen)}",
        )
    return row


async def add_rule_version(
    conn: Conn,
    *,
    at: datetime,
    pool_id: int,
    rule: PoolRule,
    effective_from: date,
    note: str,
    actor_user_id: int | None,
) -> asyncpg.Record:
    pool = await conn.fetchrow(Q.pool_locked, pool_id)
    if pool is None:
        raise NotFound("no such pool")
    named = [p.org_id for p in rule.shares if p.org_id is not None]
    if named:
        found = {r["id"] for r in await conn.fetch(Q.orgs_exist, named)}
        for i, party in enumerate(rule.shares):
            if party.org_id is not None and party.org_id not in found:
                raise Invalid(
                    f"不存在 ID 为 {party.org_id} 的机构 / "
                    f"no organisation has the id {party.org_id}",
                    field=f"shares[{i}].org_id",
                )
    row = returned(
        await conn.fetchrow(
            Q.insert_rule_version, pool_id, dump_rule(rule), effective_from, note, actor_user_id, at
        )
    )
    await audit.append(
        conn,
        at=at,
        chain_org_id=pool["org_id"],
        actor_user_id=actor_user_id,
        actor_org_id=pool["org_id"],
        action="pool.rule_version",
        object_kind="pool",
        object_id=pool_id,
        after={
            "version": row["version"],
            "effective_from": effective_from.isoformat(),
            "rule": dump_rule(rule),
        },
    )
    return row


async def own_pool(conn: Conn, org_id: int, pool_id: int) -> asyncpg.Record:
    """A pool manager sees only their own pools: another's is 404, not 403."""
    pool = await conn.fetchrow(Q.pool_by_id, pool_id)
    if pool is None or pool["org_id"] != org_id:
        raise NotFound("no such pool")
    return pool


# --- enrolment -----------------------------------------------------------------------------


async def enrol(
    conn: Conn,
    *,
    at: datetime,
    bank_org_id: int,
    user_id: int,
    loan_id: int,
    pool_code: str,
    renewal: bool,
) -> asyncpg.Record:
    pool_code = pool_code.strip().upper()
    loan = await conn.fetchrow(Q.loan_of_bank, loan_id, bank_org_id)
    if loan is None:
        raise NotFound("no such loan", field="loan_id")
    pool = await conn.fetchrow(Q.pool_by_code, pool_code)
    if pool is None:
        raise Invalid(
            f"没有代码为 {pool_code!r} 的资金池 / no pool has the code {pool_code!r}",
            field="pool_code",
        )
    today = china_today(at)
    version = await conn.fetchrow(Q.rule_in_force, pool["id"], today)
    if version is None:
        raise Invalid(
            f"资金池 {pool_code} 在 {today} 没有生效的补偿规则 / "
            f"pool {pool_code} has no rule in force on {today}",
            field="pool_code",
        )
    rule = parse_rule(version["rule"])
    if rule.max_loan_fen is not None and loan["principal_fen"] > rule.max_loan_fen:
        raise Invalid(
            f"资金池 {pool_code} 只接受本金不超过 {format_cny(rule.max_loan_fen)} 的贷款备案，"
            f"本笔为 {format_cny(loan['principal_fen'])} / "
            f"pool {pool_code} enrols loans up to {format_cny(rule.max_loan_fen)}; "
            f"this one is {format_cny(loan['principal_fen'])}",
            field="loan_id",
        )
    row = await conn.fetchrow(
        Q.insert_enrolment,
        pool["id"],
        version["id"],
        loan_id,
        bank_org_id,
        loan["principal_fen"],
        renewal,
        today,
        user_id,
        at,
    )
    if row is None:
        raise Conflict(
            "该贷款已备案入池 / this loan is enrolled in a pool already", field="loan_id"
        )
    await audit.append(
        conn,
        at=at,
        chain_org_id=bank_org_id,
        actor_user_id=user_id,
        actor_org_id=bank_org_id,
        action="pool.enrol",
        object_kind="loan",
        object_id=loan_id,
        after={"pool": pool_code, "rule_version": version["version"], "renewal": renewal},
    )
    return row


# --- claims ----------------------------------------------------------------------------------


class ClaimView(msgspec.Struct, frozen=True, kw_only=True):
    pool_id: int
    pool_code: str
    enrolment_id: int
    rule_version: int
    rule: PoolRule
    assessment: Assessment


async def _facts(
    conn: Conn,
    at: datetime,
    enrolment: asyncpg.Record,
    loan: asyncpg.Record,
    exclude_claim: int | None,
) -> ClaimFacts:
    today = china_today(at)
    case = await conn.fetchrow(Q.case_of_loan, loan["id"])
    if case is not None:
        claim = (case["claim_costs_fen"], case["claim_interest_fen"], case["claim_principal_fen"])
        got = returned(await conn.fetchrow(Q.recovered_to_claim, case["id"]))
        recovered = got["costs_fen"] + got["interest_fen"] + got["principal_fen"]
    else:
        claim = (0, loan["outstanding_interest_fen"], loan["outstanding_principal_fen"])
        recovered = 0
    totals = returned(
        await conn.fetchrow(Q.bank_totals, enrolment["pool_id"], loan["bank_org_id"], exclude_claim)
    )
    start, end = _year_bounds(today)
    return ClaimFacts(
        today=today,
        npl_since=loan["default_date"],
        loss_realised=loan["written_off_on"] is not None
        or (case is not None and case["status"] == "closed"),
        enrolled_principal_fen=enrolment["enrolled_principal_fen"],
        claim_costs_fen=claim[0],
        claim_interest_fen=claim[1],
        claim_principal_fen=claim[2],
        recovered_fen=recovered,
        already_compensated_fen=await conn.fetchval(
            Q.loan_compensated, enrolment["pool_id"], loan["id"], exclude_claim
        ),
        bank_enrolled_principal_fen=totals["enrolled_fen"],
        bank_compensated_fen=totals["compensated_fen"],
        budget_used_fen=await conn.fetchval(
            Q.budget_used, enrolment["pool_id"], start, end, exclude_claim
        ),
    )


async def assess_loan(
    conn: Conn, at: datetime, bank_org_id: int, loan_id: int, exclude_claim: int | None = None
) -> ClaimView:
    loan = await conn.fetchrow(Q.loan_of_bank, loan_id, bank_org_id)
    if loan is None:
        raise NotFound("no such loan", field="loan_id")
    enrolment = await conn.fetchrow(Q.enrolment_of_loan, loan_id)
    if enrolment is None:
        raise Invalid(
            "该贷款未备案入风险补偿资金池 / this loan is not enrolled in a guarantee pool",
            field="loan_id",
        )
    rule = parse_rule(enrolment["rule"])
    facts = await _facts(conn, at, enrolment, loan, exclude_claim)
    return ClaimView(
        pool_id=enrolment["pool_id"],
        pool_code=enrolment["pool_code"],
        enrolment_id=enrolment["id"],
        rule_version=enrolment["version"],
        rule=rule,
        assessment=assess(rule, facts),
    )


def _lines(assessment: Assessment) -> list[dict[str, str]]:
    return [{"zh": line.zh, "en": line.en} for line in assessment.lines]


async def file_claim(
    conn: Conn, *, at: datetime, bank_org_id: int, user_id: int, loan_id: int
) -> asyncpg.Record:
    view = await assess_loan(conn, at, bank_org_id, loan_id)
    a = view.assessment
    if not a.eligible:
        raise Invalid(a.lines[-1].zh + " / " + a.lines[-1].en, field="loan_id", code="not_eligible")
    row = await conn.fetchrow(
        Q.insert_claim,
        view.pool_id,
        view.enrolment_id,
        loan_id,
        bank_org_id,
        view.rule.timing,
        a.loss_fen,
        a.amount_fen,
        _lines(a),
        user_id,
        at,
    )
    if row is None:
        raise Conflict(
            "该贷款已有补偿申请等待资金池审核 / "
            "a claim on this loan is waiting for the pool's decision",
            field="loan_id",
        )
    await audit.append(
        conn,
        at=at,
        chain_org_id=bank_org_id,
        actor_user_id=user_id,
        actor_org_id=bank_org_id,
        action="claim.file",
        object_kind="claim",
        object_id=row["id"],
        after={"loan_id": loan_id, "amount_fen": a.amount_fen, "loss_fen": a.loss_fen},
    )
    return row


async def decide_claim(
    conn: Conn,
    *,
    at: datetime,
    pool_org_id: int,
    user_id: int,
    claim_id: int,
    approve: bool,
    reason: str,
) -> asyncpg.Record:
    """Approve (pay or park) or reject a filed claim. The amount is computed again now,
    under the pool lock: the budget or limit may have been used since it was filed."""
    claim = await conn.fetchrow(Q.claim_by_id, claim_id)
    if claim is None:
        raise NotFound("no such claim")
    pool = await conn.fetchrow(Q.pool_locked, claim["pool_id"])
    if pool is None or pool["org_id"] != pool_org_id:
        raise NotFound("no such claim")
    claim = returned(await conn.fetchrow(Q.claim_locked, claim_id))
    if claim["status"] != "filed":
        status_zh = _zh(f"bankpool.claim.status.{claim['status']}")
        raise Conflict(
            f"该补偿申请已处理（{status_zh}） / this claim was decided already ({claim['status']})",
            code="decided",
        )
    reason = reason.strip()
    if not approve:
        if not reason:
            raise Invalid(
                "请说明驳回补偿申请的理由 / say why the claim is rejected", field="reason"
            )
        out = returned(
            await conn.fetchrow(
                Q.decide_claim,
                claim_id,
                "rejected",
                claim["loss_fen"],
                0,
                claim["explanation"],
                reason,
                user_id,
                at,
            )
        )
    else:
        case = await conn.fetchrow(Q.case_of_loan, claim["loan_id"])
        if case is not None:
            await conn.fetchrow(Q.case_locked, case["id"])
        view = await assess_loan(
            conn, at, claim["bank_org_id"], claim["loan_id"], exclude_claim=claim_id
        )
        a = view.assessment
        if not a.eligible:
            raise Conflict(
                "按当前数据已无应补偿金额："
                + a.lines[-1].zh
                + " / no compensation is due any more: "
                + a.lines[-1].en,
                field="claim",
                code="not_eligible",
            )
        status = "parked" if claim["timing"] == "parked" else "paid"
        out = returned(
            await conn.fetchrow(
                Q.decide_claim,
                claim_id,
                status,
                a.loss_fen,
                a.amount_fen,
                _lines(a),
                reason or None,
                user_id,
                at,
            )
        )
        shares = [("fund", pool["org_id"], a.amount_fen), *a.parties]
        for position, (party, org_id, fen) in enumerate(shares):
            await conn.execute(Q.insert_claim_share, claim_id, position, party, org_id, fen)
        fund = accounts.pool_fund(pool["id"], pool["org_id"])
        target = (
            accounts.pool_parked(pool["id"], pool["org_id"])
            if status == "parked"
            else accounts.pool_recoverable(pool["id"], pool["org_id"])
        )
        await ledger.post(
            conn,
            source_kind=f"claim_{status}",
            source_id=claim_id,
            at=at,
            legs=[ledger.debit(target, a.amount_fen), ledger.credit(fund, a.amount_fen)],
            memo=f"claim {claim_id} on loan {claim['loan_id']}: {format_cny(a.amount_fen)}",
        )
    await audit.append(
        conn,
        at=at,
        chain_org_id=pool_org_id,
        actor_user_id=user_id,
        actor_org_id=pool_org_id,
        action="claim.decide",
        object_kind="claim",
        object_id=claim_id,
        before={"status": "filed"},
        after={"status": out["status"], "amount_fen": out["amount_fen"], "reason": reason},
    )
    return out


async def write_off(
    conn: Conn, *, at: datetime, bank_org_id: int, user_id: int, loan_id: int, on: date
) -> int:
    """核销: record the write-off; guarantee deposits parked on the loan are paid out.
    Returns how many parked claims were paid."""
    loan = await conn.fetchrow(Q.loan_locked, loan_id, bank_org_id)
    if loan is None:
        raise NotFound("no such loan", field="loan_id")
    if loan["default_date"] is None:
        raise Invalid(
            "只有已违约（不良）的贷款才能核销 / only a defaulted loan can be written off",
            field="loan_id",
        )
    if on > china_today(at):
        raise Invalid(
            "核销日期不能晚于今天 / a write-off date cannot be in the future",
            field="written_off_on",
        )
    if on < loan["default_date"]:
        raise Invalid(
            f"核销日期不得早于违约日（{loan['default_date']}） / "
            f"a loan is written off on or after its default ({loan['default_date']})",
            field="written_off_on",
        )
    if await conn.fetchrow(Q.mark_written_off, loan_id, on, at) is None:
        raise Conflict("该贷款已核销 / this loan was written off already", field="loan_id")
    case = await conn.fetchrow(Q.case_of_loan, loan_id)
    if case is not None:
        await conn.fetchrow(Q.case_locked, case["id"])
    released = 0
    for claim in await conn.fetch(Q.parked_claims_of_loan, loan_id):
        await conn.fetchrow(Q.release_parked, claim["id"], at)
        pool = returned(await conn.fetchrow(Q.pool_by_id, claim["pool_id"]))
        await ledger.post(
            conn,
            source_kind="claim_released",
            source_id=claim["id"],
            at=at,
            legs=[
                ledger.debit(
                    accounts.pool_recoverable(pool["id"], pool["org_id"]), claim["amount_fen"]
                ),
                ledger.credit(
                    accounts.pool_parked(pool["id"], pool["org_id"]), claim["amount_fen"]
                ),
            ],
            memo=f"guarantee deposit of claim {claim['id']} paid out on write-off",
        )
        released += 1
    await audit.append(
        conn,
        at=at,
        chain_org_id=bank_org_id,
        actor_user_id=user_id,
        actor_org_id=bank_org_id,
        action="loan.write_off",
        object_kind="loan",
        object_id=loan_id,
        after={"written_off_on": on.isoformat(), "released_claims": released},
    )
    return released


async def close_case(
    conn: Conn, *, at: datetime, bank_org_id: int, user_id: int, case_id: int
) -> asyncpg.Record:
    """处置终结: the disposal is over, so the loss is realised (claims `after_loss` may follow)."""
    case = await conn.fetchrow(Q.case_locked, case_id)
    if case is None or case["bank_org_id"] != bank_org_id:
        raise NotFound("no such case")
    if case["status"] != "open":
        raise Conflict("该案件已处置终结 / this case is closed already")
    if await conn.fetchval(Q.live_lots_of_case, case_id):
        raise Conflict(
            "该案件仍有拍品在拍卖中或等待付款 / "
            "a lot of this case is still being sold or awaits payment",
            code="lots_live",
        )
    out = returned(await conn.fetchrow(Q.close_case, case_id, at))
    await audit.append(
        conn,
        at=at,
        chain_org_id=bank_org_id,
        actor_user_id=user_id,
        actor_org_id=bank_org_id,
        action="case.close",
        object_kind="case",
        object_id=case_id,
        before={"status": "open"},
        after={"status": "closed"},
    )
    return out


async def add_cost(
    conn: Conn,
    *,
    at: datetime,
    bank_org_id: int,
    user_id: int,
    case_id: int,
    kind: str,
    amount_fen: int,
    memo: str,
) -> asyncpg.Record:
    case = await conn.fetchrow(Q.case_locked, case_id)
    if case is None or case["bank_org_id"] != bank_org_id:
        raise NotFound("no such case")
    if kind not in ("appraisal", "auction", "other"):
        raise Invalid(
            "费用类别须为评估费（appraisal）、拍卖费（auction）或其他（other） / "
            "kind is one of appraisal, auction, other",
            field="kind",
        )
    if amount_fen <= 0:
        raise Invalid("处置费用须为正数 / a cost is a positive amount", field="amount_fen")
    row = returned(
        await conn.fetchrow(
            Q.insert_cost, case_id, kind, bank_org_id, amount_fen, memo, user_id, at
        )
    )
    await audit.append(
        conn,
        at=at,
        chain_org_id=bank_org_id,
        actor_user_id=user_id,
        actor_org_id=bank_org_id,
        action="case.cost",
        object_kind="case",
        object_id=case_id,
        after={"kind": kind, "amount_fen": amount_fen, "memo": memo},
    )
    return row


# --- receipts and the waterfall ----------------------------------------------------------


async def case_state(conn: Conn, case: asyncpg.Record) -> CaseState:
    got = returned(await conn.fetchrow(Q.recovered_to_claim, case["id"]))
    costs = tuple(
        CostDue(
            cost_id=r["id"], payee_org_id=r["payee_org_id"], outstanding_fen=r["outstanding_fen"]
        )
        for r in await conn.fetch(Q.costs_due, case["id"])
        if r["outstanding_fen"] > 0
    )
    bearers = tuple(
        Bearer(
            claim_id=r["claim_id"],
            party=r["party"],
            pool_id=r["pool_id"],
            org_id=r["org_id"],
            bore_fen=r["bore_fen"],
            recovered_fen=r["recovered_fen"],
        )
        for r in await conn.fetch(Q.bearers, case["loan_id"])
    )
    return CaseState(
        bank_org_id=case["bank_org_id"],
        pledgor_id=case["pledgor_id"],
        costs=costs,
        claim_costs_fen=max(0, case["claim_costs_fen"] - got["costs_fen"]),
        claim_interest_fen=max(0, case["claim_interest_fen"] - got["interest_fen"]),
        claim_principal_fen=max(0, case["claim_principal_fen"] - got["principal_fen"]),
        bearers=bearers,
    )


def _payee_key(s: Slice) -> tuple[str, int | str] | None:
    if s.payee_kind == "platform":
        return None
    if s.payee_kind == "pool":
        assert s.pool_id is not None
        return ("pool", s.pool_id)
    if s.payee_kind == "pledgor":
        assert s.pledgor_id is not None
        return ("pledgor", s.pledgor_id)
    if s.payee_kind == "party":
        return (
            ("org", s.payee_org_id)
            if s.payee_org_id is not None
            else ("party", f"{s.claim_id}:{s.party}")
        )
    assert s.payee_org_id is not None
    return ("org", s.payee_org_id)


async def record_receipt(
    conn: Conn,
    *,
    at: datetime,
    case_id: int,
    kind: ReceiptKind,
    source: str,
    amount_fen: int,
    commission_fen: int,
    from_account: ledger.Account,
    lot_id: int | None = None,
) -> asyncpg.Record:
    """Route one receipt through the waterfall, once per `source`, in the caller's
    transaction: distributions, one payout per payee and one balanced ledger entry."""
    if not conn.is_in_transaction():
        raise RuntimeError("record_receipt runs inside the transaction of the change it records")
    case = await conn.fetchrow(Q.case_locked, case_id)
    if case is None:
        raise NotFound("no such case")
    existing = await conn.fetchrow(Q.receipt_by_source, source)
    if existing is not None:
        if existing["amount_fen"] != amount_fen or existing["case_id"] != case_id:
            raise Conflict(
                f"回款 {source} 已入账，金额或案件不同 / "
                f"receipt {source} was recorded already with another amount",
                field="source",
            )
        return existing
    slices = route(amount_fen, commission_fen, await case_state(conn, case))

    # One payout per payee: the transfer the exchange makes, found later on a statement.
    keys = [_payee_key(s) for s in slices]
    payees: dict[tuple[str, int | str], tuple[Slice, int]] = {}
    for key, s in zip(keys, slices, strict=True):
        if key is not None:
            first, fen = payees.get(key, (s, 0))
            payees[key] = (first, fen + s.amount_fen)
    legs = [ledger.debit(from_account, amount_fen)]
    if commission_fen:
        legs.append(ledger.credit(accounts.COMMISSION, commission_fen))
    for key, (s, fen) in payees.items():
        legs.append(ledger.credit(accounts.payable(key[0], key[1], s.payee_org_id), fen))
    posted = await ledger.post(
        conn,
        source_kind="receipt",
        source_id=source,
        at=at,
        legs=legs,
        memo=f"{kind} on case {case['reference']}: {format_cny(amount_fen)}",
    )
    receipt = returned(
        await conn.fetchrow(
            Q.insert_receipt,
            case_id,
            kind,
            source,
            amount_fen,
            commission_fen,
            lot_id,
            posted.entry_id,
            at,
        )
    )
    payout_ids: dict[tuple[str, int | str], int] = {}
    for key, (s, fen) in payees.items():
        for _attempt in range(5):
            pid = await conn.fetchval(
                Q.insert_payout,
                receipt["id"],
                case_id,
                s.payee_kind,
                s.payee_org_id,
                s.pool_id,
                s.pledgor_id,
                s.party if s.payee_kind == "party" else None,
                fen,
                transfer_reference(),
                at,
            )
            if pid is not None:
                payout_ids[key] = pid
                break
        else:
            raise RuntimeError("no free transfer reference after 5 tries")
    await conn.execute(
        Q.insert_distributions,
        receipt["id"],
        list(range(len(slices))),
        [s.step for s in slices],
        [s.payee_kind for s in slices],
        [s.payee_org_id for s in slices],
        [s.pool_id for s in slices],
        [s.claim_id for s in slices],
        [s.party for s in slices],
        [s.cost_id for s in slices],
        [payout_ids.get(k) if k is not None else None for k in keys],
        [s.amount_fen for s in slices],
    )
    return receipt


async def reverse_receipt(
    conn: Conn, *, at: datetime, receipt_id: int, actor_user_id: int | None, reason: str
) -> asyncpg.Record:
    """A receipt that did not really arrive (a bounced transfer): a new, negating ledger
    entry; its distributions stop counting. Refused once any payout of it was received."""
    receipt = await conn.fetchrow(Q.receipt_locked, receipt_id)
    if receipt is None:
        raise NotFound("no such receipt")
    case = returned(await conn.fetchrow(Q.case_locked, receipt["case_id"]))
    if receipt["status"] == "reversed":
        return receipt
    if any(p["status"] == "received" for p in await conn.fetch(Q.payouts_of_receipt, receipt_id)):
        raise Conflict(
            "该回款已有划款到账，不能冲正 / "
            "a payout of this receipt was received already; it cannot be reversed",
            code="paid_out",
        )
    if not reason.strip():
        raise Invalid("请说明冲正原因 / say why the receipt is reversed", field="reason")
    posted = await ledger.reverse(
        conn,
        entry_id=receipt["entry_id"],
        source_kind="receipt_reversed",
        source_id=receipt_id,
        at=at,
        memo=reason,
    )
    out = returned(await conn.fetchrow(Q.mark_receipt_reversed, receipt_id, posted.entry_id, at))
    await conn.execute(Q.mark_payouts_reversed, receipt_id)
    await audit.append(
        conn,
        at=at,
        chain_org_id=case["bank_org_id"],
        actor_user_id=actor_user_id,
        actor_org_id=None,
        action="receipt.reverse",
        object_kind="receipt",
        object_id=receipt_id,
        before={"status": "routed"},
        after={"status": "reversed", "reason": reason},
    )
    return out


async def mark_payout_received(conn: Conn, *, at: datetime, payout_id: int) -> asyncpg.Record:
    """The payee's statement shows the transfer: the money left the exchange's clearing
    account; a pool's recoverable compensation turns back into fund money."""
    payout = await conn.fetchrow(Q.payout_locked, payout_id)
    if payout is None:
        raise NotFound("no such payout")
    if payout["status"] != "expected":
        status_zh = _zh(f"recon.payout.{payout['status']}")
        raise Conflict(
            f"该划款状态为“{status_zh}”，"
            f"不是待到账 / this payout is {payout['status']}, not expected",
            code="not_expected",
        )
    key: tuple[str, int | str]
    if payout["payee_kind"] == "pool":
        key = ("pool", payout["pool_id"])
    elif payout["payee_kind"] == "pledgor":
        key = ("pledgor", payout["pledgor_id"])
    elif payout["payee_org_id"] is not None:
        key = ("org", payout["payee_org_id"])
    else:
        raise Conflict(
            "该收款方在本平台没有机构，无法确认到账 / "
            "this payee has no organisation here to confirm it",
            code="no_payee",
        )
    fen = payout["amount_fen"]
    legs = [
        ledger.debit(accounts.payable(key[0], key[1], payout["payee_org_id"]), fen),
        ledger.credit(CLEARING, fen),
    ]
    if payout["payee_kind"] == "pool":
        pool = returned(await conn.fetchrow(Q.pool_by_id, payout["pool_id"]))
        legs += [
            ledger.debit(accounts.pool_fund(pool["id"], pool["org_id"]), fen),
            ledger.credit(accounts.pool_recoverable(pool["id"], pool["org_id"]), fen),
        ]
    posted = await ledger.post(
        conn,
        source_kind="payout_received",
        source_id=payout_id,
        at=at,
        legs=legs,
        memo=f"transfer {payout['reference']} received",
    )
    return returned(await conn.fetchrow(Q.mark_payout_received, payout_id, at, posted.entry_id))


async def receipt_for_sale(
    conn: Conn, *, at: datetime, sale_id: int, forfeit: bool
) -> asyncpg.Record:
    """The receipt of a paid sale (its price, less the commission) or of a forfeited
    deposit. A forfeited deposit is routed like any receipt: costs first, then the
    creditor — which is where a relist's shortfall would fall (issue 4, 悔拍)."""
    sale = returned(await conn.fetchrow(Q.sale_for_receipt, sale_id))
    if forfeit:
        return await record_receipt(
            conn,
            at=at,
            case_id=sale["case_id"],
            kind="forfeit",
            source=f"forfeit:sale:{sale_id}",
            amount_fen=sale["deposit_fen"],
            commission_fen=0,
            from_account=forfeit_account(sale["lot_id"]),
            lot_id=sale["lot_id"],
        )
    commission = sale["fee_fen"] if sale["fee_kind"] == "commission" else 0
    return await record_receipt(
        conn,
        at=at,
        case_id=sale["case_id"],
        kind="fixed_price" if sale["round"] == 3 else "auction",
        source=f"sale:{sale_id}",
        amount_fen=sale["price_fen"],
        commission_fen=commission,
        from_account=proceeds_account(sale["lot_id"]),
        lot_id=sale["lot_id"],
    )
