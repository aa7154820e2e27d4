"""The terms of a lot: validated data with defaults, every number cited (docs/rules.md
§Lot terms).

Pure: no database, no clock. `TermsPolicy` holds the exchange's rules (the numbers of
§Lot terms, as defaults an operator could change); `validate()` turns what a bank typed
into `Terms` or raises Invalid naming the field, the rule's code and its numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from market.cases.policy import MovesPolicy
from market.errors import Invalid
from market.licensing.value import ValuationPolicy, check_policy
from market.listing.policy import ListingPolicy, end_of_working_days
from market.lots.lifecycle import (
    FIRST_ROUND,
    RELIST_ROUND,
    in_days,
    in_hours,
    percent,
    relist_floor,
)
from market.money import percent_of, round_to_nice

BP = 10_000  # basis points in 100 %


class FeeTier(msgspec.Struct, frozen=True, kw_only=True):
    up_to_fen: int | None  # the tier covers the part of the price up to this amount; None: no limit
    rate_bp: int


# The statutory ceilings for auction commission (§Lot terms, after the Supreme People's Court
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
    """The exchange-wide rules a lot's terms are checked against (§Lot terms)."""

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
    # ... and a lot may not shorten either below 5 minutes, nor switch them off: a late
    # bid always leaves the others time to answer (§Lot terms, 2016 rules art. 20).
    min_extension_window: timedelta = timedelta(minutes=5)
    min_extension: timedelta = timedelta(minutes=5)
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
    # Licence offers (docs/rules.md §Licence offers and decision): a lot taking licence
    # offers only solicits them for at least 20 days before its offers close; the bank
    # decides within 10 days of the close (at most 30).
    min_solicitation: timedelta = timedelta(days=20)
    decision_days: int = 10
    max_decision_days: int = 30
    # A lot listed instead of auctioned (docs/rules.md §Listing).
    listing: ListingPolicy = ListingPolicy()
    # How long a failed round's next paths stay open (docs/rules.md §Moving between paths).
    moves: MovesPolicy = MovesPolicy()


class PreemptiveHolder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """优先购买权人: ranks 1, 2, 3… decide between holders who match the same price."""

    rank: Annotated[int, Meta(ge=1, le=20)]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    credit_code: str | None = None


