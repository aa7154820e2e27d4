"""The terms of a lot: validated data with defaults, every number cited (issue 3).

Pure: no database, no clock. `TermsPolicy` holds the exchange's rules (the numbers the issue
gives, as defaults an operator could change); `validate()` turns what a bank typed into
`Terms` or raises Invalid naming the field and the rule it breaks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from market.errors import Invalid
from market.money import format_cny, percent_of, round_to_nice

BP = 10_000  # basis points in 100 %


class FeeTier(msgspec.Struct, frozen=True, kw_only=True):
    up_to_fen: int | None  # the tier covers the part of the price up to this amount; None: no limit
    rate_bp: int


# The statutory ceilings for auction commission (issue 3, after the Supreme People's Court
# rules on commissioned auctions): at most 5 % of the part of the price up to CNY 2 m, 3 % of
# the part from 2 to 10 m, 2 % from 10 to 50 m, 1 % from 50 to 100 m, 0.5 % above 100 m.
# Marginal, like income-tax brackets: each rate applies to the part inside its tier.
STATUTORY_COMMISSION: tuple[FeeTier, ...] = (
    FeeTier(up_to_fen=2_000_000_00, rate_bp=500),
    FeeTier(up_to_fen=10_000_000_00, rate_bp=300),
    FeeTier(up_to_fen=50_000_000_00, rate_bp=200),
    FeeTier(up_to_fen=100_000_000_00, rate_bp=100),
    FeeTier(up_to_fen=None, rate_bp=50),
)


class TermsPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The exchange-wide rules a lot's terms are checked against (issue 3)."""

    # First-round starting price at least 70 % of the valuation.
    min_start_of_valuation_bp: int = 7000
    # Deposit between 5 % and 20 % of the starting price.
    deposit_min_bp: int = 500
    deposit_max_bp: int = 2000
    # Default increment: about 0.5 % of the start, rounded to a round figure.
    default_increment_bp: int = 50
    # Announcement before bidding: 30 days for property rights such as IP (a setting).
    announcement_period: timedelta = timedelta(days=30)
    # Bidding window at least 24 hours.
    min_bidding_window: timedelta = timedelta(hours=24)
    # A bid in the last 5 minutes moves the end to 5 minutes after that bid.
    extension_window: timedelta = timedelta(minutes=5)
    extension: timedelta = timedelta(minutes=5)
    # Payment of the balance within 10 days of the close.
    payment_days: int = 10
    max_payment_days: int = 30
    # A failed first round may be relisted once, at most 20 % lower, with 15 days' notice.
    relist_max_reduction_bp: int = 2000
    relist_notice: timedelta = timedelta(days=15)
    # A failed second round goes to a fixed-price sale (变卖) for up to 60 days.
    fixed_price_max_duration: timedelta = timedelta(days=60)
    # A paused lot must be resumed within 5 days.
    max_pause: timedelta = timedelta(days=5)
    commission_ceiling: tuple[FeeTier, ...] = STATUTORY_COMMISSION
    max_buyer_premium_bp: int = 500


class PreemptiveHolder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """优先购买权人: ranks 1, 2, 3… decide between holders who match the same price."""

    rank: Annotated[int, Meta(ge=1, le=20)]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    credit_code: str | None = None


