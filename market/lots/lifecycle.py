"""The lot lifecycle as one pure state machine (docs/rules.md §Lot lifecycle).

    draft ──publish──▶ announced ──open (on time)──▶ bidding ──close──▶ sold
      │                  │    ▲                        │  ▲             └─▶ failed
      │                  │    │                        └──close with licence offers──▶ deciding
      │                  └──offers close (licence offers only)──────────────────────▶ deciding
      │                  │    │           deciding ──decide──▶ sold | licensed | failed
      └──withdraw──▶ withdrawn ◀──withdraw── paused ◀──┘  │ pause/resume (≤ 5 days)
    failed, round 1 ──relist (≤ 20 % lower, 15 days' notice)──▶ announced, round 2
    failed, round 2 ──fixed_price (变卖, ≤ 60 days at round 2's start)──▶ bidding, round 3
    round 3 closes unsold ──▶ returned to the bank
    sold ──default (悔拍: the winner did not pay)──▶ failed (round 3: returned), so it relists
    a listing (挂牌, docs/rules.md §Listing) is announced for its period; at its end it is
    failed (no intent; extend_listing ──▶ announced again), deciding (one intent: the
    negotiated transfer, decided sold or failed) or bidding (two or more: an auction)
    sold ──unwind (the title did not move: market/transfer)──▶ failed (round 3: returned)
    failed ──sell_by_agreement (an acquisition institution takes the case's assets at the
      agreed price: market/acquisition)──▶ sold, in the round that failed

`apply(policy, state, action)` returns the new state or raises IllegalTransition (409)
with a code naming the rule, the action, the lot's status and round, and the rule's
numbers. No I/O and no clock: every action carries its instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from market.errors import Conflict, LineProblem
from market.money import BASIS_POINTS

if TYPE_CHECKING:
    from market.lots.terms import TermsPolicy

Status = Literal[
    "draft",
    "announced",
    "bidding",
    "deciding",
    "sold",
    "licensed",
    "failed",
    "paused",
    "withdrawn",
    "returned",
]
# A licence chosen ends the disposal by licensing (docs/rules.md §Licence offers and decision).
TERMINAL: frozenset[str] = frozenset({"withdrawn", "returned", "licensed"})

# The rounds of a lot's disposal (§Lot lifecycle): the first auction, the one relist, and
# the fixed-price sale (变卖) at the relist's starting price.
FIRST_ROUND = 1
RELIST_ROUND = 2
FIXED_PRICE_ROUND = 3

# Why the exchange itself ended or reopened a lot: stored as these catalog keys in the
# lot's status_reason (beside a bank's own words for a withdrawal or a pause) and shown
# translated.
REASON_DEFAULTED = "lot.reason.winner_defaulted"
REASON_PAUSE_EXPIRED = "lot.reason.pause_expired"
REASON_UNWOUND = "lot.reason.transfer_unwound"
SYSTEM_REASONS: frozenset[str] = frozenset({REASON_DEFAULTED, REASON_PAUSE_EXPIRED, REASON_UNWOUND})

# The actions a bank takes on its lot, by the name the lifecycle records them under.
BANK_ACTIONS: tuple[str, ...] = ("publish", "withdraw", "pause", "resume", "relist", "fixed_price")


class IllegalTransition(Conflict):
    default_code = "illegal_transition"


def relist_floor(policy: TermsPolicy, first_start_fen: int) -> int:
    """The lowest start of a relist: the first round's start less the allowed reduction,
    rounded up to the fen so the reduction never exceeds the rule."""
    return -(-first_start_fen * (BASIS_POINTS - policy.relist_max_reduction_bp) // BASIS_POINTS)


class LotState(msgspec.Struct, frozen=True, kw_only=True):
    status: Status
    round: int
    start_price_fen: int
    first_start_fen: int
    announced_at: datetime | None = None
    bidding_starts_at: datetime | None = None
    bidding_ends_at: datetime | None = None
    paused_from: Literal["announced", "bidding"] | None = None
    paused_at: datetime | None = None
    resume_by: datetime | None = None
    reason: str = ""


# --- actions (a tagged union: each knows its instant) ----------------------------------


class Publish(msgspec.Struct, frozen=True, tag="publish"):
    at: datetime
    # What still blocks publication (a disclosure document, the valuation…), each with
    # its own code (market/lots/services.publish_blockers).
    missing: tuple[LineProblem, ...] = ()
    # A listing (docs/rules.md §Listing): its period, counted in working days from this
    # publication, replaces the announcement period; (period end, the auction's planned
    # end should two or more intents qualify).
    listing: tuple[datetime, datetime] | None = None


class ExtendListing(msgspec.Struct, frozen=True, tag="extend_listing"):
    """A listing whose period ended without a qualified intent is listed again until
    `until` (docs/rules.md §Listing); the caller checked it was a listing's period."""

    at: datetime
    until: datetime
    auction_ends_at: datetime


