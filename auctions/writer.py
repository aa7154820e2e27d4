"""The single writer: bids queue up, are applied in order, and commit together.

Why: with one PostgreSQL transaction per bid, every bid of a hot lot waits for the lot
row's lock and for its own commit flush, so a lot takes a few hundred bids a second at
best (docs/bidding.md). Here requests put their command on this process's queue and wait;
the writer (`Batcher`) takes what is queued, for every lot not already in a batch (up to
MAX_BATCH), as one batch — two batches at most in flight, over disjoint lots — and commits
each batch in ONE transaction, one of two ways (docs/bidding.md "The writer"):

* from memory: when this process committed each of the batch's lots last and knows every
  command's registration, the batch is decided on the cached states and written by one
  statement (save_batch) that also proves each lot unchanged since — round, status,
  auction_seq, end — and each Idempotency-Key new, or writes nothing;
* the locking way, otherwise or when that statement found something changed: lock the
  lots' rows in id order (`SELECT … FOR UPDATE`, the lock the closer, the lifecycle and
  every other process's writer take); rebuild the state of each lot whose row differs from
  the cache (auctions/state.py); open bidding where the announced instant has passed and
  the worker has not yet; read the registrations (deposit confirmed?) and the stored
  answers to Idempotency-Keys; decide; the same save_batch; commit.

Either way each lot's commands are applied in arrival order with the pure rules
(auctions/rules.py), the accepted bids, proxy maxima, live values, keyed answers and
outbox rows (outbid, extended) are written together, and the commit is durable
(synchronous_commit stays on). Only after the commit does it answer each waiting request
and publish each lot's new state on Redis (auctions/live.py fans it out). If a batch
fails, nothing was written: its lots are retried one by one in transactions of their own,
so one lot's failure costs the others nothing; a lot that fails alone drops its cached
state (the next batch reloads it) and its requests get a retryable 503. A refusal that
the cached state already proves — a bid below the current price plus one increment, when
prices only rise — is answered by the caller without queueing (see `provable_refusal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec
from lru import LRU

from auctions import rules, state
from market.clock import Clock
from market.db import Conn, Queries, returned
from market.lots import services as lots
from market.lots.terms import TermsPolicy

Q = Queries("auctions")
log = logging.getLogger("market.auctions")
MAX_BATCH = 512  # bounded so one batch's transaction stays short
# Batches committing at once, over disjoint lots: while one waits for PostgreSQL the next
# is decided, and a backlog over many lots is written on two connections at once. More
# split the same bids into more, smaller transactions: 1, 2 and 4 measured, 2 best
# (docs/bidding.md "Flights").
FLIGHTS = 2
ANNOUNCE_BACKLOG = 10_000  # committed batches waiting for Redis (see Batcher.announce)
# How long a stopping writer waits for Redis to take the live updates and close reschedules
# it owes (the sweeper closes on time without them; pages catch up when they reconnect).
ANNOUNCE_GRACE_SECONDS = 2.0
RESTARTING: Final = "the exchange is restarting; please retry"  # a stopping writer's 503


class PlacedBid(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    code: str  # the bidder code, never the bidder's identity
    amount_fen: int
    kind: str
    at: datetime


class BidAnswer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    lot_id: int
    accepted: bool
    at: datetime  # when the exchange received the command: its clock decides
    code: str | None = None  # why it was refused: problem.<code> in the catalogs
    params: dict[str, int] = {}  # the numbers the refusal names (a least bid …)
    bids: list[PlacedBid] = []
    price_fen: int | None = None
    leader_code: str | None = None
    ends_at: datetime | None = None
    bid_count: int = 0
    proxy_max_fen: int | None = None  # a proxy maximum set: the one now standing
    note: str | None = None  # said of an accepted command: `proxy_rounded_down` (problem.<note>)


class WriterUnavailable(Exception):
    """The batch could not be committed; nothing was written. Retry."""


@dataclass
class Pending:
    command: rules.Bid | rules.SetProxy | rules.Match
    registration_id: int
    idempotency_key: str | None = None
    request_sha256: bytes = b""
    future: asyncio.Future[BidAnswer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def request_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


# --- the rows a batch hands to save_batch (sql/queries/auctions.sql), by name -------------


class Basis(msgspec.Struct, frozen=True, kw_only=True):
    """What a lot's batch was decided on; save_batch writes only if the lot is still so."""

    was_round: int
    was_status: str
    was_seq: int
    was_ends_at: datetime