class Fee(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["commission", "buyer_premium"] = "commission"
    tiers: tuple[FeeTier, ...] = STATUTORY_COMMISSION  # for commission
    premium_bp: int = 0  # for buyer_premium


class TermsInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a bank sends; omitted fields take the policy's defaults."""

    start_price_fen: Annotated[int, Meta(gt=0)]
    deposit_fen: Annotated[int, Meta(gt=0)]
    increment_fen: Annotated[int, Meta(gt=0)] | None = None
    bidding_starts_at: datetime
    bidding_ends_at: datetime
    extension_window_s: Annotated[int, Meta(ge=0, le=3600)] | None = None
    extension_s: Annotated[int, Meta(ge=0, le=3600)] | None = None
    hard_end_at: datetime | None = None  # optional cap on extensions
    payment_days: Annotated[int, Meta(ge=1)] | None = None
    fee: Fee = Fee()
    preemptive_holders: tuple[PreemptiveHolder, ...] = ()


class Terms(msgspec.Struct, frozen=True, kw_only=True):
    """Validated terms of the current round, stored in lots.terms."""

    start_price_fen: int
    deposit_fen: int
    increment_fen: int
    bidding_starts_at: datetime
    bidding_ends_at: datetime
    extension_window_s: int
    extension_s: int
    hard_end_at: datetime | None
    payment_days: int
    fee: Fee
    preemptive_holders: tuple[PreemptiveHolder, ...]


def default_increment(policy: TermsPolicy, start_price_fen: int) -> int:
    return round_to_nice(max(percent_of(start_price_fen, policy.default_increment_bp), 1))


def _pct(bp: int) -> str:
    return f"{bp / 100:g} %"


def validate(
    policy: TermsPolicy,
    data: TermsInput,
    *,
    valuation_fen: int,
    publish_at: datetime,
    round: int = 1,
    first_start_fen: int | None = None,
) -> Terms:
    """Check terms for a round whose announcement would start at `publish_at`.

    Round 1 answers to the valuation (≥ 70 %); round 2, the one relist, answers to round 1's
    start (at most 20 % lower, never higher) and needs only the relist notice.
    Raises Invalid with the field and the rule; the first broken rule wins, in the order a
    person fills the form.
    """
    start = data.start_price_fen
    if round == 2:
        if first_start_fen is None:
            raise ValueError("a relist is checked against the first round's start")
        lowest = -(-first_start_fen * (BP - policy.relist_max_reduction_bp) // BP)
        if not lowest <= start <= first_start_fen:
            raise Invalid(
                f"再次拍卖的起拍价最多比一拍的 {format_cny(first_start_fen)} 低 "
                f"{_pct(policy.relist_max_reduction_bp)}：应在 {format_cny(lowest)} 至 "
                f"{format_cny(first_start_fen)} 之间 / "
                f"a relisted lot starts at most {_pct(policy.relist_max_reduction_bp)} below "
                f"the first round's {format_cny(first_start_fen)}: between {format_cny(lowest)} "
                f"and {format_cny(first_start_fen)}",
                field="start_price_fen",
                code="relist_reduction_too_large" if start < lowest else "relist_above_first",
            )
    elif round == 1:
        floor = -(-valuation_fen * policy.min_start_of_valuation_bp // BP)  # ceiling division
        if start < floor:
            raise Invalid(
                f"起拍价 {format_cny(start)} 低于评估价 {format_cny(valuation_fen)} 的 "
                f"{_pct(policy.min_start_of_valuation_bp)}：一拍至少 {format_cny(floor)} / "
                f"starting price {format_cny(start)} is below "
                f"{_pct(policy.min_start_of_valuation_bp)} of the valuation "
                f"{format_cny(valuation_fen)}: at least {format_cny(floor)} in the first round",
                field="start_price_fen",
                code="start_below_valuation_floor",
            )
    low = -(-start * policy.deposit_min_bp // BP)
    high = start * policy.deposit_max_bp // BP
    if not low <= data.deposit_fen <= high:
        raise Invalid(
            f"保证金 {format_cny(data.deposit_fen)} 应为起拍价的 {_pct(policy.deposit_min_bp)}"
            f"至 {_pct(policy.deposit_max_bp)}：{format_cny(low)} 至 {format_cny(high)} / "
            f"deposit {format_cny(data.deposit_fen)} must be between "
            f"{_pct(policy.deposit_min_bp)} and {_pct(policy.deposit_max_bp)} of the starting "
            f"price: {format_cny(low)} to {format_cny(high)}",
            field="deposit_fen",
            code="deposit_out_of_range",
        )
    increment = data.increment_fen or default_increment(policy, start)
    if increment >= start:
        raise Invalid(
            "加价幅度须小于起拍价 / the increment must be smaller than the starting price",
            field="increment_fen",
            code="increment_too_large",
        )
    notice = policy.relist_notice if round == 2 else policy.announcement_period
    _validate_schedule(policy, data, publish_at, notice)
    payment_days = data.payment_days or policy.payment_days
    if payment_days > policy.max_payment_days:
        raise Invalid(
            f"付款期限最长 {policy.max_payment_days} 天 / "
            f"payment deadline is at most {policy.max_payment_days} days",
            field="payment_days",
            code="payment_days_too_long",
        )
    _validate_fee(policy, data.fee)
    ranks = [h.rank for h in data.preemptive_holders]
    if sorted(ranks) != list(range(1, len(ranks) + 1)):
        raise Invalid(
            "优先购买权人按 1、2、3…排序，不得空缺或重复 / "
            "pre-emptive right holders are ranked 1, 2, 3… without gaps or repeats",
            field="preemptive_holders",
            code="preemptive_ranks",
        )
    window = (
        policy.extension_window.total_seconds()
        if data.extension_window_s is None
        else data.extension_window_s
    )
    extension = policy.extension.total_seconds() if data.extension_s is None else data.extension_s
    return Terms(
        start_price_fen=start,
        deposit_fen=data.deposit_fen,
        increment_fen=increment,
        bidding_starts_at=data.bidding_starts_at,
        bidding_ends_at=data.bidding_ends_at,
        extension_window_s=int(window),
        extension_s=int(extension),
        hard_end_at=data.hard_end_at,
        payment_days=payment_days,
        fee=data.fee,
        preemptive_holders=tuple(sorted(data.preemptive_holders, key=lambda h: h.rank)),
    )


def _validate_schedule(
    policy: TermsPolicy, data: TermsInput, publish_at: datetime, notice: timedelta
) -> None:
    for name in ("bidding_starts_at", "bidding_ends_at", "hard_end_at"):
        value = getattr(data, name)
        if value is not None and value.tzinfo is None:
            raise Invalid(
                f"{name} 须带时区（如 +08:00） / {name} needs a time zone (e.g. +08:00)",
                field=name,
            )
    earliest = publish_at + notice
    if data.bidding_starts_at < earliest:
        raise Invalid(
            f"竞价最早于公告 {_days(notice, 'zh')}后开始"
            f"（{earliest.isoformat(timespec='minutes')}） / "
            f"bidding may open no earlier than {_days(notice)} after the announcement "
            f"({earliest.isoformat(timespec='minutes')})",
            field="bidding_starts_at",
            code="announcement_too_short",
        )
    if data.bidding_ends_at - data.bidding_starts_at < policy.min_bidding_window:
        raise Invalid(
            f"竞价期至少 {_days(policy.min_bidding_window, 'zh')} / "
            f"the bidding window must last at least {_days(policy.min_bidding_window)}",
            field="bidding_ends_at",
            code="bidding_window_too_short",
        )
    if data.hard_end_at is not None and data.hard_end_at < data.bidding_ends_at:
        raise Invalid(
            "最迟结束时间不得早于计划结束时间 / the hard end cannot be before the planned end",
            field="hard_end_at",
        )


def _validate_fee(policy: TermsPolicy, fee: Fee) -> None:
    if fee.kind == "buyer_premium":
        if not 0 <= fee.premium_bp <= policy.max_buyer_premium_bp:
            raise Invalid(
                f"买方佣金最高 {_pct(policy.max_buyer_premium_bp)} / "
                f"buyer's premium is at most {_pct(policy.max_buyer_premium_bp)}",
                field="fee",
                code="premium_too_high",
            )
        return
    ceiling = policy.commission_ceiling
    if len(fee.tiers) != len(ceiling) or any(
        t.up_to_fen != c.up_to_fen for t, c in zip(fee.tiers, ceiling, strict=True)
    ):
        raise Invalid(
            "佣金须按法定分段收取 / commission tiers must follow the statutory brackets",
            field="fee",
        )
    for tier, cap in zip(fee.tiers, ceiling, strict=True):
        if not 0 <= tier.rate_bp <= cap.rate_bp:
            raise Invalid(
                f"{format_cny(cap.up_to_fen or 0)} 以内部分的佣金最高 {_pct(cap.rate_bp)} / "
                f"commission in the bracket up to {format_cny(cap.up_to_fen or 0)} is at most "
                f"{_pct(cap.rate_bp)}",
                field="fee",
                code="commission_above_ceiling",
            )


def fee_fen(fee: Fee, price_fen: int) -> int:
    """The fee on a sale at `price_fen`: marginal commission tiers, or the buyer's premium."""
    if fee.kind == "buyer_premium":
        return percent_of(price_fen, fee.premium_bp)
    total, lower = 0, 0
    for tier in fee.tiers:
        upper = price_fen if tier.up_to_fen is None else min(price_fen, tier.up_to_fen)
        if upper > lower:
            total += percent_of(upper - lower, tier.rate_bp)
        lower = tier.up_to_fen if tier.up_to_fen is not None else price_fen
        if lower >= price_fen:
            break
    return total


def _days(delta: timedelta, lang: str = "en") -> str:
    zh = lang == "zh"
    if delta >= timedelta(days=2) and delta % timedelta(days=1) == timedelta(0):
        return f"{delta.days} 天" if zh else f"{delta.days} days"
    if delta % timedelta(hours=1) == timedelta(0):
        hours = int(delta.total_seconds() // 3600)
        return f"{hours} 小时" if zh else f"{hours} hours"
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} 分钟" if zh else f"{minutes} minutes"
