"""Licensing against a sale in money of today (docs/rules.md §Licensing): the worked example
computed by hand, Hypothesis over random offers and policies (a better term never lowers the
value; a term past the patent's expiry is refused; the lines add up), which offers stand
together, and every bad value refused with a code and the field at fault."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import i18n
from market.errors import Invalid
from market.licensing.value import (
    BP,
    BankGuarantee,
    Bid,
    Deposit,
    LicenceOffer,
    LicenceTerms,
    NoSecurity,
    SaleAndLicenceBack,
    Spreads,
    ValuationPolicy,
    compare,
    compatible,
    parse,
    patent_expiry,
    present_value,
)
from market.pools.rule_text import say

TODAY = date(2026, 1, 1)
# An invention filed 2015-03-01 is protected through 2035-02-28 (专利法 art. 42: 20 years,
# the last day the day before the anniversary).
EXPIRY = date(2035, 2, 28)
YUAN = 100  # fen


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, in integers (the test's own arithmetic)."""
    return (2 * numerator + denominator) // (2 * denominator)


def reverse_licence(**changes: Any) -> LicenceOffer:
    """The worked example's reverse licence to the pledgor."""
    terms: dict[str, Any] = {
        "id": "reverse",
        "licensee": "the pledgor",
        "kind": "exclusive",
        "field_of_use": "all fields",
        "territory": "China",
        "term_start": TODAY,
        "term_end": date(2030, 12, 31),  # 5 years
        "upfront_fen": 200_000 * YUAN,
        "royalty_rate_bp": 600,  # 6 %
        "forecast_net_sales_fen": 5_000_000 * YUAN,  # a year
        "minimum_annual_fen": 250_000 * YUAN,
        "period": "yearly",
        "security": BankGuarantee(amount_fen=300_000 * YUAN, expiry=date(2031, 6, 30)),
    }
    return LicenceOffer(**(terms | changes))


def licence_back(**changes: Any) -> LicenceTerms:
    """A sale-and-licence-back's licence to the pledgor: the example's terms."""
    fields = msgspec.structs.asdict(reverse_licence(**changes))
    del fields["id"], fields["licensee"]
    return LicenceTerms(**fields)


TOP_BID = Bid(bidder="the top bidder", amount_fen=1_100_000 * YUAN)
APPRAISED_FEN = 2_000_000 * YUAN  # the appraisal: context only, the comparison is in cash


# --- (1) the worked example -----------------------------------------------------------------


