"""Valuation rules: appraisal dates and the internal valuation (pure functions).

Internal valuation, in the spirit of GB/T 42748-2023 《专利评估指引》 (docs/rules.md
§Disposal cases and valuation): the standard assesses a patent's legal, technical and
economic value with indicators and weights; CCB's internal method (内评法) builds on it and
on CNIPA's licence statistics. Here:

1. Every indicator is scored 0–100, higher is better (an encumbrance score of 100 means
   "free of encumbrances", a substitutability score of 100 means "hard to substitute").
2. A dimension's score is the weighted mean of its indicators; the weighted score is the
   weighted mean of the three dimensions. All weights are data (InternalPolicy) and each
   group of weights sums to exactly 1.
3. Legal veto: a patent whose legal dimension scores below the veto line (40 by default)
   is not reliably valid; whatever its technology or market, the collateral may vanish,
   so its value is 0 and the valuation is refused with that explanation.
4. Value = base value × factor, factor = weighted score / 60, rounded half-up to 4
   decimals and clamped to [0.20, 1.50]. Why 60: the pass mark of Chinese scoring scales
   (及格线) — a patent that is merely acceptable on every count is worth the reference
   value that the income, cost or market approach gave (the base); a strong one
   (score 90) is worth up to 1.5×, the cap that keeps a scoring sheet from outweighing the
   approach that produced the base; the floor 0.2 keeps a valid but weak patent above 0.
   The mapping is monotone, so a better score never gives a lower value.
5. The value is rounded half-up to the fen; everything is Decimal or int, never float.

The explanation is a list of lines, each a catalog key (`cases.explain.*`) with its
parameters; `render` gives a line's words in one language. Indicator and dimension names
are keys too (`cases.ind.*`), so a page shows the explanation in its reader's language.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import msgspec

from market import i18n
from market.cases.policy import ValuationPolicy
from market.errors import BadValue, Invalid
from market.money import allocate, format_cny

# --- indicators and default weights -----------------------------------------------------

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "legal": ("legal_stability", "remaining_term", "ownership_clarity", "encumbrance"),
    "technical": ("advancement", "maturity", "substitutability", "claim_breadth"),
    "economic": ("market_size", "profitability", "licence_history"),
}
INDICATORS: tuple[str, ...] = tuple(k for keys in DIMENSIONS.values() for k in keys)

# Default weights (docs/rules.md §Disposal cases and valuation): legal 0.3, technical 0.3,
# economic 0.4 — the economic dimension weighs most because a disposal realises market value.
DEFAULT_DIMENSION_WEIGHTS: dict[str, Decimal] = {
    "legal": Decimal("0.3"),
    "technical": Decimal("0.3"),
    "economic": Decimal("0.4"),
}
DEFAULT_INDICATOR_WEIGHTS: dict[str, Decimal] = {
    # validity carries the legal dimension: an invalid patent has nothing else to give
    "legal_stability": Decimal("0.4"),
    "remaining_term": Decimal("0.2"),
    "ownership_clarity": Decimal("0.2"),
    "encumbrance": Decimal("0.2"),
    "advancement": Decimal("0.3"),
    "maturity": Decimal("0.3"),
    "substitutability": Decimal("0.2"),
    "claim_breadth": Decimal("0.2"),
    "market_size": Decimal("0.4"),
    "profitability": Decimal("0.4"),
    "licence_history": Decimal("0.2"),
}


class InternalPolicy(msgspec.Struct, frozen=True, kw_only=True):
    dimension_weights: dict[str, Decimal] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_DIMENSION_WEIGHTS)
    )
    indicator_weights: dict[str, Decimal] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_INDICATOR_WEIGHTS)
    )
    # The legal dimension score below which the value is 0 (docs/rules.md §Disposal cases
    # and valuation).
    veto_legal_below: Decimal = Decimal(40)
    par_score: Decimal = Decimal(60)  # the score worth exactly the base value
    factor_min: Decimal = Decimal("0.2")
    factor_max: Decimal = Decimal("1.5")


DEFAULT_INTERNAL_POLICY = InternalPolicy()
SCORE_MAX = 100
MIN_BASE_FEN = 100  # CNY 1: below that no factor gives a storable value


class Line(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of an explanation: a catalog key and its parameters. Amounts are `*_fen`
    integers, numbers exact decimal strings, `dimension` and `indicator` their keys."""

    key: str
    params: dict[str, Any] = {}


