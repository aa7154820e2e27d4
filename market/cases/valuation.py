"""Valuation rules: appraisal dates and the internal valuation (pure functions).

Internal valuation, in the spirit of GB/T 42748-2023 《专利评估指引》 (DOMAIN.md "Valuation
and monitoring"): the standard assesses a patent's legal, technical and economic value
with indicators and weights; CCB's internal method (内评法) builds on it and on CNIPA's
licence statistics. Here:

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
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

import msgspec

from market.cases.policy import ValuationPolicy
from market.errors import Invalid
from market.money import format_cny

# --- indicators and default weights -----------------------------------------------------

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "legal": ("legal_stability", "remaining_term", "ownership_clarity", "encumbrance"),
    "technical": ("advancement", "maturity", "substitutability", "claim_breadth"),
    "economic": ("market_size", "profitability", "licence_history"),
}
INDICATORS: tuple[str, ...] = tuple(k for keys in DIMENSIONS.values() for k in keys)
LABELS: dict[str, tuple[str, str]] = {
    "legal": ("法律价值", "Legal value"),
    "technical": ("技术价值", "Technical value"),
    "economic": ("经济价值", "Economic value"),
    "legal_stability": ("法律稳定性（有效性）", "Legal stability (validity)"),
    "remaining_term": ("剩余保护期", "Remaining term"),
    "ownership_clarity": ("权属清晰度", "Ownership clarity"),
    "encumbrance": ("权利负担（无负担为高分）", "Encumbrances (none = high)"),
    "advancement": ("技术先进性", "Technical advancement"),
    "maturity": ("技术成熟度", "Technical maturity"),
    "substitutability": ("不可替代性", "Non-substitutability"),
    "claim_breadth": ("权利要求保护范围", "Breadth of claims"),
    "market_size": ("市场规模", "Market size"),
    "profitability": ("获利能力（许可费潜力）", "Profitability (royalty potential)"),
    "licence_history": ("许可实施记录", "Licence history (CNIPA statistics)"),
}

# Defaults (issue 3 item 3): legal 0.3, technical 0.3, economic 0.4 — the economic
# dimension weighs most because a disposal realises market value.
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
    veto_legal_below: Decimal = Decimal(40)  # legal dimension score (issue 3 item 3)
    par_score: Decimal = Decimal(60)  # the score worth exactly the base value
    factor_min: Decimal = Decimal("0.2")
    factor_max: Decimal = Decimal("1.5")


DEFAULT_INTERNAL_POLICY = InternalPolicy()
SCORE_MAX = 100
MIN_BASE_FEN = 100  # CNY 1: below that no factor gives a storable value


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
    explanation: str
    verdict: str  # the explanation's last lines: the veto, or the factor and the value


# --- validation -------------------------------------------------------------------------


def _check_weights(
    weights: Mapping[str, Decimal], expected: tuple[str, ...], field: str, group: str
) -> None:
    unknown = sorted(set(weights) - set(expected))
    if unknown:
        raise Invalid(
            f"{field}：未知的键 {unknown}，应为 {list(expected)} / "
            f"{field}: unknown keys {unknown}; expected {list(expected)}",
            field=field,
        )
    missing = [k for k in expected if k not in weights]
    if missing:
        raise Invalid(
            f"{field}：缺少 {missing} 的权重 / {field}: weights missing for {missing}", field=field
        )
    for key in expected:
        w = weights[key]
        if not isinstance(w, Decimal) or not w.is_finite() or not Decimal(0) <= w <= Decimal(1):
            raise Invalid(
                f"{field}.{key}：权重应在 0 至 1 之间 / {field}.{key}: a weight is between 0 and 1",
                field=f"{field}.{key}",
            )
    total = sum((weights[k] for k in expected), Decimal(0))
    if total != Decimal(1):
        raise Invalid(f"权重之和须为 1 / the {group} weights sum to {total}, not 1", field=field)


def validate_policy(policy: InternalPolicy) -> None:
    _check_weights(policy.dimension_weights, tuple(DIMENSIONS), "dimension_weights", "dimension")
    unknown = sorted(set(policy.indicator_weights) - set(INDICATORS))
    if unknown:
        raise Invalid(
            f"indicator_weights：未知的指标 {unknown} / "
            f"indicator_weights: unknown indicators {unknown}",
            field="indicator_weights",
        )
    for dim, keys in DIMENSIONS.items():
        weights = {k: v for k, v in policy.indicator_weights.items() if k in keys}
        _check_weights(weights, keys, "indicator_weights", f"{dim} indicator")
    if not Decimal(0) <= policy.veto_legal_below <= SCORE_MAX:
        raise Invalid(
            "veto_legal_below：否决线应在 0–100 之间 / veto_legal_below: 0–100",
            field="veto_legal_below",
        )
    if policy.par_score <= 0:
        raise Invalid(
            "par_score：基准得分须为正数 / par_score: must be positive", field="par_score"
        )
    if not Decimal(0) < policy.factor_min <= policy.factor_max:
        raise Invalid(
            "调整系数上下限须满足 0 < factor_min ≤ factor_max / "
            "factor bounds: 0 < factor_min ≤ factor_max",
            field="factor_min",
        )


def _check_scores(scores: Mapping[str, int]) -> None:
    unknown = sorted(set(scores) - set(INDICATORS))
    if unknown:
        raise Invalid(
            f"scores：未知的指标 {unknown} / scores: unknown indicators {unknown}",
            field=f"scores.{unknown[0]}",
        )
    for key in INDICATORS:
        if key not in scores:
            raise Invalid(
                f"scores.{key}: 缺少“{LABELS[key][0]}”评分 / score missing", field=f"scores.{key}"
            )
        s = scores[key]
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= SCORE_MAX:
            raise Invalid(
                f"scores.{key}: 评分为 0–100 的整数 / a score is a whole number 0–100",
                field=f"scores.{key}",
            )


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

    Deterministic: the same inputs give the same value and the same text. Raises Invalid
    (naming the field) for scores outside 0–100, unknown or missing indicators, weights
    that do not sum to 1, or a base value under CNY 1.
    """
    if isinstance(base_value_fen, bool) or not isinstance(base_value_fen, int):
        raise Invalid(
            "base_value_fen：基准价值应为以分计的整数金额 / "
            "base_value_fen: an integer amount in fen",
            field="base_value_fen",
        )
    if base_value_fen < MIN_BASE_FEN:
        raise Invalid(
            "基准价值至少 1 元 / the base value is at least CNY 1", field="base_value_fen"
        )
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
        explanation=f"{body}\n{verdict}",
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
) -> str:
    basis_line = " ".join(basis.split())
    out = [
        "内部评估（参照 GB/T 42748-2023《专利评估指引》的法律、技术、经济价值指标）",
        "Internal valuation (after GB/T 42748-2023: legal, technical and economic indicators)",
        f"基准价值 Base value：{format_cny(base_value_fen)}"
        + (f"（依据 Basis：{basis_line}）" if basis_line else ""),
        "",
    ]
    for dim in DIMENSIONS:
        zh, en = LABELS[dim]
        out.append(
            f"{zh} {en} — 维度权重 weight {_w(policy.dimension_weights[dim])}，"
            f"维度得分 score {_q(dim_scores[dim], 2)}"
        )
        for line in (x for x in lines if x.dimension == dim):
            lzh, len_ = LABELS[line.key]
            out.append(
                f"  · {lzh} {len_}：得分 score {line.score} × 权重 weight {_w(line.weight)}"
                f" = {_q(line.weight * line.score, 2)}；"
                f"对综合得分的贡献 contribution {_q(line.contribution, 2)}"
            )
    terms = " + ".join(
        f"{_w(policy.dimension_weights[d])}×{_q(s, 2)}" for d, s in dim_scores.items()
    )
    out += ["", f"综合得分 Weighted score = {terms} = {_q(weighted, 2)}"]
    return "\n".join(out)


