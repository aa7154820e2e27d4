"""The bidding rules of one lot, as a pure engine (docs/rules.md §Bidding).

`apply(state, command)` applies one command — `Bid`, `SetProxy`, `Match` or `Close` — and
returns an `Outcome` (the bids it accepted, the new end if it moved, the result of a close)
or raises `Refused` with a machine code and a human message. No I/O, no clock: every
command carries `at`, the instant the server received it (the platform's clock decides,
not the bidder's: 法释〔2016〕18号, the Supreme People's Court rules on online judicial
auctions, Art. 20 "出价时间以进入网络司法拍卖平台系统的时间为准").

Why the state is mutable. One writer owns a lot's `AuctionState` (auctions/writer.py) and
applies its queued commands in order, so nobody else can see a half-applied command. A
frozen state would have to copy the proxy table (and a sealed round's bids) on every
change — O(bidders) per bid — or use persistent maps; a mutable one makes a bid O(1).
`apply` checks every rule before it touches anything, so a refused command leaves the
state exactly as it was (the tests compare encodings). When a batch's commit fails, the
writer restores `clone(state)` taken before the batch (one O(bidders) copy per batch) or
rebuilds the state by replaying the accepted commands: `apply` is deterministic.

The rules (every number is data on the state, defaults cited):
* Prices live on a grid: start + k·increment, k ≥ 0. An English round's first bid is at
  least the start (Art. 20 "从起拍价开始以递增出价方式竞价"); every later bid is the current
  price plus a whole number (≥ 1) of increments. The leader may not outbid himself.
* Proxy bids: a maximum on the grid, only ever raised. Whenever a proxy holder is outbid
  the engine bids the least needed for him. All competing proxies (the leader's own
  included) are settled in one step, O(1) — the best three maxima are kept in
  `top_proxies` — with at most two recorded auto-bids: the runner-up's proxy at the
  last price it could lead at, if that is above the price before the command, then the
  winner's proxy one increment above it (a challenger against a leader who cannot answer
  just bids price + increment). Between proxies the higher maximum wins; equal maxima go
  to the one set earlier, who then leads at that maximum (the runner-up's
  recorded bid is one increment below it). A proxy only ever answers with a higher bid:
  a manual bid at exactly a proxy's maximum keeps the lead. Raising the leader's own
  maximum records no bid. `Outcome.proxy` is the maximum now standing, to be persisted.
* Pre-emptive right holders (优先购买权人, Art. 21): `Match` takes the lead at the current
  price. Between holders at the same price the better rank wins, then the earlier one
  ("顺序在先", "出价在先"); a non-holder never keeps a price a holder matches. Matches are
  the only accepted bids that do not rise by an increment; proxies never match.
* Extension (2016 rules, art. 20): an accepted bid at `at` with end − window ≤ at < end
  moves the end to at + extension (never earlier, capped at `hard_end_at` if set).
  Defaults 5 and 5 minutes. A command at or after the effective end is refused.
* Fixed-price sale (变卖, docs/rules.md §Lot lifecycle): the first bid must be exactly the
  start price and replaces the end with first bid + `fixed_price_window` (default 24 h) — shorter or
  longer than the sale period, whichever it is: the window is the other buyers' right,
  so `hard_end_at` caps only the extensions inside it. Then as an English round.
* Sealed tender: one standing bid per registration, at least the start, off
  the grid allowed; a second bid replaces the first (a tenderer may amend before the
  deadline, 招标投标法 Art. 29) and takes the new bid's time for ties. Nothing about the
  bids is public before the close; the highest wins, ties to the earliest `at`, then to
  the earlier sequence. No proxies, matches or extensions.
* Large bids: an amount (a bid, a proxy maximum, a sealed bid) above 3 × the larger of the
  current price (the start before any bid) and the lot's valuation is refused
  (`bid_needs_confirmation`, naming the line) unless the command says the bidder confirmed
  it — checked after every other rule, so a confirmed bid is otherwise valid already.
* Close at or after the effective end: sold to the leader at the current price, or
  failed (流拍, Art. 26) without any bid. Closing again returns the same outcome.

One sequence numbers accepted bids and proxy maxima together (gaps in the bids' numbers
are proxy settings); `bid_count` counts accepted bids, a sealed round's replaced ones too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec

from market.errors import Conflict

if TYPE_CHECKING:
    from market.lots.terms import Terms

Kind = Literal["english", "fixed_price", "sealed"]
BidKind = Literal["manual", "proxy", "match", "sealed"]
RefusalCode = Literal[
    "too_low",
    "not_on_increment",
    "not_fixed_price",
    "lot_not_open",
    "lot_closed",
    "already_leading",
    "not_preemptive",
    "nothing_to_match",
    "outranked",
    "proxy_below_next",
    "proxy_not_raised",
    "not_ended",
    "unsupported",
    "not_revealed",
    "bid_needs_confirmation",
]

# 2016 rules, art. 20 (docs/rules.md §Lot terms): a bid in the last 5 minutes extends by 5.
EXTENSION_WINDOW = timedelta(minutes=5)
EXTENSION = timedelta(minutes=5)
# docs/rules.md §Lot lifecycle: the first qualified fixed-price bid opens a 24-hour window
# for raises.
FIXED_PRICE_WINDOW = timedelta(hours=24)
# docs/rules.md §Bidding: a bid (or proxy maximum, or sealed bid) above this multiple of the
# larger of the current price (the start before any bid) and the lot's valuation is taken
# only when the bidder confirms it — a mistyped ¥7.75 bn on a lot valued ¥1.3 m is caught.
LARGE_BID_MULTIPLE_BP = 30_000  # 3 ×
LARGE_BID_MULTIPLE_RANGE_BP = (15_000, 100_000)  # 1.5 × to 10 ×
BP = 10_000
# The proxy cache keeps the best three maxima: enough for the two best challengers of
# any leader (the leader may be one of the three).
_TOP = 3


class Refused(Conflict):
    """A command the rules refuse; the state is untouched. The code and its parameters are
    what the bidder is told (problem.<code> in the catalogs)."""

    def __init__(self, code: RefusalCode, **params: int) -> None:
        super().__init__(code)
        self.params = params


# --- what the engine records -----------------------------------------------------------


class AcceptedBid(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    registration_id: int
    amount_fen: int
    kind: BidKind
    at: datetime


class ProxyMax(msgspec.Struct, frozen=True, kw_only=True):
    max_fen: int
    seq: int  # when this maximum was set: the earlier of two equal maxima wins


class Result(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["sold", "failed"]
    closed_at: datetime
    winner: int | None = None  # registration id
    price_fen: int | None = None


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    bids: tuple[AcceptedBid, ...] = ()
    ends_at: datetime | None = None  # the new effective end, when this command moved it
    result: Result | None = None  # Close only
    proxy: ProxyMax | None = None  # SetProxy only: the maximum now standing, with its sequence


# --- commands (a tagged union: each carries the server's receive time) ---------------


class Bid(msgspec.Struct, frozen=True, kw_only=True, tag="bid"):
    registration_id: int
    amount_fen: int
    at: datetime
    confirmed: bool = False  # the bidder confirmed an amount above the large-bid line


class SetProxy(msgspec.Struct, frozen=True, kw_only=True, tag="set_proxy"):
    registration_id: int
    max_fen: int
    at: datetime
    confirmed: bool = False


class Match(msgspec.Struct, frozen=True, kw_only=True, tag="match"):
    registration_id: int
    at: datetime


class Close(msgspec.Struct, frozen=True, kw_only=True, tag="close"):
    at: datetime


Command = Bid | SetProxy | Match | Close


# --- the state -------------------------------------------------------------------------


class AuctionState(msgspec.Struct, kw_only=True):
    """One lot's auction, owned by a single writer (mutable on purpose: see the module)."""

    kind: Kind
    start_price_fen: int
    increment_fen: int
    starts_at: datetime
    ends_at: datetime  # the effective end: moved by extensions and the fixed-price window
    hard_end_at: datetime | None = None
    extension_window: timedelta = EXTENSION_WINDOW
    extension: timedelta = EXTENSION
    fixed_price_window: timedelta = FIXED_PRICE_WINDOW
    valuation_fen: int = 0  # the lot's valuation: the large-bid line is a multiple of it too
    large_bid_multiple_bp: int = LARGE_BID_MULTIPLE_BP
    holders: dict[int, int] = msgspec.field(default_factory=dict)  # registration → rank, 1 best
    price_fen: int | None = None  # None before the first bid, and in a sealed round until close
    leader: int | None = None
    proxies: dict[int, ProxyMax] = msgspec.field(default_factory=dict)
    top_proxies: list[int] = msgspec.field(default_factory=list)  # best first, at most _TOP
    sealed_bids: dict[int, AcceptedBid] = msgspec.field(default_factory=dict)
    first_bid_at: datetime | None = None
    bid_count: int = 0
    seq: int = 0  # last sequence number given to an accepted bid or proxy maximum
    closed: bool = False
    result: Result | None = None

    def __post_init__(self) -> None:
        if self.start_price_fen <= 0 or self.increment_fen <= 0:
            raise ValueError("the start price and the increment must be positive")
        if self.ends_at <= self.starts_at:
            raise ValueError("an auction must end after it starts")
        if self.hard_end_at is not None and self.hard_end_at < self.ends_at:
            raise ValueError("the hard end cannot be before the planned end")
        if any(rank < 1 for rank in self.holders.values()):
            raise ValueError("pre-emptive ranks start at 1")
        low, high = LARGE_BID_MULTIPLE_RANGE_BP
        if not low <= self.large_bid_multiple_bp <= high:
            raise ValueError("the large-bid multiple is between 1.5 and 10 times")


