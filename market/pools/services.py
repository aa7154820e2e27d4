"""Guarantee pools and the waterfall: the exchange's commands (creating a pool, routing a
receipt) and what the bank's and the pool manager's commands share — loading a claim's
facts and assessing it, a pool's rule versions, a payout received.

The commands of the people: the bank's (enrol, file a claim, write off, record a case
cost, close a case) and the operator's (record and reverse a receipt) are in
market/pools/bank.py; the pool manager's (decide a claim, add a rule version) in
market/pools/dashboard.py. Each loads its facts, calls the pure rules
(market/pools/rules.py, market/pools/waterfall.py) and writes the outcome in its unit of
work, with its audit row and a balanced ledger entry for every movement of money.

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
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from msgspec import Meta

from auctions.deposits import CLEARING, forfeit_account, proceeds_account
from auctions.registration import draw
from market import ledger
from market.accounts.permissions import OPERATE
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.money import MAX_FEN, format_cny
from market.payments import paying
from market.payments.instructions import Payee, owe
from market.payments.policy import POLICY
from market.pools import accounts
from market.pools.models import PoolOut
from market.pools.rules import (
    Assessment,
    ClaimFacts,
    PoolRule,
    assess,
    dump_rule,
    parse_rule,
    validate,
)
from market.pools.waterfall import Bearer, CaseState, CostDue, Slice, route

Q = Queries("pools")

ReceiptKind = Literal[
    "auction", "fixed_price", "forfeit", "licence_fee", "royalty", "other", "acquisition", "equity"
]


def transfer_reference(prefix: str = "HK") -> str:
    """What the exchange writes on a payout's transfer: read aloud, so no 0/O, 1/I."""
    return prefix + draw(10)


def _distinct_references(n: int) -> list[str]:
    """`n` transfer references, none twice (a receipt's payouts are inserted together)."""
    found: set[str] = set()
    while len(found) < n:
        found.add(transfer_reference())
    return list(found)


def _year_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(date(day.year, 1, 1), time(), CHINA)
    return start, datetime.combine(date(day.year + 1, 1, 1), time(), CHINA)


def pool_out(row: asyncpg.Record) -> PoolOut:
    return PoolOut(
        id=row["id"],
        code=row["code"],
        name=row["name"],
        name_en=row["name_en"],
        capital_fen=row["capital_fen"],
    )


# --- pools and rule versions ---------------------------------------------------------------


class NewPool(msgspec.Struct, frozen=True, kw_only=True):
    """A pool the exchange sets up for a pool organisation, with its first rule version."""

    org_id: int
    code: Annotated[str, Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,29}$")]  # as pools_code_check
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    name_en: Annotated[str, Meta(max_length=200)] | None = None
    capital_fen: Annotated[int, Meta(ge=0, le=MAX_FEN)] = 0
    rule: PoolRule
    effective_from: date


@command(OPERATE)  # pools are set up by the exchange
async def create_pool(uow: UnitOfWork, data: NewPool) -> PoolOut:
    """A pool, its first rule version and its capital posted to the fund. Two set-ups of
    one code meet the unique code: the second is refused."""
    conn = uow.conn
    kind = await conn.fetchval(Q.org_kind, data.org_id)
    if kind != "pool":
        raise Invalid("pool_org_not_pool", field="org_id")
    validate(data.rule)
    row = await conn.fetchrow(
        Q.insert_pool, data.org_id, data.code, data.name, data.name_en, data.capital_fen, uow.at
    )
    if row is None:
        raise Conflict("pool_code_taken", field="code", pool_code=data.code)
    await insert_rule_version(uow, row["id"], data.rule, data.effective_from, "")
    if data.capital_fen:
        await uow.post(
            source_kind="pool_capital",
            source_id=row["id"],
            legs=[
                ledger.debit(accounts.pool_fund(row["id"], data.org_id), data.capital_fen),
                ledger.credit(accounts.pool_capital(row["id"], data.org_id), data.capital_fen),
            ],
            memo=f"pool {data.code} capital {format_cny(data.capital_fen)}",
        )
    return pool_out(row)


