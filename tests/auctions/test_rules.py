"""The bidding rules (docs/rules.md §Bidding): worked examples for each rule, then a
Hypothesis state machine with an injected clock that throws bids, proxies, matches, time
jumps and closes at the engine and checks the invariants after every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from auctions import rules as r
from auctions.rules import AuctionState, Bid, Close, Match, Refused, SetProxy
from market import i18n
from market.lots.terms import Fee, PreemptiveHolder, Terms

T0 = datetime(2026, 5, 1, 10, tzinfo=UTC)
DAY = timedelta(days=1)
MIN = timedelta(minutes=1)
START, INC = 10_000, 100


def lot(kind: r.Kind = "english", **changes: object) -> AuctionState:
    fields: dict[str, object] = {
        "kind": kind,
        "start_price_fen": START,
        "increment_fen": INC,
        "starts_at": T0,
        "ends_at": T0 + DAY,
        "holders": {},
    }
    fields.update(changes)
    return AuctionState(**fields)  # type: ignore[arg-type]


def refused(state: AuctionState, command: r.Command) -> str:
    """The refusal code; a refusal must leave the state byte-for-byte as it was."""
    before = msgspec.msgpack.encode(state)
    with pytest.raises(Refused) as caught:
        r.apply(state, command)
    assert msgspec.msgpack.encode(state) == before
    assert i18n.has(f"problem.{caught.value.code}")
    return caught.value.code


def amounts(outcome: r.Outcome) -> list[tuple[int, int, str]]:
    return [(b.registration_id, b.amount_fen, b.kind) for b in outcome.bids]


# --- English ascending -----------------------------------------------------------------


def test_first_bid_at_least_the_start_on_the_grid() -> None:
    s = lot()
    at = T0 + MIN
    assert refused(s, Bid(registration_id=1, amount_fen=START - INC, at=at)) == "too_low"
    assert refused(s, Bid(registration_id=1, amount_fen=START + 50, at=at)) == "not_on_increment"
    assert r.minimum_bid(s) == START
    out = r.apply(s, Bid(registration_id=1, amount_fen=START + 2 * INC, at=at))
    assert amounts(out) == [(1, START + 200, "manual")]
    assert out.bids[0].seq == 1 and out.ends_at is None
    assert (s.price_fen, s.leader, s.bid_count) == (START + 200, 1, 1)
    assert r.minimum_bid(s) == START + 300


def test_later_bids_rise_by_whole_increments_and_the_leader_cannot_outbid_himself() -> None:
    s = lot()
    r.apply(s, Bid(registration_id=1, amount_fen=START, at=T0))
    at = T0 + MIN
    assert refused(s, Bid(registration_id=2, amount_fen=START, at=at)) == "too_low"
    assert refused(s, Bid(registration_id=2, amount_fen=START + 150, at=at)) == "not_on_increment"
    assert refused(s, Bid(registration_id=1, amount_fen=START + INC, at=at)) == "already_leading"
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + 3 * INC, at=at))
    assert amounts(out) == [(2, START + 300, "manual")]
    assert s.leader == 2 and s.seq == 2


def test_bids_only_between_start_and_effective_end() -> None:
    s = lot()
    assert refused(s, Bid(registration_id=1, amount_fen=START, at=T0 - MIN)) == "lot_not_open"
    assert refused(s, Bid(registration_id=1, amount_fen=START, at=T0 + DAY)) == "lot_closed"
    r.apply(s, Bid(registration_id=1, amount_fen=START, at=T0))  # the opening instant counts
    assert s.leader == 1


# --- proxies ---------------------------------------------------------------------------


def test_a_proxy_bids_the_least_needed_whenever_outbid_up_to_its_maximum() -> None:
    s = lot()
    out = r.apply(s, SetProxy(registration_id=1, max_fen=START + 500, at=T0))
    assert amounts(out) == [(1, START, "proxy")]  # the least: the start
    assert out.proxy == r.ProxyMax(max_fen=START + 500, seq=1)
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + 200, at=T0 + MIN))
    assert amounts(out) == [(2, START + 200, "manual"), (1, START + 300, "proxy")]
    # A manual bid at exactly the maximum keeps the lead: a proxy answers only higher.
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + 500, at=T0 + MIN))
    assert amounts(out) == [(2, START + 500, "manual")]
    assert s.leader == 2 and s.price_fen == START + 500


def test_competing_proxies_settle_in_one_step_without_walking_the_grid() -> None:
    s = lot(start_price_fen=100_000, increment_fen=100)
    # Maxima of ten times the start: above the large-bid line, so confirmed.
    r.apply(s, SetProxy(registration_id=1, max_fen=1_000_000, at=T0, confirmed=True))
    out = r.apply(s, SetProxy(registration_id=2, max_fen=999_900, at=T0 + MIN, confirmed=True))
    # The loser at its last reachable price, the winner one increment above.
    assert amounts(out) == [(2, 999_900, "proxy"), (1, 1_000_000, "proxy")]
    assert [b.seq for b in out.bids] == [4, 5]  # seq 3 is the second maximum
    assert (s.leader, s.price_fen, s.bid_count) == (1, 1_000_000, 3)


def test_equal_maxima_go_to_the_earlier_one_who_leads_at_that_maximum() -> None:
    s = lot()
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 1000, at=T0))
    out = r.apply(s, SetProxy(registration_id=2, max_fen=START + 1000, at=T0 + MIN))
    assert amounts(out) == [(2, START + 900, "proxy"), (1, START + 1000, "proxy")]
    # Equal maxima one step above the price: the later one cannot lead anywhere, no bid.
    s = lot()
    r.apply(s, SetProxy(registration_id=1, max_fen=START + INC, at=T0))
    out = r.apply(s, SetProxy(registration_id=2, max_fen=START + INC, at=T0 + MIN))
    assert amounts(out) == [(1, START + INC, "proxy")]


def test_the_runner_up_of_three_proxies_sets_the_price() -> None:
    s = lot()
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 300, at=T0))
    r.apply(s, SetProxy(registration_id=2, max_fen=START + 2000, at=T0))
    assert (s.leader, s.price_fen) == (2, START + 400)
    r.apply(s, SetProxy(registration_id=3, max_fen=START + 1200, at=T0))
    assert (s.leader, s.price_fen) == (2, START + 1300)
    # A manual bid that beats 2's maximum: 3 is dead already, nobody answers.
    out = r.apply(s, Bid(registration_id=4, amount_fen=START + 2100, at=T0))
    assert amounts(out) == [(4, START + 2100, "manual")]
    # 3 raises above 2 and 4: 3 leads one step above the manual bid.
    out = r.apply(s, SetProxy(registration_id=3, max_fen=START + 5000, at=T0))
    assert amounts(out) == [(3, START + 2200, "proxy")]


def test_the_leaders_own_proxy_defends_against_a_later_challenger() -> None:
    s = lot()
    r.apply(s, Bid(registration_id=1, amount_fen=START, at=T0))
    out = r.apply(s, SetProxy(registration_id=1, max_fen=START + 800, at=T0))
    assert out.bids == () and out.proxy is not None  # raising your own maximum bids nothing
    out = r.apply(s, SetProxy(registration_id=2, max_fen=START + 500, at=T0))
    assert amounts(out) == [(2, START + 500, "proxy"), (1, START + 600, "proxy")]
    # A higher challenger: the leader's proxy is the runner-up at its maximum.
    out = r.apply(s, SetProxy(registration_id=3, max_fen=START + 3000, at=T0))
    assert amounts(out) == [(1, START + 800, "proxy"), (3, START + 900, "proxy")]


def test_proxy_maximum_refusals() -> None:
    s = lot()
    r.apply(s, Bid(registration_id=1, amount_fen=START + 500, at=T0))
    at = T0 + MIN
    assert refused(s, SetProxy(registration_id=2, max_fen=START + 500, at=at)) == "proxy_below_next"
    # Off the grid and, rounded down onto it, below the least next bid: too low.
    assert refused(s, SetProxy(registration_id=2, max_fen=START + 599, at=at)) == "proxy_below_next"
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 900, at=at))
    assert refused(s, SetProxy(registration_id=1, max_fen=START + 700, at=at)) == "proxy_not_raised"
    assert refused(s, SetProxy(registration_id=1, max_fen=START + 900, at=at)) == "proxy_not_raised"
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 1000, at=at))
    assert s.proxies[1].max_fen == START + 1000 and s.leader == 1


def test_a_maximum_off_the_grid_is_rounded_down_onto_it() -> None:
    s = lot()
    r.apply(s, Bid(registration_id=1, amount_fen=START + 500, at=T0))
    out = r.apply(s, SetProxy(registration_id=2, max_fen=START + 950, at=T0 + MIN))
    assert out.proxy is not None and out.proxy.max_fen == START + 900
    assert amounts(out) == [(2, START + 600, "proxy")]
    # The rounded maximum is what stands: the same typed amount again does not raise it.
    assert refused(s, SetProxy(registration_id=2, max_fen=START + 999, at=T0 + MIN)) == (
        "proxy_not_raised"
    )
    # A rival's bid above the rounded maximum wins: the 50 above the grid was never usable.
    out = r.apply(s, Bid(registration_id=3, amount_fen=START + 1000, at=T0 + MIN))
    assert s.leader == 3 and amounts(out) == [(3, START + 1000, "manual")]


# --- pre-emptive right holders ---------------------------------------------------------


def test_a_holder_matches_the_highest_bid_and_leads() -> None:
    s = lot(holders={7: 1, 8: 2})
    at = T0 + MIN
    assert refused(s, Match(registration_id=7, at=at)) == "nothing_to_match"
    r.apply(s, Bid(registration_id=1, amount_fen=START + 300, at=at))
    assert refused(s, Match(registration_id=1, at=at)) == "not_preemptive"
    assert refused(s, Match(registration_id=2, at=at)) == "not_preemptive"
    out = r.apply(s, Match(registration_id=8, at=at))
    assert amounts(out) == [(8, START + 300, "match")]
    assert refused(s, Match(registration_id=8, at=at)) == "already_leading"
    # Rank 1 takes rank 2's matched price; rank 2 cannot take it back at the same price.
    assert amounts(r.apply(s, Match(registration_id=7, at=at))) == [(7, START + 300, "match")]
    assert refused(s, Match(registration_id=8, at=at)) == "outranked"
    # Anyone outbids a matched price by increments as usual.
    assert refused(s, Bid(registration_id=1, amount_fen=START + 300, at=at)) == "too_low"
    r.apply(s, Bid(registration_id=1, amount_fen=START + 400, at=at))
    assert s.leader == 1
    r.apply(s, Match(registration_id=8, at=at))  # rank 2 matches a non-holder
    assert s.leader == 8


def test_a_holder_keeps_a_price_he_bid_against_a_worse_rank() -> None:
    s = lot(holders={7: 1, 8: 2})
    r.apply(s, Bid(registration_id=7, amount_fen=START, at=T0))
    assert refused(s, Match(registration_id=8, at=T0)) == "outranked"


def test_equal_ranks_go_to_the_earlier_holder() -> None:
    s = lot(holders={7: 1, 8: 1})
    r.apply(s, Bid(registration_id=1, amount_fen=START, at=T0))
    r.apply(s, Match(registration_id=7, at=T0))
    assert refused(s, Match(registration_id=8, at=T0)) == "outranked"


def test_a_matched_leaders_proxy_answers_the_match() -> None:
    s = lot(holders={7: 1})
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 500, at=T0))
    out = r.apply(s, Match(registration_id=7, at=T0))
    assert amounts(out) == [(7, START, "match"), (1, START + INC, "proxy")]
    assert s.leader == 1


# --- extensions ------------------------------------------------------------------------


def test_a_bid_in_the_last_five_minutes_moves_the_end_repeatedly() -> None:
    s = lot()
    end = T0 + DAY
    out = r.apply(
        s, Bid(registration_id=1, amount_fen=START, at=end - 5 * MIN - timedelta(seconds=1))
    )
    assert out.ends_at is None and s.ends_at == end
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + INC, at=end - 5 * MIN))
    assert out.ends_at is None and s.ends_at == end  # at + 5 min is the end itself: no move
    late = end - timedelta(seconds=10)
    out = r.apply(s, Bid(registration_id=1, amount_fen=START + 2 * INC, at=late))
    assert out.ends_at == late + 5 * MIN == s.ends_at
    later = s.ends_at - timedelta(seconds=1)
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + 3 * INC, at=later))
    assert s.ends_at == later + 5 * MIN
    assert refused(s, Bid(registration_id=1, amount_fen=START + 9 * INC, at=s.ends_at)) == (
        "lot_closed"
    )


def test_the_window_includes_its_first_instant() -> None:
    end = T0 + DAY
    s = lot(extension_window=2 * MIN, extension=5 * MIN)
    out = r.apply(
        s, Bid(registration_id=1, amount_fen=START, at=end - 2 * MIN - timedelta(microseconds=1))
    )
    assert out.ends_at is None
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + INC, at=end - 2 * MIN))
    assert out.ends_at == end + 3 * MIN


def test_extension_is_capped_by_the_hard_end_and_never_moves_earlier() -> None:
    end = T0 + DAY
    s = lot(hard_end_at=end + 2 * MIN)
    out = r.apply(s, Bid(registration_id=1, amount_fen=START, at=end - MIN))
    assert out.ends_at == end + 2 * MIN
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + INC, at=end + MIN))
    assert out.ends_at is None and s.ends_at == end + 2 * MIN
    # A window longer than the extension: a bid early in it does not pull the end in.
    s = lot(extension_window=10 * MIN, extension=3 * MIN)
    out = r.apply(s, Bid(registration_id=1, amount_fen=START, at=end - 8 * MIN))
    assert out.ends_at is None and s.ends_at == end


def test_proxy_and_match_bids_extend_too() -> None:
    end = T0 + DAY
    s = lot(holders={7: 1})
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 500, at=T0))
    out = r.apply(s, Match(registration_id=7, at=end - MIN))
    assert out.ends_at == end + 4 * MIN
    assert [b.kind for b in out.bids] == ["match", "proxy"]


# --- closing ---------------------------------------------------------------------------


def test_close_only_at_the_end_then_sold_and_idempotent() -> None:
    s = lot()
    r.apply(s, Bid(registration_id=1, amount_fen=START, at=T0))
    r.apply(s, Bid(registration_id=2, amount_fen=START + INC, at=T0))
    assert refused(s, Close(at=T0 + DAY - timedelta(microseconds=1))) == "not_ended"
    out = r.apply(s, Close(at=T0 + DAY))
    assert out.result == r.Result(
        status="sold", closed_at=T0 + DAY, winner=2, price_fen=START + INC
    )
    before = msgspec.msgpack.encode(s)
    assert r.apply(s, Close(at=T0 + 2 * DAY)) == out
    assert msgspec.msgpack.encode(s) == before
    assert refused(s, Bid(registration_id=1, amount_fen=START + 5 * INC, at=T0)) == "lot_closed"


def test_close_without_bids_fails() -> None:
    s = lot()
    out = r.apply(s, Close(at=T0 + DAY + MIN))
    assert out.result == r.Result(status="failed", closed_at=T0 + DAY + MIN)


# --- fixed-price sale (变卖) -----------------------------------------------------------


def test_fixed_price_first_bid_at_the_price_opens_a_24_hour_window() -> None:
    s = lot("fixed_price", ends_at=T0 + 60 * DAY)
    at = T0 + 10 * DAY
    assert refused(s, Bid(registration_id=1, amount_fen=START - INC, at=at)) == "too_low"
    assert refused(s, Bid(registration_id=1, amount_fen=START + INC, at=at)) == "not_fixed_price"
    out = r.apply(s, Bid(registration_id=1, amount_fen=START, at=at))
    assert out.ends_at == at + DAY == s.ends_at  # shorter than the sale period
    assert refused(s, Bid(registration_id=2, amount_fen=START + 150, at=at)) == "not_on_increment"
    r.apply(s, Bid(registration_id=2, amount_fen=START + 2 * INC, at=at + 3 * DAY / 4))
    out = r.apply(s, Bid(registration_id=1, amount_fen=START + 3 * INC, at=at + DAY - MIN))
    assert out.ends_at == at + DAY + 4 * MIN  # the same extension rule
    assert refused(s, Close(at=at + DAY)) == "not_ended"
    result = r.apply(s, Close(at=at + DAY + 4 * MIN)).result
    assert result is not None and (result.winner, result.price_fen) == (1, START + 3 * INC)


def test_fixed_price_window_may_run_past_the_sale_period_and_past_the_hard_end() -> None:
    end = T0 + 60 * DAY
    s = lot("fixed_price", ends_at=end, hard_end_at=end)
    out = r.apply(s, SetProxy(registration_id=1, max_fen=START + 300, at=end - MIN))
    assert amounts(out) == [(1, START, "proxy")]
    assert s.ends_at == end - MIN + DAY
    # Extensions inside the window are capped by the hard end, which is already behind it.
    out = r.apply(s, Bid(registration_id=2, amount_fen=START + 500, at=s.ends_at - MIN))
    assert out.ends_at is None and s.ends_at == end - MIN + DAY


def test_fixed_price_without_any_bid_fails() -> None:
    s = lot("fixed_price", ends_at=T0 + 60 * DAY)
    out = r.apply(s, Close(at=T0 + 60 * DAY))
    assert out.result is not None and out.result.status == "failed"


# --- sealed tender ---------------------------------------------------------------------


def test_sealed_bids_are_hidden_replaced_and_revealed_after_close() -> None:
    s = lot("sealed")
    assert refused(s, Bid(registration_id=1, amount_fen=START - 1, at=T0)) == "too_low"
    assert refused(s, SetProxy(registration_id=1, max_fen=START, at=T0)) == "unsupported"
    assert refused(s, Match(registration_id=1, at=T0)) == "unsupported"
    r.apply(s, Bid(registration_id=1, amount_fen=START + 777, at=T0 + MIN))  # off the grid
    r.apply(s, Bid(registration_id=2, amount_fen=START + 900, at=T0 + 2 * MIN))
    r.apply(s, Bid(registration_id=3, amount_fen=START + 900, at=T0 + 3 * MIN))
    out = r.apply(s, Bid(registration_id=1, amount_fen=START + 50, at=T0 + DAY - MIN))
    assert out.ends_at is None and s.ends_at == T0 + DAY  # no extension
    assert s.price_fen is None and s.leader is None  # nothing public before the close
    assert refused(s, Bid(registration_id=4, amount_fen=START, at=T0 + DAY)) == "lot_closed"
    with pytest.raises(Refused) as caught:
        r.reveal(s)
    assert caught.value.code == "not_revealed"
    result = r.apply(s, Close(at=T0 + DAY)).result
    assert result is not None and (result.winner, result.price_fen) == (2, START + 900)
    assert [(b.registration_id, b.amount_fen) for b in r.reveal(s)] == [
        (2, START + 900),
        (3, START + 900),
        (1, START + 50),  # the replacement, not the first bid
    ]


def test_sealed_round_without_bids_fails() -> None:
    s = lot("sealed")
    out = r.apply(s, Close(at=T0 + DAY))
    assert out.result is not None and out.result.status == "failed" and r.reveal(s) == []


@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(START, START + 5), st.integers(0, 1000)),
        max_size=20,
    )
)
def test_sealed_highest_wins_ties_to_the_earliest(bids: list[tuple[int, int, int]]) -> None:
    s = lot("sealed")
    standing: dict[int, tuple[int, int, int]] = {}
    for i, (who, amount, minute) in enumerate(bids):
        at = T0 + minute * MIN
        r.apply(s, Bid(registration_id=who, amount_fen=amount, at=at))
        standing[who] = (-amount, minute, i)
    result = r.apply(s, Close(at=T0 + DAY)).result
    assert result is not None
    if not standing:
        assert result.status == "failed"
        return
    best = min(standing, key=lambda w: standing[w])
    assert (result.winner, result.price_fen) == (best, -standing[best][0])
    assert [b.registration_id for b in r.reveal(s)] == sorted(standing, key=lambda w: standing[w])


# --- plumbing ---------------------------------------------------------------------------


def test_from_terms_clone_and_fingerprint() -> None:
    terms = Terms(
        start_price_fen=START,
        deposit_fen=1000,
        increment_fen=INC,
        bidding_starts_at=T0,
        bidding_ends_at=T0 + DAY,
        extension_window_s=300,
        extension_s=120,
        hard_end_at=None,
        payment_days=10,
        fee=Fee(),
        preemptive_holders=(PreemptiveHolder(rank=1, name="甲公司"),),
    )
    s = r.from_terms("english", terms, {7: 1})
    assert (s.extension_window, s.extension, s.holders) == (5 * MIN, 2 * MIN, {7: 1})
    copy = r.clone(s)
    r.apply(s, SetProxy(registration_id=1, max_fen=START + 500, at=T0))
    assert copy.proxies == {} and copy.price_fen is None
    a, b = r.clone(s), r.clone(s)
    a.holders = {1: 1, 2: 2}
    b.holders = {2: 2, 1: 1}
    assert r.fingerprint(a) == r.fingerprint(b) != r.fingerprint(s)
    with pytest.raises(ValueError, match="end after"):
        lot(ends_at=T0)
    encoded = msgspec.json.encode(s)
    assert msgspec.json.decode(encoded, type=AuctionState) == s


def test_commands_round_trip_as_a_tagged_union() -> None:
    cmds: list[r.Command] = [
        Bid(registration_id=1, amount_fen=START, at=T0),
        SetProxy(registration_id=2, max_fen=START, at=T0),
        Match(registration_id=3, at=T0),
        Close(at=T0),
    ]
    assert msgspec.json.decode(msgspec.json.encode(cmds), type=list[r.Command]) == cmds


# --- the state machine -----------------------------------------------------------------

REGISTRATIONS = st.integers(min_value=1, max_value=6)


class AuctionMachine(RuleBasedStateMachine):
    """Random commands at instants from an injected clock; invariants after every step.

    `hypothesis.event` tallies what runs reach (proxy vs proxy, match, extended, closed
    sold/failed, each refusal): see it with `pytest --hypothesis-show-statistics`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.state = lot()
        self.initial_end = self.state.ends_at
        self.bids: list[r.AcceptedBid] = []
        self.ends_before: list[datetime] = []  # the effective end when each bid was accepted
        self.proxy_max: dict[int, int] = {}
        self.result: r.Result | None = None

    @initialize(
        kind=st.sampled_from(["english", "english", "fixed_price"]),
        increment=st.sampled_from([1, 100, 500]),
        holders=st.sampled_from([{}, {5: 1, 6: 2}, {1: 2, 6: 1, 4: 2}])
        | st.dictionaries(st.integers(1, 6), st.integers(1, 3), min_size=2, max_size=3),
        window_min=st.sampled_from([5, 5, 10, 2]),
        extension_min=st.sampled_from([5, 5, 3]),
        hard_cap_min=st.none() | st.integers(0, 20),
        early_min=st.sampled_from([0, 0, 0, 2]),
    )
    def setup(
        self,
        kind: r.Kind,
        increment: int,
        holders: dict[int, int],
        window_min: int,
        extension_min: int,
        hard_cap_min: int | None,
        early_min: int,
    ) -> None:
        end = T0 + timedelta(hours=2)
        self.state = lot(
            kind,
            increment_fen=increment,
            ends_at=end,
            holders=holders,
            extension_window=window_min * MIN,
            extension=extension_min * MIN,
            fixed_price_window=timedelta(hours=1),
            hard_end_at=None if hard_cap_min is None else end + hard_cap_min * MIN,
        )
        self.initial_end = end
        self.now = T0 - early_min * MIN

    # --- driving the engine

    def attempt(self, command: r.Command) -> r.Outcome | None:
        s = self.state
        before = msgspec.msgpack.encode(s)
        end_before = s.ends_at
        try:
            out = r.apply(s, command)
        except Refused as refusal:
            code = refusal.code
            unchanged = msgspec.msgpack.encode(s) == before
        else:
            code, unchanged = None, True
        if code is not None:
            assert unchanged, code  # a refusal leaves the state byte-for-byte as it was
            event("refused " + code)
            return None
        if isinstance(command, SetProxy):
            self.proxy_max[command.registration_id] = command.max_fen
        for bid in out.bids:
            assert bid.at == command.at
            self.bids.append(bid)
            self.ends_before.append(end_before)
            if bid.kind == "proxy":
                assert bid.amount_fen <= self.proxy_max[bid.registration_id]
        self.tally(out, end_before)
        if out.result is not None:
            if self.result is not None:
                assert out.result == self.result  # idempotent
            self.result = out.result
        return out

    def tally(self, out: r.Outcome, end_before: datetime) -> None:
        kinds = [b.kind for b in out.bids]
        names = []
        if kinds.count("proxy") == 2:
            names.append("proxy vs proxy")
        if "match" in kinds:
            names.append("match")
        if out.ends_at is not None and out.ends_at > end_before:
            names.append("extended")
        if out.result is not None:
            names.append("closed " + out.result.status)
        for name in names:
            event(name)

    def next_price(self) -> int:
        return r.minimum_bid(self.state)

    # --- the clock

    @rule(seconds=st.integers(0, 600))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(seconds_before=st.integers(0, 600))
    def near_the_end(self, seconds_before: int) -> None:
        self.now = max(self.now, self.state.ends_at - timedelta(seconds=seconds_before))

    # Mostly a no-op, so that runs do not end before proxies and holders got going.
    @rule(seconds_after=st.integers(0, 30), really=st.sampled_from([False, False, False, True]))
    def past_the_end(self, seconds_after: int, really: bool) -> None:
        if really:
            self.now = max(self.now, self.state.ends_at + timedelta(seconds=seconds_after))

    # --- commands

    @rule(who=REGISTRATIONS, steps=st.integers(-1, 4), off_grid=st.booleans())
    def bid(self, who: int, steps: int, off_grid: bool) -> None:
        amount = self.next_price() + steps * self.state.increment_fen + (7 if off_grid else 0)
        self.attempt(Bid(registration_id=who, amount_fen=amount, at=self.now))

    @rule(who=REGISTRATIONS, steps=st.integers(-1, 30))
    def set_proxy(self, who: int, steps: int) -> None:
        amount = self.next_price() + steps * self.state.increment_fen
        self.attempt(SetProxy(registration_id=who, max_fen=amount, at=self.now))

    @rule(
        a=REGISTRATIONS,
        b=REGISTRATIONS,
        steps=st.integers(0, 40),
        gap=st.integers(-2, 2),
    )
    def rival_proxies(self, a: int, b: int, steps: int, gap: int) -> None:
        """A shortcut: two maxima close together, so proxies fight proxies."""
        base = self.next_price() + steps * self.state.increment_fen
        self.attempt(SetProxy(registration_id=a, max_fen=base, at=self.now))
        rival = base + gap * self.state.increment_fen
        self.attempt(SetProxy(registration_id=b, max_fen=rival, at=self.now))

    @rule(who=REGISTRATIONS)
    def match(self, who: int) -> None:
        self.attempt(Match(registration_id=who, at=self.now))

    @rule(pick=st.integers(0, 5), outbid_first=st.booleans())
    def holder_matches(self, pick: int, outbid_first: bool) -> None:
        """A shortcut: a holder matches, so holder-vs-holder ties happen."""
        holders = sorted(self.state.holders)
        if not holders:
            return
        if outbid_first:
            outsider = next(w for w in range(1, 8) if w not in self.state.holders)
            self.attempt(Bid(registration_id=outsider, amount_fen=self.next_price(), at=self.now))
        self.attempt(Match(registration_id=holders[pick % len(holders)], at=self.now))

    @rule(a=REGISTRATIONS, b=REGISTRATIONS, seconds_before=st.integers(1, 400))
    def late_duel(self, a: int, b: int, seconds_before: int) -> None:
        """A shortcut: two bids in the last minutes, so extensions stack up."""
        self.now = max(self.now, self.state.ends_at - timedelta(seconds=seconds_before))
        for who in (a, b):
            self.attempt(Bid(registration_id=who, amount_fen=self.next_price(), at=self.now))

    @rule()
    def close(self) -> None:
        self.attempt(Close(at=self.now))

    # --- invariants

    @invariant()
    def bids_follow_the_rules(self) -> None:
        s = self.state
        inc, start = s.increment_fen, s.start_price_fen
        prev: r.AcceptedBid | None = None
        for bid, end in zip(self.bids, self.ends_before, strict=True):
            assert s.starts_at <= bid.at < end  # never at or after the effective end
            assert (bid.amount_fen - start) % inc == 0  # the grid
            if prev is None:
                assert bid.kind != "match"
                assert (
                    bid.amount_fen == start if s.kind == "fixed_price" else bid.amount_fen >= start
                )
            elif bid.kind == "match":
                assert bid.amount_fen == prev.amount_fen
                rank = s.holders[bid.registration_id]
                displaced = s.holders.get(prev.registration_id)
                assert displaced is None or rank < displaced
                assert bid.registration_id != prev.registration_id
            else:
                assert bid.amount_fen >= prev.amount_fen + inc
            if prev is not None:
                assert bid.seq > prev.seq
            prev = bid
        if prev is None:
            assert s.leader is None and s.price_fen is None
        else:
            assert (s.leader, s.price_fen) == (prev.registration_id, prev.amount_fen)
        assert s.bid_count == len(self.bids)

    @invariant()
    def end_follows_the_extension_rule(self) -> None:
        s = self.state
        end = self.initial_end
        for i, bid in enumerate(self.bids):
            if s.kind == "fixed_price" and i == 0:
                end = bid.at + s.fixed_price_window
                continue
            if end - s.extension_window <= bid.at < end:
                moved = bid.at + s.extension
                if s.hard_end_at is not None:
                    moved = min(moved, s.hard_end_at)
                end = max(end, moved)
        assert s.ends_at == end

    @invariant()
    def proxies_are_settled(self) -> None:
        s = self.state
        if s.price_fen is None:
            assert not s.proxies
            return
        for who, proxy in s.proxies.items():
            assert proxy.max_fen == self.proxy_max[who]
            if who != s.leader:
                assert proxy.max_fen < s.price_fen + s.increment_fen
        ranked = sorted(s.proxies, key=lambda w: (-s.proxies[w].max_fen, s.proxies[w].seq))
        assert s.top_proxies == ranked[:3]

    @invariant()
    def close_names_the_last_leader(self) -> None:
        s = self.state
        assert s.closed == (self.result is not None)
        if self.result is None:
            return
        assert s.result == self.result
        if not self.bids:
            assert self.result.status == "failed" and self.result.winner is None
        else:
            last = self.bids[-1]
            assert self.result.status == "sold"
            assert (self.result.winner, self.result.price_fen) == (
                last.registration_id,
                last.amount_fen,
            )
            assert max(b.amount_fen for b in self.bids) == self.result.price_fen
            assert self.result.closed_at >= s.ends_at