class IndicatorLine(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    dimension: str
    score: int
    weight: Decimal  # within its dimension
    dimension_weight: Decimal
    contribution: Decimal  # to the weighted score: dimension weight × weight × score


class InternalResult(msgspec.Struct, frozen=True, kw_only=True):
    value_fen: int  # 0 when vetoed
    vetoed: bool
    dimension_scores: dict[str, Decimal]
    weighted_score: Decimal
    factor: Decimal  # 0 when vetoed
    lines: list[IndicatorLine]
    explanation: list[Line]  # ends with the verdict
    verdict: list[Line]  # the veto, or the factor and the value


def render(lang: i18n.Lang, line: Line) -> str:
    """A line's words in `lang`: amounts as ¥, indicator and dimension keys as their names."""
    shown: dict[str, Any] = {}
    for name, value in line.params.items():
        if name in ("dimension", "indicator"):
            shown[name] = i18n.gettext(lang, f"cases.ind.{value}")
        elif name.endswith("_fen") and isinstance(value, int):
            shown[name] = format_cny(value)
        else:
            shown[name] = value
    return i18n.gettext(lang, line.key, **shown)


# --- validation -------------------------------------------------------------------------


def _check_weights(
    weights: Mapping[str, Decimal], expected: tuple[str, ...], field: str, dimension: str | None
) -> None:
    unknown = sorted(set(weights) - set(expected))
    if unknown:
        raise Invalid("weights_unknown_keys", field=field, keys=unknown, expected=list(expected))
    missing = [k for k in expected if k not in weights]
    if missing:
        raise Invalid("weights_missing", field=field, keys=missing)
    for key in expected:
        w = weights[key]
        if not isinstance(w, Decimal) or not w.is_finite() or not Decimal(0) <= w <= Decimal(1):
            raise Invalid("weight_out_of_range", field=f"{field}.{key}")
    total = sum((weights[k] for k in expected), Decimal(0))
    if total != Decimal(1):
        if dimension is None:
            raise Invalid("dimension_weights_sum", field=field, total=str(total))
        raise Invalid("indicator_weights_sum", field=field, dimension=dimension, total=str(total))


def validate_policy(policy: InternalPolicy) -> None:
    _check_weights(policy.dimension_weights, tuple(DIMENSIONS), "dimension_weights", None)
    unknown = sorted(set(policy.indicator_weights) - set(INDICATORS))
    if unknown:
        raise Invalid("indicators_unknown", field="indicator_weights", keys=unknown)
    for dim, keys in DIMENSIONS.items():
        weights = {k: v for k, v in policy.indicator_weights.items() if k in keys}
        _check_weights(weights, keys, "indicator_weights", dim)
    if not Decimal(0) <= policy.veto_legal_below <= SCORE_MAX:
        raise Invalid("veto_line_out_of_range", field="veto_legal_below", max=SCORE_MAX)
    if policy.par_score <= 0:
        raise Invalid("par_score_not_positive", field="par_score")
    if not Decimal(0) < policy.factor_min <= policy.factor_max:
        raise Invalid("factor_bounds_invalid", field="factor_min")


def _check_scores(scores: Mapping[str, int]) -> None:
    unknown = sorted(set(scores) - set(INDICATORS))
    if unknown:
        raise Invalid("indicators_unknown", field=f"scores.{unknown[0]}", keys=unknown)
    for key in INDICATORS:
        if key not in scores:
            raise Invalid("score_missing", field=f"scores.{key}")
        s = scores[key]
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= SCORE_MAX:
            raise Invalid("score_out_of_range", field=f"scores.{key}", max=SCORE_MAX)


# --- the internal valuation -------------------------------------------------------------


def _q(d: Decimal, places: int) -> Decimal:
    return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _w(d: Decimal) -> str:
    return str(_q(d, 2)) if _q(d, 2) == d else str(d.normalize())


def internal_valuation(
    base_value_fen: int,
    scores: Mapping[str, int],
    *,
    basis: str = "",
    policy: InternalPolicy = DEFAULT_INTERNAL_POLICY,
) -> InternalResult:
    """The value of the collateral from a base value and indicator scores, explained.

    Deterministic: the same inputs give the same value and the same explanation. Raises
    Invalid (naming the field) for scores outside 0–100, unknown or missing indicators,
    weights that do not sum to 1, or a base value under CNY 1.
    """
    if isinstance(base_value_fen, bool) or not isinstance(base_value_fen, int):
        raise BadValue("whole_number", field="base_value_fen")
    if base_value_fen < MIN_BASE_FEN:
        raise Invalid("base_value_too_small", field="base_value_fen", min_fen=MIN_BASE_FEN)
    validate_policy(policy)
    _check_scores(scores)
    with localcontext() as ctx:
        ctx.prec = 60  # far more digits than any amount has: no rounding but ours
        lines: list[IndicatorLine] = []
        dim_scores: dict[str, Decimal] = {}
        for dim, keys in DIMENSIONS.items():
            dw = policy.dimension_weights[dim]
            dim_scores[dim] = sum(
                (policy.indicator_weights[k] * scores[k] for k in keys), Decimal(0)
            )
            lines.extend(
                IndicatorLine(
                    key=k,
                    dimension=dim,
                    score=scores[k],
                    weight=policy.indicator_weights[k],
                    dimension_weight=dw,
                    contribution=dw * policy.indicator_weights[k] * scores[k],
                )
                for k in keys
            )
        weighted = sum((policy.dimension_weights[d] * s for d, s in dim_scores.items()), Decimal(0))
        vetoed = dim_scores["legal"] < policy.veto_legal_below
        if vetoed:
            factor = Decimal(0)
            value_fen = 0
        else:
            factor = min(
                max(_q(weighted / policy.par_score, 4), policy.factor_min), policy.factor_max
            )
            value_fen = int(_q(base_value_fen * factor, 0))
    body = _explain(base_value_fen, basis, policy, lines, dim_scores, weighted)
    verdict = _verdict(base_value_fen, policy, dim_scores, factor, value_fen, vetoed)
    return InternalResult(
        verdict=verdict,
        explanation=body + verdict,
        value_fen=value_fen,
        vetoed=vetoed,
        dimension_scores=dim_scores,
        weighted_score=weighted,
        factor=factor,
        lines=lines,
    )


def _explain(
    base_value_fen: int,
    basis: str,
    policy: InternalPolicy,
    lines: list[IndicatorLine],
    dim_scores: dict[str, Decimal],
    weighted: Decimal,
) -> list[Line]:
    basis_line = " ".join(basis.split())
    out = [
        Line(key="cases.explain.title"),
        Line(key="cases.explain.base", params={"base_value_fen": base_value_fen})
        if not basis_line
        else Line(
            key="cases.explain.base_basis",
            params={"base_value_fen": base_value_fen, "basis": basis_line},
        ),
    ]
    for dim in DIMENSIONS:
        out.append(
            Line(
                key="cases.explain.dimension",
                params={
                    "dimension": dim,
                    "weight": _w(policy.dimension_weights[dim]),
                    "score": str(_q(dim_scores[dim], 2)),
                },
            )
        )
        out.extend(
            Line(
                key="cases.explain.indicator",
                params={
                    "indicator": line.key,
                    "score": line.score,
                    "weight": _w(line.weight),
                    "product": str(_q(line.weight * line.score, 2)),
                    "contribution": str(_q(line.contribution, 2)),
                },
            )
            for line in lines
            if line.dimension == dim
        )
    terms = " + ".join(
        f"{_w(policy.dimension_weights[d])}×{_q(s, 2)}" for d, s in dim_scores.items()
    )
    out.append(
        Line(key="cases.explain.weighted", params={"terms": terms, "score": str(_q(weighted, 2))})
    )
    return out


def _verdict(
    base_value_fen: int,
    policy: InternalPolicy,
    dim_scores: dict[str, Decimal],
    factor: Decimal,
    value_fen: int,
    vetoed: bool,
) -> list[Line]:
    if vetoed:
        return [
            Line(
                key="cases.explain.vetoed",
                params={
                    "legal_score": str(_q(dim_scores["legal"], 2)),
                    "veto_line": str(_q(policy.veto_legal_below, 2)),
                },
            ),
            Line(key="cases.explain.vetoed_value", params={"value_fen": 0}),
        ]
    return [
        Line(
            key="cases.explain.factor",
            params={
                "par": str(_q(policy.par_score, 0)),
                "factor": str(factor),
                "factor_min": str(_q(policy.factor_min, 2)),
                "factor_max": str(_q(policy.factor_max, 2)),
            },
        ),
        Line(
            key="cases.explain.value",
            params={
                "base_value_fen": base_value_fen,
                "factor": str(factor),
                "value_fen": value_fen,
            },
        ),
    ]


# --- appraisal dates --------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it has no such day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class AppraisalDates(msgspec.Struct, frozen=True, kw_only=True):
    valid_until: date
    objection_until: date


def appraisal_dates(valued_on: date, today: date, policy: ValuationPolicy) -> AppraisalDates:
    """Validity and objection window of an appraisal recorded today (docs/rules.md
    §Disposal cases and valuation).

    Valid for one year from the valuation date (the last valid day is the same date a
    year later). The objection window (异议期) runs 5 days from when the appraisal is
    recorded with the exchange — the day the parties can first see it; recorded on its
    valuation date that is valued_on + 5 days.
    """
    if valued_on > today:
        raise Invalid("appraisal_in_future", field="valued_on", valued_on=valued_on, today=today)
    valid_until = add_months(valued_on, policy.appraisal_validity_months)
    if valid_until < today:
        raise Invalid(
            "appraisal_expired",
            field="valued_on",
            valid_until=valid_until,
            months=policy.appraisal_validity_months,
        )
    return AppraisalDates(
        valid_until=valid_until,
        objection_until=today + timedelta(days=policy.objection_days),
    )


def governs(method: str, valid_until: date, today: date) -> bool:
    """Whether a case's current valuation keeps a bank's internal valuation from replacing
    it: a paid appraisal does while it is valid (docs/rules.md §Disposal cases and
    valuation); an internal one never does, and an expired appraisal no longer does."""
    return method == "appraisal" and today <= valid_until


def asset_shares(
    value_fen: int, asset_ids: Sequence[int], asset_values: Mapping[int, int] | None = None
) -> dict[int, int]:
    """Each asset's part of a case's valuation (docs/rules.md §Lot terms): the values the
    valuation records for each asset when it has them (an appraisal report's 分项评估值),
    otherwise the value split equally over the case's assets, largest remainder (the
    lower asset id first on ties). The parts add up to the value to the fen."""
    ids = sorted(asset_ids)
    if not ids:
        return {}
    weights = [asset_values.get(i, 0) for i in ids] if asset_values else [1] * len(ids)
    if sum(weights) == 0:
        weights = [1] * len(ids)
    return dict(zip(ids, allocate(value_fen, weights), strict=True))
