"""The lot lifecycle: example transitions, and a Hypothesis state machine that throws random
sequences of actions at random times and checks no forbidden state is ever reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from market import i18n
from market.errors import LineProblem
from market.lots import lifecycle as lc
from market.lots.terms import TermsPolicy

POLICY = TermsPolicy()
T0 = datetime(2026, 3, 1, tzinfo=UTC)

# Every (from, to) status pair the rules may produce (docs/rules.md §Lot lifecycle); anything
# else is a bug.
ALLOWED_EDGES = {
    ("draft", "announced"),
    ("draft", "withdrawn"),
    ("announced", "bidding"),
    ("announced", "paused"),
    ("announced", "withdrawn"),
    ("bidding", "sold"),
    ("bidding", "failed"),
    ("bidding", "returned"),
    ("bidding", "paused"),
    ("paused", "announced"),
    ("paused", "bidding"),
    ("paused", "withdrawn"),
    ("failed", "announced"),
    ("failed", "bidding"),
    ("sold", "failed"),  # the winner's default (悔拍) reopens the round…
    ("sold", "returned"),  # …or, after a fixed-price sale, returns the lot
}


def refused(state: lc.LotState, action: lc.Action) -> lc.IllegalTransition:
    """The refusal of `action`, which must carry the action, the lot's status and round."""
    with pytest.raises(lc.IllegalTransition) as info:
        lc.apply(POLICY, state, action)
    error = info.value
    assert error.status == 409
    assert error.params["action"] == type(action).__struct_config__.tag
    assert (error.params["status"], error.params["round"]) == (state.status, state.round)
    return error


def draft(start: int = 700_000_00) -> lc.LotState:
    return lc.LotState(
        status="draft",
        round=1,
        start_price_fen=start,
        first_start_fen=start,
        bidding_starts_at=T0 + timedelta(days=30),
        bidding_ends_at=T0 + timedelta(days=31),
    )


def test_happy_path_to_sold() -> None:
    s = lc.apply(POLICY, draft(), lc.Publish(at=T0))
    assert s.status == "announced" and s.announced_at == T0
    s = lc.apply(POLICY, s, lc.OpenBidding(at=T0 + timedelta(days=30)))
    s = lc.apply(POLICY, s, lc.Close(at=T0 + timedelta(days=31), sold=True))
    assert s.status == "sold"
    assert refused(s, lc.Pause(at=T0 + timedelta(days=32), reason="x")).code == "lot_sold"
    defaulted = lc.apply(POLICY, s, lc.Default(at=T0 + timedelta(days=42)))
    assert (defaulted.status, defaulted.round) == ("failed", 1)  # relisted next


def test_publish_refused_while_something_is_missing() -> None:
    missing = LineProblem(code="lot_disclosure_missing", params={"item": "valuation_report"})
    error = refused(draft(), lc.Publish(at=T0, missing=(missing,)))
    assert (error.code, error.params["count"], error.problems) == (
        "lot_not_publishable",
        1,
        [missing],
    )


def test_bidding_does_not_open_early() -> None:
    s = lc.apply(POLICY, draft(), lc.Publish(at=T0))
    error = refused(s, lc.OpenBidding(at=T0 + timedelta(days=29)))
    assert (error.code, error.params["starts_at"]) == ("opening_not_due", T0 + timedelta(days=30))


def test_failed_twice_then_fixed_price_then_returned() -> None:
    s = lc.apply(POLICY, draft(), lc.Publish(at=T0))
    s = lc.apply(POLICY, s, lc.OpenBidding(at=T0 + timedelta(days=30)))
    s = lc.apply(POLICY, s, lc.Close(at=T0 + timedelta(days=31), sold=False))
    assert (s.status, s.round) == ("failed", 1)
    t1 = T0 + timedelta(days=32)
    error = refused(
        s,
        lc.Relist(
            at=t1,
            start_price_fen=700_000_00 * 79 // 100,
            bidding_starts_at=t1 + timedelta(days=15),
            bidding_ends_at=t1 + timedelta(days=16),
        ),
    )
    assert (error.code, error.field) == ("relist_reduction_too_large", "start_price_fen")
    assert error.params["max_reduction_pct"] == 20
    s = lc.apply(
        POLICY,
        s,
        lc.Relist(
            at=t1,
            start_price_fen=560_000_00,
            bidding_starts_at=t1 + timedelta(days=15),
            bidding_ends_at=t1 + timedelta(days=16),
        ),
    )
    assert (s.status, s.round, s.start_price_fen) == ("announced", 2, 560_000_00)
    s = lc.apply(POLICY, s, lc.OpenBidding(at=t1 + timedelta(days=15)))
    s = lc.apply(POLICY, s, lc.Close(at=t1 + timedelta(days=16), sold=False))
    again = lc.Relist(
        at=t1 + timedelta(days=17),
        start_price_fen=560_000_00,
        bidding_starts_at=t1 + timedelta(days=40),
        bidding_ends_at=t1 + timedelta(days=41),
    )
    assert refused(s, again).code == "relist_needs_failed_first_round"
    t2 = t1 + timedelta(days=17)
    error = refused(s, lc.FixedPrice(at=t2, ends_at=t2 + timedelta(days=61)))
    assert (error.code, error.field) == ("fixed_price_too_long", "ends_at")
    assert error.params["max_days"] == 60 and error.params["latest_at"] == t2 + timedelta(days=60)
    assert refused(s, lc.FixedPrice(at=t2, ends_at=t2)).code == "fixed_price_end_passed"
    s = lc.apply(POLICY, s, lc.FixedPrice(at=t2, ends_at=t2 + timedelta(days=60)))
    assert (s.status, s.round, s.start_price_fen) == ("bidding", lc.FIXED_PRICE_ROUND, 560_000_00)
    s = lc.apply(POLICY, s, lc.Close(at=t2 + timedelta(days=60), sold=False))
    assert s.status == "returned"
    assert refused(s, lc.Publish(at=t2 + timedelta(days=61))).code == "lot_disposal_over"