def from_terms(
    kind: Kind,
    terms: Terms,
    holders: Mapping[int, int] | None = None,
    *,
    fixed_price_window: timedelta = FIXED_PRICE_WINDOW,
) -> AuctionState:
    """A fresh state from a lot's validated terms; `holders`: registration id → rank."""
    return AuctionState(
        kind=kind,
        start_price_fen=terms.start_price_fen,
        increment_fen=terms.increment_fen,
        starts_at=terms.bidding_starts_at,
        ends_at=terms.bidding_ends_at,
        hard_end_at=terms.hard_end_at,
        extension_window=timedelta(seconds=terms.extension_window_s),
        extension=timedelta(seconds=terms.extension_s),
        fixed_price_window=fixed_price_window,
        holders=dict(holders or {}),
    )


def clone(state: AuctionState) -> AuctionState:
    """An independent copy (the maps are copied; their values are frozen)."""
    return msgspec.structs.replace(
        state,
        holders=dict(state.holders),
        proxies=dict(state.proxies),
        top_proxies=list(state.top_proxies),
        sealed_bids=dict(state.sealed_bids),
    )


def fingerprint(state: AuctionState) -> bytes:
    """Equal states give equal bytes, whatever order their maps were filled in."""
    canonical = msgspec.structs.replace(
        state,
        holders=dict(sorted(state.holders.items())),
        proxies=dict(sorted(state.proxies.items())),
        sealed_bids=dict(sorted(state.sealed_bids.items())),
    )
    return msgspec.msgpack.encode(canonical)


