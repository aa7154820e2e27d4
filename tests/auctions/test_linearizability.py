"""The Wing–Gong linearizability checker over one lot's recorded history."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auctions import rules as r
from auctions.linearizability import Op, check, linearize
from auctions.rules import AuctionState, Bid, Close, Match, Outcome, Refused, SetProxy

T0 = datetime(2026, 5, 1, 10, tzinfo=UTC)
START, INC = 10_000, 100


def lot(**changes: object) -> AuctionState:
    fields: dict[str, object] = {
        "kind": "english",
        "start_price_fen": START,
        "increment_fen": INC,
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=1),
        "holders": {7: 1, 8: 2},
    }
    fields.update(changes)
    return AuctionState(**fields)  # type: ignore[arg-type]


def accepted(seq: int, who: int, amount: int, kind: r.BidKind = "manual") -> Outcome:
    return Outcome(
        bids=(r.AcceptedBid(seq=seq, registration_id=who, amount_fen=amount, kind=kind, at=T0),)
    )


def bid(who: int, amount: int) -> Bid:
    return Bid(registration_id=who, amount_fen=amount, at=T0)


def simulate(n: int, seed: int, *, spread: float = 0.004) -> tuple[list[Op], AuctionState]:
    """A single writer applying `n` commands from many clients, in arrival order.

    Clients pick amounts from a slightly stale view of the price, so some bids are
    refused; each op's interval overlaps its neighbours' by up to `spread` seconds.
    """
    rng = random.Random(seed)
    initial = lot(ends_at=T0 + timedelta(seconds=n // 2 + 60))
    state = r.clone(initial)
    views = [r.minimum_bid(state)]
    history: list[Op] = []
    for i in range(n):
        arrival = i * 0.001
        at = T0 + timedelta(seconds=arrival * 500)  # later ops fall into the extension window
        who = rng.randint(1, 9)
        stale = views[max(0, len(views) - 1 - rng.randint(0, 4))]
        roll = rng.random()
        command: r.Command
        if roll < 0.6:
            command = Bid(registration_id=who, amount_fen=stale + rng.randint(0, 2) * INC, at=at)
        elif roll < 0.8:
            top = stale + rng.randint(0, 20) * INC
            command = SetProxy(registration_id=who, max_fen=top, at=at)
        elif roll < 0.97:
            command = Match(registration_id=rng.choice([7, 8, who]), at=at)
        else:
            command = Close(at=at)
        result: Outcome | str
        try:
            result = r.apply(state, command)
        except Refused as refusal:
            result = refusal.code
        views.append(r.minimum_bid(state))
        history.append(
            Op(
                client=who,
                command=command,
                invoked=arrival - rng.uniform(0, spread),
                responded=arrival + rng.uniform(0, spread),
                result=result,
            )
        )
    rng.shuffle(history)  # the recorder's order means nothing
    return history, initial


# --- hand-made histories ---------------------------------------------------------------


def test_overlapping_ops_may_take_effect_in_either_order() -> None:
    history = [
        Op(client="a", command=bid(1, START), invoked=0, responded=10, result="too_low"),
        Op(client="b", command=bid(2, START), invoked=1, responded=9, result=accepted(1, 2, START)),
    ]
    assert linearize(history, lot()) == [1, 0]  # b first, though a was sent first


def test_two_accepted_bids_that_cannot_both_be_accepted() -> None:
    history = [
        Op(
            client="a", command=bid(1, START), invoked=0, responded=10, result=accepted(1, 1, START)
        ),
        Op(client="b", command=bid(2, START), invoked=1, responded=9, result=accepted(1, 2, START)),
    ]
    assert not check(history, lot())
    # Even with distinct sequence numbers: whoever came second bid too little.
    history[1] = msgspec.structs.replace(history[1], result=accepted(2, 2, START))
    assert not check(history, lot())


def test_a_refusal_that_contradicts_the_only_real_time_order() -> None:
    # b's refusal would be right after a's bid, but b was answered before a was sent.
    b = Op(client="b", command=bid(2, START), invoked=0, responded=1, result="too_low")
    a = Op(client="a", command=bid(1, START), invoked=2, responded=3, result=accepted(1, 1, START))
    assert not check([a, b], lot())
    # Overlapping, the same answers are fine: a took effect first.
    assert linearize([a, msgspec.structs.replace(b, responded=2.5)], lot()) == [0, 1]


def test_an_unanswered_op_may_or_may_not_have_taken_effect() -> None:
    lost = Op(client="x", command=bid(3, START), invoked=0)
    took_effect = Op(
        client="a",
        command=bid(1, START + INC),
        invoked=1,
        responded=2,
        result=accepted(2, 1, START + INC),
    )
    assert linearize([lost, took_effect], lot()) == [0, 1]
    did_not = Op(
        client="a", command=bid(1, START), invoked=1, responded=2, result=accepted(1, 1, START)
    )
    assert linearize([lost, did_not], lot()) == [1]


def test_a_projected_history_records_less_than_whole_outcomes() -> None:
    def project(answer: Outcome | str) -> object:
        return answer if isinstance(answer, str) else "accepted"

    history = [
        Op(client="a", command=bid(1, START), invoked=0, responded=5, result="accepted"),
        Op(client="b", command=bid(2, START + INC), invoked=1, responded=6, result="accepted"),
        Op(
            client="c",
            command=Match(registration_id=7, at=T0),
            invoked=7,
            responded=8,
            result="accepted",
        ),
        Op(
            client="d",
            command=Match(registration_id=8, at=T0),
            invoked=9,
            responded=10,
            result="outranked",
        ),
    ]
    assert check(history, lot(), project=project)
    history[3] = msgspec.structs.replace(history[3], result="accepted")
    assert not check(history, lot(), project=project)


def test_the_initial_state_is_left_alone_and_bad_intervals_are_refused() -> None:
    initial = lot()
    before = r.fingerprint(initial)
    assert check(
        [Op(client=1, command=bid(1, START), invoked=0, responded=1, result=accepted(1, 1, START))],
        initial,
    )
    assert r.fingerprint(initial) == before
    with pytest.raises(ValueError, match="answered before"):
        check([Op(client=1, command=bid(1, START), invoked=2, responded=1)], initial)
    assert check([], initial)


# --- simulated single-writer histories -------------------------------------------------


def test_a_200_op_concurrent_history_is_checked_well_under_a_second() -> None:
    history, initial = simulate(200, seed=4)
    results = [op.result for op in history]
    assert any(isinstance(x, str) for x in results) and any(isinstance(x, Outcome) for x in results)
    began = time.perf_counter()
    witness = linearize(history, initial)
    elapsed = time.perf_counter() - began
    assert witness is not None and sorted(witness) == list(range(200))
    assert elapsed < 0.25, elapsed


def test_a_long_history_with_wide_overlaps_stays_fast() -> None:
    history, initial = simulate(2000, seed=5, spread=0.064)  # ~64 clients in flight at once
    began = time.perf_counter()
    assert check(history, initial)
    assert time.perf_counter() - began < 3  # about 0.2 s here


@pytest.mark.parametrize("forgery", ["refused instead", "one step more", "another refusal"])
def test_one_forged_answer_in_a_long_history_is_caught(forgery: str) -> None:
    history, initial = simulate(2000, seed=6, spread=0.02)
    rng = random.Random(forgery)
    if forgery == "another refusal":
        k = rng.choice([i for i, op in enumerate(history) if op.result == "too_low"])
        history[k] = msgspec.structs.replace(history[k], result="lot_not_open")
    else:
        k = rng.choice(
            [i for i, op in enumerate(history) if isinstance(op.result, Outcome) and op.result.bids]
        )
        result = history[k].result
        assert isinstance(result, Outcome)
        last = result.bids[-1]
        more = msgspec.structs.replace(last, amount_fen=last.amount_fen + INC)
        forged: Outcome | str = (
            "too_low"
            if forgery == "refused instead"
            else msgspec.structs.replace(result, bids=(*result.bids[:-1], more))
        )
        history[k] = msgspec.structs.replace(history[k], result=forged)
    began = time.perf_counter()
    assert not check(history, initial)
    assert time.perf_counter() - began < 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 60), seed=st.integers(0, 2**32), spread=st.sampled_from([0.0, 0.002, 0.01]))
def test_every_single_writer_history_is_linearizable(n: int, seed: int, spread: float) -> None:
    history, initial = simulate(n, seed, spread=spread)
    witness = linearize(history, initial)
    assert witness is not None and sorted(witness) == list(range(n))
