"""Hypothesis over the disposal paths of one case (docs/rules.md §The waterfall, §Moving
between paths): whatever sequence of recoveries the paths bring — an auction's price, a
forfeited deposit, a fixed-price sale, royalties from a licence, a non-cash receipt into
another account, the bank's own acquisition at an agreed price or pledge-to-equity (no
cash: the bank owes the pools their shares), each perhaps reversed (a bounced transfer,
a sale unwound) or replayed, with the pool's compensation paid at any moment between them —
every source is routed exactly once (a replay posts nothing), what was routed equals what
was received, and no pool gets back more than it paid on the loan. Against real
PostgreSQL, through `route_receipt` (market/pools/services.py), as the paths call it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime

import asyncpg
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from auctions.deposits import forfeit_account, proceeds_account
from market.acquisition.agreement import receivable
from market.clock import FrozenClock
from market.ledger import Account
from market.pools import services
from market.pools.services import CLEARING
from tests.pools.scene import (
    ZHONGSHAN,
    as_exchange,
    claim_and_pay,
    make_loan,
    make_pool,
    reverse,
    write_off,
)

_lot = itertools.count(1)

amount = st.integers(1, 20_000_000_00)
permille = st.integers(0, 50)  # the commission, ‰ of the price (at most 5 %)
pick = st.integers(0, 20)
EVENT = st.one_of(
    st.tuples(st.just("auction"), amount, permille),
    st.tuples(st.just("forfeit"), st.integers(1, 2_000_000_00)),
    st.tuples(st.just("fixed_price"), amount, permille),
    st.tuples(st.just("royalty"), st.integers(1, 500_000_00)),
    st.tuples(st.just("non_cash"), amount),
    st.tuples(st.sampled_from(["acquisition", "equity"]), amount),
    st.tuples(st.just("reverse"), pick),
    st.tuples(st.just("replay"), pick),
    st.tuples(st.just("compensate")),
)
RULES = st.sampled_from(
    [
        ZHONGSHAN,
        {"shares": [{"name": "fund", "weight": 40}, {"name": "bank", "weight": 60}]},
        {
            "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
            "cap_per_loan_fen": 2_000_000_00,
        },
        {
            "shares": [{"name": "fund", "weight": 55}, {"name": "bank", "weight": 45}],
            "timing": "advance",
            "wait_days": 1,
        },
    ]
)


@dataclass
class Routed:
    source: str
    receipt_id: int
    amount_fen: int
    reversed: bool = False


@dataclass
class Model:
    routed: list[Routed] = field(default_factory=list)


async def _lot_on(pool: asyncpg.Pool, case_id: int, bank_org_id: int, at: datetime) -> int:
    """The case's lot, sold: the accounts of its price and its forfeited deposit."""
    n = next(_lot)
    return int(
        await pool.fetchval(
            "INSERT INTO lots (case_id, bank_org_id, reference, title, status, round,"
            " valuation_fen, start_price_fen, deposit_fen, increment_fen, first_start_fen,"
            " terms, created_at, updated_at) VALUES ($1, $2, $3, '专利包', 'sold', 2,"
            " 100000000, 70000000, 7000000, 500000, 70000000, '{}', $4, $4) RETURNING id",
            case_id,
            bank_org_id,
            f"LOT-P-{case_id}-{n}",
            at,
        )
    )