def test_the_worked_example_by_hand_the_secured_licence_beats_the_hammer() -> None:
    # Policy: discount 8 %, credibility 50 %, margin 10 %. The security is a bank guarantee
    # of ¥300,000 that outlasts the last payment (2030-12-31 ≤ 2031-06-30): its spread is 0
    # and each payment (¥275,000) is within its amount, so every payment is discounted at
    # 8 % alone.
    policy = ValuationPolicy(discount_rate_bp=800, credibility_bp=5000, margin_bp=1000)
    assert policy.spreads.bank_guarantee_bp == 0
    # Upfront ¥200,000 paid today, as the licence starts: face value.
    upfront = 20_000_000
    # Each year: minimum 250,000; expected 6 % × 5,000,000 = 300,000; the 50,000 above the
    # minimum counts at 50 %: 25,000; together 275,000.00 = 27,500,000 fen, paid at each
    # year's end, 1 … 5 whole years from today, each divided by 1.08^k:
    yearly = 250_000_00 + (6 * 5_000_000_00 // 100 - 250_000_00) // 2
    assert yearly == 27_500_000
    by_hand = [
        25_462_963,  # 27,500,000 / 1.08         = 25,462,962.963 → 25,462,963
        23_576_818,  # 27,500,000 / 1.1664       = 23,576,817.558 → 23,576,818
        21_830_387,  # 27,500,000 / 1.259712     = 21,830,386.628 → 21,830,387
        20_213_321,  # 27,500,000 / 1.36048896   = 20,213,320.952 → 20,213,321
        18_716_038,  # 27,500,000 / 1.4693280768 = 18,716,037.918 → 18,716,038
    ]
    assert by_hand == [half_up(yearly * 100**k, 108**k) for k in range(1, 6)]
    # 200,000 + 275,000 × 3.99271 (the 5-year annuity at 8 %) = ¥1,297,995.26 exactly; the
    # lines rounded one by one add up to ¥1,297,995.27.
    total = upfront + sum(by_hand)
    assert total == 129_799_527

    valued = present_value(reverse_licence(), policy, TODAY, EXPIRY)
    assert [line.params["pv_fen"] for line in valued.lines] == [upfront, *by_hand]
    assert [line.key for line in valued.lines] == [
        "licensing.line.upfront_now",
        *["licensing.line.period"] * 5,
    ]
    assert valued.total_fen == total
    first = valued.lines[1].params
    assert first["minimum_fen"] == 250_000_00 and first["expected_fen"] == 300_000_00
    assert first["credible_fen"] == 25_000_00 and first["covered_fen"] == 275_000_00
    assert first["secured_rate_bp"] == 800 and first["due"] == "2026-12-31"

    # The margin: the licence must be worth at least 1,100,000 × 1.10 = 1,210,000.
    result = compare(TOP_BID, [reverse_licence()], policy, TODAY, EXPIRY)
    assert [(s.kind, s.pv_fen) for s in result.sets] == [
        ("exclusive", 129_799_527),
        ("sale", 110_000_000),
    ]
    assert result.winner is not None and result.winner.members == ("reverse",)
    assert result.reason.key == "licensing.reason.beats_hammer"
    assert result.reason.params == {
        "best_fen": 129_799_527,
        "bid_fen": 110_000_000,
        "margin_bp": 1000,
        "threshold_fen": 121_000_000,
    }
    assert say("en", result.reason) == (
        "The best set is worth ¥1,297,995.27 today, at least the hammer price "
        "¥1,100,000.00 plus 10 % (¥1,210,000.00): it wins."
    )
    assert result.winner.pv_fen < APPRAISED_FEN  # below the appraisal, above the hammer


def test_the_worked_example_unsecured_the_hammer_stands() -> None:
    # The same licence with no security: spread 4 %, every payment at 12 %:
    policy = ValuationPolicy()
    by_hand = [
        24_553_571,  # 27,500,000 / 1.12         = 24,553,571.429 → 24,553,571
        21_922_832,  # 27,500,000 / 1.2544       = 21,922,831.633 → 21,922,832
        19_573_957,  # 27,500,000 / 1.404928     = 19,573,956.815 → 19,573,957
        17_476_747,  # 27,500,000 / 1.57351936   = 17,476,747.156 → 17,476,747
        15_604_239,  # 27,500,000 / 1.7623416832 = 15,604,238.532 → 15,604,239
    ]
    assert by_hand == [half_up(27_500_000 * 100**k, 112**k) for k in range(1, 6)]
    total = 20_000_000 + sum(by_hand)
    assert total == 119_131_346  # ¥1,191,313.46 < ¥1,210,000

    offer = reverse_licence(security=NoSecurity())
    assert present_value(offer, policy, TODAY, EXPIRY).total_fen == total
    result = compare(TOP_BID, [offer], policy, TODAY, EXPIRY)
    assert result.winner is not None and result.winner.is_bid
    assert result.reason.key == "licensing.reason.hammer_stands"
    assert result.reason.params["best_fen"] == total
    # Worth more than the bid, but not by the margin: with no margin it would win.
    assert total > TOP_BID.amount_fen
    loose = compare(TOP_BID, [offer], ValuationPolicy(margin_bp=0), TODAY, EXPIRY)
    assert loose.winner is not None and loose.winner.members == ("reverse",)


def test_quarterly_payments_discount_per_quarter_and_a_part_period_pro_rata() -> None:
    # ¥100,000 minimum a year, paid quarterly, no royalty; 2026-01-01 … 2026-05-15.
    # Q1 (90 days): 2,500,000 fen at 12 % a year = 3 % a quarter, one quarter:
    #   2,500,000 / 1.03 = 2,427,184.466 → 2,427,184.
    # Q2 runs 2026-04-01 … 2026-06-30 (91 days), the licence 45 of them: 2,500,000 × 45/91
    #   = 1,236,263.736 fen, paid at the quarter's end, two quarters away:
    #   1,236,263.736 / 1.0609 = 1,165,297.14 → 1,165,297.
    offer = reverse_licence(
        upfront_fen=0,
        royalty_rate_bp=0,
        minimum_annual_fen=100_000 * YUAN,
        period="quarterly",
        term_end=date(2026, 5, 15),
        security=NoSecurity(),
    )
    valued = present_value(offer, ValuationPolicy(), TODAY, EXPIRY)
    q1 = half_up(2_500_000 * 100, 103)
    q2 = half_up(2_500_000 * 45 * 100**2, 91 * 103**2)
    assert (q1, q2) == (2_427_184, 1_165_297)
    assert [line.params["pv_fen"] for line in valued.lines] == [q1, q2]
    assert valued.lines[1].params["days"] == 45 and valued.lines[1].params["period_days"] == 91
    assert valued.lines[1].params["due"] == "2026-06-30"


def test_every_line_speaks_both_languages() -> None:
    valued = present_value(reverse_licence(), ValuationPolicy(), TODAY, EXPIRY)
    back = SaleAndLicenceBack(
        id="slb", buyer="a fund", price_fen=1_000_000 * YUAN, licence_back=licence_back()
    )
    lines = [*valued.lines, *present_value(back, ValuationPolicy(), TODAY, EXPIRY).lines]
    for line in lines:
        for lang in i18n.LANGS:
            text = say(lang, line)
            assert "%(" not in text and not text.startswith("licensing."), text


# --- patent terms ---------------------------------------------------------------------------


def test_patent_expiry_by_kind_and_by_number() -> None:
    assert patent_expiry("invention", date(2015, 3, 1)) == EXPIRY
    assert patent_expiry("201911050262.8", date(2019, 7, 3)) == date(2039, 7, 2)
    assert patent_expiry("202020123456.8", date(2020, 5, 5)) == date(2030, 5, 4)  # utility
    # Designs: 10 years when filed before 2021-06-01, 15 from that day (the 2020 amendment).
    assert patent_expiry("design", date(2021, 5, 31)) == date(2031, 5, 30)
    assert patent_expiry("202130123456.8", date(2021, 6, 1)) == date(2036, 5, 31)
    # A PCT national-phase number (type 8) carries the year of entry; the term counts from
    # the earlier international filing date.
    assert patent_expiry("202080012345.2", date(2018, 9, 1)) == date(2038, 8, 31)


# --- (2) Hypothesis: a better term never lowers the value --------------------------------------

fen = st.integers(min_value=0, max_value=50_000_000 * YUAN)
more = st.integers(min_value=1, max_value=5_000_000 * YUAN)


@st.composite
def policies(draw: st.DrawFn) -> ValuationPolicy:
    guarantee, deposit, none = sorted(draw(st.lists(st.integers(0, 3000), min_size=3, max_size=3)))
    return ValuationPolicy(
        discount_rate_bp=draw(st.integers(0, 3000)),
        spreads=Spreads(none_bp=none, deposit_bp=deposit, bank_guarantee_bp=guarantee),
        credibility_bp=draw(st.integers(0, BP)),
        margin_bp=draw(st.integers(0, BP)),
    )


@st.composite
def offers(draw: st.DrawFn, kind: str | None = None, licensee: str | None = None) -> LicenceOffer:
    start = TODAY + timedelta(days=draw(st.integers(0, 500)))
    end = start + timedelta(days=draw(st.integers(0, 6 * 365)))
    security = draw(
        st.one_of(
            st.just(NoSecurity()),
            st.builds(Deposit, amount_fen=st.integers(1, 1_000_000 * YUAN)),
            st.builds(
                BankGuarantee,
                amount_fen=st.integers(1, 1_000_000 * YUAN),
                expiry=st.dates(start, end + timedelta(days=800)),
            ),
        )
    )
    offer = LicenceOffer(
        id=f"o{draw(st.integers(0, 10**6))}",
        licensee=licensee or draw(st.sampled_from(["pledgor", "rival", "supplier"])),
        kind=kind or draw(st.sampled_from(["exclusive", "sole", "non_exclusive"])),
        field_of_use="all",
        territory="China",
        term_start=start,
        term_end=end,
        upfront_fen=draw(fen),
        royalty_rate_bp=draw(st.integers(0, 2000)),
        forecast_net_sales_fen=draw(fen),
        per_unit_fen=draw(st.integers(0, 1000 * YUAN)),
        forecast_units=draw(st.integers(0, 100_000)),
        minimum_annual_fen=draw(fen),
        period=draw(st.sampled_from(["quarterly", "half_yearly", "yearly"])),
        security=security,
    )
    if not (offer.upfront_fen or offer.minimum_annual_fen or offer.royalty_rate_bp):
        offer = msgspec.structs.replace(offer, upfront_fen=1)
    return offer


def expiries(offer: LicenceOffer) -> st.SearchStrategy[date]:
    return st.dates(offer.term_end, offer.term_end + timedelta(days=3000))


def better_security(offer: LicenceOffer) -> LicenceOffer:
    """none → deposit → bank guarantee outlasting every payment (due ≤ term end + 1 year)."""
    s = offer.security
    lasting = offer.term_end + timedelta(days=400)
    if isinstance(s, NoSecurity):
        better: Any = Deposit(amount_fen=1_000 * YUAN)
    elif isinstance(s, Deposit):
        better = BankGuarantee(amount_fen=s.amount_fen, expiry=lasting)
    else:
        better = BankGuarantee(amount_fen=s.amount_fen * 2, expiry=max(s.expiry, lasting))
    return msgspec.structs.replace(offer, security=better)


Improve = Callable[[LicenceOffer, ValuationPolicy, int, date], tuple[LicenceOffer, ValuationPolicy]]
IMPROVEMENTS: dict[str, Improve] = {
    "higher upfront": lambda o, p, d, e: (
        msgspec.structs.replace(o, upfront_fen=o.upfront_fen + d),
        p,
    ),
    "higher minimum": lambda o, p, d, e: (
        msgspec.structs.replace(o, minimum_annual_fen=o.minimum_annual_fen + d),
        p,
    ),
    "higher royalty rate": lambda o, p, d, e: (
        msgspec.structs.replace(o, royalty_rate_bp=min(BP, o.royalty_rate_bp + d % 500 + 1)),
        p,
    ),
    "higher per-unit fee": lambda o, p, d, e: (
        msgspec.structs.replace(o, per_unit_fen=o.per_unit_fen + d % 10_000 + 1),
        p,
    ),
    "better security": lambda o, p, d, e: (better_security(o), p),
    "longer term within the patent's life": lambda o, p, d, e: (
        msgspec.structs.replace(o, term_end=min(e, o.term_end + timedelta(days=d % 2000 + 1))),
        p,
    ),
    "lower discount rate": lambda o, p, d, e: (
        o,
        msgspec.structs.replace(p, discount_rate_bp=max(0, p.discount_rate_bp - d % 500 - 1)),
    ),
    "more credibility": lambda o, p, d, e: (
        o,
        msgspec.structs.replace(p, credibility_bp=min(BP, p.credibility_bp + d % 2000 + 1)),
    ),
}


@pytest.mark.parametrize("improvement", list(IMPROVEMENTS))
@settings(max_examples=150, deadline=None)
@given(data=st.data(), policy=policies(), step=more)
def test_a_term_better_for_the_bank_never_lowers_the_value(
    improvement: str, data: st.DataObject, policy: ValuationPolicy, step: int
) -> None:
    offer = data.draw(offers())
    expiry = data.draw(expiries(offer))
    better, better_policy = IMPROVEMENTS[improvement](offer, policy, step, expiry)
    before = present_value(offer, policy, TODAY, expiry).total_fen
    after = present_value(better, better_policy, TODAY, expiry).total_fen
    assert after >= before


@settings(max_examples=200, deadline=None)
@given(data=st.data(), policy=policies())
def test_the_lines_add_up_to_the_total(data: st.DataObject, policy: ValuationPolicy) -> None:
    offer = data.draw(offers())
    valued = present_value(offer, policy, TODAY, data.draw(expiries(offer)))
    assert valued.total_fen == sum(line.params["pv_fen"] for line in valued.lines)
    assert all(line.params["pv_fen"] >= 0 and i18n.has(line.key) for line in valued.lines)
    # Never more than the money promised and credibly expected, undiscounted.
    assert valued.total_fen <= sum(line.params.get("amount_fen", 0) + 1 for line in valued.lines)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), policy=policies(), late=st.integers(1, 5000))
