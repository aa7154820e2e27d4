"""Is a recorded history of one lot linearizable? (Wing and Gong's check)

Clients record what they did to one lot and what they were told: each `Op` is a command,
the instants the client sent it and got the answer, and the answer — the `Outcome` of an
accepted command or the code of a refusal. The history is linearizable when some
sequential order of the ops (1) keeps every op that got its answer before another was
sent ahead of that one, and (2) applying the commands in that order with `rules.apply`,
from the lot's initial state, gives every op exactly the answer it observed.

The search is Wing & Gong's (1993) with Lowe's memoisation (2017), as in Porcupine:
* only minimal ops are candidates for the next place — those sent no later than the
  earliest answer among the ops not yet placed (anything sent after that answer must
  come after it);
* a (state fingerprint, ops still to place) pair already explored is not explored again;
* an op that leaves the state as it was (a refusal, closing a closed lot) and gives its
  observed answer is placed at once with no alternative tried: if any order completes
  the history, one with this op moved to the front does too (it is minimal, and a no-op
  changes no later answer). Without this, every subset of the refusals in flight would
  be a separate node after a wrong guess;
* the other candidates are tried in the order their answers came, nearly always the
  single writer's order; accepted answers carry sequence numbers, so a wrong guess
  fails at once. A nearly sequential history is checked in about one trial per op.
An op without an answer (a timeout: `responded=None`) may take effect at any point after
it was sent, with any result, or not at all; `result=None` accepts any result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import msgspec

from auctions import rules
from auctions.rules import AuctionState, Close, Command, Outcome, Refused

Observed = Outcome | str  # the accepted outcome, or the refusal code


class Op(msgspec.Struct, frozen=True, kw_only=True):
    client: int | str
    command: Command
    invoked: float  # any clock shared by the clients, e.g. time.monotonic()
    responded: float | None = None  # None: no answer came
    result: Outcome | str | None = None  # None: any answer


class _Frame:
    """One step of the depth-first search: where it stands and what is left to try."""

    __slots__ = ("candidates", "placed", "remaining", "state", "tried")

    def __init__(
        self, state: AuctionState, remaining: int, candidates: list[int], placed: int
    ) -> None:
        self.state = state
        self.remaining = remaining  # bit k set: op k (in sending order) is not placed yet
        self.candidates = candidates
        self.tried = 0
        self.placed = placed  # the op placed to reach this frame (-1 at the root)


def _identity(result: Observed) -> object:
    return result


def linearize(
    history: Sequence[Op],
    initial_state: AuctionState,
    *,
    project: Callable[[Observed], object] = _identity,
) -> list[int] | None:
    """A witness order (indices into `history`) or None if there is none.

    `project` maps the engine's answer to what the clients recorded, for histories that
    keep less than a whole Outcome (e.g. `lambda a: a if isinstance(a, str) else "ok"`).
    `initial_state` is not changed.
    """
    order = sorted(range(len(history)), key=lambda i: history[i].invoked)
    ops = [history[i] for i in order]
    n = len(ops)
    sent = [op.invoked for op in ops]
    answered = [math.inf if op.responded is None else op.responded for op in ops]
    required = 0
    for k, op in enumerate(ops):
        if op.responded is not None:
            if op.responded < op.invoked:
                raise ValueError(f"op {order[k]} was answered before it was sent")
            required |= 1 << k

    def candidates(remaining: int) -> list[int]:
        found: list[int] = []
        bound = math.inf  # the earliest answer among the remaining ops sent so far
        k = (remaining & -remaining).bit_length() - 1
        while 0 <= k < n:
            if remaining >> k & 1:
                # Sorted by sending time: an op sent after `bound` follows that answer,
                # and so does everything sent after it.
                if sent[k] > bound:
                    break
                found.append(k)
                bound = min(bound, answered[k])
            k += 1
        # Observed refusals first: they are usually forced moves (see below).
        found.sort(key=lambda k: (not isinstance(ops[k].result, str), answered[k]))
        return found

    everything = (1 << n) - 1
    seen: set[tuple[bytes, int]] = set()
    stack = [_Frame(rules.clone(initial_state), everything, candidates(everything), -1)]
    while stack:
        frame = stack[-1]
        if not frame.remaining & required:
            return [order[f.placed] for f in stack[1:]]
        if frame.tried == len(frame.candidates):
            stack.pop()
            continue
        k = frame.candidates[frame.tried]
        frame.tried += 1
        op = ops[k]
        trial = rules.clone(frame.state)
        actual: Observed
        try:
            actual = rules.apply(trial, op.command)
        except Refused as refusal:
            actual = refusal.code
        if op.result is not None and project(actual) != op.result:
            continue
        if isinstance(actual, str) or (isinstance(op.command, Close) and frame.state.closed):
            # It left the state as it was. If any order completes the history from here,
            # one that places this op first does too (it is minimal, and moving a no-op
            # forward changes no other answer): no sibling needs trying.
            frame.tried = len(frame.candidates)
        rest = frame.remaining & ~(1 << k)
        key = (rules.fingerprint(trial), rest)
        if key in seen:
            continue
        seen.add(key)
        stack.append(_Frame(trial, rest, candidates(rest), k))
    return None


def check(
    history: Sequence[Op],
    initial_state: AuctionState,
    *,
    project: Callable[[Observed], object] = _identity,
) -> bool:
    """True when some order consistent with real time reproduces every observed answer."""
    return linearize(history, initial_state, project=project) is not None