async def insert_rule_version(
    uow: UnitOfWork, pool_id: int, rule: PoolRule, effective_from: date, note: str
) -> asyncpg.Record:
    """The pool's next rule version, numbered under the pool row lock (locked here), with
    its audit row in the pool organisation's chain."""
    conn = uow.conn
    pool = await conn.fetchrow(Q.pool_locked, pool_id)
    if pool is None:
        raise NotFound("not_found")
    named = [p.org_id for p in rule.shares if p.org_id is not None]
    if named:
        found = {r["id"] for r in await conn.fetch(Q.orgs_exist, named)}
        for i, party in enumerate(rule.shares):
            if party.org_id is not None and party.org_id not in found:
                raise Invalid("rule_org_unknown", field=f"shares[{i}].org_id", org_id=party.org_id)
    row = returned(
        await conn.fetchrow(
            Q.insert_rule_version,
            pool_id,
            dump_rule(rule),
            effective_from,
            note,
            uow.actor.user_id,
            uow.at,
        )
    )
    uow.audit(
        "pool.rule_version",
        "pool",
        pool_id,
        chain_org_id=pool["org_id"],
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
        raise NotFound("not_found")
    return pool


# --- assessing a claim -----------------------------------------------------------------------


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
    """What a claim on one of the bank's enrolled loans is worth at `at` (another bank's
    loan: 404)."""
    loan = await conn.fetchrow(Q.loan_of_bank, loan_id, bank_org_id)
    if loan is None:
        raise NotFound("not_found", field="loan_id")
    enrolment = await conn.fetchrow(Q.enrolment_of_loan, loan_id)
    if enrolment is None:
        raise Invalid("loan_not_enrolled", field="loan_id")
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


def refusal(assessment: Assessment) -> dict[str, Any]:
    """The parameters of an assessment's refusal: those of its last line."""
    return dict(assessment.lines[-1].params) if assessment.lines else {}


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


def _payee(key: tuple[str, int | str], s: Slice) -> Payee:
    """Whom a payout's instruction pays (docs/rules.md §Payments out)."""
    kind, ident = key
    if kind == "pool":
        return Payee(kind="pool", pool_id=int(ident), org_id=s.payee_org_id)
    if kind == "pledgor":
        return Payee(kind="pledgor", pledgor_id=int(ident), org_id=s.payee_org_id)
    if kind == "org":
        return Payee(kind="org", org_id=int(ident))
    return Payee(kind="party", party=s.party or str(ident))


class RouteReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """Money that came back on a case, and the account of the exchange it sits in."""

    case_id: int
    kind: ReceiptKind
    source: str  # what makes it once: `sale:12`, `forfeit:sale:12`, `manual:<reference>`
    amount_fen: int
    commission_fen: int = 0
    from_account: ledger.Account = CLEARING
    lot_id: int | None = None
    # A receipt no cash came in for (docs/rules.md §Acquisition and pledge-to-equity): the
    # bank took the assets or converted its claim, and `from_account` is what it owes the
    # exchange. Its own share is netted (no payout to itself, not in what it owes), and the
    # other payouts are instructed once it paid (`instruct_payouts`), not now.
    owed_by_org_id: int | None = None


class ReceiptRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    case_id: int
    kind: ReceiptKind
    source: str
    amount_fen: int
    commission_fen: int
    status: Literal["routed", "reversed"]
    entry_id: int
    received_at: datetime


def receipt_row(row: asyncpg.Record) -> ReceiptRow:
    return msgspec.convert(dict(row), ReceiptRow)


@command(None)  # receipts are routed by the exchange as the money arrives
async def route_receipt(uow: UnitOfWork, data: RouteReceipt) -> ReceiptRow:
    """Route one receipt through the waterfall, once per `source`: distributions, one
    payout per payee and one balanced ledger entry. The case row is locked first, so
    receipts on one case are routed one after the other, each seeing what the previous
    one paid; a replay of a source waits for the first, finds it and posts nothing."""
    conn = uow.conn
    case = await conn.fetchrow(Q.case_locked, data.case_id)
    if case is None:
        raise NotFound("not_found")
    existing = await conn.fetchrow(Q.receipt_by_source, data.source)
    if existing is not None:
        if existing["amount_fen"] != data.amount_fen or existing["case_id"] != data.case_id:
            raise Conflict("receipt_source_reused", field="source", source=data.source)
        return receipt_row(existing)
    slices = route(data.amount_fen, data.commission_fen, await case_state(conn, case))

    # One payout per payee: the transfer the exchange makes, found later on a statement.
    keys = [_payee_key(s) for s in slices]
    netted = ("org", data.owed_by_org_id) if data.owed_by_org_id is not None else None
    keys = [None if key == netted else key for key in keys]
    payees: dict[tuple[str, int | str], tuple[Slice, int]] = {}
    for key, s in zip(keys, slices, strict=True):
        if key is not None:
            first, fen = payees.get(key, (s, 0))
            payees[key] = (first, fen + s.amount_fen)
    own = sum(s.amount_fen for k, s in zip(keys, slices, strict=True) if k is None)
    own -= data.commission_fen
    legs = [ledger.debit(data.from_account, data.amount_fen)]
    if data.commission_fen:
        legs.append(ledger.credit(accounts.COMMISSION, data.commission_fen))
    for key, (s, fen) in payees.items():
        legs.append(ledger.credit(accounts.payable(key[0], key[1], s.payee_org_id), fen))
    if own and data.owed_by_org_id is not None:
        # The debtor's own share of what it owes is settled in kind in the same entry:
        # credited to it and at once set against its receivable, so the receivable keeps
        # only what it owes others — also when that is nothing (docs/rules.md §Acquisition
        # and pledge-to-equity). A reversal negates the entry whole.
        own_payable = accounts.payable("org", data.owed_by_org_id, data.owed_by_org_id)
        legs += [
            ledger.credit(own_payable, own),
            ledger.debit(own_payable, own),
            ledger.credit(data.from_account, own),
        ]
    posted = await uow.post(
        source_kind="receipt",
        source_id=data.source,
        legs=legs,
        memo=f"{data.kind} on case {case['reference']}: {format_cny(data.amount_fen)}",
    )
    receipt = returned(
        await conn.fetchrow(
            Q.insert_receipt,
            data.case_id,
            data.kind,
            data.source,
            data.amount_fen,
            data.commission_fen,
            data.lot_id,
            posted.entry_id,
            uow.at,
        )
    )
    payout_ids: dict[tuple[str, int | str], int] = {}
    transfer_refs: dict[int, str] = {}
    pending = list(payees.items())
    for _attempt in range(5):
        references = _distinct_references(len(pending))
        made = {
            r["reference"]: r["id"]
            for r in await conn.fetch(
                Q.insert_payouts,
                receipt["id"],
                data.case_id,
                [s.payee_kind for _, (s, _) in pending],
                [s.payee_org_id for _, (s, _) in pending],
                [s.pool_id for _, (s, _) in pending],
                [s.pledgor_id for _, (s, _) in pending],
                [s.party if s.payee_kind == "party" else None for _, (s, _) in pending],
                [fen for _, (_, fen) in pending],
                references,
                uow.at,
            )
        }
        left = []
        for (key, paid), reference in zip(pending, references, strict=True):
            if reference in made:
                payout_ids[key] = made[reference]
                transfer_refs[made[reference]] = reference
            else:  # the reference is another payout's already: a new one next time
                left.append((key, paid))
        pending = left
        if not pending:
            break
    else:
        raise RuntimeError("no free transfer reference after 5 tries")
    if data.owed_by_org_id is None:
        for key, (s, fen) in payees.items():
            await _instruct(
                uow, payout_ids[key], _payee(key, s), fen, transfer_refs[payout_ids[key]]
            )
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
    return receipt_row(receipt)


async def _instruct(
    uow: UnitOfWork, payout_id: int, payee: Payee, fen: int, reference: str
) -> None:
    """The payment instruction of one payout, due within the payments policy's days."""
    await owe(
        uow,
        source=f"payout:{payout_id}",
        purpose="payout",
        payee=payee,
        amount_fen=fen,
        due_at=uow.at + POLICY.payout_within,
        reference=reference,
        payout_id=payout_id,
    )


async def instruct_payouts(uow: UnitOfWork, receipt_id: int) -> list[int]:
    """The payment instructions of a receipt whose payouts waited for the money (one the
    bank owed: `RouteReceipt.owed_by_org_id`), once each; the payout ids."""
    rows = await uow.conn.fetch(Q.payouts_of_receipt, receipt_id)
    for r in rows:
        if r["payee_kind"] == "pool":
            payee = Payee(kind="pool", pool_id=r["pool_id"], org_id=r["payee_org_id"])
        elif r["payee_kind"] == "pledgor":
            payee = Payee(kind="pledgor", pledgor_id=r["pledgor_id"], org_id=r["payee_org_id"])
        elif r["payee_org_id"] is not None:
            payee = Payee(kind="org", org_id=r["payee_org_id"])
        else:
            payee = Payee(kind="party", party=r["party"])
        await _instruct(uow, r["id"], payee, r["amount_fen"], r["reference"])
    return [r["id"] for r in rows]


class SaleReceipt(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: int
    forfeit: bool = False  # the buyer's forfeited deposit, not the price


@command(None)  # run by the exchange when a sale is paid or its deposit forfeited
async def route_sale_receipt(uow: UnitOfWork, data: SaleReceipt) -> ReceiptRow:
    """The receipt of a paid sale (its price, less the commission) or of a forfeited
    deposit, routed once per sale (`route_receipt`). A forfeited deposit is routed like
    any receipt: costs first, then the creditor — which is where a relist's shortfall
    would fall (docs/rules.md §After the close)."""
    sale = returned(await uow.conn.fetchrow(Q.sale_for_receipt, data.sale_id))
    if data.forfeit:
        return await route_receipt(
            uow,
            RouteReceipt(
                case_id=sale["case_id"],
                kind="forfeit",
                source=f"forfeit:sale:{data.sale_id}",
                amount_fen=sale["deposit_fen"],
                from_account=forfeit_account(sale["lot_id"]),
                lot_id=sale["lot_id"],
            ),
        )
    commission = sale["fee_fen"] if sale["fee_kind"] == "commission" else 0
    return await route_receipt(
        uow,
        RouteReceipt(
            case_id=sale["case_id"],
            kind="fixed_price" if sale["round"] == 3 else "auction",
            source=f"sale:{data.sale_id}",
            amount_fen=sale["price_fen"],
            commission_fen=commission,
            from_account=proceeds_account(sale["lot_id"]),
            lot_id=sale["lot_id"],
        ),
    )


async def mark_payout_received(
    conn: Conn, *, at: datetime, payout_id: int, received_fen: int | None = None
) -> asyncpg.Record:
    """The payee's statement shows the transfer. The money left the exchange's clearing
    account: that posting (Dr payable, Cr clearing) is the payout's instruction's, made
    once whichever statement shows it first — the payee's here, or the clearing account's
    outgoing line (market/payments/paying.py `mark_paid`); a pool's recoverable
    compensation then turns back into fund money (`payout_received`). A short receipt
    (`received_fen` less than the payout, market/pools/shortfalls.py) brings the fund what
    arrived and leaves the rest outstanding in `pool:N:shortfall`. Runs in the
    transaction of the change that saw the statement line; the payout row is locked, then
    its instruction (the clearing import's order too), so a payout is received once and
    its money leaves the clearing account once."""
    payout = await conn.fetchrow(Q.payout_locked, payout_id)
    if payout is None:
        raise NotFound("not_found")
    if payout["status"] != "expected":
        raise Conflict("payout_not_outstanding", status=payout["status"])
    if payout["payee_kind"] not in ("pool", "pledgor") and payout["payee_org_id"] is None:
        raise Conflict("payout_payee_not_here")
    entry_id = await paying.payout_left_clearing(conn, at=at, payout=payout)
    if payout["payee_kind"] == "pool":
        fen = payout["amount_fen"]
        seen = fen if received_fen is None else received_fen
        if not 0 < seen <= fen:
            raise ValueError(f"payout {payout_id}: received {seen} of {fen}")
        pool = returned(await conn.fetchrow(Q.pool_by_id, payout["pool_id"]))
        posted = await ledger.post(
            conn,
            source_kind="payout_received",
            source_id=payout_id,
            at=at,
            legs=[
                ledger.debit(accounts.pool_fund(pool["id"], pool["org_id"]), seen),
                ledger.debit(accounts.pool_shortfall(pool["id"], pool["org_id"]), fen - seen),
                ledger.credit(accounts.pool_recoverable(pool["id"], pool["org_id"]), fen),
            ],
            memo=f"transfer {payout['reference']} received"
            + ("" if seen == fen else f", {fen - seen} fen short"),
        )
        entry_id = posted.entry_id
    return returned(await conn.fetchrow(Q.mark_payout_received, payout_id, at, entry_id))