class Fee(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["commission", "buyer_premium"] = "commission"
    tiers: tuple[FeeTier, ...] = STATUTORY_COMMISSION  # for commission
    premium_bp: int = 0  # for buyer_premium


# What a lot takes (docs/rules.md §Licence offers and decision): purchase bids only;
# bids and licence offers together; or licence offers only (the lot never opens for bids).
OffersMode = Literal["bids", "bids_and_licences", "licences_only"]


class OffersInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The offers block a bank announces with the lot; omitted fields take the defaults."""

    mode: OffersMode = "bids"
    # The bank's numbers for valuing offers (market/licensing/value.py ValuationPolicy).
    valuation: ValuationPolicy = ValuationPolicy()
    # Days after the close within which the bank decides.
    decision_days: Annotated[int, Meta(ge=1, le=366)] | None = None


class Offers(msgspec.Struct, frozen=True, kw_only=True):
    """The validated offers block, stored with the terms."""

    mode: OffersMode = "bids"
    valuation: ValuationPolicy = ValuationPolicy()
    decision_days: int = 10

    @property
    def takes_licences(self) -> bool:
        return self.mode != "bids"


# How a lot is disposed of (docs/rules.md §Listing): an auction, or a listing (挂牌) at
# `start_price_fen` (the listing price) for a disclosure period counted in working days.
Mode = Literal["auction", "listing"]


class ListingInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A listing's own numbers; omitted ones take the policy's defaults."""

    period_working_days: Annotated[int, Meta(ge=1, le=1000)] | None = None
    auction_hours: Annotated[int, Meta(ge=1, le=10_000)] | None = None


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """The validated listing block. The period's end is the round's `bidding_starts_at`
    (an online auction, when two or more intents qualify, opens then) and the auction's
    planned end its `bidding_ends_at`, both computed from the publication instant."""

    period_working_days: int
    auction_hours: int


class TermsInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a bank sends; omitted fields take the policy's defaults. An auction names its
    bidding window; a listing's is computed from its period (and a window sent is
    ignored)."""

    start_price_fen: Annotated[int, Meta(gt=0)]
    deposit_fen: Annotated[int, Meta(gt=0)]
    increment_fen: Annotated[int, Meta(gt=0)] | None = None
    bidding_starts_at: datetime | None = None
    bidding_ends_at: datetime | None = None
    extension_window_s: Annotated[int, Meta(ge=0, le=3600)] | None = None
    extension_s: Annotated[int, Meta(ge=0, le=3600)] | None = None
    hard_end_at: datetime | None = None  # optional cap on extensions
    payment_days: Annotated[int, Meta(ge=1)] | None = None
    fee: Fee = Fee()
    preemptive_holders: tuple[PreemptiveHolder, ...] = ()
    offers: OffersInput = OffersInput()
    mode: Mode = "auction"
    listing: ListingInput = ListingInput()


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
    offers: Offers = Offers()  # terms stored before licence offers existed take bids only
    mode: Mode = "auction"
    listing: Listing | None = None  # set when mode is "listing"


def default_increment(policy: TermsPolicy, start_price_fen: int) -> int:
    return round_to_nice(max(percent_of(start_price_fen, policy.default_increment_bp), 1))


def validate(
    policy: TermsPolicy,
    data: TermsInput,
    *,
    valuation_fen: int,
    publish_at: datetime,
    round: int = FIRST_ROUND,
    first_start_fen: int | None = None,
) -> Terms:
    """Check terms for a round whose announcement would start at `publish_at`.

    Round 1 answers to the valuation (≥ 70 %); round 2, the one relist, answers to round 1's
    start (at most 20 % lower, never higher) and needs only the relist notice.
    Raises Invalid with the field, the rule's code and its numbers; the first broken rule
    wins, in the order a person fills the form. Amounts in parameters end in `_fen`,
    percentages end in `_pct` (percent numbers, not basis points), periods in `_days` or
    `_hours`.
    """
    start = data.start_price_fen
    if round == RELIST_ROUND:
        if first_start_fen is None:
            raise ValueError("a relist is checked against the first round's start")
        lowest = relist_floor(policy, first_start_fen)
        if not lowest <= start <= first_start_fen:
            raise Invalid(
                "relist_reduction_too_large" if start < lowest else "relist_above_first",
                field="start_price_fen",
                start_price_fen=start,
                first_start_fen=first_start_fen,
                lowest_fen=lowest,
                max_reduction_pct=percent(policy.relist_max_reduction_bp),
            )
    elif round == FIRST_ROUND:
        floor = -(-valuation_fen * policy.min_start_of_valuation_bp // BP)  # ceiling division
        if start < floor:
            raise Invalid(
                "start_below_valuation_floor",
                field="start_price_fen",
                start_price_fen=start,
                valuation_fen=valuation_fen,
                floor_fen=floor,
                min_pct=percent(policy.min_start_of_valuation_bp),
            )
    low = -(-start * policy.deposit_min_bp // BP)
    high = start * policy.deposit_max_bp // BP
    if not low <= data.deposit_fen <= high:
        raise Invalid(
            "deposit_out_of_range",
            field="deposit_fen",
            deposit_fen=data.deposit_fen,
            low_fen=low,
            high_fen=high,
            min_pct=percent(policy.deposit_min_bp),
            max_pct=percent(policy.deposit_max_bp),
        )
    increment = data.increment_fen or default_increment(policy, start)
    if increment >= start:
        raise Invalid(
            "increment_too_large",
            field="increment_fen",
            increment_fen=increment,
            start_price_fen=start,
        )
    listing: Listing | None = None
    if data.mode == "listing":
        listing = validate_listing(policy.listing, data)
        starts, ends = listing_schedule(listing, publish_at)
    else:
        notice = policy.relist_notice if round == RELIST_ROUND else policy.announcement_period
        starts, ends = _validate_schedule(policy, data, publish_at, notice)
    window, extension = _extension(policy, data)
    if data.hard_end_at is not None and data.hard_end_at < ends + timedelta(seconds=extension):
        # Nothing ends bidding before the effective end (§Lot terms): a hard end leaves a
        # bid in the last second its whole extension.
        raise Invalid(
            "hard_end_too_early",
            field="hard_end_at",
            earliest_at=ends + timedelta(seconds=extension),
            extension_minutes=extension // 60,
        )
    payment_days = data.payment_days or policy.payment_days
    if payment_days > policy.max_payment_days:
        raise Invalid(
            "payment_days_too_long",
            field="payment_days",
            payment_days=payment_days,
            max_days=policy.max_payment_days,
        )
    _validate_fee(policy, data.fee)
    ranks = [h.rank for h in data.preemptive_holders]
    if sorted(ranks) != list(range(1, len(ranks) + 1)):
        raise Invalid("preemptive_ranks", field="preemptive_holders", ranks=sorted(ranks))
    offers = validate_offers(policy, data.offers, starts, publish_at)
    return Terms(
        start_price_fen=start,
        deposit_fen=data.deposit_fen,
        increment_fen=increment,
        bidding_starts_at=starts,
        bidding_ends_at=ends,
        extension_window_s=window,
        extension_s=extension,
        hard_end_at=data.hard_end_at,
        payment_days=payment_days,
        fee=data.fee,
        preemptive_holders=tuple(sorted(data.preemptive_holders, key=lambda h: h.rank)),
        offers=offers,
        mode=data.mode,
        listing=listing,
    )


def validate_listing(policy: ListingPolicy, data: TermsInput) -> Listing:
    """A listing's block checked (docs/rules.md §Listing): a disclosure period of at least
    the minimum of working days, an auction window of at least the lots' minimum, bids only
    (a listing takes no licence offers)."""
    given = data.listing
    days = given.period_working_days or policy.default_period_working_days
    if not policy.min_period_working_days <= days <= policy.max_period_working_days:
        raise Invalid(
            "listing_period_too_short"
            if days < policy.min_period_working_days
            else "listing_period_too_long",
            field="listing.period_working_days",
            period_working_days=days,
            min_working_days=policy.min_period_working_days,
            max_working_days=policy.max_period_working_days,
        )
    hours = given.auction_hours or policy.default_auction_hours
    if not policy.default_auction_hours <= hours <= policy.max_auction_hours:
        raise Invalid(
            "listing_auction_hours",
            field="listing.auction_hours",
            auction_hours=hours,
            min_hours=policy.default_auction_hours,
            max_hours=policy.max_auction_hours,
        )
    if data.offers.mode != "bids":
        raise Invalid("listing_takes_bids_only", field="offers.mode")
    return Listing(period_working_days=days, auction_hours=hours)


def listing_schedule(listing: Listing, publish_at: datetime) -> tuple[datetime, datetime]:
    """(period end, planned end of the auction that follows when two or more intents
    qualify) for a listing published at `publish_at`."""
    ends = end_of_working_days(publish_at, listing.period_working_days)
    return ends, ends + timedelta(hours=listing.auction_hours)


def validate_offers(
    policy: TermsPolicy, data: OffersInput, bidding_starts_at: datetime, publish_at: datetime
) -> Offers:
    """The offers block checked (docs/rules.md §Licence offers and decision). A lot taking
    licence offers only solicits them from its publication until `bidding_starts_at`, the
    instant its offers close (it never opens for bids): at least `min_solicitation`."""
    try:
        check_policy(data.valuation)
    except Invalid as exc:
        field = f"offers.valuation.{exc.field}" if exc.field else "offers.valuation"
        raise Invalid(exc.code, field=field, **exc.params) from exc
    days = policy.decision_days if data.decision_days is None else data.decision_days
    if days > policy.max_decision_days:
        raise Invalid(
            "decision_days_too_long",
            field="offers.decision_days",
            decision_days=days,
            max_days=policy.max_decision_days,
        )
    if data.mode == "licences_only" and bidding_starts_at - publish_at < policy.min_solicitation:
        raise Invalid(
            "solicitation_too_short",
            field="bidding_starts_at",
            earliest_at=publish_at + policy.min_solicitation,
            min_days=in_days(policy.min_solicitation),
        )
    return Offers(mode=data.mode, valuation=data.valuation, decision_days=days)


def _validate_schedule(
    policy: TermsPolicy, data: TermsInput, publish_at: datetime, notice: timedelta
) -> tuple[datetime, datetime]:
    """An auction's (bidding_starts_at, bidding_ends_at), checked."""
    for name in ("bidding_starts_at", "bidding_ends_at", "hard_end_at"):
        value = getattr(data, name)
        if value is not None and value.tzinfo is None:
            raise Invalid("time_zone_required", field=name)
    starts, ends = data.bidding_starts_at, data.bidding_ends_at
    if starts is None:
        raise Invalid("required", field="bidding_starts_at")
    if ends is None:
        raise Invalid("required", field="bidding_ends_at")
    earliest = publish_at + notice
    if starts < earliest:
        raise Invalid(
            "announcement_too_short",
            field="bidding_starts_at",
            earliest_at=earliest,
            notice_days=in_days(notice),
        )
    if ends - starts < policy.min_bidding_window:
        raise Invalid(
            "bidding_window_too_short",
            field="bidding_ends_at",
            min_hours=in_hours(policy.min_bidding_window),
        )
    return starts, ends


