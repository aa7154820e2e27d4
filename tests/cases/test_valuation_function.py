"""The internal valuation (GB/T 42748-2023 spirit) and appraisal dates, as pure functions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market import i18n
from market.cases.policy import ValuationPolicy
from market.cases.valuation import (
    DEFAULT_INDICATOR_WEIGHTS,
    DIMENSIONS,
    INDICATORS,
    InternalPolicy,
    InternalResult,
    add_months,
    appraisal_dates,
    internal_valuation,
    render,
)
from market.errors import Invalid
from market.problems import describe

score = st.integers(min_value=0, max_value=100)
scores_st = st.fixed_dictionaries(dict.fromkeys(INDICATORS, score))
base_st = st.integers(min_value=100, max_value=10**13)


def all_scores(value: int) -> dict[str, int]:
    return dict.fromkeys(INDICATORS, value)


def words(result: InternalResult, lang: i18n.Lang, *, verdict: bool = False) -> str:
    """The explanation (or only its verdict) as a reader of `lang` sees it."""
    return "\n".join(
        render(lang, line) for line in (result.verdict if verdict else result.explanation)
    )


def test_worked_example() -> None:
    scores = {
        "legal_stability": 90,
        "remaining_term": 70,
        "ownership_clarity": 100,
        "encumbrance": 60,
        "advancement": 80,
        "maturity": 70,
        "substitutability": 60,
        "claim_breadth": 50,
        "market_size": 70,
        "profitability": 60,
        "licence_history": 40,
    }
    result = internal_valuation(1_000_000_00, scores, basis="收益法：未来五年许可费现值")
    # legal 0.4×90+0.2×70+0.2×100+0.2×60 = 82; technical 0.3×80+0.3×70+0.2×60+0.2×50 = 67;
    # economic 0.4×70+0.4×60+0.2×40 = 60; weighted 0.3×82+0.3×67+0.4×60 = 68.7
    assert result.dimension_scores == {
        "legal": Decimal(82),
        "technical": Decimal(67),
        "economic": Decimal(60),
    }
    assert result.weighted_score == Decimal("68.7")
    assert result.factor == Decimal("1.1450")  # 68.7 / 60
    assert result.value_fen == 1_145_000_00
    assert not result.vetoed
    zh = words(result, "zh")
    assert "收益法：未来五年许可费现值" in zh
    assert "¥1,145,000.00" in zh and "1.1450" in zh
    assert result.verdict[-1].key == "cases.explain.value"
    assert result.verdict[-1].params == {
        "base_value_fen": 1_000_000_00,
        "factor": "1.1450",
        "value_fen": 1_145_000_00,
    }


def test_factor_is_clamped() -> None:
    assert internal_valuation(1_000_000, all_scores(100)).factor == Decimal("1.5")
    low = {**all_scores(0), "legal_stability": 100, "remaining_term": 100}  # legal 60, others 0
    result = internal_valuation(1_000_000, low)
    assert result.weighted_score == Decimal(18) and result.factor == Decimal("0.3")
    lower = {**all_scores(0), **dict.fromkeys(DIMENSIONS["legal"], 40)}
    assert internal_valuation(1_000_000, lower).factor == Decimal("0.2")  # 12 / 60 < 0.2


def test_legal_veto_zeroes_the_value_and_says_why() -> None:
    scores = {**all_scores(100), **dict.fromkeys(DIMENSIONS["legal"], 39)}
    result = internal_valuation(1_000_000_00, scores)
    assert result.vetoed and result.value_fen == 0 and result.factor == 0
    assert result.verdict[0].key == "cases.explain.vetoed"
    assert result.verdict[0].params == {"legal_score": "39.00", "veto_line": "40.00"}
    zh, en = words(result, "zh", verdict=True), words(result, "en", verdict=True)
    assert "否决线" in zh and "39.00" in zh and "veto" not in zh
    assert "veto line" in en and "39.00" in en and "否决线" not in en


@pytest.mark.parametrize(
    ("scores", "field", "code"),
    [
        ({**all_scores(50), "market_size": 101}, "scores.market_size", "score_out_of_range"),
        ({**all_scores(50), "market_size": -1}, "scores.market_size", "score_out_of_range"),
        ({k: 50 for k in INDICATORS if k != "maturity"}, "scores.maturity", "score_missing"),
        ({**all_scores(50), "beauty": 50}, "scores.beauty", "indicators_unknown"),
    ],
)
def test_bad_scores_name_the_field(scores: dict[str, int], field: str, code: str) -> None:
    with pytest.raises(Invalid) as err:
        internal_valuation(1_000_000, scores)
    assert (err.value.field, err.value.code) == (field, code)


def test_weights_must_sum_to_one() -> None:
    bad_dims = InternalPolicy(
        dimension_weights={
            "legal": Decimal("0.3"),
            "technical": Decimal("0.3"),
            "economic": Decimal("0.3"),
        }
    )
    with pytest.raises(Invalid) as err:
        internal_valuation(1_000_000, all_scores(50), policy=bad_dims)
    assert (err.value.code, err.value.field) == ("dimension_weights_sum", "dimension_weights")
    assert err.value.params == {"total": "0.9"}
    assert "sum to 0.9" in describe("en", err.value.code, err.value.params)
    bad_ind = InternalPolicy(
        indicator_weights={**DEFAULT_INDICATOR_WEIGHTS, "market_size": Decimal("0.5")}
    )
    with pytest.raises(Invalid) as err:
        internal_valuation(1_000_000, all_scores(50), policy=bad_ind)
    assert err.value.code == "indicator_weights_sum"
    assert err.value.params == {"dimension": "economic", "total": "1.1"}
    negative = InternalPolicy(
        indicator_weights={
            **DEFAULT_INDICATOR_WEIGHTS,
            "market_size": Decimal("1.2"),
            "profitability": Decimal("-0.4"),
        }
    )
    with pytest.raises(Invalid) as err:
        internal_valuation(1_000_000, all_scores(50), policy=negative)
    assert (err.value.code, err.value.field) == (
        "weight_out_of_range",
        "indicator_weights.market_size",
    )


def test_custom_weights_change_the_value() -> None:
    scores = {**all_scores(60), **dict.fromkeys(DIMENSIONS["economic"], 100)}
    economic_heavy = InternalPolicy(
        dimension_weights={
            "legal": Decimal("0.2"),
            "technical": Decimal("0.2"),
            "economic": Decimal("0.6"),
        }
    )
    assert (
        internal_valuation(1_000_000, scores, policy=economic_heavy).value_fen
        > internal_valuation(1_000_000, scores).value_fen
    )


@given(base=base_st, scores=scores_st, key=st.sampled_from(INDICATORS), bump=st.integers(1, 100))
def test_value_is_monotone_in_every_score(
    base: int, scores: dict[str, int], key: str, bump: int
) -> None:
    better = {**scores, key: min(100, scores[key] + bump)}
    assert internal_valuation(base, better).value_fen >= internal_valuation(base, scores).value_fen


@given(base=base_st, scores=scores_st, more=st.integers(0, 10**12))
def test_value_is_monotone_in_the_base(base: int, scores: dict[str, int], more: int) -> None:
    assert (
        internal_valuation(base + more, scores).value_fen
        >= internal_valuation(base, scores).value_fen
    )


@given(base=base_st, scores=scores_st)
def test_vetoed_exactly_when_the_legal_score_is_below_40(base: int, scores: dict[str, int]) -> None:
    result = internal_valuation(base, scores)
    legal = sum(DEFAULT_INDICATOR_WEIGHTS[k] * scores[k] for k in DIMENSIONS["legal"])
    assert result.vetoed == (legal < 40)
    if result.vetoed:
        assert result.value_fen == 0
    else:
        # within the factor bounds, and rounded to the fen
        assert base * Decimal("0.2") - 1 <= result.value_fen <= base * Decimal("1.5") + 1
        assert result.value_fen > 0


@given(base=base_st, scores=scores_st, basis=st.text(max_size=50))
def test_deterministic_and_explains_every_indicator(
    base: int, scores: dict[str, int], basis: str
) -> None:
    first = internal_valuation(base, scores, basis=basis)
    second = internal_valuation(base, dict(reversed(list(scores.items()))), basis=basis)
    assert first == second
    zh, en = words(first, "zh"), words(first, "en")
    for key in (*INDICATORS, *DIMENSIONS):
        assert i18n.gettext("zh", f"cases.ind.{key}") in zh
        assert i18n.gettext("en", f"cases.ind.{key}") in en
    assert first.explanation[-len(first.verdict) :] == first.verdict


# --- appraisal dates ---------------------------------------------------------------------

POLICY = ValuationPolicy()


def test_appraisal_is_valid_one_year_with_a_five_day_objection_window() -> None:
    dates = appraisal_dates(date(2025, 12, 20), date(2026, 1, 5), POLICY)
    assert dates.valid_until == date(2026, 12, 20)
    assert dates.objection_until == date(2026, 1, 10)  # five days from being recorded
    same_day = appraisal_dates(date(2026, 1, 5), date(2026, 1, 5), POLICY)
    assert same_day.objection_until == date(2026, 1, 10)  # = valued_on + 5 days


def test_appraisal_from_the_future_or_older_than_a_year_is_refused() -> None:
    with pytest.raises(Invalid) as err:
        appraisal_dates(date(2026, 1, 6), date(2026, 1, 5), POLICY)
    assert (err.value.code, err.value.field) == ("appraisal_in_future", "valued_on")
    assert "in the future" in describe("en", err.value.code, err.value.params)
    assert appraisal_dates(date(2025, 1, 5), date(2026, 1, 5), POLICY).valid_until == date(
        2026, 1, 5
    )
    with pytest.raises(Invalid) as err:
        appraisal_dates(date(2025, 1, 4), date(2026, 1, 5), POLICY)
    assert (err.value.code, err.value.field) == ("appraisal_expired", "valued_on")
    assert err.value.params == {"valid_until": date(2026, 1, 4), "months": 12}


def test_the_numbers_are_policy() -> None:
    short = ValuationPolicy(appraisal_validity_months=6, objection_days=10)
    dates = appraisal_dates(date(2025, 12, 1), date(2026, 1, 5), short)
    assert dates.valid_until == date(2026, 6, 1) and dates.objection_until == date(2026, 1, 15)


def test_add_months_keeps_to_the_calendar() -> None:
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


def test_the_api_scores_name_every_indicator() -> None:
    from market.cases.models import Scores

    assert Scores.__struct_fields__ == INDICATORS
