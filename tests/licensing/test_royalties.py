"""Royalties for years (docs/rules.md §Licensing royalties): the worked example computed by
hand and pinned to the fen — a reverse licence's royalties, one paid late with interest,
each receipt routed through the waterfall to a Zhongshan pool — then properties, the
schedule's edge cases and the licensee's sales report CSV.

Amounts in fen: CNY 1 = 100 fen, CNY 250,000 = 25_000_000 fen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import i18n
from market.errors import Invalid, LineProblem
from market.licensing.royalties import (
    Installment,
    Payment,
    Reminder,
    RoyaltyTerms,
    SalesLine,
    arrears_interest,
    due_for,
    minimum_for_year,
    parse_sales_report_csv,
    parse_terms,
    periods,
    schedule,
    standing,
)
from market.pools.rules import ClaimFacts, assess, parse_rule
from market.pools.waterfall import Bearer, CaseState, Slice, Step, route
from tests.pools.scene import ZHONGSHAN, claim_and_pay, make_loan, make_pool, receive, write_off

# --- the worked example -------------------------------------------------------------------
#
# A bank lent CNY 3,000,000 to a Zhongshan optoelectronics firm against its invention
# patents; the loan defaulted owing the principal and CNY 120,000 of interest. The bank
# wrote it off and the Zhongshan pool compensated the loss shared fund : bank : insurer :
# evaluator = 54 : 26 : 16 : 4 (DOMAIN.md §Pools). To keep the firm producing, the patents
# are licensed back to it (反向许可) for five years: 6 % of net sales, at least CNY 250,000
# a year, paid yearly — every royalty is a recovery on the case.

TERMS = RoyaltyTerms(
    start=date(2026, 1, 1),
    end=date(2030, 12, 31),
    period="yearly",
    royalty_rate_bp=600,
    minimum_annual_fen=25_000_000,
    # the defaults: 4.5 % a year late-payment interest, 30 grace days, report 15 and
    # payment 30 days after the period ends
)

# The licensee's report of its first three years, as it uploads it.
REPORT_CSV = (
    "期间,净销售额(元),数量\r\n"
    '2026年度,"5,213,456.78",0\r\n'
    '2027,"3,456,789.01",0\r\n'
    "2028,6100000.50,0\r\n"
).encode()

# The principal and interest of the bank's claim; the compensation 54 : 26 : 16 : 4 of the
# loss 3,120,000: fund 1,684,800; bank 811,200; insurer 499,200; evaluator 124,800.
CLAIM_PRINCIPAL = 300_000_000
CLAIM_INTEREST = 12_000_000
FUND, BANK, INSURER, EVALUATOR = 168_480_000, 81_120_000, 49_920_000, 12_480_000


def test_the_worked_example_royalties_interest_and_standing() -> None:
    assert [(p.label, p.start, p.end, p.report_due, p.payment_due) for p in periods(TERMS)] == [
        (str(y), date(y, 1, 1), date(y, 12, 31), date(y + 1, 1, 15), date(y + 1, 1, 30))
        for y in range(2026, 2031)
    ]
    reports = parse_sales_report_csv(REPORT_CSV, terms=TERMS)
    assert reports == [
        SalesLine(period="2026", net_sales_fen=521_345_678, units=0, line=2),
        SalesLine(period="2027", net_sales_fen=345_678_901, units=0, line=3),
        SalesLine(period="2028", net_sales_fen=610_000_050, units=0, line=4),
    ]
    items = schedule(TERMS, reports)
    dues = [
        (i.period.label, i.due and (i.due.running_fen, i.due.top_up_fen, i.due.total_fen))
        for i in items
    ]
    assert dues == [
        # 5,213,456.78 × 6 % = 312,807.4068 → 312,807.41, above the minimum
        ("2026", (31_280_741, 0, 31_280_741)),
        # 3,456,789.01 × 6 % = 207,407.3406 → 207,407.34; the top-up to 250,000 is 42,592.66
        ("2027", (20_740_734, 4_259_266, 25_000_000)),
        # 6,100,000.50 × 6 % = 366,000.03 exactly
        ("2028", (36_600_003, 0, 36_600_003)),
        ("2029", None),  # not reported yet
        ("2030", None),
    ]

    # 2026 paid two days early, 2027 on its payment date, 2028 45 days late: 31 January is
    # the first day late, 28 days of February 2029, then 16 of March.
    paid = [
        Payment(paid_on=date(2027, 1, 28), amount_fen=31_280_741, period="2026"),
        Payment(paid_on=date(2028, 1, 30), amount_fen=25_000_000, period="2027"),
    ]
    assert arrears_interest(25_000_000, date(2028, 1, 30), date(2028, 1, 30), TERMS) == 0
    # 366,000.03 × 4.5 % × 45 / 365 = 2,030.548… → 2,030.55
    assert arrears_interest(36_600_003, date(2029, 1, 30), date(2029, 3, 16), TERMS) == 203_055

    # On 5 March 2029 the 2028 royalty is 34 days late: interest so far 366,000.03 × 4.5 %
    # × 34 / 365 = 1,534.19; past the 30 grace days the bank may terminate; the reminders
    # of the day after, mid grace and five days before the grace ends are owed.
    before = standing(items, paid, date(2029, 3, 5), terms=TERMS)
    y2028 = before.periods[2]
    assert (y2028.due_fen, y2028.paid_fen, y2028.outstanding_fen) == (36_600_003, 0, 36_600_003)
    assert (y2028.days_late, y2028.interest_fen, y2028.may_terminate) == (34, 153_419, True)
    assert y2028.reminders == (
        Reminder(about="payment", when="after", days=1, on=date(2029, 1, 31)),
        Reminder(about="payment", when="after", days=15, on=date(2029, 2, 14)),
        Reminder(about="payment", when="after", days=25, on=date(2029, 2, 24)),
    )
    assert before.may_terminate
    for settled in before.periods[:2]:
        assert settled.settled and settled.days_late == 0 and settled.interest_fen == 0
        assert settled.reminders == () and not settled.may_terminate
    assert not before.periods[3].report_missing and before.periods[3].reminders == ()

    # Paid on 16 March with its interest: royalty 366,000.03 + interest 2,030.55.
    paid.append(Payment(paid_on=date(2029, 3, 16), amount_fen=36_803_058, period="2028"))
    after = standing(items, paid, date(2029, 3, 16), terms=TERMS)
    y2028 = after.periods[2]
    assert (y2028.paid_fen, y2028.outstanding_fen, y2028.interest_paid_fen) == (
        36_600_003,
        0,
        203_055,
    )
    assert (y2028.days_late, y2028.interest_fen, y2028.settled) == (45, 203_055, True)
    assert not after.may_terminate and after.unapplied_fen == 0


def _zhongshan_compensation() -> tuple[Bearer, ...]:
    """The pool's rule assesses the loss as the hand computation above says."""
    rule = parse_rule(ZHONGSHAN)
    facts = ClaimFacts(
        today=date(2026, 1, 5),
        npl_since=date(2025, 6, 30),
        loss_realised=True,
        enrolled_principal_fen=CLAIM_PRINCIPAL,
        claim_costs_fen=0,
        claim_interest_fen=CLAIM_INTEREST,
        claim_principal_fen=CLAIM_PRINCIPAL,
        recovered_fen=0,
        already_compensated_fen=0,
        bank_enrolled_principal_fen=CLAIM_PRINCIPAL,
        bank_compensated_fen=0,
        budget_used_fen=0,
    )
    a = assess(rule, facts)
    assert (a.loss_fen, a.amount_fen) == (312_000_000, FUND)
    assert a.parties == (("insurer", None, INSURER), ("evaluator", None, EVALUATOR))
    return (_bearer("fund", FUND), _bearer("insurer", INSURER), _bearer("evaluator", EVALUATOR))


