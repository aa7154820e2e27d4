"""Terms: each rule of docs/rules.md §Lot terms refuses what breaks it, naming the field,
the rule (its code) and the rule's numbers (its parameters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auctions.rules import Bid, apply, from_terms
from market.errors import Invalid
from market.lots.terms import (
    STATUTORY_COMMISSION,
    Fee,
    FeeTier,
    PreemptiveHolder,
    TermsInput,
    TermsPolicy,
    default_increment,
    fee_fen,
    validate,
)
from market.problems import describe

POLICY = TermsPolicy()
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
VALUATION = 1_000_000_00  # CNY 1 m


def terms(**overrides: object) -> TermsInput:
    base: dict[str, object] = {
        "start_price_fen": 700_000_00,
        "deposit_fen": 70_000_00,
        "bidding_starts_at": NOW + timedelta(days=30),
        "bidding_ends_at": NOW + timedelta(days=31),
    }
    base.update(overrides)
    return TermsInput(**base)  # type: ignore[arg-type]


def refused(data: TermsInput, **kwargs: object) -> Invalid:
    with pytest.raises(Invalid) as info:
        validate(POLICY, data, valuation_fen=VALUATION, publish_at=NOW, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_valid_terms_take_defaults() -> None:
    t = validate(POLICY, terms(), valuation_fen=VALUATION, publish_at=NOW)
    assert t.increment_fen == 2_000_00  # 0.5 % of 700,000 = 3,500 → round figure 2,000
    assert (t.extension_window_s, t.extension_s, t.payment_days) == (300, 300, 10)


def test_start_at_69_percent_of_valuation_refused() -> None:
    error = refused(terms(start_price_fen=690_000_00))
    assert (error.code, error.field) == ("start_below_valuation_floor", "start_price_fen")
    assert error.params == {
        "start_price_fen": 690_000_00,
        "valuation_fen": VALUATION,
        "floor_fen": 700_000_00,
        "min_pct": 70,
    }
    english = describe("en", error.code, error.params)
    assert "70 %" in english and "¥700,000.00" in english and "valuation" in english
    assert "70%" in describe("zh", error.code, error.params)


def test_start_at_exactly_70_percent_accepted() -> None:
    validate(POLICY, terms(start_price_fen=700_000_00), valuation_fen=VALUATION, publish_at=NOW)


@pytest.mark.parametrize(
    ("deposit", "ok"),
    [(34_999_99, False), (35_000_00, True), (140_000_00, True), (140_000_01, False)],
)
def test_deposit_between_5_and_20_percent(deposit: int, ok: bool) -> None:
    data = terms(deposit_fen=deposit)
    if ok:
        validate(POLICY, data, valuation_fen=VALUATION, publish_at=NOW)
    else:
        error = refused(data)
        assert (error.code, error.field) == ("deposit_out_of_range", "deposit_fen")
        assert error.params["min_pct"] == 5 and error.params["max_pct"] == 20
        assert (error.params["low_fen"], error.params["high_fen"]) == (35_000_00, 140_000_00)


def test_deposit_of_4_and_21_percent_refused() -> None:
    start = 700_000_00
    for pct in (4, 21):
        error = refused(terms(deposit_fen=start * pct // 100))
        assert (error.code, error.field) == ("deposit_out_of_range", "deposit_fen")


def test_bidding_window_of_23_hours_refused() -> None:
    start = NOW + timedelta(days=30)
    error = refused(terms(bidding_starts_at=start, bidding_ends_at=start + timedelta(hours=23)))
    assert (error.code, error.field) == ("bidding_window_too_short", "bidding_ends_at")
    assert error.params == {"min_hours": 24}
    assert "24 hours" in describe("en", error.code, error.params)


def test_announcement_period_enforced() -> None:
    error = refused(
        terms(bidding_starts_at=NOW + timedelta(days=29), bidding_ends_at=NOW + timedelta(days=31))
    )
    assert (error.code, error.field) == ("announcement_too_short", "bidding_starts_at")
    assert error.params == {"notice_days": 30, "earliest_at": NOW + timedelta(days=30)}
    assert "30 days" in describe("en", error.code, error.params)


def test_second_round_21_percent_below_first_refused() -> None:
    first = 700_000_00
    relist = terms(
        start_price_fen=first * 79 // 100,
        deposit_fen=first * 79 // 1000,
        bidding_starts_at=NOW + timedelta(days=15),
        bidding_ends_at=NOW + timedelta(days=16),
    )
    error = refused(relist, round=2, first_start_fen=first)
    assert (error.code, error.field) == ("relist_reduction_too_large", "start_price_fen")
    assert error.params["max_reduction_pct"] == 20 and error.params["lowest_fen"] == 560_000_00
    above = terms(
        start_price_fen=first + 1_00,
        deposit_fen=first // 10,
        bidding_starts_at=NOW + timedelta(days=15),
        bidding_ends_at=NOW + timedelta(days=16),
    )
    assert refused(above, round=2, first_start_fen=first).code == "relist_above_first"
    ok = terms(
        start_price_fen=first * 80 // 100,
        deposit_fen=first * 8 // 100,
        bidding_starts_at=NOW + timedelta(days=15),
        bidding_ends_at=NOW + timedelta(days=16),
    )
    t = validate(
        POLICY, ok, valuation_fen=VALUATION, publish_at=NOW, round=2, first_start_fen=first
    )
    assert t.start_price_fen == 560_000_00  # below 70 % of valuation is fine in round 2


def test_relist_needs_15_days_notice() -> None:
    first = 700_000_00
    data = terms(
        start_price_fen=first,
        bidding_starts_at=NOW + timedelta(days=14),
        bidding_ends_at=NOW + timedelta(days=16),
    )
    error = refused(data, round=2, first_start_fen=first)
    assert (error.code, error.field) == ("announcement_too_short", "bidding_starts_at")
    assert error.params["notice_days"] == 15


def test_preemptive_ranks_without_gaps() -> None:
    holders = (PreemptiveHolder(rank=1, name="甲"), PreemptiveHolder(rank=3, name="乙"))
    error = refused(terms(preemptive_holders=holders))
    assert (error.code, error.field, error.params) == (
        "preemptive_ranks",
        "preemptive_holders",
        {"ranks": [1, 3]},
    )


def test_commission_above_statutory_ceiling_refused() -> None:
    tiers = (FeeTier(up_to_fen=2_000_000_00, rate_bp=600), *STATUTORY_COMMISSION[1:])
    error = refused(terms(fee=Fee(kind="commission", tiers=tiers)))
    assert (error.code, error.field) == ("commission_above_ceiling", "fee")
    assert error.params == {"from_fen": 0, "up_to_fen": 2_000_000_00, "rate_pct": 6, "max_pct": 5}
    top = (*STATUTORY_COMMISSION[:-1], FeeTier(up_to_fen=None, rate_bp=60))
    error = refused(terms(fee=Fee(kind="commission", tiers=top)))
    assert error.code == "commission_above_ceiling_top"
    assert error.params == {"above_fen": 100_000_000_00, "rate_pct": 0.6, "max_pct": 0.5}
    assert "0.5 %" in describe("en", error.code, error.params)


def test_other_refusals_name_their_rule() -> None:
    cases = [
        (terms(increment_fen=700_000_00), "increment_too_large", "increment_fen"),
        (terms(payment_days=31), "payment_days_too_long", "payment_days"),
        (terms(fee=Fee(kind="buyer_premium", premium_bp=600)), "premium_too_high", "fee"),
        (terms(fee=Fee(tiers=STATUTORY_COMMISSION[:2])), "commission_tiers_not_statutory", "fee"),
        (
            terms(bidding_starts_at=(NOW + timedelta(days=30)).replace(tzinfo=None)),
            "time_zone_required",
            "bidding_starts_at",
        ),
        (
            terms(hard_end_at=NOW + timedelta(days=30, hours=1)),
            "hard_end_too_early",
            "hard_end_at",
        ),
    ]
    for data, code, field in cases:
        error = refused(data)
        assert (error.code, error.field) == (code, field)
        for lang in ("zh", "en"):  # every refusal has its words, in each language alone
            words = describe(lang, error.code, error.params)
            assert words != f"problem.{code}" and "%(" not in words


def test_commission_is_marginal() -> None:
    fee = Fee()
    assert fee_fen(fee, 1_000_000_00) == 50_000_00  # 5 % of 1 m
    # 5 % of 2 m + 3 % of 3 m = 100,000 + 90,000
    assert fee_fen(fee, 5_000_000_00) == 190_000_00
    # 100k + 240k (3 % of 8 m) + 800k (2 % of 40 m) + 500k (1 % of 50 m) + 0.5 % of 50 m
    assert fee_fen(fee, 150_000_000_00) == (100_000 + 240_000 + 800_000 + 500_000 + 250_000) * 100
    assert fee_fen(Fee(kind="buyer_premium", premium_bp=300), 1_000_000_00) == 30_000_00


@given(st.integers(min_value=1, max_value=10**12))
def test_default_increment_is_a_round_figure_near_half_a_percent(start: int) -> None:
    inc = default_increment(POLICY, start)
    assert inc >= 100
    digits = str(inc // 100).rstrip("0")
    assert digits in {"1", "2", "5"}
    assert inc <= max(100, (start * 50 + 5_000) // 10_000)


def test_rule_late_bid_extension_cannot_be_switched_off_nor_cut_by_the_hard_end() -> None:
    """The extension window and length are at least 5 minutes, and a hard end leaves a bid
    one second before the planned end its whole extension (docs/rules.md §Lot terms)."""
    error = refused(terms(extension_window_s=0, extension_s=0))
    assert (error.code, error.field) == ("extension_too_short", "extension_window_s")
    error = refused(terms(extension_s=299))
    assert (error.code, error.field) == ("extension_too_short", "extension_s")
    assert error.params == {"seconds": 299, "min_minutes": 5}
    ends = NOW + timedelta(days=31)
    error = refused(terms(hard_end_at=ends))
    assert (error.code, error.field) == ("hard_end_too_early", "hard_end_at")
    assert error.params == {"earliest_at": ends + timedelta(minutes=5), "extension_minutes": 5}
    # the earliest hard end allowed: a bid one second before the end still extends fully
    ok = validate(
        POLICY,
        terms(hard_end_at=ends + timedelta(minutes=5)),
        valuation_fen=VALUATION,
        publish_at=NOW,
    )
    state = from_terms("english", ok)
    out = apply(
        state, Bid(registration_id=1, amount_fen=ok.start_price_fen, at=ends - timedelta(seconds=1))
    )
    assert out.ends_at == ends + timedelta(minutes=5) - timedelta(seconds=1)