def _extension(policy: TermsPolicy, data: TermsInput) -> tuple[int, int]:
    """(window, extension) in seconds: the lot's own or the policy's, never below the
    policy's minimum (§Lot terms)."""
    out: list[int] = []
    for field, given, default, least in (
        (
            "extension_window_s",
            data.extension_window_s,
            policy.extension_window,
            policy.min_extension_window,
        ),
        ("extension_s", data.extension_s, policy.extension, policy.min_extension),
    ):
        seconds = int(default.total_seconds()) if given is None else given
        if seconds < least.total_seconds():
            raise Invalid(
                "extension_too_short",
                field=field,
                seconds=seconds,
                min_minutes=int(least.total_seconds()) // 60,
            )
        out.append(seconds)
    return out[0], out[1]


def _validate_fee(policy: TermsPolicy, fee: Fee) -> None:
    if fee.kind == "buyer_premium":
        if not 0 <= fee.premium_bp <= policy.max_buyer_premium_bp:
            raise Invalid(
                "premium_too_high",
                field="fee",
                premium_pct=percent(fee.premium_bp),
                max_pct=percent(policy.max_buyer_premium_bp),
            )
        return
    ceiling = policy.commission_ceiling
    if len(fee.tiers) != len(ceiling) or any(
        t.up_to_fen != c.up_to_fen for t, c in zip(fee.tiers, ceiling, strict=True)
    ):
        raise Invalid("commission_tiers_not_statutory", field="fee")
    lower = 0
    for tier, cap in zip(fee.tiers, ceiling, strict=True):
        if not 0 <= tier.rate_bp <= cap.rate_bp:
            if cap.up_to_fen is None:
                raise Invalid(
                    "commission_above_ceiling_top",
                    field="fee",
                    above_fen=lower,
                    rate_pct=percent(tier.rate_bp),
                    max_pct=percent(cap.rate_bp),
                )
            raise Invalid(
                "commission_above_ceiling",
                field="fee",
                from_fen=lower,
                up_to_fen=cap.up_to_fen,
                rate_pct=percent(tier.rate_bp),
                max_pct=percent(cap.rate_bp),
            )
        lower = cap.up_to_fen or lower


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