def _verdict(
    base_value_fen: int,
    policy: InternalPolicy,
    dim_scores: dict[str, Decimal],
    factor: Decimal,
    value_fen: int,
    vetoed: bool,
) -> str:
    if vetoed:
        legal, line = _q(dim_scores["legal"], 2), _q(policy.veto_legal_below, 2)
        return "\n".join(
            [
                f"法律价值得分 {legal} 低于否决线 {line}：专利权不稳定或已失效，质物可能灭失，"
                "评估价值为 0，不能作为处置参考价。",
                f"Legal score {legal} is below the veto line {line}: the patent is not reliably "
                "valid and the collateral may vanish, so its value is 0 and it cannot serve as "
                "a reference price.",
                "评估价值 Value = ¥0.00",
            ]
        )
    return "\n".join(
        [
            f"调整系数 Factor = 综合得分 / {_q(policy.par_score, 0)} = {factor}"
            f"（限定于 clamped to {_q(policy.factor_min, 2)}–{_q(policy.factor_max, 2)}）",
            f"评估价值 Value = {format_cny(base_value_fen)} × {factor} = {format_cny(value_fen)}",
        ]
    )


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
    """Validity and objection window of an appraisal recorded today (issue 3 item 3).

    Valid for one year from the valuation date (the last valid day is the same date a
    year later). The objection window (异议期) runs 5 days from when the appraisal is
    recorded with the exchange — the day the parties can first see it; recorded on its
    valuation date that is valued_on + 5 days.
    """
    if valued_on > today:
        raise Invalid(
            f"评估基准日 {valued_on} 晚于今天 {today} / the valuation date is in the future",
            field="valued_on",
        )
    valid_until = add_months(valued_on, policy.appraisal_validity_months)
    if valid_until < today:
        raise Invalid(
            f"评估报告已过有效期（评估基准日起 {policy.appraisal_validity_months} 个月，"
            f"至 {valid_until}）/ the appraisal expired on {valid_until}: it is valid "
            f"{policy.appraisal_validity_months} months from its valuation date",
            field="valued_on",
        )
    return AppraisalDates(
        valid_until=valid_until,
        objection_until=today + timedelta(days=policy.objection_days),
    )