def minimum_bid(state: AuctionState) -> int:
    """The least amount a bid may have now (for forms; a sealed round: the start)."""
    if state.price_fen is None or state.kind == "sealed":
        return state.start_price_fen
    return state.price_fen + state.increment_fen


def public_bid_count(state: AuctionState) -> int:
    """The number of bids anyone may be told: none of a sealed round until it is closed
    (docs/rules.md §Bidding — even how many tendered is part of the secret)."""
    return 0 if state.kind == "sealed" and not state.closed else state.bid_count


def reveal(state: AuctionState) -> list[AcceptedBid]:
    """A sealed round's standing bids, best first, once it is closed."""
    if state.kind != "sealed":
        raise Refused("unsupported")
    if not state.closed:
        raise Refused("not_revealed")
    return sorted(state.sealed_bids.values(), key=_sealed_rank)


# --- applying a command ----------------------------------------------------------------


def apply(state: AuctionState, command: Command) -> Outcome:
    """Apply one command in place; raise Refused (state untouched) if the rules forbid it."""
    match command:
        case Bid():
            if state.kind == "sealed":
                return _sealed_bid(state, command)
            return _bid(state, command)
        case SetProxy():
            return _set_proxy(state, command)
        case Match():
            return _match(state, command)
        case Close():
            return _close(state, command)
    raise AssertionError(f"unknown command {command!r}")  # pragma: no cover


def _check_open(state: AuctionState, at: datetime) -> None:
    if state.closed:
        raise Refused("lot_closed")
    if at < state.starts_at:
        raise Refused("lot_not_open")
    if at >= state.ends_at:
        raise Refused("lot_closed")


def _check_large(state: AuctionState, amount: int, confirmed: bool) -> None:
    """Refuse an unconfirmed amount above the large-bid line (LARGE_BID_MULTIPLE_BP)."""
    if confirmed:
        return
    base = state.start_price_fen if state.price_fen is None else state.price_fen
    line = max(base, state.valuation_fen) * state.large_bid_multiple_bp // BP
    if amount > line:
        raise Refused("bid_needs_confirmation", amount_fen=amount, line_fen=line)