class OpenBidding(msgspec.Struct, frozen=True, tag="open"):
    at: datetime


class Close(msgspec.Struct, frozen=True, tag="close"):
    at: datetime
    sold: bool


class AwaitDecision(msgspec.Struct, frozen=True, tag="await_decision"):
    """The round closed with licence offers standing: the bank decides between them and
    the top bid (docs/rules.md §Licence offers and decision). From bidding at the
    effective end; a lot taking licence offers only, from announced when its offers close
    (the announced opening instant: it never opens for bids)."""

    at: datetime
    licences_only: bool = False


class Decide(msgspec.Struct, frozen=True, tag="decide"):
    """The bank's decision (or the deadline's): the hammer or a sale and licence back
    stands (sold), a licence was chosen (licensed), or nothing was (failed)."""

    at: datetime
    outcome: Literal["sold", "licensed", "failed"]


class Relist(msgspec.Struct, frozen=True, tag="relist"):
    """Round 2; its terms were validated by terms.validate(round=2) before this."""

    at: datetime
    start_price_fen: int
    bidding_starts_at: datetime
    bidding_ends_at: datetime


class FixedPrice(msgspec.Struct, frozen=True, tag="fixed_price"):
    at: datetime
    ends_at: datetime


class Default(msgspec.Struct, frozen=True, tag="default"):
    """The winner did not pay by the deadline (悔拍): the sale is void (§After the close)."""

    at: datetime


class Unwind(msgspec.Struct, frozen=True, tag="unwind"):
    """The sale was paid but the title did not move (docs/rules.md §Transfer of title):
    the sale is unwound and the disposal goes on."""

    at: datetime


class SellByAgreement(msgspec.Struct, frozen=True, tag="sell_by_agreement"):
    """The round failed and an acquisition institution takes the assets at the price
    agreed with the bank, out of the pools' objection window (docs/rules.md §Acquisition
    and pledge-to-equity): the round is sold after all, and the sale goes through the
    after-the-hammer steps like any other."""

    at: datetime


class Withdraw(msgspec.Struct, frozen=True, tag="withdraw"):
    at: datetime
    reason: str


class Pause(msgspec.Struct, frozen=True, tag="pause"):
    at: datetime
    reason: str


class Resume(msgspec.Struct, frozen=True, tag="resume"):
    at: datetime


class ExpirePause(msgspec.Struct, frozen=True, tag="expire_pause"):
    at: datetime


Action = (
    Publish
    | ExtendListing
    | OpenBidding
    | Close
    | AwaitDecision
    | Decide
    | Default
    | Unwind
    | SellByAgreement
    | Relist
    | FixedPrice
    | Withdraw
    | Pause
    | Resume
    | ExpirePause
)


def _name(action: Action) -> str:
    name = type(action).__struct_config__.tag
    assert isinstance(name, str)
    return name


def _refuse(
    state: LotState,
    action: Action,
    code: str,
    *,
    field: str | None = None,
    problems: list[LineProblem] | None = None,
    **params: Any,
) -> IllegalTransition:
    return IllegalTransition(
        code,
        field=field,
        problems=problems,
        action=_name(action),
        status=state.status,
        round=state.round,
        **params,
    )


def offered(state: LotState) -> frozenset[str]:
    """The bank's actions the lot's state allows, for a page to offer (the rules may
    still refuse one for its numbers: a date too soon, a price too low)."""
    paused_before_bidding = state.status == "paused" and state.paused_from == "announced"
    allowed = {
        "publish": state.status == "draft",
        "withdraw": state.status in ("draft", "announced") or paused_before_bidding,
        "pause": state.status in ("announced", "bidding"),
        "resume": state.status == "paused",
        "relist": state.status == "failed" and state.round == FIRST_ROUND,
        "fixed_price": state.status == "failed" and state.round == RELIST_ROUND,
    }
    return frozenset(name for name, ok in allowed.items() if ok)


