"""Hypothesis over random rules, losses and receipts (docs/rules.md §The waterfall):
postings always balance; what goes out equals what came in; no party receives more than it
bore; a pool never gets back more than it paid; replaying a receipt changes nothing.

Two levels: the pure waterfall and rules, thousands of cases a second, with compensation
paid at random moments between receipts; and the same through the commands against real
PostgreSQL (fewer cases), where the ledger and the payouts are checked too.
"""

from __future__ import annotations

from datetime import date

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.clock import FrozenClock
from market.pools import services
from market.pools.rules import ClaimFacts, assess, parse_rule
from market.pools.waterfall import Bearer, CaseState, CostDue, route
from tests.pools.scene import claim_and_pay, make_loan, make_pool, receive

fen = st.integers(min_value=0, max_value=5_000_000_00)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, object]:
    others = draw(st.lists(st.integers(0, 100), max_size=3))
    shares = [
        {"name": "fund", "weight": draw(st.integers(1, 100))},
        {"name": "bank", "weight": draw(st.integers(0, 100))},
        *({"name": f"party{i}", "weight": w} for i, w in enumerate(others)),
    ]
    rule: dict[str, object] = {"shares": shares, "timing": "advance", "wait_days": 1}
    if draw(st.booleans()):
        rule["cap_per_loan_fen"] = draw(fen)
    if draw(st.booleans()):
        rule["basis"] = "principal_loss"
    return rule


# --- pure ---------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    rule=rules(),
    claim=st.tuples(fen, fen, st.integers(1, 5_000_000_00)),
    costs=st.lists(st.integers(1, 10_000_00), max_size=2),
    events=st.lists(
        st.one_of(
            st.just("compensate"), st.tuples(st.integers(1, 3_000_000_00), st.integers(0, 100))
        ),
        max_size=8,
    ),
)
def test_pure_waterfall_never_over_pays(
    rule: dict[str, object],
    claim: tuple[int, int, int],
    costs: list[int],
    events: list[object],
) -> None:
    parsed = parse_rule(rule)
    owed = {"claim_costs": claim[0], "claim_interest": claim[1], "claim_principal": claim[2]}
    cost_left = dict(enumerate(costs))
    bearers: list[Bearer] = []
    recovered: dict[int, int] = {}
    compensated = 0
    to_claim = 0
    for n, event in enumerate(events):
        if event == "compensate":
            facts = ClaimFacts(
                today=date(2026, 6, 1),
                npl_since=date(2026, 1, 1),
                loss_realised=False,
                enrolled_principal_fen=claim[2],
                claim_costs_fen=claim[0],
                claim_interest_fen=claim[1],
                claim_principal_fen=claim[2],
                recovered_fen=to_claim,
                already_compensated_fen=compensated,
                bank_enrolled_principal_fen=claim[2],
                bank_compensated_fen=compensated,
                budget_used_fen=0,
            )
            a = assess(parsed, facts)
            assert a.amount_fen <= a.loss_fen
            if a.eligible:
                compensated += a.amount_fen
                for party, _org, amount in (("fund", None, a.amount_fen), *a.parties):
                    bearers.append(
                        Bearer(
                            claim_id=n,
                            party=party,
                            pool_id=1 if party == "fund" else None,
                            org_id=None,
                            bore_fen=amount,
                            recovered_fen=0,
                        )
                    )
            continue
        assert isinstance(event, tuple)
        amount, commission_pct = event
        commission = amount * commission_pct // 1000
        state = CaseState(
            bank_org_id=1,
            pledgor_id=1,
            costs=tuple(
                CostDue(cost_id=i, payee_org_id=1, outstanding_fen=left)
                for i, left in cost_left.items()
                if left
            ),
            claim_costs_fen=owed["claim_costs"],
            claim_interest_fen=owed["claim_interest"],
            claim_principal_fen=owed["claim_principal"],
            bearers=tuple(
                Bearer(
                    claim_id=b.claim_id,
                    party=b.party,
                    pool_id=b.pool_id,
                    org_id=None,
                    bore_fen=b.bore_fen,
                    recovered_fen=recovered.get(i, 0),
                )
                for i, b in enumerate(bearers)
            ),
        )
        slices = route(amount, commission, state)
        assert sum(s.amount_fen for s in slices) == amount  # what goes out = what came in
        assert all(s.amount_fen > 0 for s in slices)
        assert sum(s.amount_fen for s in slices if s.step == "commission") == commission
        for s in slices:
            if s.step == "cost":
                assert s.cost_id is not None
                cost_left[s.cost_id] -= s.amount_fen
                assert cost_left[s.cost_id] >= 0
            elif s.step.startswith("claim_"):
                owed[s.step] -= s.amount_fen
                to_claim += s.amount_fen
                assert owed[s.step] >= 0
                if s.payee_kind != "bank":
                    i = next(
                        i
                        for i, b in enumerate(bearers)
                        if b.claim_id == s.claim_id and b.party == s.party
                    )
                    recovered[i] = recovered.get(i, 0) + s.amount_fen
                    assert recovered[i] <= bearers[i].bore_fen  # never more than it bore
            elif s.step == "surplus":  # only once costs and claim are paid in full
                assert not any(cost_left.values()) and not any(owed.values())
    # The bank never ends up with more than its claim: what it got back from receipts plus
    # the compensation paid to it.
    bank_back = to_claim - sum(recovered.values())
    assert bank_back + sum(b.bore_fen for b in bearers) <= sum(claim)