def _bid(state: AuctionState, command: Bid) -> Outcome:
    at = command.at
    _check_open(state, at)
    who, amount = command.registration_id, command.amount_fen
    price, inc = state.price_fen, state.increment_fen
    if price is None:
        start = state.start_price_fen
        if amount < start:
            raise Refused("too_low", min_fen=start)
        if state.kind == "fixed_price" and amount != start:
            raise Refused("not_fixed_price", price_fen=start)
        if (amount - start) % inc:
            raise Refused("not_on_increment", base_fen=start, increment_fen=inc)
    else:
        if who == state.leader:
            raise Refused("already_leading")
        if amount < price + inc:
            raise Refused("too_low", min_fen=price + inc)
        if (amount - price) % inc:
            raise Refused("not_on_increment", base_fen=price, increment_fen=inc)
    _check_large(state, amount, command.confirmed)
    bids: list[AcceptedBid] = []
    _record(state, bids, who, amount, "manual", at)
    _resolve_proxies(state, bids, at)
    return _accepted(state, bids, at)


def _set_proxy(state: AuctionState, command: SetProxy) -> Outcome:
    at = command.at
    if state.kind == "sealed":
        raise Refused("unsupported")
    _check_open(state, at)
    who, need = command.registration_id, minimum_bid(state)
    # A maximum off the grid is rounded down onto it: a proxy only bids grid prices, so
    # the part above could never be used (docs/rules.md §Bidding). The answer says so.
    over = (command.max_fen - state.start_price_fen) % state.increment_fen
    top = command.max_fen - over
    if top < need:
        raise Refused("proxy_below_next", min_fen=need)
    _check_large(state, top, command.confirmed)
    old = state.proxies.get(who)
    if old is not None and top <= old.max_fen:
        raise Refused("proxy_not_raised", max_fen=old.max_fen)
    state.seq += 1
    state.proxies[who] = ProxyMax(max_fen=top, seq=state.seq)
    _promote(state, who)
    bids: list[AcceptedBid] = []
    if state.price_fen is None:
        # The least needed is the start (also exactly a fixed-price sale's price).
        _record(state, bids, who, state.start_price_fen, "proxy", at)
    _resolve_proxies(state, bids, at)
    outcome = _accepted(state, bids, at)
    return msgspec.structs.replace(outcome, proxy=state.proxies[who])


def _match(state: AuctionState, command: Match) -> Outcome:
    at = command.at
    if state.kind == "sealed":
        raise Refused("unsupported")
    _check_open(state, at)
    who = command.registration_id
    rank = state.holders.get(who)
    if rank is None:
        raise Refused("not_preemptive")
    if state.price_fen is None or state.leader is None:
        raise Refused("nothing_to_match")
    if who == state.leader:
        raise Refused("already_leading")
    leader_rank = state.holders.get(state.leader)
    if leader_rank is not None and leader_rank <= rank:
        # Art. 21: the better rank keeps the price; at the same rank, the earlier one.
        raise Refused("outranked")
    bids: list[AcceptedBid] = []
    _record(state, bids, who, state.price_fen, "match", at)
    _resolve_proxies(state, bids, at)
    return _accepted(state, bids, at)


def _close(state: AuctionState, command: Close) -> Outcome:
    if state.result is not None:
        return Outcome(result=state.result)
    if command.at < state.ends_at:
        raise Refused("not_ended")
    if state.kind == "sealed" and state.sealed_bids:
        best = min(state.sealed_bids.values(), key=_sealed_rank)
        state.price_fen, state.leader = best.amount_fen, best.registration_id
    if state.leader is None or state.price_fen is None:
        result = Result(status="failed", closed_at=command.at)  # 流拍
    else:
        result = Result(
            status="sold", closed_at=command.at, winner=state.leader, price_fen=state.price_fen
        )
    state.closed = True
    state.result = result
    return Outcome(result=result)


def _sealed_bid(state: AuctionState, command: Bid) -> Outcome:
    at = command.at
    _check_open(state, at)
    if command.amount_fen < state.start_price_fen:
        raise Refused("too_low", min_fen=state.start_price_fen)
    _check_large(state, command.amount_fen, command.confirmed)
    state.seq += 1
    state.bid_count += 1
    bid = AcceptedBid(
        seq=state.seq,
        registration_id=command.registration_id,
        amount_fen=command.amount_fen,
        kind="sealed",
        at=at,
    )
    state.sealed_bids[command.registration_id] = bid  # replaces an earlier one
    if state.first_bid_at is None:
        state.first_bid_at = at
    return Outcome(bids=(bid,))