def test_withdraw_only_before_bidding_and_with_reason() -> None:
    s = lc.apply(POLICY, draft(), lc.Publish(at=T0))
    error = refused(s, lc.Withdraw(at=T0, reason=" "))
    assert (error.code, error.field) == ("reason_required", "reason")
    b = lc.apply(POLICY, s, lc.OpenBidding(at=T0 + timedelta(days=30)))
    error = refused(b, lc.Withdraw(at=T0 + timedelta(days=30), reason="债务人已清偿"))
    assert error.code == "withdraw_needs_no_bidding"
    assert lc.apply(POLICY, s, lc.Withdraw(at=T0, reason="债务人已清偿")).status == "withdrawn"


def test_pause_resume_shifts_the_end_and_expires_after_5_days() -> None:
    s = lc.apply(POLICY, draft(), lc.Publish(at=T0))
    s = lc.apply(POLICY, s, lc.OpenBidding(at=T0 + timedelta(days=30)))
    paused = lc.apply(POLICY, s, lc.Pause(at=T0 + timedelta(days=30, hours=2), reason="权属争议"))
    assert paused.resume_by == T0 + timedelta(days=35, hours=2)
    resumed = lc.apply(POLICY, paused, lc.Resume(at=T0 + timedelta(days=32, hours=2)))
    assert resumed.status == "bidding"
    assert resumed.bidding_ends_at == T0 + timedelta(days=33)  # moved by the 2-day pause
    error = refused(paused, lc.Resume(at=T0 + timedelta(days=35, hours=3)))
    assert (error.code, error.params["max_days"]) == ("pause_expired", 5)
    assert error.params["resume_by"] == T0 + timedelta(days=35, hours=2)
    error = refused(paused, lc.ExpirePause(at=T0 + timedelta(days=35)))
    assert error.code == "pause_still_resumable"
    ended = lc.apply(POLICY, paused, lc.ExpirePause(at=T0 + timedelta(days=35, hours=3)))
    assert (ended.status, ended.reason) == ("withdrawn", lc.REASON_PAUSE_EXPIRED)


def test_offered_actions_follow_the_state() -> None:
    assert lc.offered(draft()) == {"publish", "withdraw"}
    s = lc.apply(POLICY, draft(), lc.Publish(at=T0))
    assert lc.offered(s) == {"withdraw", "pause"}
    paused = lc.apply(POLICY, s, lc.Pause(at=T0, reason="权属争议"))
    assert lc.offered(paused) == {"withdraw", "resume"}
    s = lc.apply(POLICY, s, lc.OpenBidding(at=T0 + timedelta(days=30)))
    assert lc.offered(s) == {"pause"}
    s = lc.apply(POLICY, s, lc.Close(at=T0 + timedelta(days=31), sold=False))
    assert lc.offered(s) == {"relist"}
    assert lc.offered(msgspec.structs.replace(s, round=lc.RELIST_ROUND)) == {"fixed_price"}