def test_a_term_past_the_patents_expiry_is_refused_naming_the_field(
    data: st.DataObject, policy: ValuationPolicy, late: int
) -> None:
    offer = data.draw(offers())
    expiry = offer.term_end - timedelta(days=late)
    with pytest.raises(Invalid) as refused:
        present_value(offer, policy, TODAY, expiry)
    assert refused.value.code == "licence_term_past_patent_expiry"
    assert refused.value.field == "term_end"
    assert refused.value.params["expiry"] == expiry.isoformat()
    with pytest.raises(Invalid) as in_a_set:
        compare(TOP_BID, [reverse_licence(term_end=date(2027, 1, 1)), offer], policy, TODAY, expiry)
    # The first offer may itself run past the drawn expiry; either way the field is named.
    assert in_a_set.value.code == "licence_term_past_patent_expiry"
    assert in_a_set.value.field in ("offers[0].term_end", "offers[1].term_end")


# --- (3) which offers stand together --------------------------------------------------------


def licence(id: str, kind: str, licensee: str, **changes: Any) -> LicenceOffer:
    return reverse_licence(id=id, kind=kind, licensee=licensee, **changes)


def test_two_exclusives_never_in_one_set() -> None:
    a, b = licence("a", "exclusive", "x"), licence("b", "exclusive", "y")
    assert not compatible([a, b])
    result = compare(None, [a, b], ValuationPolicy(), TODAY, EXPIRY)
    assert sorted(s.members for s in result.sets) == [("a",), ("b",)]
    assert result.reason.key == "licensing.reason.no_bid"