def _sealed_rank(bid: AcceptedBid) -> tuple[int, datetime, int]:
    return (-bid.amount_fen, bid.at, bid.seq)


# --- helpers that change the state (only called once every rule has passed) ------------


def _record(
    state: AuctionState,
    bids: list[AcceptedBid],
    who: int,
    amount: int,
    kind: BidKind,
    at: datetime,
) -> None:
    state.seq += 1
    state.bid_count += 1
    state.price_fen = amount
    state.leader = who
    bids.append(
        AcceptedBid(seq=state.seq, registration_id=who, amount_fen=amount, kind=kind, at=at)
    )


def _accepted(state: AuctionState, bids: list[AcceptedBid], at: datetime) -> Outcome:
    if not bids:
        return Outcome()
    before = state.ends_at
    if state.first_bid_at is None:
        state.first_bid_at = at
        if state.kind == "fixed_price":
            # The first qualified bid opens the raising window (docs/rules.md §Lot lifecycle),
            # wherever it ends.
            state.ends_at = at + state.fixed_price_window
            return Outcome(bids=tuple(bids), ends_at=state.ends_at)
    if before - state.extension_window <= at:
        moved = at + state.extension
        if state.hard_end_at is not None and moved > state.hard_end_at:
            moved = state.hard_end_at
        if moved > before:
            state.ends_at = moved
            return Outcome(bids=tuple(bids), ends_at=moved)
    return Outcome(bids=tuple(bids))


def _key(proxy: ProxyMax) -> tuple[int, int]:
    return (-proxy.max_fen, proxy.seq)


def _promote(state: AuctionState, who: int) -> None:
    """Keep the best _TOP proxies. Maxima only rise, so only `who` can move up."""
    proxies = state.proxies
    top = [r for r in state.top_proxies if r != who]
    top.append(who)
    top.sort(key=lambda r: _key(proxies[r]))
    del top[_TOP:]
    state.top_proxies = top


def _resolve_proxies(state: AuctionState, bids: list[AcceptedBid], at: datetime) -> None:
    """Settle every proxy that can still bid, in one step (at most two auto-bids).

    Before: a leader at `price`, every other proxy at most `price` (the state is settled
    after each command). A challenger is another proxy with max ≥ price + increment. The
    contest is between the leader's own proxy (if above the price) and the challengers:
    the best maximum wins (earlier on a tie) and pays the least that beats the runner-up.
    """
    price, leader = state.price_fen, state.leader
    assert price is not None and leader is not None
    inc = state.increment_fen
    if not state.top_proxies:
        return
    proxies = state.proxies
    challengers = [r for r in state.top_proxies if r != leader]
    if not challengers or proxies[challengers[0]].max_fen < price + inc:
        return
    best = challengers[0]
    best_proxy = proxies[best]
    own = proxies.get(leader)
    own_live = own is not None and own.max_fen > price
    # The runner-up: who the winner must beat, with its maximum; None if nobody can bid.
    runner: tuple[int, ProxyMax] | None
    if own is not None and own_live and _key(own) < _key(best_proxy):
        winner, runner = leader, (best, best_proxy)
    else:
        winner = best
        runner = (leader, own) if own is not None and own_live else None
        if len(challengers) > 1:
            second = proxies[challengers[1]]
            if second.max_fen >= price + inc and (runner is None or _key(second) < _key(runner[1])):
                runner = (challengers[1], second)
    if runner is None:
        final = price + inc  # the leader cannot answer: the least that beats him
        loser, loser_last = leader, price
    else:
        loser, loser_max = runner[0], runner[1].max_fen
        # A tie goes to the earlier maximum, who leads at it; else one step above.
        final = loser_max if loser_max == proxies[winner].max_fen else loser_max + inc
        loser_last = final - inc
    if loser_last > price:
        _record(state, bids, loser, loser_last, "proxy", at)
    _record(state, bids, winner, final, "proxy", at)


def restore_proxies(state: AuctionState, proxies: Mapping[int, ProxyMax]) -> None:
    """Put stored proxy maxima back into a state rebuilt from the database."""
    state.proxies = dict(proxies)
    state.top_proxies = sorted(state.proxies, key=lambda r: _key(state.proxies[r]))[:_TOP]