class LifecycleMachine(RuleBasedStateMachine):
    """Random actions at random instants; the state must stay inside the rules."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.state = draft()
        self.round2_start: int | None = None
        self.history: list[tuple[str, str, str]] = []  # (from, action, to)
        self.refusals: list[lc.IllegalTransition] = []

    def attempt(self, action: lc.Action) -> None:
        before = self.state
        try:
            after = lc.apply(POLICY, before, action)
        except lc.IllegalTransition as exc:
            self.refusals.append(exc)
            return
        name = type(action).__struct_config__.tag
        assert isinstance(name, str)
        assert before.status not in lc.TERMINAL
        assert (before.status, after.status) in ALLOWED_EDGES, (before, name, after)
        if name == "withdraw":
            assert before.status in ("draft", "announced") or before.paused_from == "announced"
        if name == "open":
            assert before.bidding_starts_at is not None
            assert self.now >= before.bidding_starts_at
        if after.round == lc.RELIST_ROUND and before.round == lc.FIRST_ROUND:
            self.round2_start = after.start_price_fen
        self.history.append((before.status, name, after.status))
        self.state = after

    @rule(minutes=st.integers(min_value=0, max_value=60 * 24 * 40))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def until_opening(self) -> None:
        if self.state.bidding_starts_at is not None:
            self.now = max(self.now, self.state.bidding_starts_at)

    @rule(after_minutes=st.integers(min_value=0, max_value=10))
    def until_end(self, after_minutes: int) -> None:
        if self.state.bidding_ends_at is not None:
            self.now = max(self.now, self.state.bidding_ends_at + timedelta(minutes=after_minutes))

    @rule(sold=st.booleans())
    def whole_round(self, sold: bool) -> None:
        """A shortcut through one round, so random runs reach relists and 变卖 often."""
        self.attempt(lc.Publish(at=self.now))
        self.until_opening()
        self.attempt(lc.OpenBidding(at=self.now))
        self.until_end(0)
        self.attempt(lc.Close(at=self.now, sold=sold))

    @rule(missing=st.booleans())
    def publish(self, missing: bool) -> None:
        blocker = LineProblem(code="lot_disclosure_missing", params={"item": "valuation_report"})
        self.attempt(lc.Publish(at=self.now, missing=(blocker,) if missing else ()))

    @rule()
    def default(self) -> None:
        self.attempt(lc.Default(at=self.now))

    @rule()
    def open_bidding(self) -> None:
        self.attempt(lc.OpenBidding(at=self.now))

    @rule(sold=st.booleans())
    def close(self, sold: bool) -> None:
        self.attempt(lc.Close(at=self.now, sold=sold))

    @rule(
        cut_pct=st.integers(min_value=-5, max_value=30),
        notice_days=st.integers(10, 20),
        window_h=st.integers(20, 72),
    )
    def relist(self, cut_pct: int, notice_days: int, window_h: int) -> None:
        start = self.state.first_start_fen * (100 - cut_pct) // 100
        starts = self.now + timedelta(days=notice_days)
        self.attempt(
            lc.Relist(
                at=self.now,
                start_price_fen=start,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(hours=window_h),
            )
        )

    @rule(days=st.integers(min_value=1, max_value=70))
    def fixed_price(self, days: int) -> None:
        self.attempt(lc.FixedPrice(at=self.now, ends_at=self.now + timedelta(days=days)))

    # Withdrawals and pauses mostly come without a reason (and are refused), so that random
    # runs also travel the long road through relists and the fixed-price sale.
    @rule(reason=st.sampled_from(["", "", "", "", "", "债务人已清偿", "court order"]))
    def withdraw(self, reason: str) -> None:
        self.attempt(lc.Withdraw(at=self.now, reason=reason))

    @rule(reason=st.sampled_from(["", "", "", "权属争议"]))
    def pause(self, reason: str) -> None:
        self.attempt(lc.Pause(at=self.now, reason=reason))

    @rule()
    def resume(self) -> None:
        self.attempt(lc.Resume(at=self.now))

    @precondition(lambda self: self.state.status == "paused")
    @rule()
    def expire(self) -> None:
        self.attempt(lc.ExpirePause(at=self.now))

    @invariant()
    def state_is_lawful(self) -> None:
        s = self.state
        assert s.status in {
            "draft",
            "announced",
            "bidding",
            "sold",
            "failed",
            "paused",
            "withdrawn",
            "returned",
        }
        assert s.round in (lc.FIRST_ROUND, lc.RELIST_ROUND, lc.FIXED_PRICE_ROUND)
        assert (s.status == "paused") == (s.paused_from is not None)
        if s.status == "paused":
            assert s.paused_at is not None
            assert s.resume_by == s.paused_at + POLICY.max_pause
        if s.round >= lc.RELIST_ROUND:
            assert s.first_start_fen * 80 // 100 <= s.start_price_fen <= s.first_start_fen
        if s.round == lc.FIXED_PRICE_ROUND:
            assert s.start_price_fen == self.round2_start
        if s.status == "returned":
            assert s.round == lc.FIXED_PRICE_ROUND
        if s.status == "withdrawn":
            assert s.reason.strip()
        if s.bidding_starts_at and s.bidding_ends_at:
            assert s.bidding_starts_at < s.bidding_ends_at

    @invariant()
    def refusals_are_codes_with_words(self) -> None:
        """Every refusal is a code with its words in the catalogs, never a sentence."""
        for exc in self.refusals:
            assert i18n.has(f"problem.{exc.code}"), exc.code

    @invariant()
    def rounds_never_go_back(self) -> None:
        rounds = [1]
        for _, action, _ in self.history:
            if action == "relist":
                rounds.append(2)
            if action == "fixed_price":
                rounds.append(3)
        assert rounds == sorted(rounds) and len(rounds) == len(set(rounds))


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