def test_sole_and_sale_stand_alone_and_non_exclusives_add_up() -> None:
    policy = ValuationPolicy()
    sole = licence("sole", "sole", "x")
    n1 = licence("n1", "non_exclusive", "rival", upfront_fen=10_000 * YUAN)
    n2 = licence("n2", "non_exclusive", "supplier", minimum_annual_fen=60_000 * YUAN)
    n3 = licence("n3", "non_exclusive", "rival", upfront_fen=90_000 * YUAN)  # rival's better
    slb = SaleAndLicenceBack(
        id="slb", buyer="a fund", price_fen=1_150_000 * YUAN, licence_back=licence_back()
    )
    assert not compatible([sole, n1]) and not compatible([TOP_BID, n1])
    assert not compatible([slb, n2]) and not compatible([n1, n3])
    assert compatible([n1, n2]) and compatible([n2, n3]) and compatible([n1])

    result = compare(TOP_BID, [sole, n1, n2, n3, slb], policy, TODAY, EXPIRY)
    by_members = {s.members: s for s in result.sets}
    assert set(by_members) == {("bid",), ("sole",), ("n3", "n2"), ("slb",)}
    together = by_members[("n3", "n2")]
    assert together.kind == "non_exclusive"
    each = [present_value(o, policy, TODAY, EXPIRY).total_fen for o in (n3, n2)]
    assert together.pv_fen == sum(each) == sum(v.total_fen for v in together.values)
    assert by_members[("slb",)].pv_fen == 1_150_000 * YUAN  # the licence back is the buyer's
    assert [s.pv_fen for s in result.sets] == sorted((s.pv_fen for s in result.sets), reverse=True)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), policy=policies(), bid=st.one_of(st.none(), st.integers(1, 10**10)))