async def _entries(pool: asyncpg.Pool) -> tuple[int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM ledger_entries"),
        await pool.fetchval("SELECT count(*) FROM ledger_legs"),
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rule=RULES,
    principal=st.integers(1_000_00, 30_000_000_00),
    interest=st.integers(0, 1_000_000_00),
    events=st.lists(EVENT, min_size=1, max_size=8),
    compensate_before=st.none() | st.integers(0, 7),
)
# Before any compensation the bank bore the whole loss: its own acquisition owes nobody
# anything (its whole share settled in kind), then one after the pool paid, reversed.
@example(
    rule=ZHONGSHAN,
    principal=1_000_000_00,
    interest=0,
    events=[("acquisition", 500_000_00), ("compensate",), ("equity", 300_000_00), ("reverse", 1)],
    compensate_before=None,
)
async def test_any_sequence_of_paths_routes_each_source_once_and_never_over_pays_a_pool(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    rule: dict[str, object],
    principal: int,
    interest: int,
    events: list[tuple[object, ...]],
    compensate_before: int | None,
) -> None:
    clock.set(clock.now().replace(year=2026, month=3, day=1))
    at = clock.now()
    p = await make_pool(pool, at, rule)
    loan = await make_loan(
        pool,
        at,
        principal_fen=principal,
        interest_fen=interest,
        default_date=date(2026, 1, 1),
        enrol_in=p,
    )
    case = loan.case_id
    lot = await _lot_on(pool, case, loan.bank_org, at)
    non_cash = Account(f"non_cash:case:{case}", "asset", f"非现金受偿（案件 {case}）")
    model = Model()
    compensated = False

    async def route(source: str, kind: str, fen: int, **extra: object) -> None:
        data = services.RouteReceipt(
            case_id=case,
            kind=kind,
            source=source,
            amount_fen=fen,
            **extra,  # type: ignore[arg-type]
        )
        receipt = await as_exchange(pool, at, services.route_receipt, data)
        model.routed.append(Routed(source, receipt.id, fen))

    async def compensate() -> bool:
        """The bank claims and the pool pays; a rule that pays after the loss needs the
        loan written off first (docs/rules.md §Guarantee pools)."""
        async with pool.acquire() as conn:
            view = await services.assess_loan(conn, at, loan.bank_org, loan.loan_id)
        if view.assessment.refusal == "claim_loss_not_realised":
            await write_off(pool, at, loan, date(2026, 2, 1))
            async with pool.acquire() as conn:
                view = await services.assess_loan(conn, at, loan.bank_org, loan.loan_id)
        if not view.assessment.eligible:
            return False
        await claim_and_pay(pool, at, loan, p)
        event("compensated between receipts")
        return True

    for n, step in enumerate(events):
        if n == compensate_before and not compensated:
            compensated = await compensate()
        match step:
            case ("auction" | "fixed_price") as kind, int(fen), int(pm):
                # As route_sale_receipt routes a paid sale: its price from the lot's
                # proceeds, less the commission.
                await route(
                    f"sale:{case}:{n}",
                    kind,
                    fen,
                    commission_fen=fen * pm // 1000,
                    from_account=proceeds_account(lot),
                    lot_id=lot,
                )
            case "forfeit", int(fen):
                await route(
                    f"forfeit:sale:{case}:{n}",
                    "forfeit",
                    fen,
                    from_account=forfeit_account(lot),
                    lot_id=lot,
                )
            case "royalty", int(fen):
                await route(f"royalty:{case}:{n}", "royalty", fen, from_account=CLEARING)
            case "non_cash", int(fen):
                await route(f"non_cash:{case}:{n}", "other", fen, from_account=non_cash)
            case ("acquisition" | "equity") as kind, int(fen):
                # As the bank's own agreed disposal completes: no cash, the bank owes the
                # pools their shares (its own netted) — docs/rules.md §Acquisition and
                # pledge-to-equity.
                await route(
                    f"{kind}:{case}:{n}",
                    kind,
                    fen,
                    from_account=receivable(n, loan.bank_org),
                    owed_by_org_id=loan.bank_org,
                )
            case "reverse", int(i) if model.routed:
                target = model.routed[i % len(model.routed)]
                await reverse(pool, at, target.receipt_id, "付款退回")
                target.reversed = True
                event("a receipt reversed")
            case "replay", int(i) if model.routed:
                target = model.routed[i % len(model.routed)]
                before = await _entries(pool)
                again = await as_exchange(
                    pool,
                    at,
                    services.route_receipt,
                    services.RouteReceipt(
                        case_id=case,
                        kind="other",
                        source=target.source,
                        amount_fen=target.amount_fen,
                    ),
                )
                assert again.id == target.receipt_id  # the first receipt, found
                assert await _entries(pool) == before  # and nothing posted
                event("a source replayed")
            case ("compensate",) if not compensated:
                compensated = await compensate()
            case _:
                pass

    # Every source routed exactly once: one receipt, one posting.
    rows = await pool.fetch(
        "SELECT source, id, amount_fen, status FROM receipts WHERE case_id = $1", case
    )
    assert sorted(r["source"] for r in rows) == sorted(r.source for r in model.routed)
    assert {r["source"]: r["id"] for r in rows} == {r.source: r.receipt_id for r in model.routed}
    postings = await pool.fetch(
        "SELECT source_id, count(*) AS n FROM ledger_entries WHERE source_kind = 'receipt'"
        " AND source_id = ANY($1::text[]) GROUP BY source_id",
        [r.source for r in model.routed],
    )
    assert {r["source_id"]: r["n"] for r in postings} == {r.source: 1 for r in model.routed}
    status = {r["id"]: r["status"] for r in rows}
    assert all(
        status[r.receipt_id] == ("reversed" if r.reversed else "routed") for r in model.routed
    )

    # The ledger balances, overall and per entry.
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
    unbalanced = await pool.fetchval(
        "SELECT count(*) FROM (SELECT entry_id FROM ledger_legs GROUP BY entry_id"
        " HAVING sum(amount_fen) <> 0) x"
    )
    assert unbalanced == 0

    # What was routed equals what was received: each receipt's distributions and its
    # payouts plus commission; over the case, the receipts that stand.
    standing = [r for r in model.routed if not r.reversed]
    for r in model.routed:
        distributed = await pool.fetchval(
            "SELECT coalesce(sum(amount_fen), 0) FROM distributions WHERE receipt_id = $1",
            r.receipt_id,
        )
        assert distributed == r.amount_fen
        paid = await pool.fetchval(
            "SELECT coalesce((SELECT sum(amount_fen) FROM payouts WHERE receipt_id = $1), 0)"
            " + commission_fen FROM receipts WHERE id = $1",
            r.receipt_id,
        )
        # A debtor bank's own share of an agreed disposal is settled in kind, no payout.
        netted = await pool.fetchval(
            "SELECT coalesce(sum(d.amount_fen), 0) FROM distributions d"
            " JOIN receipts r ON r.id = d.receipt_id"
            " WHERE d.receipt_id = $1 AND r.kind IN ('acquisition', 'equity')"
            " AND d.payout_id IS NULL AND d.payee_org_id = $2",
            r.receipt_id,
            loan.bank_org,
        )
        assert paid + netted == r.amount_fen
        if r.reversed:  # none of its payouts is still owed
            assert not await pool.fetchval(
                "SELECT count(*) FROM payouts WHERE receipt_id = $1 AND status <> 'reversed'",
                r.receipt_id,
            )
    total = await pool.fetchval(
        "SELECT coalesce(sum(d.amount_fen), 0) FROM distributions d"
        " JOIN receipts r ON r.id = d.receipt_id WHERE r.case_id = $1 AND r.status = 'routed'",
        case,
    )
    assert total == sum(r.amount_fen for r in standing)

    # No pool gets back more than it paid on the loan; no bearer more than it bore.
    paid_by_pool = await pool.fetchval(
        "SELECT coalesce(sum(amount_fen), 0) FROM compensation_claims"
        " WHERE pool_id = $1 AND loan_id = $2 AND status = 'paid'",
        p.pool_id,
        loan.loan_id,
    )
    back_to_pool = await pool.fetchval(
        "SELECT coalesce(sum(y.amount_fen), 0) FROM payouts y JOIN receipts r ON r.id = y.receipt_id"
        " WHERE y.pool_id = $1 AND r.case_id = $2 AND r.status = 'routed'",
        p.pool_id,
        case,
    )
    assert back_to_pool <= paid_by_pool
    event("the pool was paid back" if back_to_pool else "the pool got nothing back")
    if not compensated:
        assert back_to_pool == 0
    over = await pool.fetch(
        "SELECT s.claim_id, s.party FROM claim_shares s JOIN distributions d"
        " ON d.claim_id = s.claim_id AND d.party = s.party JOIN receipts r ON r.id = d.receipt_id"
        " WHERE r.status = 'routed' GROUP BY s.claim_id, s.party, s.amount_fen"
        " HAVING sum(d.amount_fen) > s.amount_fen"
    )
    assert over == []