TestAuctionMachine = AuctionMachine.TestCase
TestAuctionMachine.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)


# --- large bids ------------------------------------------------------------------------


def test_a_bid_above_the_large_bid_line_needs_the_bidders_confirmation() -> None:
    # The line is 3 × the larger of the price (the start before any bid) and the valuation.
    state = lot(valuation_fen=20_000)
    assert refused(state, Bid(registration_id=1, amount_fen=60_100, at=T0)) == (
        "bid_needs_confirmation"
    )
    with pytest.raises(Refused) as caught:
        r.apply(state, Bid(registration_id=1, amount_fen=60_100, at=T0))
    assert caught.value.params == {"amount_fen": 60_100, "line_fen": 60_000}
    assert amounts(r.apply(state, Bid(registration_id=1, amount_fen=60_000, at=T0))) == [
        (1, 60_000, "manual")
    ]
    # Now the price is the larger: 3 × 60,000.
    assert refused(state, Bid(registration_id=2, amount_fen=180_100, at=T0)) == (
        "bid_needs_confirmation"
    )
    assert refused(state, SetProxy(registration_id=2, max_fen=180_100, at=T0)) == (
        "bid_needs_confirmation"
    )
    confirmed = r.apply(state, Bid(registration_id=2, amount_fen=180_100, at=T0, confirmed=True))
    assert amounts(confirmed) == [(2, 180_100, "manual")]
    # Every other rule comes first: an amount off the grid is refused as such.
    assert refused(state, Bid(registration_id=1, amount_fen=10**9 + 1, at=T0)) == (
        "not_on_increment"
    )
    sealed = lot("sealed", valuation_fen=20_000)
    assert refused(sealed, Bid(registration_id=1, amount_fen=60_001, at=T0)) == (
        "bid_needs_confirmation"
    )
    with pytest.raises(ValueError):
        lot(large_bid_multiple_bp=10_000)
