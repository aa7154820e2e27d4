"""The lot lifecycle as one pure state machine (issue 3, item 5).

    draft ──publish──▶ announced ──open (on time)──▶ bidding ──close──▶ sold
      │                  │    ▲                        │  ▲             └─▶ failed
      └──withdraw──▶ withdrawn ◀──withdraw── paused ◀──┘  │ pause/resume (≤ 5 days)
    failed, round 1 ──relist (≤ 20 % lower, 15 days' notice)──▶ announced, round 2
    failed, round 2 ──fixed_price (变卖, ≤ 60 days at round 2's start)──▶ bidding, round 3
    round 3 closes unsold ──▶ returned to the bank
    sold ──default (悔拍: the winner did not pay)──▶ failed (round 3: returned), so it relists

`apply(policy, state, action)` returns the new state or raises IllegalTransition with the
reason (the API answers 409). No I/O and no clock: every action carries its instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from market.errors import Conflict
from market.lots.terms import TermsPolicy

Status = Literal[
    "draft", "announced", "bidding", "sold", "failed", "paused", "withdrawn", "returned"
]
TERMINAL: frozenset[str] = frozenset({"withdrawn", "returned"})


class IllegalTransition(Conflict):
    code = "illegal_transition"


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
    missing: tuple[str, ...] = ()  # what still blocks publication (disclosure, valuation…)


class OpenBidding(msgspec.Struct, frozen=True, tag="open"):
    at: datetime


class Close(msgspec.Struct, frozen=True, tag="close"):
    at: datetime
    sold: bool


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
    """The winner did not pay by the deadline (悔拍): the sale is void (issue 4)."""

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
    | OpenBidding
    | Close
    | Default
    | Relist
    | FixedPrice
    | Withdraw
    | Pause
    | Resume
    | ExpirePause
)


def _refuse(state: LotState, action: Action, why: str) -> IllegalTransition:
    name = type(action).__struct_config__.tag
    return IllegalTransition(
        f"cannot {name} a lot that is {state.status} (round {state.round}): {why}"
    )


def apply(policy: TermsPolicy, state: LotState, action: Action) -> LotState:
    if state.status in TERMINAL:
        raise _refuse(state, action, "the lot's disposal is over")
    if state.status == "sold" and not isinstance(action, Default):
        raise _refuse(state, action, "the lot is sold; only the winner's default reopens it")
    replace = msgspec.structs.replace
    match action:
        case Publish(at=at, missing=missing):
            if state.status != "draft":
                raise _refuse(state, action, "only a draft is published")
            if missing:
                raise _refuse(state, action, "still missing: " + ", ".join(missing))
            assert state.bidding_starts_at is not None
            if state.bidding_starts_at < at + policy.announcement_period:
                raise _refuse(
                    state,
                    action,
                    "the announcement period would be too short; move the bidding start",
                )
            return replace(state, status="announced", announced_at=at)
        case OpenBidding(at=at):
            if state.status != "announced":
                raise _refuse(state, action, "bidding opens only after the announcement")
            assert state.bidding_starts_at is not None
            if at < state.bidding_starts_at:
                raise _refuse(state, action, "the announced opening time has not come")
            return replace(state, status="bidding")
        case Close(at=at, sold=sold):
            if state.status != "bidding":
                raise _refuse(state, action, "only a lot in bidding is closed")
            assert state.bidding_ends_at is not None
            if at < state.bidding_ends_at:
                raise _refuse(state, action, "bidding has not ended")
            if sold:
                return replace(state, status="sold")
            # The fixed-price sale is the last chance: unsold, the lot goes back to the bank.
            return replace(state, status="returned" if state.round == 3 else "failed")
        case Default():
            if state.status != "sold":
                raise _refuse(state, action, "only a sale can be defaulted on")
            # The round failed after all: relist (round 1), fixed-price sale (round 2), or,
            # after a fixed-price sale, back to the bank.
            return replace(
                state,
                status="returned" if state.round == 3 else "failed",
                reason="winner did not pay (悔拍)",
            )
        case Relist(at=at, start_price_fen=start, bidding_starts_at=starts, bidding_ends_at=ends):
            if state.status != "failed" or state.round != 1:
                raise _refuse(state, action, "only a failed first round is relisted, once")
            lowest = -(-state.first_start_fen * (10_000 - policy.relist_max_reduction_bp) // 10_000)
            if not lowest <= start <= state.first_start_fen:
                raise _refuse(state, action, "the relist start must be at most 20 % lower")
            if starts < at + policy.relist_notice:
                raise _refuse(state, action, "a relist needs 15 days' notice")
            if ends - starts < policy.min_bidding_window:
                raise _refuse(state, action, "the bidding window is too short")
            return replace(
                state,
                status="announced",
                round=2,
                start_price_fen=start,
                announced_at=at,
                bidding_starts_at=starts,
                bidding_ends_at=ends,
            )
        case FixedPrice(at=at, ends_at=ends):
            if state.status != "failed" or state.round != 2:
                raise _refuse(state, action, "the fixed-price sale follows a failed second round")
            if not at < ends <= at + policy.fixed_price_max_duration:
                raise _refuse(state, action, "a fixed-price sale lasts at most 60 days")
            # Same price as the second round's start (变卖价 = 二拍起拍价).
            return replace(
                state,
                status="bidding",
                round=3,
                announced_at=at,
                bidding_starts_at=at,
                bidding_ends_at=ends,
            )
        case Withdraw(at=at, reason=reason):
            pre_bidding = state.status in ("draft", "announced") or (
                state.status == "paused" and state.paused_from == "announced"
            )
            if not pre_bidding:
                raise _refuse(state, action, "a lot is withdrawn only before bidding opens")
            if not reason.strip():
                raise _refuse(state, action, "a withdrawal needs a reason")
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
                raise _refuse(state, action, "only an announced or bidding lot is paused")
            if not reason.strip():
                raise _refuse(state, action, "a pause needs a reason")
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
                raise _refuse(state, action, "only a paused lot is resumed")
            assert state.resume_by is not None and state.paused_at is not None
            if at > state.resume_by:
                raise _refuse(state, action, "the 5 days allowed for a pause have passed")
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
                raise _refuse(state, action, "only a paused lot expires")
            assert state.resume_by is not None
            if at <= state.resume_by:
                raise _refuse(state, action, "the pause may still be resumed")
            return replace(
                state,
                status="withdrawn",
                paused_from=None,
                paused_at=None,
                resume_by=None,
                reason="not resumed within 5 days of the pause (中止超期终止)",
            )
    raise AssertionError(f"unknown action {action!r}")  # pragma: no cover


def _shift(value: datetime | None, delta: timedelta) -> datetime | None:
    return None if value is None else value + delta