def test_every_set_compared_stands_together(
    data: st.DataObject, policy: ValuationPolicy, bid: int | None
) -> None:
    many = data.draw(st.lists(offers(), min_size=1, max_size=6))
    many = [msgspec.structs.replace(o, id=f"o{i}") for i, o in enumerate(many)]
    expiry = max(o.term_end for o in many)
    top = None if bid is None else Bid(bidder="b", amount_fen=bid)
    result = compare(top, many, policy, TODAY, expiry)
    by_id = {o.id: o for o in many} | ({"bid": top} if top else {})
    for s in result.sets:
        members = [by_id[m] for m in s.members]
        assert compatible(members)
        assert s.pv_fen == sum(v.total_fen for v in s.values)
    exclusives = {o.id for o in many if o.kind == "exclusive"}
    assert all(len(exclusives & set(s.members)) <= 1 for s in result.sets)
    if top is not None and result.winner is not None and not result.winner.is_bid:
        assert result.winner.pv_fen * BP >= bid * (BP + policy.margin_bp)  # type: ignore[operator]


# --- (4) bad input --------------------------------------------------------------------------

RAW: dict[str, Any] = {
    "id": "r1",
    "licensee": "the pledgor",
    "kind": "non_exclusive",
    "field_of_use": "lithium battery separators",
    "territory": "China",
    "term_start": "2026-01-01",
    "term_end": "2030-12-31",
    "upfront_fen": 100_000_00,
    "royalty_rate_bp": 500,
    "forecast_net_sales_fen": 1_000_000_00,
    "minimum_annual_fen": 10_000_00,
    "period": "quarterly",
    "security": {"kind": "deposit", "amount_fen": 50_000_00},
}
# A sale-and-licence-back's licence: terms only, no offer id or licensee.
BACK = {k: v for k, v in RAW.items() if k not in ("id", "licensee")}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"royalty_rate_bp": 10_001}, "too_large", "royalty_rate_bp"),
        ({"upfront_fen": -1}, "too_small", "upfront_fen"),
        ({"upfront_fen": "100"}, "whole_number", "upfront_fen"),
        ({"minimum_annual_fen": 2**63}, "too_large", "minimum_annual_fen"),
        ({"forecast_units": -5}, "too_small", "forecast_units"),
        ({"kind": "exclusive-ish"}, "not_a_choice", "kind"),
        ({"period": "monthly"}, "not_a_choice", "period"),
        ({"field_of_use": ""}, "too_short", "field_of_use"),
        ({"id": "bad id!"}, "bad_format", "id"),
        ({"term_end": "31/12/2030"}, "not_a_date", "term_end"),
        ({"term_end": "2025-12-31"}, "licence_term_ends_before_start", "term_end"),
        ({"extra": 1}, "unknown_field", "extra"),
        ({"security": {"kind": "pledge"}}, "invalid_value", "security.kind"),
        ({"security": {"kind": "deposit", "amount_fen": 0}}, "too_small", "security.amount_fen"),
        (
            {"security": {"kind": "bank_guarantee", "amount_fen": 1, "expiry": "2025-06-30"}},
            "licence_guarantee_expires_before_start",
            "security.expiry",
        ),
        (
            {"upfront_fen": 0, "royalty_rate_bp": 0, "minimum_annual_fen": 0},
            "licence_pays_nothing",
            "upfront_fen",
        ),
    ],
)
def test_a_bad_offer_is_refused_with_a_code_and_the_field(
    change: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        parse(RAW | change, LicenceOffer)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert i18n.has(f"problem.{code}")


@pytest.mark.parametrize(
    ("raw", "as_type", "code", "field"),
    [
        (
            {"spreads": {"none_bp": 100, "deposit_bp": 200}},
            ValuationPolicy,
            "licensing_spreads_not_ordered",
            "spreads",
        ),
        ({"discount_rate_bp": -1}, ValuationPolicy, "too_small", "discount_rate_bp"),
        ({"margin_bp": 10_001}, ValuationPolicy, "too_large", "margin_bp"),
        ({"credibility_bp": "50%"}, ValuationPolicy, "whole_number", "credibility_bp"),
        ({"bidder": "b", "amount_fen": 0}, Bid, "too_small", "amount_fen"),
        ({"amount_fen": 100}, Bid, "required", "bidder"),
        (
            {
                "id": "s",
                "buyer": "f",
                "price_fen": 1,
                "licence_back": BACK | {"term_end": "2025-01-01"},
            },
            SaleAndLicenceBack,
            "licence_term_ends_before_start",
            "licence_back.term_end",
        ),
        (
            {
                "id": "s",
                "buyer": "f",
                "price_fen": 1,
                "licence_back": BACK,
                "buy_back": [
                    {"until": "2028-01-01", "price_fen": 1},
                    {"until": "2027-01-01", "price_fen": 1},
                ],
            },
            SaleAndLicenceBack,
            "buy_back_dates_not_ascending",
            "buy_back[1].until",
        ),
        (
            {
                "id": "s",
                "buyer": "f",
                "price_fen": 1,
                "licence_back": BACK,
                "buy_back": [{"until": "2031-01-01", "price_fen": 1}],
            },
            SaleAndLicenceBack,
            "buy_back_outside_licence_back",
            "buy_back[0].until",
        ),
        (
            {"id": "s", "buyer": "f", "price_fen": 0, "licence_back": BACK},
            SaleAndLicenceBack,
            "too_small",
            "price_fen",
        ),
    ],
)
def test_a_bad_policy_bid_or_sale_is_refused_with_a_code_and_the_field(
    raw: dict[str, Any], as_type: type[Any], code: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        parse(raw, as_type)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert i18n.has(f"problem.{code}")


def test_bad_values_built_in_code_and_bad_dates_are_refused_too() -> None:
    policy = ValuationPolicy()
    cases: list[tuple[Callable[[], object], str, str]] = [
        # a Struct built in code skips msgspec's constraints: present_value checks them
        (
            lambda: present_value(reverse_licence(royalty_rate_bp=20_000), policy, TODAY, EXPIRY),
            "too_large",
            "royalty_rate_bp",
        ),
        (
            lambda: present_value(
                reverse_licence(), ValuationPolicy(discount_rate_bp=-5), TODAY, EXPIRY
            ),
            "too_small",
            "discount_rate_bp",
        ),
        (
            lambda: present_value(
                reverse_licence(term_start=date(2025, 12, 31)), policy, TODAY, EXPIRY
            ),
            "licence_starts_before_today",
            "term_start",
        ),
        (
            lambda: present_value(
                SaleAndLicenceBack(
                    id="s",
                    buyer="f",
                    price_fen=1,
                    licence_back=licence_back(term_end=date(2036, 1, 1)),
                ),
                policy,
                TODAY,
                EXPIRY,
            ),
            "licence_term_past_patent_expiry",
            "licence_back.term_end",
        ),
        (
            lambda: compare(TOP_BID, [reverse_licence(), reverse_licence()], policy, TODAY, EXPIRY),
            "offer_id_twice",
            "offers[1].id",
        ),
        (
            lambda: compare(
                Bid(bidder="b", amount_fen=-1), [reverse_licence()], policy, TODAY, EXPIRY
            ),
            "too_small",
            "bid.amount_fen",
        ),
        (
            lambda: patent_expiry("201911050262.9", date(2019, 7, 3)),
            "patent_number_check_char",
            "application_number",
        ),
        (
            lambda: patent_expiry("201911050262.8", date(2018, 7, 3)),
            "patent_filing_year_mismatch",
            "filing_date",
        ),
        (
            lambda: patent_expiry("202080012345.2", date(2021, 1, 4)),
            "patent_filing_year_mismatch",
            "filing_date",
        ),
    ]
    for call, code, field in cases:
        with pytest.raises(Invalid) as refused:
            call()
        assert (refused.value.code, refused.value.field) == (code, field)
        assert i18n.has(f"problem.{code}")