def apply(policy: TermsPolicy, state: LotState, action: Action) -> LotState:
    if state.status in TERMINAL:
        raise _refuse(state, action, "lot_disposal_over")
    if state.status == "sold" and not isinstance(action, Default | Unwind):
        raise _refuse(state, action, "lot_sold")
    replace = msgspec.structs.replace
    match action:
        case Publish(at=at, missing=missing, listing=listing):
            if state.status != "draft":
                raise _refuse(state, action, "publish_needs_draft")
            if missing:
                raise _refuse(
                    state, action, "lot_not_publishable", problems=list(missing), count=len(missing)
                )
            if listing is not None:
                return replace(
                    state,
                    status="announced",
                    announced_at=at,
                    bidding_starts_at=listing[0],
                    bidding_ends_at=listing[1],
                )
            assert state.bidding_starts_at is not None
            earliest = at + policy.announcement_period
            if state.bidding_starts_at < earliest:
                raise _refuse(
                    state,
                    action,
                    "announcement_too_short",
                    field="bidding_starts_at",
                    earliest_at=earliest,
                    notice_days=in_days(policy.announcement_period),
                )
            return replace(state, status="announced", announced_at=at)
        case OpenBidding(at=at):
            if state.status != "announced":
                raise _refuse(state, action, "open_needs_announced")
            assert state.bidding_starts_at is not None
            if at < state.bidding_starts_at:
                raise _refuse(state, action, "opening_not_due", starts_at=state.bidding_starts_at)
            return replace(state, status="bidding")
        case Close(at=at, sold=sold):
            if state.status != "bidding":
                raise _refuse(state, action, "close_needs_bidding")
            assert state.bidding_ends_at is not None
            if at < state.bidding_ends_at:
                raise _refuse(state, action, "close_before_end", ends_at=state.bidding_ends_at)
            if sold:
                return replace(state, status="sold")
            # The fixed-price sale is the last chance: unsold, the lot goes back to the bank.
            return replace(
                state, status="returned" if state.round == FIXED_PRICE_ROUND else "failed"
            )
        case AwaitDecision(at=at, licences_only=licences_only):
            if licences_only:
                if state.status != "announced":
                    raise _refuse(state, action, "offers_close_needs_announced")
                assert state.bidding_starts_at is not None
                if at < state.bidding_starts_at:
                    raise _refuse(
                        state, action, "close_before_end", ends_at=state.bidding_starts_at
                    )
            else:
                if state.status != "bidding":
                    raise _refuse(state, action, "close_needs_bidding")
                assert state.bidding_ends_at is not None
                if at < state.bidding_ends_at:
                    raise _refuse(state, action, "close_before_end", ends_at=state.bidding_ends_at)
            return replace(state, status="deciding")
        case Decide(outcome=outcome):
            if state.status != "deciding":
                raise _refuse(state, action, "decide_needs_deciding")
            if outcome == "failed" and state.round == FIXED_PRICE_ROUND:
                return replace(state, status="returned")
            return replace(state, status=outcome)
        case Default() | Unwind():
            if state.status != "sold":
                raise _refuse(state, action, "default_needs_sale")
            # The round failed after all: relist (round 1), fixed-price sale (round 2), or,
            # after a fixed-price sale, back to the bank.
            return replace(
                state,
                status="returned" if state.round == FIXED_PRICE_ROUND else "failed",
                reason=REASON_DEFAULTED if isinstance(action, Default) else REASON_UNWOUND,
            )
        case SellByAgreement():
            if state.status != "failed":
                raise _refuse(state, action, "sell_by_agreement_needs_failed")
            return replace(state, status="sold", reason="")
        case Relist(at=at, start_price_fen=start, bidding_starts_at=starts, bidding_ends_at=ends):
            if state.status != "failed" or state.round != FIRST_ROUND:
                raise _refuse(state, action, "relist_needs_failed_first_round")
            lowest = relist_floor(policy, state.first_start_fen)
            if not lowest <= start <= state.first_start_fen:
                raise _refuse(
                    state,
                    action,
                    "relist_reduction_too_large" if start < lowest else "relist_above_first",
                    field="start_price_fen",
                    start_price_fen=start,
                    first_start_fen=state.first_start_fen,
                    lowest_fen=lowest,
                    max_reduction_pct=percent(policy.relist_max_reduction_bp),
                )
            if starts < at + policy.relist_notice:
                raise _refuse(
                    state,
                    action,
                    "announcement_too_short",
                    field="bidding_starts_at",
                    earliest_at=at + policy.relist_notice,
                    notice_days=in_days(policy.relist_notice),
                )
            if ends - starts < policy.min_bidding_window:
                raise _refuse(
                    state,
                    action,
                    "bidding_window_too_short",
                    field="bidding_ends_at",
                    min_hours=in_hours(policy.min_bidding_window),
                )
            return replace(
                state,
                status="announced",
                round=RELIST_ROUND,
                start_price_fen=start,
                announced_at=at,
                bidding_starts_at=starts,
                bidding_ends_at=ends,
            )
        case FixedPrice(at=at, ends_at=ends):
            if state.status != "failed" or state.round != RELIST_ROUND:
                raise _refuse(state, action, "fixed_price_needs_failed_relist")
            if ends <= at:
                raise _refuse(
                    state, action, "fixed_price_end_passed", field="ends_at", ends_at=ends
                )
            latest = at + policy.fixed_price_max_duration
            if ends > latest:
                raise _refuse(
                    state,
                    action,
                    "fixed_price_too_long",
                    field="ends_at",
                    latest_at=latest,
                    max_days=in_days(policy.fixed_price_max_duration),
                )
            # Same price as the second round's start (变卖价 = 二拍起拍价).
            return replace(
                state,
                status="bidding",
                round=FIXED_PRICE_ROUND,
                announced_at=at,
                bidding_starts_at=at,
                bidding_ends_at=ends,
            )
        case ExtendListing(at=at, until=until, auction_ends_at=auction_ends_at):
            if state.status != "failed":
                raise _refuse(state, action, "extend_needs_ended_listing")
            return replace(
                state,
                status="announced",
                bidding_starts_at=until,
                bidding_ends_at=auction_ends_at,
                reason="",
            )
        case Withdraw(at=at, reason=reason):
            if "withdraw" not in offered(state):
                raise _refuse(state, action, "withdraw_needs_no_bidding")
            if not reason.strip():
                raise _refuse(state, action, "reason_required", field="reason")
            return replace(
                state,
                status="withdrawn",
                reason=reason.strip(),
                paused_from=None,
                paused_at=None,
                resume_by=None,
            )
        case Pause(at=at, reason=reason):
            if state.status not in ("announced", "bidding"):
                raise _refuse(state, action, "pause_needs_live_lot")
            if not reason.strip():
                raise _refuse(state, action, "reason_required", field="reason")
            origin: Literal["announced", "bidding"] = (
                "bidding" if state.status == "bidding" else "announced"
            )
            return replace(
                state,
                status="paused",
                paused_from=origin,
                paused_at=at,
                resume_by=at + policy.max_pause,
                reason=reason.strip(),
            )
        case Resume(at=at):
            if state.status != "paused":
                raise _refuse(state, action, "resume_needs_paused")
            assert state.resume_by is not None and state.paused_at is not None
            if at > state.resume_by:
                raise _refuse(
                    state,
                    action,
                    "pause_expired",
                    resume_by=state.resume_by,
                    max_days=in_days(policy.max_pause),
                )
            # Nobody loses time to the pause: the schedule moves by its length.
            shift = at - state.paused_at
            return replace(
                state,
                status=state.paused_from or "announced",
                paused_from=None,
                paused_at=None,
                resume_by=None,
                reason="",
                bidding_starts_at=_shift(state.bidding_starts_at, shift)
                if state.paused_from == "announced"
                else state.bidding_starts_at,
                bidding_ends_at=_shift(state.bidding_ends_at, shift),
            )
        case ExpirePause(at=at):
            if state.status != "paused":
                raise _refuse(state, action, "expire_needs_paused")
            assert state.resume_by is not None
            if at <= state.resume_by:
                raise _refuse(state, action, "pause_still_resumable", resume_by=state.resume_by)
            return replace(
                state,
                status="withdrawn",
                paused_from=None,
                paused_at=None,
                resume_by=None,
                reason=REASON_PAUSE_EXPIRED,
            )
    raise AssertionError(f"unknown action {action!r}")  # pragma: no cover


def _shift(value: datetime | None, delta: timedelta) -> datetime | None:
    return None if value is None else value + delta


def percent(bp: int) -> int | float:
    """Basis points as a percent number for a refusal's parameters: 2000 → 20, 50 → 0.5."""
    return bp // 100 if bp % 100 == 0 else bp / 100


def in_days(delta: timedelta) -> int | float:
    """A period in days for a refusal's parameters: 30, or 0.5 for 12 hours."""
    whole, rest = divmod(delta, timedelta(days=1))
    return whole if not rest else round(delta / timedelta(days=1), 3)


def in_hours(delta: timedelta) -> int | float:
    whole, rest = divmod(delta, timedelta(hours=1))
    return whole if not rest else round(delta / timedelta(hours=1), 3)