def _bearer(party: str, bore_fen: int) -> Bearer:
    """A bearer of the loss under claim 1: the pool's fund (pool 1 of organisation 9) or a
    party of its rule."""
    fund = party == "fund"
    return Bearer(
        claim_id=1,
        party=party,
        pool_id=1 if fund else None,
        org_id=9 if fund else None,
        bore_fen=bore_fen,
        recovered_fen=0,
    )


def _payouts(slices: tuple[Slice, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in slices:
        key = s.party or s.payee_kind
        out[key] = out.get(key, 0) + s.amount_fen
    return out


def _after(state: CaseState, slices: tuple[Slice, ...]) -> CaseState:
    """The case once a receipt's slices are paid: what the claim and each bearer have left."""
    paid = {"claim_interest": 0, "claim_principal": 0}
    back: dict[str, int] = {}
    for s in slices:
        paid[s.step] += s.amount_fen
        if s.party:
            back[s.party] = back.get(s.party, 0) + s.amount_fen
    return msgspec.structs.replace(
        state,
        claim_interest_fen=state.claim_interest_fen - paid["claim_interest"],
        claim_principal_fen=state.claim_principal_fen - paid["claim_principal"],
        bearers=tuple(
            msgspec.structs.replace(b, recovered_fen=b.recovered_fen + back.get(b.party, 0))
            for b in state.bearers
        ),
    )


# Each receipt's slices, by hand. The bearers are listed fund, insurer, evaluator, then the
# bank (the waterfall's order: ties to pools and parties first).


def _split(step: Step, fund: int, insurer: int, evaluator: int, bank: int) -> tuple[Slice, ...]:
    """One claim step's slices to the pool's fund, the insurer, the evaluator and the bank."""
    return (
        Slice(
            step=step,
            payee_kind="pool",
            amount_fen=fund,
            payee_org_id=9,
            pool_id=1,
            claim_id=1,
            party="fund",
        ),
        Slice(step=step, payee_kind="party", amount_fen=insurer, claim_id=1, party="insurer"),
        Slice(step=step, payee_kind="party", amount_fen=evaluator, claim_id=1, party="evaluator"),
        Slice(step=step, payee_kind="bank", amount_fen=bank, payee_org_id=7),
    )


RECEIPT_2026 = (
    # Interest first (民法典 art. 561): 120,000 split by what each still bears, 1,684,800 :
    # 499,200 : 124,800 : 811,200 = 54 : 16 : 4 : 26 exactly.
    *_split("claim_interest", 6_480_000, 1_920_000, 480_000, 3_120_000),
    # Then principal: 312,807.41 − 120,000 = 192,807.41, still 54 : 16 : 4 : 26; quotas
    # 104,116.0014, 30,849.1856, 7,712.2964, 50,129.9266 → floors sum to 192,807.39; the two
    # fen left go to the largest remainders, the bank (.66) and the evaluator (.64).
    *_split("claim_principal", 10_411_600, 3_084_918, 771_230, 5_012_993),
)
# 250,000, principal only. Still borne: fund 1,684,800 − 168,916.00 = 1,515,884.00;
# insurer 499,200 − 50,049.18 = 449,150.82; evaluator 124,800 − 12,512.30 = 112,287.70;
# bank 811,200 − 81,329.93 = 729,870.07 (together the principal left, 2,807,192.59).
# Quotas 135,000.0001, 40,000.0005, 9,999.9968, 64,999.9970 → floors 249,999.98; the two
# fen go to the bank (remainder .9697) and the evaluator (.9679).
RECEIPT_2027 = _split("claim_principal", 13_500_000, 4_000_000, 1_000_000, 6_500_000)
# 366,000.03 royalty + 2,030.55 interest = 368,030.58, principal only. Still borne: fund
# 1,380,884.00; insurer 409,150.82; evaluator 102,287.70; bank 664,870.07 (2,557,192.59).
# Quotas 198,736.5134, 58,884.8936, 14,721.2227, 95,687.9503 → floors 368,030.57; the fen
# goes to the insurer (remainder .36, the fund's is .34).
RECEIPT_2028 = _split("claim_principal", 19_873_651, 5_888_490, 1_472_122, 9_568_795)


def _case(interest_fen: int, principal_fen: int, bearers: tuple[Bearer, ...]) -> CaseState:
    """The bank's claim on the case (no costs) and who bore its loss."""
    return CaseState(
        bank_org_id=7,
        pledgor_id=3,
        costs=(),
        claim_costs_fen=0,
        claim_interest_fen=interest_fen,
        claim_principal_fen=principal_fen,
        bearers=bearers,
    )


def test_the_worked_example_receipts_through_the_waterfall() -> None:
    state = _case(CLAIM_INTEREST, CLAIM_PRINCIPAL, _zhongshan_compensation())
    receipts = (
        (
            31_280_741,
            RECEIPT_2026,
            {"fund": 16_891_600, "insurer": 5_004_918, "evaluator": 1_251_230, "bank": 8_132_993},
        ),
        (
            25_000_000,
            RECEIPT_2027,
            {"fund": 13_500_000, "insurer": 4_000_000, "evaluator": 1_000_000, "bank": 6_500_000},
        ),
        (
            36_803_058,
            RECEIPT_2028,
            {"fund": 19_873_651, "insurer": 5_888_490, "evaluator": 1_472_122, "bank": 9_568_795},
        ),
    )
    for amount, slices, payouts in receipts:
        got = route(amount, 0, state)  # no commission on a royalty
        assert got == slices
        assert _payouts(got) == payouts
        assert sum(payouts.values()) == amount
        state = _after(state, got)
    # After three years: the fund has 502,652.51 of its 1,684,800 back, the insurer
    # 148,934.08, the evaluator 37,233.52, the bank 242,017.88 — 930,837.99 in all, every
    # fen of the three receipts; nothing reached the pledgor, the claim is not yet paid.
    assert [b.recovered_fen for b in state.bearers] == [50_265_251, 14_893_408, 3_723_352]
    assert state.claim_principal_fen == CLAIM_PRINCIPAL - (93_083_799 - CLAIM_INTEREST)
    assert state.claim_interest_fen == 0
    # The bank still bears its 811,200 less the 242,017.88 it got back.
    others_left = sum(b.bore_fen - b.recovered_fen for b in state.bearers)
    assert state.claim_principal_fen - others_left == BANK - 24_201_788


async def test_the_worked_example_through_the_pools_services(pool: asyncpg.Pool) -> None:
    """The same receipts routed as the exchange records them: the payouts to the fen."""
    at = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    zs = await make_pool(pool, at, ZHONGSHAN)
    loan = await make_loan(
        pool, at, principal_fen=CLAIM_PRINCIPAL, interest_fen=CLAIM_INTEREST, enrol_in=zs
    )
    await write_off(pool, at, loan, date(2026, 1, 5))
    claim = await claim_and_pay(pool, at, loan, zs)
    assert (claim.loss_fen, claim.amount_fen) == (312_000_000, FUND)
    for paid_on, amount, slices in (
        (date(2027, 1, 28), 31_280_741, RECEIPT_2026),
        (date(2028, 1, 30), 25_000_000, RECEIPT_2027),
        (date(2029, 3, 16), 36_803_058, RECEIPT_2028),
    ):
        when = datetime(paid_on.year, paid_on.month, paid_on.day, 2, 0, tzinfo=UTC)
        r = await receive(
            pool, when, loan.case_id, amount, kind="royalty", source=f"royalty:{paid_on.year - 1}"
        )
        # A pool's payout names no party: it is the fund's.
        rows = await pool.fetch(
            "SELECT coalesce(party, CASE payee_kind WHEN 'pool' THEN 'fund' ELSE payee_kind END)"
            " AS who, amount_fen FROM payouts WHERE receipt_id = $1",
            r.id,
        )
        assert {row["who"]: row["amount_fen"] for row in rows} == _payouts(slices)


# --- properties ---------------------------------------------------------------------------

fen = st.integers(min_value=0, max_value=10_000_000_000)


@st.composite
def contracts(draw: st.DrawFn) -> RoyaltyTerms:
    start = draw(st.dates(date(2024, 1, 1), date(2030, 12, 31)))
    end = start + timedelta(days=draw(st.integers(0, 5 * 366)))
    rate = draw(st.integers(0, 2_000))
    per_unit = draw(st.integers(0, 10_000))
    minimum = draw(st.integers(0 if rate or per_unit else 1, 100_000_000))
    return RoyaltyTerms(
        start=start,
        end=end,
        period=draw(st.sampled_from(["quarterly", "half_yearly", "yearly"])),
        royalty_rate_bp=rate,
        per_unit_fen=per_unit,
        minimum_annual_fen=minimum,
        late_interest_bp=draw(st.integers(0, 3_650)),
    )


@settings(max_examples=200, deadline=None)
@given(
    terms=contracts(),
    sales=st.lists(
        st.tuples(fen, st.integers(0, 100_000), st.integers(0, 120)), min_size=1, max_size=30
    ),
    loss=st.integers(1, 10_000_000_000),
    interest=st.integers(0, 500_000_000),
)
def test_a_stream_of_royalties_through_the_waterfall_never_over_pays(
    terms: RoyaltyTerms,
    sales: list[tuple[int, int, int]],
    loss: int,
    interest: int,
) -> None:
    items = schedule(
        terms,
        [
            SalesLine(period=p.label, net_sales_fen=s, units=u)
            for p, (s, u, _) in zip(periods(terms), sales, strict=False)
        ],
    )
    # Zhongshan shares the loss (principal + interest) 54 : 26 : 16 : 4.
    shares = [54, 26, 16, 4]
    total_loss = loss + interest
    parts = [total_loss * w // 100 for w in shares]
    bearers = [
        _bearer("fund", parts[0]),
        _bearer("insurer", parts[2]),
        _bearer("evaluator", parts[3]),
    ]
    state = _case(interest, loss, tuple(bearers))
    bank_bears = total_loss - sum(b.bore_fen for b in bearers)
    got: dict[str, int] = {}
    came_in = 0
    for item, (_, _, late) in zip(items, sales, strict=False):
        if item.due is None or item.due.total_fen == 0:
            continue
        paid_on = item.period.payment_due + timedelta(days=late)
        amount = item.due.total_fen + arrears_interest(
            item.due.total_fen, item.period.payment_due, paid_on, terms
        )
        slices = route(amount, 0, state)
        assert sum(s.amount_fen for s in slices) == amount  # exactly what came in
        came_in += amount
        for s in slices:
            got[s.party or s.payee_kind] = got.get(s.party or s.payee_kind, 0) + s.amount_fen
        state = _after(state, tuple(s for s in slices if s.step != "surplus"))
        for b in state.bearers:
            assert got.get(b.party, 0) == b.recovered_fen <= b.bore_fen  # never more than it bore
        assert got.get("bank", 0) <= bank_bears
        assert (
            got.get("pledgor", 0) == 0 or state.claim_principal_fen + state.claim_interest_fen == 0
        )
    assert sum(got.values()) == came_in


@settings(max_examples=300, deadline=None)
@given(
    terms=contracts(), a=fen, b=fen, units=st.integers(0, 10**6), ytd=fen, pick=st.integers(0, 100)
)
def test_due_is_never_negative_and_grows_with_sales(
    terms: RoyaltyTerms, a: int, b: int, units: int, ytd: int, pick: int
) -> None:
    all_periods = periods(terms)
    period = all_periods[pick % len(all_periods)]
    low, high = sorted((a, b))
    due_low = due_for(
        period, SalesLine(period=period.label, net_sales_fen=low, units=units), terms, ytd
    )
    due_high = due_for(
        period, SalesLine(period=period.label, net_sales_fen=high, units=units), terms, ytd
    )
    more_units = due_for(
        period, SalesLine(period=period.label, net_sales_fen=low, units=units + 1), terms, ytd
    )
    for due in (due_low, due_high, more_units):
        assert due.running_fen >= 0 and due.top_up_fen >= 0
        assert due.total_fen == due.running_fen + due.top_up_fen
        if period.closes_year:  # the year reaches its minimum
            assert ytd + due.total_fen >= minimum_for_year(terms, period.royalty_year)
        else:
            assert due.top_up_fen == 0
    assert due_low.total_fen <= due_high.total_fen
    assert due_low.running_fen <= due_high.running_fen
    assert due_low.total_fen <= more_units.total_fen


@settings(max_examples=300, deadline=None)
@given(
    terms=contracts(),
    amount=fen,
    due=st.dates(date(2024, 1, 1), date(2040, 12, 31)),
    early=st.integers(0, 400),
    d1=st.integers(0, 2_000),
    d2=st.integers(0, 2_000),
)
def test_interest_is_zero_on_time_and_grows_with_days_late(
    terms: RoyaltyTerms, amount: int, due: date, early: int, d1: int, d2: int
) -> None:
    assert arrears_interest(amount, due, due - timedelta(days=early), terms) == 0
    low, high = sorted((d1, d2))
    i_low = arrears_interest(amount, due, due + timedelta(days=low), terms)
    i_high = arrears_interest(amount, due, due + timedelta(days=high), terms)
    assert 0 <= i_low <= i_high
    # Simple interest, rounded once: within half a fen of amount × rate × days / 365.
    assert abs(i_high * 3_650_000 - amount * terms.late_interest_bp * high) <= 3_650_000 // 2


@settings(max_examples=200, deadline=None)
@given(
    terms=contracts(),
    sales=st.lists(fen, min_size=1, max_size=24),
    payments=st.lists(
        st.tuples(
            st.integers(0, 900), st.integers(1, 200_000_000), st.booleans(), st.integers(0, 40)
        ),
        max_size=12,
    ),
)
def test_every_payment_is_applied_or_held_as_credit(
    terms: RoyaltyTerms, sales: list[int], payments: list[tuple[int, int, bool, int]]
) -> None:
    all_periods = periods(terms)
    items = schedule(
        terms,
        [
            SalesLine(period=p.label, net_sales_fen=s, units=0)
            for p, s in zip(all_periods, sales, strict=False)
        ],
    )
    today = terms.end + timedelta(days=1_000)
    paid = [
        Payment(
            paid_on=terms.start + timedelta(days=offset),
            amount_fen=amount,
            period=all_periods[which % len(all_periods)].label if named else None,
        )
        for offset, amount, named, which in payments
    ]
    s = standing(items, paid, today, terms=terms)
    applied = sum(p.paid_fen + p.interest_paid_fen for p in s.periods)
    assert applied + s.unapplied_fen == sum(p.amount_fen for p in paid)
    for p in s.periods:
        assert p.interest_paid_fen <= p.interest_fen
        assert p.outstanding_fen is None or p.outstanding_fen >= 0
        assert p.may_terminate == (not p.settled)  # long past every grace period


@settings(max_examples=200, deadline=None)
@given(terms=contracts(), sales=fen, late=st.integers(-60, 400), pick=st.integers(0, 100))
def test_a_full_payment_late_owes_exactly_the_arrears_interest(
    terms: RoyaltyTerms, sales: int, late: int, pick: int
) -> None:
    all_periods = periods(terms)
    period = all_periods[pick % len(all_periods)]
    reports = [SalesLine(period=p.label, net_sales_fen=sales, units=0) for p in all_periods]
    items = schedule(terms, reports)
    item = next(i for i in items if i.period == period)
    assert item.due is not None
    paid_on = period.payment_due + timedelta(days=late)
    interest = arrears_interest(item.due.total_fen, period.payment_due, paid_on, terms)
    payment = Payment(
        paid_on=paid_on, amount_fen=item.due.total_fen + interest, period=period.label
    )
    if payment.amount_fen == 0:
        return
    s = standing(items, [payment], paid_on, terms=terms)
    mine = next(p for p in s.periods if p.period == period)
    assert (mine.interest_fen, mine.interest_paid_fen, mine.outstanding_fen) == (
        interest,
        interest,
        0,
    )
    assert mine.settled and mine.days_late == max(0, late) and s.unapplied_fen == 0


# --- the schedule's edge cases ------------------------------------------------------------


def _terms(**kw: object) -> RoyaltyTerms:
    return parse_terms({"royalty_rate_bp": 500, "minimum_annual_fen": 25_000_000, **kw})


def test_a_start_mid_quarter_and_an_end_mid_year_cut_the_first_and_last_periods() -> None:
    terms = _terms(start="2026-02-15", end="2027-08-10", period="quarterly")
    got = [(p.label, p.start, p.end, p.closes_year) for p in periods(terms)]
    assert got == [
        ("2026Q1", date(2026, 2, 15), date(2026, 3, 31), False),
        ("2026Q2", date(2026, 4, 1), date(2026, 6, 30), False),
        ("2026Q3", date(2026, 7, 1), date(2026, 9, 30), False),
        ("2026Q4", date(2026, 10, 1), date(2026, 12, 31), True),
        ("2027Q1", date(2027, 1, 1), date(2027, 3, 31), False),
        ("2027Q2", date(2027, 4, 1), date(2027, 6, 30), False),
        ("2027Q3", date(2027, 7, 1), date(2027, 8, 10), True),
    ]
    last = periods(terms)[-1]
    assert (last.report_due, last.payment_due) == (date(2027, 8, 25), date(2027, 9, 9))
    # The short years' minimums, pro-rated by days: 2026-02-15 to 12-31 is 320 days,
    # 250,000 × 320 / 365 = 219,178.0822 → 219,178.08; 2027-01-01 to 08-10 is 222 days,
    # 250,000 × 222 / 365 = 152,054.7945 → 152,054.79.
    assert minimum_for_year(terms, 2026) == 21_917_808
    assert minimum_for_year(terms, 2027) == 15_205_479
    assert minimum_for_year(terms, 2028) == 0

    # Quarterly reports: the top-up comes with the year's last quarter only.
    reports = [SalesLine(period=p.label, net_sales_fen=50_000_000, units=0) for p in periods(terms)]
    dues = [i.due.total_fen for i in schedule(terms, reports) if i.due]
    # 500,000 × 5 % = 25,000 a quarter; 2026: 4 × 25,000 = 100,000 < 219,178.08, the last
    # quarter tops up 119,178.08; 2027: 3 × 25,000 = 75,000 < 152,054.79, tops up 77,054.79.
    assert dues == [2_500_000, 2_500_000, 2_500_000, 14_417_808, 2_500_000, 2_500_000, 10_205_479]


def test_half_years_and_years_in_a_leap_year() -> None:
    terms = _terms(start="2028-03-01", end="2029-12-31", period="half_yearly")
    assert [(p.label, p.start, p.end) for p in periods(terms)] == [
        ("2028H1", date(2028, 3, 1), date(2028, 6, 30)),
        ("2028H2", date(2028, 7, 1), date(2028, 12, 31)),
        ("2029H1", date(2029, 1, 1), date(2029, 6, 30)),
        ("2029H2", date(2029, 7, 1), date(2029, 12, 31)),
    ]
    # 2028 is a leap year: 1 March to 31 December is 306 of its 366 days;
    # 250,000 × 306 / 366 = 209,016.3934 → 209,016.39.
    assert minimum_for_year(terms, 2028) == 20_901_639
    assert minimum_for_year(terms, 2029) == 25_000_000
    # A whole leap year owes the whole minimum.
    assert minimum_for_year(_terms(start="2028-01-01", end="2028-12-31"), 2028) == 25_000_000

    # A contract from 29 February: the year from 29 Feb 2028 is 307 days of 366
    # (209,699.45…); the last year, 1 January to 28 February 2030, is 59 of 365 days
    # (40,410.9589 → 40,410.96).
    leap = _terms(start="2028-02-29", end="2030-02-28", period="yearly")
    assert [(p.label, p.start, p.end) for p in periods(leap)] == [
        ("2028", date(2028, 2, 29), date(2028, 12, 31)),
        ("2029", date(2029, 1, 1), date(2029, 12, 31)),
        ("2030", date(2030, 1, 1), date(2030, 2, 28)),
    ]
    assert [minimum_for_year(leap, y) for y in (2028, 2029, 2030)] == [
        20_969_945,
        25_000_000,
        4_041_096,
    ]

    # Late across a leap February: due 30 January 2028, paid 1 March = 31 days late;
    # 100,000 × 4.5 % × 31 / 365 = 382.19…
    assert arrears_interest(10_000_000, date(2028, 1, 30), date(2028, 3, 1), terms) == 38_219


def test_a_one_day_contract_and_a_quarter_ending_on_its_last_day() -> None:
    one = _terms(start="2026-03-31", end="2026-03-31", period="quarterly")
    (p,) = periods(one)
    assert (p.label, p.start, p.end, p.closes_year, p.royalty_year) == (
        "2026Q1",
        date(2026, 3, 31),
        date(2026, 3, 31),
        True,
        2026,
    )
    # 250,000 × 1 / 365 = 684.93
    assert minimum_for_year(one, 2026) == 68_493
    exact = _terms(start="2026-01-01", end="2026-06-30", period="quarterly")
    assert [p.label for p in periods(exact)] == ["2026Q1", "2026Q2"]


def test_a_missing_report_leaves_its_due_and_its_years_minimum_unknown() -> None:
    terms = _terms(start="2026-01-01", end="2026-12-31", period="quarterly")
    reports = [
        SalesLine(period="2026Q1", net_sales_fen=100_000_000, units=0),
        SalesLine(period="2026Q3", net_sales_fen=100_000_000, units=0),
        SalesLine(period="2026Q4", net_sales_fen=100_000_000, units=0),
    ]
    items = schedule(terms, reports)
    assert [i.due.total_fen if i.due else None for i in items] == [5_000_000, None, 5_000_000, None]
    s = standing(items, [], date(2026, 8, 20), terms=terms)
    q2 = s.periods[1]
    # Q2's report was due 15 July and its payment 30 July: on 20 August the report's
    # reminders 1, 15 and 25 days after are owed, the payment's 1 and 15 days after; the
    # payment date has passed by 21 days, not yet past the 30 grace days.
    assert q2.report_missing and q2.due_fen is None and q2.days_late == 21
    assert q2.reminders == (
        Reminder(about="report", when="after", days=1, on=date(2026, 7, 16)),
        Reminder(about="report", when="after", days=15, on=date(2026, 7, 30)),
        Reminder(about="report", when="after", days=25, on=date(2026, 8, 9)),
        Reminder(about="payment", when="after", days=1, on=date(2026, 7, 31)),
        Reminder(about="payment", when="after", days=15, on=date(2026, 8, 14)),
    )
    assert not q2.may_terminate
    assert standing(items, [], date(2026, 8, 30), terms=terms).periods[1].may_terminate
    # Before the payment date: the reminders a week and a day before.
    q3 = standing(items, [], date(2026, 10, 29), terms=terms).periods[2]
    assert q3.reminders == (
        Reminder(about="payment", when="before", days=7, on=date(2026, 10, 23)),
        Reminder(about="payment", when="before", days=1, on=date(2026, 10, 29)),
    )


def test_payments_pay_interest_first_and_an_unnamed_one_the_oldest_debt() -> None:
    terms = _terms(start="2026-01-01", end="2026-12-31", period="half_yearly", minimum_annual_fen=0)
    items = schedule(
        terms,
        [
            SalesLine(
                period="2026H1", net_sales_fen=200_000_000, units=0
            ),  # 100,000 due 2026-07-30
            SalesLine(
                period="2026H2", net_sales_fen=200_000_000, units=0
            ),  # 100,000 due 2027-01-30
        ],
    )
    # 9 August: the first half is 10 days late, interest 100,000 × 4.5 % × 10 / 365 =
    # 123.2877 → 123.29. The 60,000, naming no period, pays the debt due first (民法典 art.
    # 560): its interest, then 59,876.71 of its royalty (art. 561), leaving 40,123.29.
    # 19 August: 10 more days on 40,123.29. Interest is rounded once over both stretches:
    # (10,000,000 × 450 × 10 + 4,012,329 × 450 × 10) / 3,650,000 = 63,055,480,500 /
    # 3,650,000 = 17,275.47 → 172.75, of which 49.46 is still owed; the 41,000 pays it and
    # the 40,123.29, and the 827.25 left pays ahead on the second half, not yet due.
    paid = [
        Payment(paid_on=date(2026, 8, 9), amount_fen=6_000_000),
        Payment(paid_on=date(2026, 8, 19), amount_fen=4_100_000),
    ]
    s = standing(items, paid, date(2026, 9, 1), terms=terms)
    h1, h2 = s.periods
    assert (h1.interest_fen, h1.interest_paid_fen) == (17_275, 17_275)
    assert (h1.paid_fen, h1.outstanding_fen, h1.settled, h1.days_late) == (10_000_000, 0, True, 20)
    assert (h2.paid_fen, h2.outstanding_fen, h2.interest_fen, h2.settled) == (
        82_725,
        9_917_275,
        0,
        False,
    )
    assert h2.reminders == () and s.unapplied_fen == 0
    # Had the second payment named the first half, the 827.25 beyond it would be credit.
    named = [paid[0], Payment(paid_on=date(2026, 8, 19), amount_fen=4_100_000, period="2026H1")]
    assert standing(items, named, date(2026, 9, 1), terms=terms).unapplied_fen == 82_725


# --- terms ------------------------------------------------------------------------------------


def test_terms_are_refused_naming_the_field() -> None:
    cases = [
        (
            {"start": "2026-01-01", "end": "2025-12-31", "royalty_rate_bp": 600},
            "royalty_end_before_start",
            "end",
        ),
        (
            {"start": "2026-01-01", "end": "2046-01-01", "royalty_rate_bp": 600},
            "royalty_term_too_long",
            "end",
        ),
        ({"start": "2026-01-01", "end": "2026-12-31"}, "royalty_nothing_due", "royalty_rate_bp"),
        (
            {
                "start": "2026-01-01",
                "end": "2026-12-31",
                "royalty_rate_bp": 600,
                "report_due_days": 40,
            },
            "royalty_report_after_payment",
            "report_due_days",
        ),
        (
            {"start": "2026-01-01", "end": "2026-12-31", "royalty_rate_bp": 10_001},
            "too_large",
            "royalty_rate_bp",
        ),
        (
            {"start": "2026-01-01", "end": "2026-12-31", "royalty_rate_bp": 600, "grace_days": -1},
            "too_small",
            "grace_days",
        ),
        (
            {
                "start": "2026-01-01",
                "end": "2026-12-31",
                "royalty_rate_bp": 600,
                "period": "monthly",
            },
            "not_a_choice",
            "period",
        ),
        (
            {
                "start": "2026-01-01",
                "end": "2026-12-31",
                "royalty_rate_bp": 600,
                "late_interest_bp": 36_501,
            },
            "too_large",
            "late_interest_bp",
        ),
    ]
    for raw, code, field in cases:
        with pytest.raises(Invalid) as refused:
            parse_terms(raw)
        assert (refused.value.code, refused.value.field) == (code, field), raw
        assert i18n.has(f"problem.{code}")
    assert (
        parse_terms(
            {"start": "2026-01-01", "end": "2045-12-31", "per_unit_fen": 1}
        ).late_interest_bp
        == 450
    )


# --- the sales report CSV ---------------------------------------------------------------------


def test_a_report_with_bad_lines_is_refused_naming_each_line_and_column() -> None:
    terms = _terms(start="2026-01-01", end="2026-12-31", period="quarterly")
    data = (
        "期间,净销售额(元),数量\n"
        '2026Q1,"1,200,000.50",120\n'  # 2: good, but the file is refused whole
        "2026Q5,100,3\n"  # 3: no such quarter
        "2026Q2,2万3亿,4\n"  # 4: 万 before 亿 is no amount
        "2026Q3,-5,abc\n"  # 5: negative sales, units no number
        "2026Q1,100,1\n"  # 6: Q1 again
        "2026Q4,,7\n"  # 7: net sales missing
        "2027Q1,100,1,x\n"  # 8: not in the contract, a cell without a header
    ).encode()
    with pytest.raises(Invalid) as refused:
        parse_sales_report_csv(data, terms=terms)
    e = refused.value
    assert (e.code, e.field, e.params) == ("royalty_report_rejected", "file", {"count": 8})
    # (line, column key, code, params with the header as the file wrote it)
    assert [(p.line, p.field, p.code, p.params) for p in e.problems or []] == [
        (3, "period", "royalty_period_unreadable", {"column": "期间", "value": "2026Q5"}),
        (4, "net_sales", "amount_in_wan", {"column": "净销售额(元)"}),
        (5, "net_sales", "amount_negative", {"column": "净销售额(元)"}),
        (5, "units", "royalty_units_not_whole", {"column": "数量", "value": "abc"}),
        (
            6,
            "period",
            "royalty_period_twice",
            {"column": "期间", "period": "2026Q1", "first_line": 2},
        ),
        (7, "net_sales", "csv_cell_required", {"column": "净销售额(元)"}),
        (8, None, "csv_cell_without_header", {"cell": 4}),
        (8, "period", "royalty_period_not_in_contract", {"column": "期间", "period": "2027Q1"}),
    ]
    for p in e.problems or []:
        assert i18n.has(f"problem.{p.code}"), p.code
    assert i18n.has("problem.royalty_report_rejected")


def test_a_report_with_a_bad_header_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        parse_sales_report_csv("期间,销售额,数量,数量\n2026Q1,1,1,1\n".encode())
    assert refused.value.problems == [
        LineProblem(code="csv_unknown_column", line=1, params={"column": "销售额"}),
        LineProblem(
            code="csv_missing_column",
            line=1,
            field="net_sales",
            params={"column": "净销售额(元)", "header": "净销售额(元)", "name": "net_sales"},
        ),
        LineProblem(
            code="csv_duplicate_column",
            line=1,
            field="units",
            params={"column": "数量", "first": "数量"},
        ),
    ]
    for data, code in (
        (b"", "csv_empty"),
        (b"period,net_sales,units\n", "csv_no_data_rows"),
        (b"\xff\xfep\x00", "csv_utf16"),
    ):
        with pytest.raises(Invalid) as refused:
            parse_sales_report_csv(data)
        assert [p.code for p in refused.value.problems or []] == [code]


def test_a_good_report_is_parsed_in_either_language_and_encoding() -> None:
    text = (
        "\ufeffPeriod , Net sales, Units\r\n"
        '2026Q1,"￥１，２００，０００.５０","1,200"\r\n'
        ",,\r\n"  # a blank row a spreadsheet leaves behind
        "2026年第二季度,0,0\r\n"
        '2026年下半年,"¥800,000.00",="35"\r\n'
        "2027年度,1234.5元,7\r\n"
    )
    got = parse_sales_report_csv(text.encode("utf-8"))
    assert got == [
        SalesLine(period="2026Q1", net_sales_fen=120_000_050, units=1_200, line=2),
        SalesLine(period="2026Q2", net_sales_fen=0, units=0, line=4),
        SalesLine(period="2026H2", net_sales_fen=80_000_000, units=35, line=5),
        SalesLine(period="2027", net_sales_fen=123_450, units=7, line=6),
    ]
    gb = '期间,净销售额,销售数量\n2026年第1季度,"1,000.00",3\n'.encode("gb18030")
    assert parse_sales_report_csv(gb) == [
        SalesLine(period="2026Q1", net_sales_fen=100_000, units=3, line=2)
    ]


def test_the_installment_of_a_period_carries_its_report() -> None:
    line = SalesLine(period="2026", net_sales_fen=1, units=0)
    (item,) = schedule(_terms(start="2026-01-01", end="2026-12-31", period="yearly"), [line])
    assert isinstance(item, Installment) and item.report == line