# --- through the services, against PostgreSQL -------------------------------------------------


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rule=rules(),
    principal=st.integers(1_000_00, 50_000_000_00),
    interest=st.integers(0, 1_000_000_00),
    receipts=st.lists(
        st.tuples(st.integers(1, 30_000_000_00), st.integers(0, 50), st.booleans()),
        min_size=1,
        max_size=5,
    ),
)
async def test_services_balance_and_replay(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    rule: dict[str, object],
    principal: int,
    interest: int,
    receipts: list[tuple[int, int, bool]],
) -> None:
    clock.set(clock.now().replace(year=2026, month=3, day=1))
    p = await make_pool(pool, clock.now(), rule)
    loan = await make_loan(
        pool,
        clock.now(),
        principal_fen=principal,
        interest_fen=interest,
        default_date=date(2026, 1, 1),
        enrol_in=p,
    )
    routed = []
    for n, (amount, commission_pct, compensate_first) in enumerate(receipts):
        if compensate_first and n == 0:
            async with pool.acquire() as conn:
                view = await services.assess_loan(conn, clock.now(), loan.bank_org, loan.loan_id)
            if view.assessment.eligible:
                await claim_and_pay(pool, clock.now(), loan, p)
        source = f"prop:{loan.case_id}:{n}"
        r = await receive(
            pool,
            clock.now(),
            loan.case_id,
            amount,
            commission_fen=amount * commission_pct // 1000,
            source=source,
        )
        routed.append((source, amount, r.id))

    # Postings balance, overall and per entry.
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_legs GROUP BY entry_id HAVING sum(amount_fen) <> 0) x"
        )
        == 0
    )
    for _source, amount, receipt_id in routed:
        # What goes out equals what came in: distributions, and payouts plus commission.
        assert (
            await pool.fetchval(
                "SELECT sum(amount_fen) FROM distributions WHERE receipt_id=$1", receipt_id
            )
            == amount
        )
        assert (
            await pool.fetchval(
                "SELECT coalesce((SELECT sum(amount_fen) FROM payouts WHERE receipt_id=$1), 0)"
                " + commission_fen FROM receipts WHERE id=$1",
                receipt_id,
            )
            == amount
        )
    # No bearer gets back more than it bore; the pool never more than it paid.
    over = await pool.fetch(
        "SELECT s.claim_id, s.party, s.amount_fen, sum(d.amount_fen) AS back FROM claim_shares s"
        " JOIN distributions d ON d.claim_id = s.claim_id AND d.party = s.party"
        " GROUP BY 1, 2, 3 HAVING sum(d.amount_fen) > s.amount_fen"
    )
    assert over == []
    paid = await pool.fetchval(
        "SELECT coalesce(sum(amount_fen), 0) FROM compensation_claims WHERE pool_id=$1 AND status='paid'",
        p.pool_id,
    )
    back = await pool.fetchval(
        "SELECT coalesce(sum(amount_fen), 0) FROM payouts WHERE pool_id=$1", p.pool_id
    )
    assert back <= paid
    # The creditor's claim is never over-paid; only then is there a surplus.
    to_claim = await pool.fetchval(
        "SELECT coalesce(sum(d.amount_fen), 0) FROM distributions d JOIN receipts r ON r.id = d.receipt_id"
        " WHERE r.case_id = $1 AND d.step LIKE 'claim_%'",
        loan.case_id,
    )
    surplus = await pool.fetchval(
        "SELECT coalesce(sum(d.amount_fen), 0) FROM distributions d JOIN receipts r ON r.id = d.receipt_id"
        " WHERE r.case_id = $1 AND d.step = 'surplus'",
        loan.case_id,
    )
    assert to_claim <= principal + interest
    assert surplus == 0 or to_claim == principal + interest

    # Replaying every receipt changes nothing.
    entries = await pool.fetchval("SELECT count(*) FROM ledger_entries")
    legs = await pool.fetchval("SELECT count(*) FROM ledger_legs")
    for source, amount, receipt_id in routed:
        again = await receive(pool, clock.now(), loan.case_id, amount, source=source)
        assert again.id == receipt_id
    assert await pool.fetchval("SELECT count(*) FROM ledger_entries") == entries
    assert await pool.fetchval("SELECT count(*) FROM ledger_legs") == legs