class BidRow(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    round: int
    seq: int
    registration_id: int
    amount_fen: int
    kind: str
    at: datetime


class LiveRow(msgspec.Struct, frozen=True, kw_only=True):
    """A lot's live values after the batch, and the basis they were decided on."""

    lot_id: int
    price_fen: int | None
    leader: int | None
    bid_count: int
    seq: int
    ends_at: datetime
    first_bid_at: datetime | None
    basis: Basis


class UnchangedRow(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    basis: Basis


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    recipient_org_id: int | None
    recipient_user_id: int | None
    lot_id: int
    payload: dict[str, Any]
    dedupe_key: str


class ProxyRow(msgspec.Struct, frozen=True, kw_only=True):
    registration_id: int
    lot_id: int
    max_fen: int
    seq: int
    set_at: datetime


class AnswerRow(msgspec.Struct, frozen=True, kw_only=True):
    registration_id: int
    idempotency_key: str
    request_sha256: bytes  # base64 in the JSON document
    status_code: int
    response: Any


class BatchRows(msgspec.Struct, frozen=True, kw_only=True):
    """save_batch's $1: one jsonb document, a list of named rows per table."""

    bids: list[BidRow]
    live: list[LiveRow]
    events: list[EventRow]
    proxies: list[ProxyRow]
    unchanged: list[UnchangedRow]
    answers: list[AnswerRow]


@dataclass
class Writes:
    """What a batch writes, for every lot in it, gathered as the lots are decided and
    written by `flush` in one statement: a batch over many lots costs the same round
    trips as one lot."""

    bids: list[BidRow] = field(default_factory=list)
    live: list[LiveRow] = field(default_factory=list)  # lots with writes
    unchanged: list[UnchangedRow] = field(default_factory=list)  # lots without
    events: list[EventRow] = field(default_factory=list)
    proxies: list[ProxyRow] = field(default_factory=list)
    answers: list[AnswerRow] = field(default_factory=list)

    async def flush(self, conn: Conn, at: datetime, *, locked: bool) -> None:
        """Write the batch. save_batch also proves every lot still on its Basis and every
        answer new, which a batch decided from memory needs (Batcher._commit_all); under
        the lots' row locks (`locked`), a batch with nothing to write needs no statement."""
        if self.live or self.answers or not locked:
            # A registration's last maximum wins.
            latest = {p.registration_id: p for p in self.proxies}
            rows = BatchRows(
                bids=self.bids,
                live=self.live,
                events=self.events,
                proxies=list(latest.values()),
                unchanged=self.unchanged,
                answers=self.answers,
            )
            lots = [row.lot_id for row in self.live] + [row.lot_id for row in self.unchanged]
            await conn.fetchval(Q.save_batch, rows, at, lots)  # jsonb: msgspec encodes


@dataclass
class Decided:
    """A lot's batch, decided: its answers, its live message and new end when they
    changed, and the state and status to keep once the batch has committed."""

    answers: list[BidAnswer]
    message: dict[str, Any] | None
    extended: datetime | None
    state: rules.AuctionState
    status: str
    notifies: bool = False  # it wrote outbox rows (outbid, extended)


class NeedsRead(Exception):
    """Deciding this batch from memory would need a read from the database."""


def _read(conn: Conn | None) -> Conn:
    """The connection a batch decided from memory does not have: decide it with locks."""
    if conn is None:
        raise NeedsRead
    return conn


def provable_refusal(
    cached: rules.AuctionState | None, command: rules.Bid | rules.SetProxy | rules.Match
) -> str | None:
    """A refusal the cached state proves whatever happened since: prices only rise, so a
    bid below the cached price plus one increment is below the real one too."""
    if cached is None or cached.kind != "english" or cached.price_fen is None:
        return None
    if (
        isinstance(command, rules.Bid)
        and command.amount_fen < cached.price_fen + cached.increment_fen
    ):
        return "too_low"
    return None


class LotWriter:
    def __init__(
        self,
        lot_id: int,
        pool: asyncpg.Pool,
        clock: Clock,
        policy: TermsPolicy,
    ) -> None:
        self.lot_id = lot_id
        self.pool = pool
        self.clock = clock
        self.policy = policy
        self.batcher: Batcher | None = None  # set by Writers for the batched path
        self.state: rules.AuctionState | None = None  # as of this process's last commit
        self.round: int | None = None
        self.status: str | None = None  # the lot's status as of that commit
        # Whether the last batch under the lot's lock found the cache current: a lot that
        # another process also writes goes the locking way until it is found current again
        # (deciding from memory would mostly be undone by save_batch's check).
        self.cache_trusted = False
        self.codes: dict[int, str] = {}
        # Registrations seen with a confirmed deposit. Safe to keep: a deposit stays
        # confirmed while its round is bidding (it is settled only by the close or a
        # withdrawal, after which the lot itself refuses bids), and a registration's lot
        # and round never change.
        self.confirmed: dict[int, Any] = {}
        self.registrations_read = False  # a batch read the lot's confirmed registrations

    async def submit(self, pending: Pending) -> BidAnswer:
        assert self.batcher is not None
        return await self.batcher.submit(self, pending)

    def answer(self, batch: list[Pending], answers: list[BidAnswer]) -> None:
        """Answer the batch's waiting requests (once it has committed)."""
        for p, answer in zip(batch, answers, strict=True):
            if not p.future.done():
                p.future.set_result(answer)

    def _fresh(self, row: Any) -> bool:
        """Whether the cached state is the one the lot's (locked) row shows."""
        cached = self.state
        return (
            cached is not None
            and self.round == row["round"]
            and cached.seq == row["auction_seq"]
            and cached.ends_at == row["bidding_ends_at"]
            and cached.closed == (row["status"] not in ("announced", "bidding"))
        )

    def must_load(self, row: Any, at: datetime) -> bool:
        """Whether a batch must read this lot's state, given its locked row: the cache is
        not what the row shows, and the row is final (a lot whose announced start has
        come is opened first, in `_state_for`, and read then)."""
        opening = row["status"] == "announced" and row["bidding_starts_at"] <= at
        return not opening and not self._fresh(row)

    async def _state_for(
        self, conn: Conn, at: datetime, locked: Any = None, loaded: Any = None
    ) -> tuple[Any, rules.AuctionState]:
        """The lot's row and the state to decide on: the cached one when the row shows
        it, else `loaded` (read with the batch's other lots, `state.load_for`) or read."""
        row = locked or returned(await conn.fetchrow(Q.lot_for_state, self.lot_id))
        if row["status"] == "announced" and row["bidding_starts_at"] <= at:
            # The announced instant has come; the worker may not have run yet.
            await lots.open_if_due(conn, at, self.policy, self.lot_id)
            row = returned(await conn.fetchrow(Q.lot_for_state, self.lot_id))
            loaded = None
        cached = self.state
        fresh = self._fresh(row)
        self.cache_trusted = fresh or cached is None  # stale: someone else wrote
        if fresh:
            # Work on a copy: `provable_refusal` reads `self.state` while this batch is
            # applied, and it may show only committed prices (one O(bidders) copy a batch).
            assert cached is not None
            cached = rules.clone(cached)
        elif loaded is not None:
            cached = loaded
            self.round = row["round"]
        else:
            read = await state.load_locked(conn, self.lot_id)
            assert read is not None
            row, cached = read
            self.round = row["round"]
        assert cached is not None
        if row["status"] not in ("announced", "bidding", "paused"):
            cached.closed = True  # sold, failed, withdrawn…: refuse everything
        return row, cached

    async def _commit(self, batch: list[Pending]) -> Decided:
        """This lot's batch in a transaction of its own."""
        at = self.clock.now()
        writes = Writes()
        async with self.pool.acquire() as conn, conn.transaction():
            decided = await self._apply(conn, batch, at, writes)
            await writes.flush(conn, at, locked=True)
        self.committed(decided)
        return decided

    def committed(self, decided: Decided) -> None:
        """The batch committed: the cache (and `provable_refusal`) may now show it."""
        self.state, self.status = decided.state, decided.status

    def decidable_from_memory(self, batch: list[Pending]) -> bool:
        """Whether this lot's batch can be decided without reading the database: its state
        is cached from a committed batch of the lot in bidding (and was current when last
        checked under the lock, see `cache_trusted`), and every command is a
        known confirmed registration's. An Idempotency-Key is taken as new; save_batch
        proves that, and that the cache was current, or writes nothing."""
        return (
            self.state is not None
            and self.cache_trusted
            and self.status == "bidding"
            and not self.state.closed
            and all(p.registration_id in self.confirmed for p in batch)
        )

    def learn(self, registrations: dict[int, Any]) -> None:
        """Registrations read for a batch; the confirmed ones are kept (see `confirmed`)."""
        for reg_id, reg in registrations.items():
            if reg["deposit_status"] == "confirmed" and reg["lot_id"] == self.lot_id:
                self.confirmed[reg_id] = reg

    async def _apply(
        self,
        conn: Conn | None,
        batch: list[Pending],
        at_commit: datetime,
        writes: Writes,
        *,
        locked: Any = None,
        registrations: dict[int, Any] | None = None,
        loaded: rules.AuctionState | None = None,
    ) -> Decided:
        """Decide this lot's batch in the caller's transaction and add its rows to
        `writes`; the caller flushes them, and calls `committed` only once that
        transaction has committed. `locked` and `registrations` are what a multi-lot
        batch already read for every lot at once (`registrations`: this lot's only; a
        command whose registration is of another lot finds none and is refused). Without
        `conn` the batch is decided from memory (`decidable_from_memory`), or NeedsRead."""
        if conn is None:
            assert self.state is not None and self.round is not None
            row: Any = {"status": "bidding", "round": self.round}
            st = rules.clone(self.state)  # the cache shows committed states only
        else:
            row, st = await self._state_for(conn, at_commit, locked, loaded)
        basis = Basis(
            was_round=row["round"], was_status=row["status"], was_seq=st.seq, was_ends_at=st.ends_at
        )
        if registrations is None:
            unknown = list({p.registration_id for p in batch} - set(self.confirmed))
            registrations = (
                {r["id"]: r for r in await _read(conn).fetch(Q.batch_registrations, unknown)}
                if unknown
                else {}
            )
        self.learn(registrations)
        regs = {
            r: registrations[r] for r in {p.registration_id for p in batch} if r in registrations
        }
        regs |= {
            p.registration_id: self.confirmed[p.registration_id]
            for p in batch
            if p.registration_id in self.confirmed
        }
        keyed = [p for p in batch if p.idempotency_key]
        stored: dict[tuple[int, str], Any] = {}
        if keyed and conn is not None:  # from memory, keys are new or save_batch says no
            for r in await conn.fetch(
                Q.stored_answers,
                [p.registration_id for p in keyed],
                [p.idempotency_key for p in keyed],
            ):
                # Answers from PostgreSQL were stored final, bidder codes and all.
                stored[(r["registration_id"], r["idempotency_key"])] = {
                    **dict(r),
                    "final": True,
                }
        for reg in regs.values():
            self.codes[reg["id"]] = reg["bidder_code"]
            if reg["preemptive_rank"] and reg["round"] == row["round"]:
                st.holders[reg["id"]] = reg["preemptive_rank"]
        ends_before = st.ends_at
        answers: list[BidAnswer] = []
        accepted: list[rules.AcceptedBid] = []
        proxies: list[tuple[int, rules.ProxyMax, datetime]] = []
        new_answers: list[tuple[int, int]] = []  # (index in the batch, HTTP status)
        outbid: list[tuple[int, int]] = []  # (displaced registration, seq that displaced it)
        final: list[bool] = []
        for i, p in enumerate(batch):
            key = (p.registration_id, p.idempotency_key or "")
            if p.idempotency_key and key in stored:
                answers.append(self._replay(stored[key], p))
                final.append(bool(stored[key].get("final")))
                continue
            final.append(False)
            answer, status = self._apply_one(
                st, row, regs.get(p.registration_id), p, accepted, proxies, outbid
            )
            answers.append(answer)
            if p.idempotency_key:
                stored[key] = {
                    "request_sha256": p.request_sha256,
                    "status_code": status,
                    "response": msgspec.to_builtins(answer),
                }
                new_answers.append((i, status))
        # Codes of bidders moved by proxies outside this batch, for the public history.
        missing = {b.registration_id for b in accepted} - set(self.codes)
        if st.leader is not None and st.leader not in self.codes:
            missing.add(st.leader)
        if missing:
            for r in await _read(conn).fetch(Q.bidder_codes, list(missing)):
                self.codes[r["id"]] = r["bidder_code"]
        coded = [a if done else self._with_codes(a) for a, done in zip(answers, final, strict=True)]
        events_before = len(writes.events)
        await self._write(
            conn,
            writes,
            basis,
            st,
            accepted,
            proxies,
            [(batch[i], status, coded[i]) for i, status in new_answers],
            outbid,
            st.ends_at != ends_before,
        )
        message = self._message(st, accepted) if accepted else None
        extended = st.ends_at if st.ends_at != ends_before else None
        notifies = len(writes.events) > events_before
        return Decided(coded, message, extended, st, row["status"], notifies)

    def _apply_one(
        self,
        st: rules.AuctionState,
        row: Any,
        reg: Any,
        p: Pending,
        accepted: list[rules.AcceptedBid],
        proxies: list[tuple[int, rules.ProxyMax, datetime]],
        outbid: list[tuple[int, int]],
    ) -> tuple[BidAnswer, int]:
        at = p.command.at
        if reg is None or reg["lot_id"] != self.lot_id or reg["round"] != row["round"]:
            return self._refused(st, at, "not_registered"), 403
        if row["status"] == "paused":
            return self._refused(st, at, "lot_paused"), 409
        if reg["deposit_status"] != "confirmed":
            return self._refused(st, at, "deposit_not_confirmed"), 403
        leader = st.leader
        try:
            outcome = rules.apply(st, p.command)
        except rules.Refused as exc:
            return self._refused(st, at, exc.code, exc.params), 409
        accepted.extend(outcome.bids)
        proxy_max = note = None
        if outcome.proxy is not None:
            proxies.append((p.registration_id, outcome.proxy, at))
            proxy_max = outcome.proxy.max_fen
            if isinstance(p.command, rules.SetProxy) and proxy_max != p.command.max_fen:
                note = "proxy_rounded_down"
        for b in outcome.bids:
            if leader is not None and leader != b.registration_id:
                outbid.append((leader, b.seq))
            leader = b.registration_id
        return BidAnswer(
            lot_id=self.lot_id,
            accepted=True,
            at=at,
            bids=[
                PlacedBid(
                    seq=b.seq,
                    code=str(b.registration_id),
                    amount_fen=b.amount_fen,
                    kind=b.kind,
                    at=b.at,
                )
                for b in outcome.bids
            ],
            price_fen=st.price_fen,
            leader_code=None if st.leader is None else str(st.leader),
            ends_at=st.ends_at,
            bid_count=rules.public_bid_count(st),
            proxy_max_fen=proxy_max,
            note=note,
        ), 201

    def _refused(
        self,
        st: rules.AuctionState,
        at: datetime,
        code: str,
        params: dict[str, int] | None = None,
    ) -> BidAnswer:
        return BidAnswer(
            lot_id=self.lot_id,
            accepted=False,
            at=at,
            code=code,
            params=params or {},
            price_fen=st.price_fen,
            ends_at=st.ends_at,
            bid_count=rules.public_bid_count(st),
            leader_code=None if st.leader is None else str(st.leader),
        )

    def _with_codes(self, answer: BidAnswer) -> BidAnswer:
        """Answers are built with registration ids; the public sees bidder codes."""

        def code(value: str | None) -> str | None:
            return None if value is None else self.codes.get(int(value), value)

        if answer.leader_code is None and not answer.bids:
            return answer
        return msgspec.structs.replace(
            answer,
            leader_code=code(answer.leader_code),
            bids=[msgspec.structs.replace(b, code=code(b.code) or b.code) for b in answer.bids],
        )

    def _replay(self, stored: Any, p: Pending) -> BidAnswer:
        if stored["request_sha256"] != p.request_sha256:
            return BidAnswer(
                lot_id=self.lot_id,
                accepted=False,
                at=p.command.at,
                code="idempotency_key_reused",
            )
        return msgspec.convert(stored["response"], BidAnswer)

    async def _write(
        self,
        conn: Conn | None,
        writes: Writes,
        basis: Basis,
        st: rules.AuctionState,
        accepted: list[rules.AcceptedBid],
        proxies: list[tuple[int, rules.ProxyMax, datetime]],
        new_answers: list[tuple[Pending, int, BidAnswer]],
        outbid: list[tuple[int, int]],
        extended: bool,
    ) -> None:
        """This lot's rows: bids, live values and outbox rows when anything changed;
        proxies and keyed answers when there are any (answers carry bidder codes)."""
        lot, round_ = self.lot_id, basis.was_round
        if accepted or proxies:
            sealed = st.kind == "sealed"
            writes.bids.extend(
                BidRow(
                    lot_id=lot,
                    round=round_,
                    seq=b.seq,
                    registration_id=b.registration_id,
                    amount_fen=b.amount_fen,
                    kind=b.kind,
                    at=b.at,
                )
                for b in accepted
            )
            writes.live.append(
                LiveRow(
                    lot_id=lot,
                    price_fen=None if sealed else st.price_fen,
                    leader=None if sealed else st.leader,
                    bid_count=st.bid_count,
                    seq=st.seq,
                    ends_at=st.ends_at,
                    first_bid_at=st.first_bid_at,
                    basis=basis,
                )
            )
            writes.events.extend(await self._events(conn, round_, st, accepted, outbid, extended))
        else:
            writes.unchanged.append(UnchangedRow(lot_id=lot, basis=basis))
        writes.proxies.extend(
            ProxyRow(
                registration_id=reg, lot_id=lot, max_fen=proxy.max_fen, seq=proxy.seq, set_at=at
            )
            for reg, proxy, at in proxies
        )
        writes.answers.extend(
            AnswerRow(
                registration_id=p.registration_id,
                idempotency_key=p.idempotency_key or "",
                request_sha256=p.request_sha256,
                status_code=status,
                response=answer,
            )
            for p, status, answer in new_answers
        )

    async def _events(
        self,
        conn: Conn | None,
        round_: int,
        st: rules.AuctionState,
        accepted: list[rules.AcceptedBid],
        outbid: list[tuple[int, int]],
        extended: bool,
    ) -> list[EventRow]:
        """Outbid notices (never for one's own bid) and the end's extension."""
        if st.kind == "sealed":
            return []
        # Tell each displaced bidder once per batch, about the latest price.
        displaced = {reg: seq for reg, seq in outbid if reg != st.leader}
        events: list[EventRow] = []
        unknown = [reg for reg in displaced if reg not in self.confirmed]
        who = dict(self.confirmed)
        if unknown:  # leaders who bid through another process's writer
            who |= {r["id"]: r for r in await _read(conn).fetch(Q.batch_registrations, unknown)}
        for reg, seq in displaced.items():
            events.append(
                EventRow(
                    event="outbid",
                    recipient_org_id=who[reg]["buyer_org_id"],
                    recipient_user_id=who[reg]["user_id"],
                    lot_id=self.lot_id,
                    payload={
                        "registration_id": reg,
                        "price_fen": st.price_fen,
                        "ends_at": st.ends_at.isoformat(),
                    },
                    dedupe_key=f"outbid:{self.lot_id}:{round_}:{seq}:{reg}",
                )
            )
        if extended and accepted:
            events.append(
                EventRow(
                    event="extended",
                    recipient_org_id=None,
                    recipient_user_id=None,
                    lot_id=self.lot_id,
                    payload={"ends_at": st.ends_at.isoformat()},
                    dedupe_key=f"extended:{self.lot_id}:{round_}:{accepted[-1].seq}",
                )
            )
        return events

    def _message(self, st: rules.AuctionState, accepted: list[rules.AcceptedBid]) -> dict[str, Any]:
        sealed = st.kind == "sealed"
        return {
            "lot_id": self.lot_id,
            "round": self.round,
            "price_fen": None if sealed else st.price_fen,
            "leader_code": None if sealed or st.leader is None else self.codes.get(st.leader),
            "ends_at": st.ends_at.isoformat(),
            "bid_count": rules.public_bid_count(st),
            "bids": []
            if sealed
            else [
                {
                    "seq": b.seq,
                    "code": self.codes.get(b.registration_id, "?"),
                    "amount_fen": b.amount_fen,
                    "kind": b.kind,
                    "at": b.at.isoformat(),
                }
                for b in accepted
            ],
            "server_time": self.clock.now().isoformat(),
        }


class DirectLotWriter(LotWriter):
    """The plain path, kept to measure the writer against (bench/bidding.py): every
    request is its own transaction, locking the lot row and rebuilding its state."""

    async def submit(self, pending: Pending) -> BidAnswer:
        self.state = None
        decided = await self._commit([pending])
        self.state = None  # never answer from a cache on this path
        assert self.batcher is not None
        self.batcher.announce([Announcement.of(self.lot_id, self.round, decided)])
        return decided.answers[0]


@dataclass(frozen=True)
class Announcement:
    """What a lot's committed batch tells the world, after its bidders were answered: the
    live message, the new end (the close is rescheduled), whether it owed notices."""

    lot_id: int
    round: int | None
    message: dict[str, Any] | None
    extended: datetime | None
    notifies: bool

    @classmethod
    def of(cls, lot_id: int, round_: int | None, decided: Decided) -> Announcement:
        return cls(lot_id, round_, decided.message, decided.extended, decided.notifies)


class Batcher:
    """This process's writer: it takes what is queued, for every lot, and commits it in
    batches, at most FLIGHTS at once over disjoint lots (`_run`), each from memory or the
    locking way (`_commit_all`). Locking batches lock their lots' rows in id order, as
    every batcher in every process does, so two processes' batches can wait on each other
    but never deadlock; each lot's commands are applied in their arrival order."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        publish: Any = None,
        on_extended: Any = None,
        on_notices: Any = None,
    ) -> None:
        self.pool, self.clock = pool, clock
        self.publish = publish  # async ([(lot_id, message dict)]) -> None
        self.on_extended = on_extended  # async (lot_id, round, ends_at) -> None
        self.on_notices = on_notices  # async () -> None: a batch wrote outbox rows
        # Commands not yet in a batch, in arrival order; the lots of the batches in flight.
        self.waiting: list[tuple[LotWriter, Pending]] = []
        self.in_flight: set[int] = set()
        self.flights: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()  # a command came, or a batch landed
        # Batches decided from memory and committed; and those found stale, then locked;
        # locking batches read again for an Idempotency-Key answered meanwhile elsewhere.
        self.from_memory_batches = self.from_memory_retries = self.key_races = 0
        self.task: asyncio.Task[None] | None = None
        self.announcements: asyncio.Queue[list[Announcement]] = asyncio.Queue(
            maxsize=ANNOUNCE_BACKLOG
        )
        self.announcer: asyncio.Task[None] | None = None
        self.stopping = False

    async def submit(self, writer: LotWriter, pending: Pending) -> BidAnswer:
        if self.stopping:
            raise WriterUnavailable(RESTARTING)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="bid-writer")
        self.waiting.append((writer, pending))
        self.wake.set()
        return await pending.future

    async def stop(self) -> None:
        """Land the batches in flight, so their bidders learn what became of their bids
        (cancelled mid-commit, they could not know), refuse what still waits with 503 (a
        retry with the same Idempotency-Key is safe: nothing of it was written), send the
        live updates owed, then stop."""
        self.stopping = True
        while self.flights:  # a landing flight starts no other now (`_launch`)
            await asyncio.wait(set(self.flights))
        for _, pending in self.waiting:
            if not pending.future.done():
                pending.future.set_exception(WriterUnavailable(RESTARTING))
        self.waiting.clear()
        if self.announcer is not None and not self.announcer.done():
            with contextlib.suppress(TimeoutError):  # best effort, as ever: Redis may be gone
                await asyncio.wait_for(self.announcements.join(), ANNOUNCE_GRACE_SECONDS)
        for task in (self.task, self.announcer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # The relay's kick deferred to its interval (market/notify/relay.Kicker) goes out
        # now, while the Redis client it needs is still open.
        flush = getattr(self.on_notices, "flush", None)
        if flush is not None:
            await flush()

    async def _run(self) -> None:
        """Start a batch whenever fewer than FLIGHTS are committing and a command waits for
        a lot that is in none of them. A lot's commands wait while its batch is in flight,
        so each lot's batches still commit one after another, its commands in arrival
        order, and two batches in flight never hold the same lot's row."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            self._launch()

    def _launch(self) -> None:
        """Start flights for the commands waiting for lots in none."""
        while len(self.flights) < FLIGHTS and not self.stopping:
            ready: dict[int, list[tuple[LotWriter, Pending]]] = {}  # lot → its commands
            for item in self.waiting:
                if item[0].lot_id not in self.in_flight:
                    ready.setdefault(item[0].lot_id, []).append(item)
            if not ready:
                break
            # Share the ready lots among the free flights: a lot's rows are most of a
            # batch's time in PostgreSQL, and two connections write them on two cores
            # (bench/engine.py many_lots). A lot's commands go together, up to MAX_BATCH.
            share = -(-len(ready) // (FLIGHTS - len(self.flights)))
            items: list[tuple[LotWriter, Pending]] = []
            for commands in list(ready.values())[:share]:
                items += commands[: MAX_BATCH - len(items)]
                if len(items) == MAX_BATCH:
                    break
            taken = {id(pending) for _, pending in items}
            self.waiting = [item for item in self.waiting if id(item[1]) not in taken]
            groups: dict[int, tuple[LotWriter, list[Pending]]] = {}
            for writer, pending in items:
                groups.setdefault(writer.lot_id, (writer, []))[1].append(pending)
            self.in_flight |= groups.keys()
            self.flights.add(asyncio.create_task(self._flight(groups), name="bid-batch"))

    async def _flight(self, groups: dict[int, tuple[LotWriter, list[Pending]]]) -> None:
        """One batch: commit it, answer its bidders, queue its announcements."""
        try:
            await self._land(groups)
        finally:
            self.in_flight -= groups.keys()
            self.flights.discard(asyncio.current_task())
            self.wake.set()  # the lots' next commands may go

    async def _land(self, groups: dict[int, tuple[LotWriter, list[Pending]]]) -> None:
        try:
            done = await self._commit_all(groups)
        except Exception:  # one lot's failure must not fail the others: retry alone
            log.exception("bid batch over %d lots failed; retrying lot by lot", len(groups))
            done = {}
            for lot_id, (writer, batch) in groups.items():
                writer.state = None  # reload, lest the cache caused the failure
                try:
                    done[lot_id] = await writer._commit(batch)
                except Exception:  # nothing of this lot was committed: its requests retry
                    log.exception("bid batch of lot %s failed", lot_id)
                    writer.state = None
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(WriterUnavailable("please retry"))
        # Committed: the flight is free, and commands waiting for other lots go to
        # PostgreSQL now, before this batch's bidders are answered (whose requests'
        # resumptions would otherwise run first and leave a flight idle meanwhile). This
        # batch's lots stay in flight until their bidders are answered: a hot lot's next
        # batch then holds the bids those answers bring (smaller, staler batches measured
        # slower, docs/bidding.md). The Redis round trips go to the announcer.
        self.flights.discard(asyncio.current_task())
        self._launch()
        for lot_id, decided in done.items():
            writer, batch = groups[lot_id]
            writer.answer(batch, decided.answers)
        self.announce([Announcement.of(i, groups[i][0].round, d) for i, d in done.items()])

    def announce(self, news: list[Announcement]) -> None:
        """Queue a committed batch's publishes, close reschedules and relay kick for the
        announcer task, which sends them one batch after another, so a live page sees them
        in order. All are best effort (the page re-reads the lot on reconnect; the sweeper
        closes lots whose close was not rescheduled; the relay's cron runs every second):
        a backlog beyond ANNOUNCE_BACKLOG batches — Redis gone — is dropped rather than
        held in memory."""
        news = [n for n in news if n.message is not None or n.extended is not None]
        if not news:
            return
        if self.announcer is None or self.announcer.done():
            self.announcer = asyncio.create_task(self._announcer(), name="bid-announcer")
        try:
            self.announcements.put_nowait(news)
        except asyncio.QueueFull:
            log.warning("live updates are behind by %d batches; dropping one", ANNOUNCE_BACKLOG)

    async def _announcer(self) -> None:
        while True:
            news = await self.announcements.get()
            try:
                await self._send(news)
            finally:
                self.announcements.task_done()

    async def _send(self, news: list[Announcement]) -> None:
        messages = [(n.lot_id, n.message) for n in news if n.message is not None]
        if messages and self.publish is not None:
            try:
                await self.publish(messages)
            except Exception:  # live updates are best effort
                log.warning("could not publish the live updates of %d lots", len(messages))
        for n in news:
            if n.extended is not None and self.on_extended is not None:
                try:
                    await self.on_extended(n.lot_id, n.round, n.extended)
                except Exception:  # the closing sweeper is the net
                    log.warning("could not reschedule the close of lot %s", n.lot_id)
        if self.on_notices is not None and any(n.notifies for n in news):
            await self.on_notices()  # the relay delivers the outbid notices now

    async def _commit_all(
        self, groups: dict[int, tuple[LotWriter, list[Pending]]]
    ) -> dict[int, Decided]:
        """Commit a batch: decided from memory in one statement when every lot allows it,
        else (or when that statement finds a lot moved on) the locking way."""
        decided = None
        if all(writer.decidable_from_memory(batch) for writer, batch in groups.values()):
            try:
                decided = await self._commit_from_memory(groups)
                self.from_memory_batches += 1
            except (NeedsRead, asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                # Nothing was written. SerializationError: a lot moved on since this
                # process's last commit (another process's writer, the closer, a pause), or
                # an Idempotency-Key had an answer (a retry: the locking way replays it);
                # DeadlockDetected: that statement met a locking batch of another process.
                self.from_memory_retries += 1
        if decided is None:
            decided = await self._commit_locked(groups)
        for lot_id, d in decided.items():  # committed: the caches may now show it
            groups[lot_id][0].committed(d)
        return decided

    async def _commit_from_memory(
        self, groups: dict[int, tuple[LotWriter, list[Pending]]]
    ) -> dict[int, Decided]:
        """The batch decided on the cached states and written in ONE statement, its own
        transaction: no BEGIN, no locking read, no COMMIT round trip. save_batch checks
        each lot against the state it was decided on and writes nothing unless all are
        current, so this is as safe as locking first (docs/bidding.md)."""
        at = self.clock.now()
        writes = Writes()
        decided = {
            lot_id: await groups[lot_id][0]._apply(None, groups[lot_id][1], at, writes)
            for lot_id in sorted(groups)
        }
        async with self.pool.acquire() as conn:
            await writes.flush(conn, at, locked=False)
        return decided

    async def _commit_locked(
        self, groups: dict[int, tuple[LotWriter, list[Pending]]]
    ) -> dict[int, Decided]:
        """The batch the locking way. Under the lots' row locks no lot can move on, so
        save_batch fails such a batch (SerializationError, nothing written) only for an
        Idempotency-Key another process answered between this batch's read of the keys
        and its insert (one request sent to two processes at once, the other's batch
        decided from memory and refusing, so writing and locking no lot row); read
        again, the batch finds that answer and replays it — a race, not an error."""
        try:
            return await self._lock_and_commit(groups)
        except asyncpg.SerializationError:
            self.key_races += 1
            return await self._lock_and_commit(groups)

    async def _lock_and_commit(
        self, groups: dict[int, tuple[LotWriter, list[Pending]]]
    ) -> dict[int, Decided]:
        at = self.clock.now()
        decided = {}
        async with self.pool.acquire() as conn, conn.transaction():
            # Every lot's row and every unknown registration in two statements, not two
            # per lot: a batch over many lots then costs about one statement per lot.
            locked = {r["id"]: r for r in await conn.fetch(Q.lock_lots, sorted(groups))}
            unknown = list(
                {
                    p.registration_id
                    for writer, batch in groups.values()
                    for p in batch
                    if p.registration_id not in writer.confirmed
                }
            )
            new_lots = [
                lot_id for lot_id, (writer, _) in groups.items() if not writer.registrations_read
            ]
            by_lot: dict[int, dict[int, Any]] = {}
            if unknown or new_lots:
                for r in await conn.fetch(Q.batch_registrations_and_lots, unknown, new_lots):
                    by_lot.setdefault(r["lot_id"], {})[r["id"]] = r
            # The states this process must read (lots new to it, or moved on by another
            # process): all at once too.
            stale = [row for i, row in locked.items() if groups[i][0].must_load(row, at)]
            loaded = await state.load_for(conn, stale) if stale else {}
            writes = Writes()
            for lot_id in sorted(groups):
                writer, batch = groups[lot_id]
                writer.registrations_read = True
                decided[lot_id] = await writer._apply(
                    conn,
                    batch,
                    at,
                    writes,
                    locked=locked.get(lot_id),
                    registrations=by_lot.get(lot_id, {}),
                    loaded=loaded.get(lot_id),
                )
            await writes.flush(conn, at, locked=True)
        return decided


WRITERS_KEPT = 10_000  # lots whose state this process keeps


class Writers:
    """The lots' states of this process, and the one batcher that writes them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        policy: TermsPolicy,
        publish: Any = None,
        on_extended: Any = None,
        on_notices: Any = None,
        *,
        direct: bool = False,
    ) -> None:
        self.writer_class = DirectLotWriter if direct else LotWriter
        self.pool, self.clock, self.policy = pool, clock, policy
        # Bounded: a lot not bid on for a long while is read again if it ever is (a writer
        # holding commands is in use, so never the least recently used).
        self.by_lot: LRU[int, LotWriter] = LRU(WRITERS_KEPT)
        self.batcher = Batcher(pool, clock, publish, on_extended, on_notices)

    def for_lot(self, lot_id: int) -> LotWriter:
        writer = self.by_lot.get(lot_id)
        if writer is None:
            writer = self.writer_class(lot_id, self.pool, self.clock, self.policy)
            writer.batcher = self.batcher
            self.by_lot[lot_id] = writer
        return writer

    async def stop(self) -> None:
        await self.batcher.stop()


def bidding_writers(pool: asyncpg.Pool, redis: Any, clock: Clock, settings: Any) -> Writers:
    """This process's writers: they publish each batch on Redis for the live pages and ask
    the worker to close at the new end when a batch extended it."""

    async def publish(messages: list[tuple[int, dict[str, Any]]]) -> None:
        async with redis.pipeline(transaction=False) as pipe:  # one round trip a batch
            for lot_id, message in messages:
                pipe.publish(f"lot:{lot_id}", msgspec.json.encode(message))
            await pipe.execute()

    async def on_extended(lot_id: int, round_: int, ends_at: datetime) -> None:
        from auctions.jobs import schedule_close

        await schedule_close(redis, lot_id, round_, ends_at, clock)

    from market.notify.relay import Kicker

    on_notices = Kicker(redis)  # the relay delivers the outbid notices now, in bulk

    return Writers(
        pool,
        clock,
        lots.policy_for(settings),
        publish,
        on_extended,
        on_notices,
        direct=settings.bid_path == "direct",
    )
